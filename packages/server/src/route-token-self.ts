import type { IncomingMessage, ServerResponse } from 'node:http';
import type { RouteToken, Store } from '@tokenwise/storage';
import type { Logger } from 'pino';
import { sendApiError, sendJson } from './api-responses.js';
import type { RouteAuthorizer } from './route-authorizer.js';
import { hashToken } from './tokens.js';

export interface RouteTokenSelfOptions {
  store: Store;
  authorizer: RouteAuthorizer;
  logger: Logger;
  /** The server's public origin (`--public-url`), reported to devices: Cursor needs a public https URL. */
  publicUrl?: string | undefined;
}

/** How many of the newest calls are scanned for each tool's last call. */
const RECENT_CALLS = 1000;
const SELF_PATH = '/api/v1/route-tokens/self';

/**
 * Endpoints a device calls with its own route token (`Authorization: Bearer <route token>`) instead of an
 * API token, so `tokenwise connect` on another machine needs nothing else:
 *
 *   GET  /api/v1/route-tokens/self          the token's id, name, last use, each tool's last call, the public URL
 *   POST /api/v1/route-tokens/self/revoke   revoke the token and its device (what `tokenwise disconnect` does)
 *
 * A token can only read about and revoke itself.
 */
export function createRouteTokenSelfHandler(options: RouteTokenSelfOptions) {
  const { store, authorizer, logger } = options;

  async function handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const path = new URL(req.url ?? '/', 'http://localhost').pathname.replace(/\/+$/, '');
    const expected = path === SELF_PATH ? 'GET' : 'POST';
    if (req.method !== expected) {
      sendApiError(res, 405, 'method_not_allowed', `${req.method} is not allowed on ${path}: use ${expected}`);
      return;
    }

    const token = await findToken(req.headers.authorization);
    if (!token) {
      res.setHeader('www-authenticate', 'Bearer');
      sendApiError(res, 401, 'unauthorized', 'missing, unknown or revoked route token: send Authorization: Bearer <route token>');
      return;
    }

    if (path === SELF_PATH) {
      sendJson(res, 200, {
        id: token.id,
        name: token.name,
        workspace_id: token.workspaceId,
        device_id: token.deviceId,
        created_at: token.createdAt,
        last_used_at: token.lastUsedAt,
        last_calls: await lastCallsByTool(token),
        public_url: options.publicUrl ?? null,
      });
      return;
    }
    if (token.deviceId !== null) await authorizer.revokeDevice(token.deviceId);
    else await authorizer.revoke(token.id);
    logger.info({ token_id: token.id, device_id: token.deviceId, workspace_id: token.workspaceId }, 'route token revoked by its holder');
    sendJson(res, 200, { id: token.id, revoked: true });
  }

  async function findToken(authorization: string | undefined): Promise<RouteToken | null> {
    const presented = /^Bearer\s+(\S+)\s*$/i.exec(authorization ?? '')?.[1];
    if (!presented) return null;
    const token = await store.findRouteTokenByHash(hashToken(presented));
    return token && token.revokedAt === null ? token : null;
  }

  /**
   * Newest call start per tool among the recent calls of the token's device. A call row records the device,
   * not the route token, and every token made since devices exist has a device of its own, so these are the
   * token's own calls. A token without a device (made by an older version) returns null: its calls cannot
   * be told apart from the rest of the workspace's.
   */
  async function lastCallsByTool(token: RouteToken): Promise<Record<string, string> | null> {
    if (token.deviceId === null) return null;
    const calls = await store.listCalls({ limit: RECENT_CALLS, workspaceId: token.workspaceId, deviceId: token.deviceId });
    const last: Record<string, string> = {};
    for (const { record } of calls) {
      if (!last[record.tool] || last[record.tool]! < record.started_at) last[record.tool] = record.started_at;
    }
    return last;
  }

  return {
    /** True for the paths this handler serves; the dispatcher sends them here before the API-token API. */
    matches(path: string): boolean {
      return path.startsWith(SELF_PATH) && ['', '/', '/revoke', '/revoke/'].includes(path.slice(SELF_PATH.length).split('?')[0]!);
    },
    handle(req: IncomingMessage, res: ServerResponse): void {
      handle(req, res).catch((error: unknown) => {
        logger.error({ err: error }, 'route token self request failed');
        if (res.headersSent) res.destroy();
        else sendApiError(res, 500, 'internal_error', 'the server failed to handle this request; details are in the server log');
      });
    },
  };
}
