import type { IncomingMessage } from 'node:http';
import { priceKeyFor, TokenwiseError } from '@tokenwise/core';
import type { CallFilter, CallGrouping, Device, SessionSummary, Store, StoredCustomPrice } from '@tokenwise/storage';
import type { Logger } from 'pino';
import type { Principals, WorkspaceScope } from '../accounts/principal.js';
import { readFields } from '../accounts/request-body.js';
import { sendApiError, sendJson } from '../api-responses.js';
import { parseListPage } from '../list-page-params.js';
import { parseSince } from '../since.js';
import { patternRoutes, type WorkspacePatternContext } from '../workspace-routes.js';
import { callDetail } from './call-detail.js';
import { type ExportFormat, streamCallExport } from './call-export.js';
import { integerParameter, parseCallFilter, parseTimeRange } from './call-filter-params.js';
import { describeSessionSums, OVERVIEW_GROUPINGS, type OverviewGrouping, overviewResponse } from './overview-response.js';
import type { PriceBook } from './price-book.js';

export interface DashboardApiOptions {
  store: Store;
  principals: Principals;
  priceBook: PriceBook;
  logger: Logger;
  /** The origin this server is reached at (`--public-url`, else the request's Host). */
  baseUrl(req: IncomingMessage): string;
  clock?: () => Date;
}

/** Bucket widths `bucket=` accepts, in ms. */
const BUCKETS_MS: Record<string, number> = {
  '5m': 300_000,
  '15m': 900_000,
  '1h': 3_600_000,
  '6h': 21_600_000,
  '1d': 86_400_000,
  '1w': 604_800_000,
};
const MAX_BUCKETS = 1000;
/** Values per facet at most. */
const FACET_LIMIT = 100;
const MAX_PRICE_USD_PER_MTOK = 100_000;
/** Distinct model names a re-price by model looks through; a workspace has far fewer in practice. */
const MAX_REPRICE_MODELS = 10_000;

type Context = WorkspacePatternContext;

type Handler = (context: Context) => Promise<void>;

/**
 * Create the dashboard's read routes and custom prices, under `/api/v1` (see docs/api.md for every
 * parameter and response):
 *
 *   GET    /overview                        totals, time buckets by tool/model/provider/route/device/person, top sessions and models
 *   GET    /calls/export?format=csv|jsonl   the filtered calls, streamed
 *   GET    /calls/facets                    the values of each filter field, with counts
 *   GET    /calls/{id}/detail               record, costs, timings, headers, curl; bodies up to 256 KiB inline
 *   GET    /calls/{id}/bodies/{side}        one body as text (side: request or response)
 *   GET    /sessions                        sessions, latest activity first, cursor-paginated
 *   GET    /sessions/{id}                   one session and its calls oldest first, cursor-paginated
 *   GET    /rate-limits                     the newest rate-limit headers per device, route and tool, cursor-paginated
 *   GET    /connect                         the commands that pair a machine with this server
 *   GET    /prices                          the workspace's custom prices, newest effective first, cursor-paginated
 *   POST   /prices                          a custom price (owner)
 *   DELETE /prices/{id}                     (owner)
 *   POST   /prices/reprice                  {from?, to?, model?} re-price stored calls (owner)
 *
 * Every route acts in the caller's workspace, so an id of another workspace gets the same response as an
 * unknown id.
 */
