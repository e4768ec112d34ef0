import type { IncomingMessage, ServerResponse } from 'node:http';
import { TokenwiseError } from '@tokenwise/core';
import type { ListedCall, Store } from '@tokenwise/storage';
import type { Logger } from 'pino';
import type { Caller, Principals, WorkspaceScope } from './accounts/principal.js';
import { rejectUnknownFields } from './accounts/request-body.js';
import { type ApiErrorCode, readJsonBody, sendApiError, sendJson } from './api-responses.js';
import type { CallStream } from './call-stream.js';
import { parseCallFilter } from './dashboard/call-filter-params.js';
import { parseListPage } from './list-page-params.js';
import type { RouteAuthorizer } from './route-authorizer.js';
import { describeRouteToken } from './route-token-json.js';
import { parseSince } from './since.js';
import { generateRouteToken, hashToken } from './tokens.js';

export interface ApiOptions {
  store: Store;
  principals: Principals;
  authorizer: RouteAuthorizer;
  /** Further endpoints (accounts, workspaces, devices), tried when none of these matches; returns false when it has none either. */
  moreEndpoints?: (req: IncomingMessage, res: ServerResponse, url: URL, caller: Caller) => Promise<boolean>;
  stream: CallStream;
  logger: Logger;
  /** Interval of SSE keep-alive comments, in ms, so idle proxies and clients keep the stream open. */
  heartbeatMs?: number;
  clock?: () => Date;
}

export interface ApiHandler {
  /** Serves one request whose path starts with `/api/`. */
  handle(req: IncomingMessage, res: ServerResponse): void;
  /** Ends every open call stream, so the HTTP server can close. */
  closeStreams(): void;
}

const DEFAULT_LIMIT = 50;
const MAX_LIMIT = 1000;
const BACKLOG_PAGE = 500;
const MAX_ROUTE_TOKEN_NAME = 100;
/** A stream client this far behind is disconnected; it resumes with `Last-Event-ID` and loses nothing. */
const MAX_STREAM_BUFFER_BYTES = 4 * 1024 * 1024;

type Endpoint =
  | { name: 'listCalls' }
  | { name: 'streamCalls' }
  | { name: 'getCall'; id: string }
  | { name: 'listRouteTokens' }
  | { name: 'createRouteToken' }
  | { name: 'revokeRouteToken'; id: string };

/**
 * The HTTP API under `/api/v1`, JSON in and out, every endpoint behind `Authorization: Bearer <api token>`
 * or a signed-in browser's session (see `createPrincipals`). Each acts in the caller's workspace, and an id
 * of another workspace is answered like an unknown one:
 *
 *   GET    /api/v1/calls?limit&cursor&…      newest first, with the dashboard's filters and `q` (docs/api.md);
 *                                            with `after`, oldest first in storage order from that cursor
 *   GET    /api/v1/calls/stream              server-sent events: `ready`, then one `call` event per stored call
 *   GET    /api/v1/calls/{id}                one call and its bodies when they were kept
 *   GET    /api/v1/route-tokens?limit&cursor the route tokens of the caller's workspace, revoked ones too, never the secret
 *   POST   /api/v1/route-tokens              {name} -> a new route token, shown only in this response
 *   DELETE /api/v1/route-tokens/{id}         revoke a route token of the caller's workspace
 *
 * Errors are `{"error": {"code", "message"}}`. A 500 carries no details, which go to the server log.
 */
