import type { IncomingMessage, ServerResponse } from 'node:http';
import { TokenwiseError } from '@tokenwise/core';
import { type Caller, type Principals, WORKSPACE_HEADER, type WorkspaceScope } from './accounts/principal.js';
import { sendNoWorkspace } from './api.js';
import { sendApiError } from './api-responses.js';

/** The request a workspace route serves, with the caller's workspace already resolved. */
export interface WorkspaceRouteContext {
  req: IncomingMessage;
  res: ServerResponse;
  url: URL;
  caller: Caller;
  scope: WorkspaceScope;
}

/** A route matched by method and exact path under `/api/v1`. */
export type WorkspaceRoute = [method: string, path: string, handler: (context: WorkspaceRouteContext) => Promise<void>];

/** The request a pattern route serves: the capture groups of its path pattern, decoded, are `params`. */
export type WorkspacePatternContext = WorkspaceRouteContext & { params: string[] };

/** A route matched by method and a path pattern under `/api/v1`. */
export type WorkspacePatternRoute = [method: string, pattern: RegExp, handler: (context: WorkspacePatternContext) => Promise<void>];

/** A request handler that returns false when no route matches, so the next handler may serve the request. */
export type RouteHandler = (req: IncomingMessage, res: ServerResponse, url: URL, caller: Caller) => Promise<boolean>;

/**
 * Create the handler of routes matched by exact path. A known path with another method gets 405. A named
 * workspace (header or `?workspace=`) must be the caller's, for API tokens too, or the request gets 404.
 */
export function exactPathRoutes(principals: Principals, routes: readonly WorkspaceRoute[]): RouteHandler {
  return async function handle(req, res, url, caller) {
    const path = url.pathname.replace(/\/+$/, '').slice('/api/v1'.length);
    const route = routes.find(([method, routePath]) => routePath === path && method === req.method);
    if (!route) {
      if (!routes.some(([, routePath]) => routePath === path)) return false;
      sendApiError(res, 405, 'method_not_allowed', `${req.method} is not allowed on ${url.pathname}`);
      return true;
    }

    const named = headerValue(req.headers[WORKSPACE_HEADER]) ?? url.searchParams.get('workspace') ?? undefined;
    const scope = await principals.workspace(caller, req, named);
    if (!scope) {
      if (named !== undefined) sendApiError(res, 404, 'not_found', `no workspace "${named}" for this caller`);
      else sendNoWorkspace(res, caller);
      return true;
    }
    await route[2]({ req, res, url, caller, scope });
    return true;
  };
}

/** Create the handler of routes matched by path pattern, in the workspace `principals` picks for the caller. */
export function patternRoutes(principals: Principals, routes: readonly WorkspacePatternRoute[]): RouteHandler {
  return async function handle(req, res, url, caller) {
    const path = url.pathname.replace(/\/+$/, '').slice('/api/v1'.length);
    const method = req.method ?? 'GET';
    for (const [routeMethod, pattern, handler] of routes) {
      const match = pattern.exec(path);
      if (!match || routeMethod !== method) continue;
      const scope = await principals.workspace(caller, req);
      if (!scope) {
        sendNoWorkspace(res, caller);
        return true;
      }
      await handler({ req, res, url, caller, scope, params: match.slice(1).map(decodeSegment) });
      return true;
    }
    return false;
  };
}

function headerValue(value: string | string[] | undefined): string | undefined {
  return Array.isArray(value) ? value[0] : value;
}

function decodeSegment(segment: string | undefined): string {
  try {
    return decodeURIComponent(segment ?? '');
  } catch {
    throw new TokenwiseError('invalid_argument', `invalid percent-encoding in the path segment "${segment}"`);
  }
}