export function createDashboardApi(options: DashboardApiOptions) {
  const { store, principals, priceBook, logger } = options;
  const clock = options.clock ?? (() => new Date());

  const routes: [method: string, pattern: RegExp, handler: Handler][] = [
    ['GET', /^\/overview$/, overview],
    ['GET', /^\/calls\/export$/, exportCalls],
    ['GET', /^\/calls\/facets$/, facets],
    ['GET', /^\/calls\/([^/]+)\/detail$/, detail],
    ['GET', /^\/calls\/([^/]+)\/bodies\/([^/]+)$/, body],
    ['GET', /^\/sessions$/, listSessions],
    ['GET', /^\/sessions\/([^/]+)$/, getSession],
    ['GET', /^\/rate-limits$/, rateLimits],
    ['GET', /^\/connect$/, connect],
    ['GET', /^\/prices$/, listPrices],
    ['POST', /^\/prices$/, createPrice],
    ['POST', /^\/prices\/reprice$/, reprice],
    ['DELETE', /^\/prices\/([^/]+)$/, deletePrice],
  ];

  async function devicesOf(scope: WorkspaceScope): Promise<Device[]> {
    return store.listDevices(scope.workspace.id);
  }

  async function filterOf(context: Context, defaultRange: '24h' | '7d' | undefined, allowSearch: boolean): Promise<CallFilter> {
    const devices = context.url.searchParams.has('user_id') ? await devicesOf(context.scope) : [];
    return parseCallFilter(context.url.searchParams, context.scope.workspace.id, { now: clock(), defaultRange, allowSearch, devices });
  }

  function requireOwner(context: Context, action: string): boolean {
    if (context.scope.role === 'owner') return true;
    sendApiError(context.res, 403, 'forbidden', `only owners of the workspace ${action}`);
    return false;
  }

  async function overview(context: Context): Promise<void> {
    const params = context.url.searchParams;
    const filter = await filterOf(context, '24h', false);
    const now = clock();
    const from = filter.from ?? new Date(now.getTime() - 86_400_000);
    const to = filter.to ?? now;
    const spanMs = to.getTime() - from.getTime();

    const bucket = params.get('bucket') ?? (spanMs <= 2 * 86_400_000 ? '1h' : '1d');
    const bucketMs = BUCKETS_MS[bucket];
    if (bucketMs === undefined) {
      throw new TokenwiseError('invalid_argument', `invalid bucket "${bucket}": expected one of ${Object.keys(BUCKETS_MS).join(', ')}`);
    }
    const bucketCount = Math.ceil(spanMs / bucketMs);
    if (bucketCount > MAX_BUCKETS) {
      throw new TokenwiseError(
        'invalid_argument',
        `the range makes ${bucketCount} buckets of ${bucket}, more than ${MAX_BUCKETS}: choose a wider bucket or a shorter range`,
      );
    }
    const groupBy = (params.get('group_by') ?? 'tool') as OverviewGrouping;
    if (!OVERVIEW_GROUPINGS.includes(groupBy)) {
      throw new TokenwiseError('invalid_argument', `invalid group_by "${groupBy}": expected one of ${OVERVIEW_GROUPINGS.join(', ')}`);
    }
    const seriesLimit = integerParameter(params, 'series_limit', { min: 1, max: 50, fallback: 10 });
    const top = integerParameter(params, 'top', { min: 1, max: 100, fallback: 10 });

    const storeGrouping: CallGrouping = groupBy === 'person' ? 'device' : groupBy;
    const result = await store.overview({ filter: { ...filter, from, to }, bucketMs, groupBy: storeGrouping, top });
    const devices = groupBy === 'device' || groupBy === 'person' ? await devicesOf(context.scope) : [];
    const people = groupBy === 'person' ? await peopleOf(context.scope) : new Map<string, string>();
    sendJson(
      context.res,
      200,
      overviewResponse(result, { from, to, bucket, bucketMs, bucketCount, groupBy, seriesLimit, devices, people }),
    );
  }

  async function peopleOf(scope: WorkspaceScope): Promise<Map<string, string>> {
    const members = await store.listMembers(scope.workspace.id);
    return new Map(members.map((member) => [member.userId, member.user.name || member.user.email]));
  }

  async function exportCalls(context: Context): Promise<void> {
    const format = (context.url.searchParams.get('format') ?? 'csv') as ExportFormat;
    if (format !== 'csv' && format !== 'jsonl') {
      throw new TokenwiseError('invalid_argument', `invalid format "${format}": expected csv or jsonl`);
    }
    const filter = await filterOf(context, undefined, true);
    const stamp = (date: Date | undefined) => (date ? date.toISOString().slice(0, 16).replace(/[:T]/g, '-') : 'all');
    const filename = `tokenwise-calls-${stamp(filter.from)}-${stamp(filter.to)}`;
    const exported = await streamCallExport(context.res, { store, filter, format, filename });
    logger.info({ workspace_id: context.scope.workspace.id, format, calls: exported }, 'calls exported');
  }

  async function facets(context: Context): Promise<void> {
    const filter = await filterOf(context, undefined, false);
    const result = await store.callFacets(filter, FACET_LIMIT);
    const devices = await devicesOf(context.scope);
    const people = await peopleOf(context.scope);
    const deviceById = new Map(devices.map((device) => [device.id, device]));

    const byPerson = new Map<string, number>();
    for (const facet of result.devices) {
      const userId = deviceById.get(facet.value)?.userId;
      if (userId) byPerson.set(userId, (byPerson.get(userId) ?? 0) + facet.calls);
    }
    sendJson(context.res, 200, {
      tools: result.tools,
      models: result.models,
      providers: result.providers,
      statuses: result.statuses,
      devices: result.devices.map((facet) => ({ ...facet, label: deviceById.get(facet.value)?.name ?? facet.value })),
      people: [...byPerson.entries()]
        .sort(([, a], [, b]) => b - a)
        .map(([value, calls]) => ({ value, label: people.get(value) ?? value, calls })),
    });
  }

  /** Return the call of the path in the caller's workspace, or send 404 and return null. */
  async function callOf(context: Context) {
    const id = context.params[0]!;
    const call = await store.getCall(id);
    if (!call || call.record.workspace_id !== context.scope.workspace.id) {
      sendApiError(context.res, 404, 'not_found', `no call with id "${id}" in this workspace`);
      return null;
    }
    return call;
  }

  async function detail(context: Context): Promise<void> {
    const call = await callOf(context);
    if (!call) return;
    const device = call.record.device_id === null ? null : await store.getDevice(call.record.device_id);
    sendJson(
      context.res,
      200,
      callDetail({
        record: call.record,
        bodies: call.bodies,
        device: device?.workspaceId === context.scope.workspace.id ? device : null,
        workspace: context.scope.workspace,
        serverUrl: options.baseUrl(context.req),
        now: clock(),
      }),
    );
  }

  async function body(context: Context): Promise<void> {
    const side = context.params[1]!;
    if (side !== 'request' && side !== 'response') {
      sendApiError(context.res, 404, 'not_found', `no body "${side}": expected request or response`);
      return;
    }
    const call = await callOf(context);
    if (!call) return;
    const captured = call.bodies?.[side] ?? null;
    if (!captured || captured.text === null) {
      sendApiError(context.res, 404, 'not_found', `the call "${call.record.id}" has no kept ${side} body`);
      return;
    }
    const text = captured.text;
    context.res.writeHead(200, {
      'content-type': 'text/plain; charset=utf-8',
      'content-length': Buffer.byteLength(text),
      'cache-control': 'no-store',
      'x-content-type-options': 'nosniff',
      ...(captured.content_type ? { 'x-tokenwise-content-type': captured.content_type.replace(/[^\x20-\x7e]/g, '') } : {}),
    });
    context.res.end(text);
  }

  async function listSessions(context: Context): Promise<void> {
    const params = context.url.searchParams;
    const filter = await filterOf(context, '7d', false);
    const limit = integerParameter(params, 'limit', { min: 1, max: 200, fallback: 50 });
    const page = await store.listSessions(filter, { limit, cursor: params.get('cursor') ?? undefined });
    sendJson(context.res, 200, { sessions: page.sessions.map(describeSession), next_cursor: page.nextCursor });
  }

  async function getSession(context: Context): Promise<void> {
    const sessionId = context.params[0]!;
    const params = context.url.searchParams;
    const limit = integerParameter(params, 'limit', { min: 1, max: 1000, fallback: 200 });
    const session = await store.getSession(context.scope.workspace.id, sessionId);
    if (!session) {
      sendApiError(context.res, 404, 'not_found', `no session with id "${sessionId}" in this workspace`);
      return;
    }
    const page = await store.listSessionCalls(context.scope.workspace.id, sessionId, { limit, cursor: params.get('cursor') ?? undefined });
    sendJson(context.res, 200, {
      session: describeSession(session),
      calls: page.calls.map((call) => call.record),
      next_cursor: page.nextCursor,
    });
  }

  async function rateLimits(context: Context): Promise<void> {
    const snapshots = await store.listRateLimitsPage(context.scope.workspace.id, parseListPage(context.url.searchParams));
    sendJson(context.res, 200, { rate_limits: snapshots.items.map(describeRateLimits), next_cursor: snapshots.nextCursor });
  }

  async function connect(context: Context): Promise<void> {
    const serverUrl = options.baseUrl(context.req).replace(/\/+$/, '');
    sendJson(context.res, 200, {
      server_url: serverUrl,
      commands: {
        // The script needs bash (`set -o pipefail`), which dash, the /bin/sh of Debian and Ubuntu, lacks.
        sh: `curl -fsSL ${serverUrl}/connect.sh | bash`,
        powershell: `iwr -useb ${serverUrl}/connect.ps1 | iex`,
        npx: `npx tokenwise connect --server ${serverUrl}`,
      },
    });
  }

  async function listPrices(context: Context): Promise<void> {
    const prices = await store.listCustomPricesPage(context.scope.workspace.id, parseListPage(context.url.searchParams));
    sendJson(context.res, 200, { prices: prices.items.map(describePrice), next_cursor: prices.nextCursor });
  }

  async function createPrice(context: Context): Promise<void> {
    if (!requireOwner(context, 'set prices')) return;
    const fields = await readFields(context.req, {
      accept: [
        'model',
        'provider',
        'effective_from',
        'input_mtok',
        'output_mtok',
        'cache_read_mtok',
        'cache_write_mtok',
        'cache_write_1h_mtok',
      ],
    });
    const model = requiredText(fields, 'model');
    const provider =
      fields.provider === undefined || fields.provider === null || fields.provider === '' ? null : requiredText(fields, 'provider');
    const effectiveFrom = parseSince(requiredText(fields, 'effective_from'), clock(), 'effective_from');
    const price = await store.createCustomPrice({
      workspaceId: context.scope.workspace.id,
      model,
      provider,
      effectiveFrom: effectiveFrom.toISOString(),
      input_mtok: priceField(fields, 'input_mtok', true)!,
      output_mtok: priceField(fields, 'output_mtok', true)!,
      cache_read_mtok: priceField(fields, 'cache_read_mtok', false),
      cache_write_mtok: priceField(fields, 'cache_write_mtok', false),
      cache_write_1h_mtok: priceField(fields, 'cache_write_1h_mtok', false),
      createdBy: context.caller.user?.id ?? null,
    });
    await priceBook.refresh();
    logger.info({ workspace_id: price.workspaceId, price_id: price.id, model }, 'custom price created');
    sendJson(context.res, 201, { price: describePrice(price) });
  }

  async function deletePrice(context: Context): Promise<void> {
    const id = context.params[0]!;
    const exists = (await store.listCustomPrices(context.scope.workspace.id)).some((price) => price.id === id);
    if (!exists) {
      sendApiError(context.res, 404, 'not_found', `no price with id "${id}" in this workspace`);
      return;
    }
    if (!requireOwner(context, 'delete prices')) return;
    await store.deleteCustomPrice(context.scope.workspace.id, id);
    await priceBook.refresh();
    logger.info({ workspace_id: context.scope.workspace.id, price_id: id }, 'custom price deleted');
    sendJson(context.res, 200, { id, deleted: true });
  }

  async function reprice(context: Context): Promise<void> {
    if (!requireOwner(context, 're-price calls')) return;
    const fields = await readFields(context.req, { accept: ['from', 'to', 'model'] });
    const params = new URLSearchParams();
    for (const name of ['from', 'to', 'model'] as const) {
      const value = fields[name];
      if (value === undefined || value === null || value === '') continue;
      if (typeof value !== 'string') throw new TokenwiseError('invalid_argument', `invalid ${name}: expected a string`);
      params.set(name, value);
    }
    const filter: CallFilter = { workspaceId: context.scope.workspace.id, ...parseTimeRange(params, clock()) };
    if (params.has('model')) filter.models = await modelsPricedAs(filter, params.get('model')!);

    await priceBook.refresh();
    const repriced = await priceBook.reprice(filter);
    logger.info({ workspace_id: context.scope.workspace.id, repriced }, 'calls re-priced');
    sendJson(context.res, 200, { repriced });
  }

  /**
   * List the stored model names that a price for `model` applies to: the name itself and every dated name
   * of it (`gpt-5` covers `gpt-5-2025-08-07`), as the price book matches them.
   */
  async function modelsPricedAs(filter: CallFilter, model: string): Promise<string[]> {
    const { models } = await store.callFacets(filter, MAX_REPRICE_MODELS);
    const names = models.map((facet) => facet.value).filter((name) => name === model || priceKeyFor(name) === model);
    return names.length > 0 ? names : [model];
  }

  return patternRoutes(principals, routes);
}