export function createApiHandler(options: ApiOptions): ApiHandler {
  const { store, principals, logger } = options;
  const clock = options.clock ?? (() => new Date());
  const heartbeatMs = options.heartbeatMs ?? 15_000;
  const openStreams = new Set<ServerResponse>();

  async function handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const url = new URL(req.url ?? '/', 'http://localhost');
    const resolved = await principals.caller(req);
    if (!resolved.ok) {
      if (resolved.status === 401) res.setHeader('www-authenticate', 'Bearer');
      sendApiError(res, resolved.status, resolved.status === 401 ? 'unauthorized' : 'forbidden', resolved.message);
      return;
    }
    const caller = resolved.caller;

    const endpoint = matchEndpoint(req.method ?? 'GET', url.pathname);
    if (endpoint === 'method_not_allowed' || !endpoint) {
      if (await options.moreEndpoints?.(req, res, url, caller)) return;
      if (endpoint === 'method_not_allowed')
        sendApiError(res, 405, 'method_not_allowed', `${req.method} is not allowed on ${url.pathname}`);
      else sendApiError(res, 404, 'not_found', `no API endpoint at ${url.pathname}`);
      return;
    }

    const scope = await principals.workspace(caller, req);
    if (!scope) {
      sendNoWorkspace(res, caller);
      return;
    }

    switch (endpoint.name) {
      case 'listCalls':
        return listCalls(url, res, scope);
      case 'getCall':
        return getCall(endpoint.id, res, scope);
      case 'streamCalls':
        return streamCalls(req, url, res, scope);
      case 'listRouteTokens':
        return listRouteTokens(url, res, scope);
      case 'createRouteToken':
        return createRouteToken(req, res, scope, caller);
      case 'revokeRouteToken':
        return revokeRouteToken(endpoint.id, res, scope);
    }
  }

  async function listCalls(url: URL, res: ServerResponse, scope: WorkspaceScope): Promise<void> {
    const limit = parseLimit(url.searchParams.get('limit'));
    const after = url.searchParams.get('after') ?? undefined;
    if (after === undefined) return searchCalls(url, res, scope, limit);

    const sinceParam = url.searchParams.get('since');
    const since = sinceParam === null ? undefined : parseSince(sinceParam, clock(), 'since');
    const calls = await store.listCalls({
      limit,
      since,
      after,
      workspaceId: scope.workspace.id,
      deviceId: url.searchParams.get('device_id') ?? undefined,
      sessionId: url.searchParams.get('session_id') ?? undefined,
    });
    sendJson(res, 200, { calls: calls.map((call) => call.record), next_after: calls.at(-1)?.cursor ?? after });
  }

  /** Newest first with the dashboard's filters and prompt search, one page per `cursor`. */
  async function searchCalls(url: URL, res: ServerResponse, scope: WorkspaceScope, limit: number): Promise<void> {
    const devices = url.searchParams.has('user_id') ? await store.listDevices(scope.workspace.id) : [];
    const filter = parseCallFilter(url.searchParams, scope.workspace.id, { now: clock(), allowSearch: true, devices });
    const page = await store.searchCalls(filter, { limit, cursor: url.searchParams.get('cursor') ?? undefined });
    const search = filter.promptText === undefined ? null : await describeSearch(filter.promptText, scope);
    sendJson(res, 200, { calls: page.calls.map((call) => call.record), next_cursor: page.nextCursor, search });
  }

  /** Say what a prompt search could look at: nothing in privacy mode, since no bodies are kept then. */
  async function describeSearch(q: string, scope: WorkspaceScope) {
    const privacyMode = !scope.workspace.keepBodies;
    const available = await store.hasPromptText(scope.workspace.id);
    let note: string | null = null;
    if (privacyMode)
      note = 'the workspace is in privacy mode: its calls keep no request body since then, so their prompts cannot be searched';
    else if (!available) note = 'no call of this workspace has a kept request body yet, so there is no prompt text to search';
    return { q, available, privacy_mode: privacyMode, note };
  }

  async function getCall(id: string, res: ServerResponse, scope: WorkspaceScope): Promise<void> {
    const call = await store.getCall(id);
    if (!call || call.record.workspace_id !== scope.workspace.id) {
      sendApiError(res, 404, 'not_found', `no call with id "${id}"`);
      return;
    }
    sendJson(res, 200, { call: call.record, bodies: call.bodies });
  }

  /**
   * Server-sent events for `tail`. Subscribing comes before reading the backlog, so a call stored while
   * the backlog is read is not missed; calls found in both are sent once. A new stream (no
   * `Last-Event-ID`) opens with a `ready` event whose id is the cursor of the call stored last (0 when
   * none is), so a client that loses the connection before its first call still resumes without a gap.
   */
  async function streamCalls(req: IncomingMessage, url: URL, res: ServerResponse, scope: WorkspaceScope): Promise<void> {
    const workspaceId = scope.workspace.id;
    const lastEventId = req.headers['last-event-id'];
    const resumeAfter = (Array.isArray(lastEventId) ? lastEventId[0] : lastEventId) ?? url.searchParams.get('after') ?? undefined;

    let live = false;
    const waiting: ListedCall[] = [];
    const unsubscribe = options.stream.subscribe((stored) => {
      const calls = stored.filter((call) => call.record.workspace_id === workspaceId);
      if (live) writeEvents(calls);
      else waiting.push(...calls);
    });

    const resuming = resumeAfter !== undefined && resumeAfter !== '';
    let backlog: ListedCall[];
    let startCursor: string | null = null;
    try {
      backlog = resuming ? await readBacklog(resumeAfter, workspaceId) : [];
      if (!resuming) startCursor = (await store.latestCursor()) ?? '0';
    } catch (error) {
      unsubscribe();
      throw error;
    }

    res.writeHead(200, {
      'content-type': 'text/event-stream; charset=utf-8',
      'cache-control': 'no-store',
      connection: 'keep-alive',
      // Reverse proxies such as nginx would otherwise buffer the stream.
      'x-accel-buffering': 'no',
    });
    res.write(': tokenwise call stream\nretry: 2000\n\n');
    if (startCursor !== null) res.write(`id: ${startCursor}\nevent: ready\ndata: {}\n\n`);
    openStreams.add(res);

    const heartbeat = setInterval(() => res.write(': keep-alive\n\n'), heartbeatMs);
    heartbeat.unref();
    res.on('close', () => {
      clearInterval(heartbeat);
      unsubscribe();
      openStreams.delete(res);
    });

    const sentIds = new Set(backlog.map((call) => call.record.id));
    writeEvents(backlog);
    writeEvents(waiting.filter((call) => !sentIds.has(call.record.id)));
    live = true;

    function writeEvents(calls: ListedCall[]): void {
      if (res.writableEnded || res.destroyed || calls.length === 0) return;
      const text = calls.map((call) => `id: ${call.cursor}\nevent: call\ndata: ${JSON.stringify(call.record)}\n\n`).join('');
      res.write(text);
      if (res.writableLength > MAX_STREAM_BUFFER_BYTES) {
        logger.warn({ buffered_bytes: res.writableLength }, 'call stream client too slow; disconnected so it resumes');
        res.end();
      }
    }
  }

  async function readBacklog(after: string, workspaceId: string): Promise<ListedCall[]> {
    const calls: ListedCall[] = [];
    let cursor = after;
    for (;;) {
      const page = await store.listCalls({ limit: BACKLOG_PAGE, after: cursor, workspaceId });
      calls.push(...page);
      if (page.length < BACKLOG_PAGE) return calls;
      cursor = page.at(-1)!.cursor;
    }
  }

  async function listRouteTokens(url: URL, res: ServerResponse, scope: WorkspaceScope): Promise<void> {
    const tokens = await store.listRouteTokensPage(scope.workspace.id, parseListPage(url.searchParams));
    sendJson(res, 200, { route_tokens: tokens.items.map(describeRouteToken), next_cursor: tokens.nextCursor });
  }

  async function createRouteToken(req: IncomingMessage, res: ServerResponse, scope: WorkspaceScope, caller: Caller): Promise<void> {
    if (scope.role !== 'owner') {
      sendApiError(
        res,
        403,
        'forbidden',
        'only owners of the workspace create route tokens: pair this device with "tokenwise connect" instead',
      );
      return;
    }
    const body = await readJsonBody(req);
    const name = parseTokenName(body);

    // Every route token belongs to a device of its own, named like the token.
    const token = generateRouteToken();
    const device = await store.createDevice({ workspaceId: scope.workspace.id, name, userId: caller.user?.id ?? null });
    const created = await store.createRouteToken({
      workspaceId: scope.workspace.id,
      deviceId: device.id,
      name,
      tokenSha256: hashToken(token),
    });
    logger.info({ token_id: created.id, workspace_id: created.workspaceId, name }, 'route token created');
    sendJson(res, 201, {
      id: created.id,
      name: created.name,
      token,
      workspace_id: created.workspaceId,
      device_id: device.id,
      created_at: created.createdAt,
    });
  }

  async function revokeRouteToken(id: string, res: ServerResponse, scope: WorkspaceScope): Promise<void> {
    const tokens = await store.listRouteTokens(scope.workspace.id);
    const target = tokens.find((token) => token.id === id && token.revokedAt === null);
    if (!target) {
      sendApiError(res, 404, 'not_found', `no active route token with id "${id}" in this workspace`);
      return;
    }
    if (scope.role !== 'owner') {
      sendApiError(res, 403, 'forbidden', 'only owners of the workspace revoke route tokens');
      return;
    }

    await options.authorizer.revoke(id);
    logger.info({ token_id: id, workspace_id: scope.workspace.id }, 'route token revoked');
    sendJson(res, 200, { id, revoked: true });
  }

  return {
    handle(req, res) {
      handle(req, res).catch((error: unknown) => {
        if (error instanceof TokenwiseError && CLIENT_ERRORS[error.code]) {
          const [status, code] = CLIENT_ERRORS[error.code]!;
          sendApiError(res, status, code, error.message);
          return;
        }
        logger.error({ err: error, method: req.method, path: new URL(req.url ?? '/', 'http://localhost').pathname }, 'API request failed');
        if (res.headersSent) {
          res.destroy();
        } else {
          sendApiError(res, 500, 'internal_error', 'the server failed to handle this request; details are in the server log');
        }
      });
    },
    closeStreams() {
      for (const res of openStreams) res.end();
      openStreams.clear();
    },
  };
}

