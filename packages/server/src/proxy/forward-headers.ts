import type { IncomingHttpHeaders } from 'node:http';

/**
 * Fields that describe one connection rather than the message, so a proxy must not forward them
 * (RFC 9110 section 7.6.1), plus the proxy-authentication pair that RFC 2616 section 13.5.1 also counts
 * as hop-by-hop. `trailer` is dropped because trailers are not forwarded in either direction.
 */
const HOP_BY_HOP = new Set([
  'connection',
  'proxy-connection',
  'keep-alive',
  'te',
  'transfer-encoding',
  'upgrade',
  'trailer',
  'proxy-authenticate',
  'proxy-authorization',
]);

/**
 * Request fields the proxy handles itself: undici sends the upstream's own `host`, and Node's server has
 * already sent `100 Continue` for `expect: 100-continue` before the request reached the proxy.
 */
const REQUEST_ONLY = new Set(['host', 'expect']);

/** Fields of the WebSocket opening handshake (RFC 6455 section 4); each hop negotiates its own. */
const WEBSOCKET_HANDSHAKE = new Set([
  'sec-websocket-key',
  'sec-websocket-version',
  'sec-websocket-extensions',
  'sec-websocket-protocol',
  'sec-websocket-accept',
]);

/**
 * Names of the cookies of Tokenwise's own web UI (`tokenwise_session`, `tokenwise_csrf`, with `__Host-` over
 * HTTPS; see web-auth.ts). The proxy shares the dashboard's origin, so a client that runs in a browser
 * sends them along with its calls; they never go upstream, and an upstream cannot set them.
 */
const OWN_COOKIE = /^(__Host-)?tokenwise_/;

/**
 * Filter a request's raw header list (`IncomingMessage.rawHeaders`: name, value, name, value, ...) down
 * to what goes upstream. Names keep their case, order and repetitions, so the upstream receives the
 * client's fields byte for byte, except `cookie`, which loses Tokenwise's own cookies.
 */
export function forwardRequestHeaders(rawHeaders: readonly string[]): string[] {
  return withoutOwnCookies(filterRawHeaders(rawHeaders, REQUEST_ONLY));
}

/** Filter a response's raw header list like `forwardResponseHeaders`, for responses relayed onto a raw socket. */
export function forwardRawResponseHeaders(rawHeaders: readonly string[]): string[] {
  const forwarded = filterRawHeaders(rawHeaders, new Set());
  const kept: string[] = [];
  for (let i = 0; i + 1 < forwarded.length; i += 2) {
    if (forwarded[i]!.toLowerCase() === 'set-cookie' && setsOwnCookie(forwarded[i + 1]!)) continue;
    kept.push(forwarded[i]!, forwarded[i + 1]!);
  }
  return kept;
}

/**
 * Build the header object the upstream WebSocket upgrade is opened with: the client's fields minus
 * hop-by-hop and handshake ones. Repeated fields are joined as RFC 9110 section 5.3 allows (`cookie` with `; `).
 */
export function forwardUpgradeHeaders(rawHeaders: readonly string[]): Record<string, string> {
  const dropped = droppedNames(rawHeaders, new Set([...REQUEST_ONLY, ...WEBSOCKET_HANDSHAKE]));
  const byLowerName = new Map<string, { name: string; value: string }>();
  for (let i = 0; i + 1 < rawHeaders.length; i += 2) {
    const name = rawHeaders[i]!;
    const lower = name.toLowerCase();
    if (dropped.has(lower)) continue;
    const value = lower === 'cookie' ? withoutOwnCookiePairs(rawHeaders[i + 1]!) : rawHeaders[i + 1]!;
    if (lower === 'cookie' && value === '') continue;
    const seen = byLowerName.get(lower);
    if (seen) seen.value += `${lower === 'cookie' ? '; ' : ', '}${value}`;
    else byLowerName.set(lower, { name, value });
  }
  return Object.fromEntries([...byLowerName.values()].map(({ name, value }) => [name, value]));
}

/**
 * Response fields to send the client: everything the upstream sent minus hop-by-hop ones, and minus a
 * `set-cookie` for one of Tokenwise's own cookies. The provider's other cookies (Cloudflare's `__cf_bm`,
 * say) pass, because a client may keep them and send them back, as it would to the provider directly.
 */
