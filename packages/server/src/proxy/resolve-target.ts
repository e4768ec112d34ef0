import {
  type ErrorFormat,
  isAbsoluteFormTarget,
  joinUpstreamUrl,
  parseProxyPath,
  type RouteDescriptor,
  type RouteRegistry,
} from '@tokenwise/core';
import type { ProxyError } from './error-response.js';
import type { RouteAuthorization } from './proxy-options.js';

export type ResolvedTarget =
  | { ok: true; route: RouteDescriptor; rest: string; upstreamUrl: URL; authorization: RouteAuthorization }
  | { ok: false; error: ProxyError };

/** Error shape used when the URL names no known route: OpenAI's envelope is the one most clients parse. */
const FALLBACK_FORMAT: ErrorFormat = 'openai';

/**
 * Turn a request target into the upstream URL and the token's authorization, or into the error response
 * to send: 400 for a malformed path, 404 for an unknown route, 401 for an unknown or revoked token.
 * The route is checked before the token so a typo in the route name gets the more useful error.
 */
export async function resolveTarget(
  target: string,
  registry: RouteRegistry,
  authorize: (token: string) => RouteAuthorization | null | Promise<RouteAuthorization | null>,
): Promise<ResolvedTarget> {
  const parsed = parseProxyPath(target);
  if (!parsed.ok) {
    return {
      ok: false,
      error: { status: 400, kind: 'invalid_request', format: errorFormatFor(target, registry), message: parsed.message },
    };
  }

  const route = registry.get(parsed.route);
  if (!route) {
    const message = `unknown route "${parsed.route}" in the URL; known routes: ${registry.names().join(', ')}`;
    return { ok: false, error: { status: 404, kind: 'not_found', format: FALLBACK_FORMAT, message } };
  }

  const authorization = await authorize(parsed.token);
  if (!authorization) {
    const message = 'invalid route: the route token is unknown or revoked, run tokenwise connect to pair again';
    return { ok: false, error: { status: 401, kind: 'invalid_route', format: route.errorFormat, message } };
  }

  return { ok: true, route, rest: parsed.rest, upstreamUrl: joinUpstreamUrl(route.baseUrl, parsed.rest), authorization };
}

/** Extract the `{route}` segment of `/r/{token}/{route}/...`, used only to pick an error shape for a bad path. */
function routeSegment(target: string): string {
  const path = isAbsoluteFormTarget(target) ? target.replace(/^[^:]+:\/\/[^/?#]*/, '') : target;
  return path.split('?')[0]?.split('/')[3] ?? '';
}

/**
 * Return true for a target the proxy handles: a proxy path, or an absolute-form target it rejects with
 * a 400. The app dispatches these to `handleRequest` and `handleUpgrade`.
 */
export function isProxyTarget(target: string): boolean {
  return target.startsWith('/r/') || isAbsoluteFormTarget(target);
}

/** Pick the error shape for a target before it is resolved: its route's, else the fallback. */
export function errorFormatFor(target: string, registry: RouteRegistry): ErrorFormat {
  return registry.get(routeSegment(target))?.errorFormat ?? FALLBACK_FORMAT;
}