/** No workspace for the request: a browser in several must name one; a token whose person left it is no longer valid. */
export function sendNoWorkspace(res: ServerResponse, caller: Caller): void {
  if (caller.via === 'api_token') {
    sendApiError(res, 401, 'unauthorized', 'the API token is no longer valid for its workspace: create a new one');
    return;
  }
  sendApiError(
    res,
    404,
    'not_found',
    'no such workspace for this account: name one of your workspaces in the x-tokenwise-workspace header or ?workspace=',
  );
}

const CLIENT_ERRORS: Partial<Record<TokenwiseError['code'], [number, ApiErrorCode]>> = {
  invalid_argument: [400, 'invalid_argument'],
  not_found: [404, 'not_found'],
};

function matchEndpoint(method: string, path: string): Endpoint | 'method_not_allowed' | null {
  const segments = path.replace(/\/+$/, '').split('/').slice(3);
  const [collection, id, extra] = segments;
  if (extra !== undefined || !path.startsWith('/api/v1/')) return null;

  const allow = (expected: string, endpoint: Endpoint) => (method === expected ? endpoint : 'method_not_allowed');
  if (collection === 'calls') {
    if (id === undefined) return allow('GET', { name: 'listCalls' });
    if (id === 'stream') return allow('GET', { name: 'streamCalls' });
    // The dashboard's routes under /calls/ are served by `moreEndpoints`.
    if (id === 'export' || id === 'facets') return null;
    return allow('GET', { name: 'getCall', id: decodePathSegment(id) });
  }
  if (collection === 'route-tokens') {
    if (id === undefined) return method === 'GET' ? { name: 'listRouteTokens' } : allow('POST', { name: 'createRouteToken' });
    return allow('DELETE', { name: 'revokeRouteToken', id: decodePathSegment(id) });
  }
  return null;
}

