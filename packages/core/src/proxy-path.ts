/**
 * Parsing of proxy request targets: `/r/{route-token}/{route}/{rest}?{query}`.
 *
 * The rest is forwarded byte for byte, so anything that could make an upstream resolve it outside the
 * route's base path is rejected here: dot segments (also percent-encoded), encoded slashes and
 * backslashes, and any target that is not in origin form (RFC 9112 section 3.2).
 */

export type ParsedProxyPath =
  | { ok: true; token: string; route: string; rest: string }
  | { ok: false; reason: 'not_proxy_path' | 'invalid_path'; message: string };

/**
 * Any token segment is accepted here and left to the token lookup, so that a mangled token gets the
 * same 401 "invalid route" answer as an unknown one. The token is only hashed, never forwarded.
 */
const TOKEN_PATTERN = /^[^/?#]{1,256}$/;
const ROUTE_PATTERN = /^[a-z0-9][a-z0-9-]{0,31}$/;
const FORBIDDEN_SEGMENT = /^(?:\.|%2e){1,2}$/i;
const FORBIDDEN_SEQUENCE = /%2f|%5c|\\|%00/i;
/** A scheme and a colon: the start of an absolute-form target (RFC 9112 section 3.2.2) or an authority-form one. */
const SCHEME_PREFIX = /^[A-Za-z][A-Za-z0-9+.-]*:/;
/** The segment after `/r/` in a target quoted by a message: a route token, whatever its form. */
const TOKEN_SEGMENT = /\/r\/[^/?#]+/g;

/** Split a request target into the route token, the route name and the rest (path and query) to forward. */
export function parseProxyPath(target: string): ParsedProxyPath {
  if (isAbsoluteFormTarget(target)) {
    return { ok: false, reason: 'not_proxy_path', message: ABSOLUTE_FORM_MESSAGE };
  }
  if (!target.startsWith('/r/')) {
    return {
      ok: false,
      reason: 'not_proxy_path',
      message: `not a proxy path: expected /r/{token}/{route}/..., got "${quoteTarget(target)}"`,
    };
  }

  const queryStart = target.indexOf('?');
  const path = queryStart === -1 ? target : target.slice(0, queryStart);
  const query = queryStart === -1 ? '' : target.slice(queryStart);

  const secondSlash = path.indexOf('/', 3);
  const token = secondSlash === -1 ? path.slice(3) : path.slice(3, secondSlash);
  if (!TOKEN_PATTERN.test(token)) {
    return { ok: false, reason: 'invalid_path', message: 'missing or oversized route token in the URL: expected /r/{token}/{route}/...' };
  }
  if (secondSlash === -1) {
    return { ok: false, reason: 'invalid_path', message: 'missing route name in the URL: expected /r/{token}/{route}/...' };
  }

  const thirdSlash = path.indexOf('/', secondSlash + 1);
  const route = thirdSlash === -1 ? path.slice(secondSlash + 1) : path.slice(secondSlash + 1, thirdSlash);
  if (!ROUTE_PATTERN.test(route)) {
    // Only a near miss (a route name in the wrong case) is quoted. Any other segment may be a route token
    // in the wrong place: Tokenwise's tokens all contain "_", which no route name has.
    const quoted = NEAR_MISS_ROUTE.test(route) ? ` "${route}"` : '';
    return {
      ok: false,
      reason: 'invalid_path',
      message: `invalid route name${quoted} in the URL: expected lowercase letters, digits and dashes`,
    };
  }

  const restPath = thirdSlash === -1 ? '' : path.slice(thirdSlash);
  if (FORBIDDEN_SEQUENCE.test(restPath) || restPath.split('/').some((segment) => FORBIDDEN_SEGMENT.test(segment))) {
    return {
      ok: false,
      reason: 'invalid_path',
      message: `rejected path "${quoteTarget(restPath)}": dot segments, encoded slashes and backslashes are not forwarded`,
    };
  }

  return { ok: true, token, route, rest: restPath + query };
}

/** Join a route's base URL and the forwarded rest without ever changing the base URL's origin. */
export function joinUpstreamUrl(baseUrl: string, rest: string): URL {
  const base = new URL(baseUrl);
  const queryStart = rest.indexOf('?');
  const restPath = queryStart === -1 ? rest : rest.slice(0, queryStart);
  const query = queryStart === -1 ? '' : rest.slice(queryStart);
  const url = new URL(base.origin);
  url.pathname = `${base.pathname.replace(/\/+$/, '')}${restPath.startsWith('/') || restPath === '' ? restPath : `/${restPath}`}` || '/';
  url.search = query;
  return url;
}

/** A segment that fails ROUTE_PATTERN only by its case. */
const NEAR_MISS_ROUTE = /^[A-Za-z0-9][A-Za-z0-9-]{0,31}$/;

const ABSOLUTE_FORM_MESSAGE =
  'absolute-form request targets ("POST http://host/...") are not supported: send the path only, as in "POST /r/{token}/{route}/..." (origin form, RFC 9112 section 3.2.1)';

/**
 * Return true for a request target that starts with a scheme, as a client that takes Tokenwise for a
 * forward proxy sends (`GET http://host/path`). Such targets get a 400 although RFC 9112 section 3.2.2
 * requires servers to accept them. The proxy forwards only `/r/{token}/{route}/...`, the host they name
 * must never pick the upstream, and no AI tool sends them to a base URL.
 */
export function isAbsoluteFormTarget(target: string): boolean {
  return SCHEME_PREFIX.test(target);
}

/** Replace every `/r/{token}` segment of a target with `/r/{token}`, so a message or log line may quote the rest. */
export function redactRouteToken(target: string): string {
  return target.replace(TOKEN_SEGMENT, '/r/{token}');
}

/**
 * Quote a target in a message: without its query, which may carry an API key (Gemini's `?key=`), with
 * route tokens masked, then cut to 80 characters.
 */
function quoteTarget(text: string): string {
  const redacted = redactRouteToken(text.split('?')[0] ?? '');
  return redacted.length > 80 ? `${redacted.slice(0, 77)}...` : redacted;
}