/** Return true when a dashboard route exists at `path` with another method, so the caller responds with 405. */
export function isDashboardPath(path: string): boolean {
  const relative = path.replace(/\/+$/, '').slice('/api/v1'.length);
  return [
    /^\/overview$/,
    /^\/calls\/(export|facets)$/,
    /^\/calls\/[^/]+\/(detail|bodies\/[^/]+)$/,
    /^\/sessions(\/[^/]+)?$/,
    /^\/rate-limits$/,
    /^\/connect$/,
    /^\/prices(\/[^/]+)?$/,
  ].some((pattern) => pattern.test(relative));
}

function describeSession(session: SessionSummary) {
  return {
    session_id: session.sessionId,
    tool: session.tools[0] ?? null,
    tools: session.tools,
    first_call_at: session.firstCallAt,
    last_call_at: session.lastCallAt,
    duration_ms: session.durationMs,
    ...describeSessionSums(session.sums),
    tokens: {
      input: session.sums.inputTokens,
      cache_read: session.sums.cacheReadTokens,
      cache_write: session.sums.cacheWriteTokens,
      output: session.sums.outputTokens,
    },
    models: session.models,
    device_ids: session.deviceIds,
  };
}

export function describeRateLimits(snapshot: Awaited<ReturnType<Store['latestRateLimits']>>[number]) {
  return {
    device_id: snapshot.deviceId,
    provider: snapshot.provider,
    route: snapshot.route,
    tool: snapshot.tool,
    observed_at: snapshot.observedAt,
    call_id: snapshot.callId,
    headers: snapshot.headers,
  };
}