function decodePathSegment(segment: string): string {
  try {
    return decodeURIComponent(segment);
  } catch {
    throw new TokenwiseError('invalid_argument', `invalid percent-encoding in the path segment "${segment}"`);
  }
}

function parseLimit(value: string | null): number {
  if (value === null) return DEFAULT_LIMIT;
  const limit = /^\d{1,7}$/.test(value) ? Number(value) : Number.NaN;
  if (!(limit >= 1 && limit <= MAX_LIMIT)) {
    throw new TokenwiseError('invalid_argument', `invalid limit "${value}": expected a whole number from 1 to ${MAX_LIMIT}`);
  }
  return limit;
}

function parseTokenName(body: unknown): string {
  if (body === undefined) return 'api';
  if (typeof body === 'object' && body !== null && !Array.isArray(body)) rejectUnknownFields(body as Record<string, unknown>, ['name']);
  const name = typeof body === 'object' && body !== null ? (body as { name?: unknown }).name : undefined;
  if (name === undefined) return 'api';
  if (typeof name !== 'string' || name.trim() === '' || name.length > MAX_ROUTE_TOKEN_NAME || /\p{Cc}/u.test(name)) {
    throw new TokenwiseError(
      'invalid_argument',
      `invalid route token name: expected a string of 1 to ${MAX_ROUTE_TOKEN_NAME} printable characters, e.g. {"name": "laptop"}`,
    );
  }
  return name.trim();
}