export function forwardResponseHeaders(
  headers: Readonly<Record<string, string | string[] | undefined>>,
): Record<string, string | string[]> {
  const dropped = new Set(HOP_BY_HOP);
  for (const option of connectionOptions(headers.connection)) dropped.add(option);

  const forwarded: Record<string, string | string[]> = {};
  for (const [name, value] of Object.entries(headers)) {
    if (value === undefined || dropped.has(name)) continue;
    if (name === 'set-cookie') {
      const cookies = (Array.isArray(value) ? value : [value]).filter((cookie) => !setsOwnCookie(cookie));
      if (cookies.length > 0) forwarded[name] = cookies;
      continue;
    }
    forwarded[name] = value;
  }
  return forwarded;
}

/** Header lines for the 101 the proxy sends once the upstream accepted a WebSocket upgrade. */
export function forwardUpgradeResponseHeaders(headers: Readonly<Record<string, string | string[] | undefined>>): string[] {
  const lines: string[] = [];
  for (const [name, value] of Object.entries(forwardResponseHeaders(headers))) {
    if (WEBSOCKET_HANDSHAKE.has(name)) continue;
    for (const item of Array.isArray(value) ? value : [value]) lines.push(`${name}: ${item}`);
  }
  return lines;
}

/** Lowercase single-valued view of headers for the capture, repeated fields joined with `, `. */
export function captureHeaders(headers: Readonly<Record<string, string | string[] | undefined>>): Record<string, string> {
  const flat: Record<string, string> = {};
  for (const [name, value] of Object.entries(headers)) {
    if (value !== undefined) flat[name] = Array.isArray(value) ? value.join(', ') : value;
  }
  return flat;
}

/** Tell whether a request has a body: it has one exactly when it has `content-length` or `transfer-encoding` (RFC 9112 section 6.1). */
export function hasRequestBody(headers: IncomingHttpHeaders): boolean {
  return headers['transfer-encoding'] !== undefined || (headers['content-length'] !== undefined && headers['content-length'] !== '0');
}

/** Remove Tokenwise's own cookies from every `cookie` field of a raw header list; a field left empty goes. */
function withoutOwnCookies(rawHeaders: readonly string[]): string[] {
  const kept: string[] = [];
  for (let i = 0; i + 1 < rawHeaders.length; i += 2) {
    const name = rawHeaders[i]!;
    if (name.toLowerCase() !== 'cookie') {
      kept.push(name, rawHeaders[i + 1]!);
      continue;
    }
    const value = withoutOwnCookiePairs(rawHeaders[i + 1]!);
    if (value !== '') kept.push(name, value);
  }
  return kept;
}

/** Drop the `name=value` pairs of Tokenwise's own cookies from a `cookie` value (RFC 6265 section 4.2.1); others keep their bytes. */
function withoutOwnCookiePairs(value: string): string {
  const pairs = value.split(';');
  const kept = pairs.filter((pair) => !OWN_COOKIE.test(pair.trim()));
  if (kept.length === pairs.length) return value;
  return kept
    .map((pair) => pair.trim())
    .filter((pair) => pair !== '')
    .join('; ');
}

function setsOwnCookie(setCookie: string): boolean {
  return OWN_COOKIE.test(setCookie.trimStart());
}

function filterRawHeaders(rawHeaders: readonly string[], extra: ReadonlySet<string>): string[] {
  const dropped = droppedNames(rawHeaders, extra);
  const forwarded: string[] = [];
  for (let i = 0; i + 1 < rawHeaders.length; i += 2) {
    const name = rawHeaders[i]!;
    if (!dropped.has(name.toLowerCase())) forwarded.push(name, rawHeaders[i + 1]!);
  }
  return forwarded;
}

function droppedNames(rawHeaders: readonly string[], extra: ReadonlySet<string>): Set<string> {
  const dropped = new Set([...HOP_BY_HOP, ...extra]);
  for (let i = 0; i + 1 < rawHeaders.length; i += 2) {
    if (rawHeaders[i]!.toLowerCase() === 'connection') {
      for (const option of connectionOptions(rawHeaders[i + 1])) dropped.add(option);
    }
  }
  return dropped;
}

/** Names listed in `connection` are hop-by-hop for this message too (RFC 9110 section 7.6.1). */
function connectionOptions(value: string | string[] | undefined): string[] {
  if (value === undefined) return [];
  const joined = Array.isArray(value) ? value.join(',') : value;
  return joined
    .split(',')
    .map((option) => option.trim().toLowerCase())
    .filter((option) => option !== '');
}