function describePrice(price: StoredCustomPrice) {
  return {
    id: price.id,
    model: price.model,
    provider: price.provider,
    effective_from: price.effectiveFrom,
    input_mtok: price.input_mtok,
    output_mtok: price.output_mtok,
    cache_read_mtok: price.cache_read_mtok,
    cache_write_mtok: price.cache_write_mtok,
    cache_write_1h_mtok: price.cache_write_1h_mtok,
    created_at: price.createdAt,
    created_by: price.createdBy,
  };
}

function requiredText(fields: Record<string, unknown>, name: string): string {
  const value = fields[name];
  if (typeof value !== 'string' || value.trim() === '' || value.length > 200) {
    throw new TokenwiseError('invalid_argument', `invalid ${name}: expected a text of 1 to 200 characters`);
  }
  return value.trim();
}

function priceField(fields: Record<string, unknown>, name: string, required: boolean): number | null {
  const value = fields[name];
  if (value === undefined || value === null || value === '') {
    if (required) throw new TokenwiseError('invalid_argument', `missing ${name}: give the price in USD per million tokens, e.g. 3`);
    return null;
  }
  const number = typeof value === 'number' ? value : Number(value);
  if (!Number.isFinite(number) || number < 0 || number > MAX_PRICE_USD_PER_MTOK) {
    throw new TokenwiseError('invalid_argument', `invalid ${name}: expected USD per million tokens from 0 to ${MAX_PRICE_USD_PER_MTOK}`);
  }
  return number;
}
