import { redactRouteToken } from '@tokenwise/core';
import { isProxyTarget } from './proxy/index.js';

/**
 * What one `tokenwise serve` process serves. Several `proxy` processes behind a load balancer share one
 * PostgreSQL database with one `app` process; `both` is the single-machine default.
 */
export type ServerRole = 'proxy' | 'app' | 'both';

export const SERVER_ROLES: readonly ServerRole[] = ['proxy', 'app', 'both'];

/**
 * Return true when a server of `role` serves the request target. Every role serves `/healthz`, `/readyz`
 * and `/metrics`, since each process reports its own health and counters.
 */
export function roleServes(role: ServerRole, target: string): boolean {
  if (role === 'both' || isProbe(target)) return true;
  const isProxy = isProxyTarget(target);
  return role === 'proxy' ? isProxy : !isProxy;
}

/** The 404 body for a request that another role serves, naming where it belongs. */
export function wrongRoleBody(role: ServerRole, target: string): { error: { code: string; message: string } } {
  const path = redactRouteToken(target.split('?')[0] ?? '');
  const message =
    role === 'proxy'
      ? `nothing at ${path} on this server: it runs with --role proxy and serves only /r/{route-token}/{route}/, /healthz and /readyz; the API is on the --role app server`
      : `nothing at ${path} on this server: it runs with --role app and serves no proxy traffic; point your tools at a --role proxy server`;
  return { error: { code: 'not_found', message } };
}

function isProbe(target: string): boolean {
  const path = target.split('?')[0];
  return path === '/healthz' || path === '/readyz' || path === '/metrics';
}
