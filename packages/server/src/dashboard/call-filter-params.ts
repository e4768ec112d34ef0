import { type CallStatus, TokenwiseError } from '@tokenwise/core';
import type { CallFilter, Device } from '@tokenwise/storage';
import { parseSince } from '../since.js';

/** Shorthand ranges of `range=`, in ms back from now. */
export const RANGES_MS: Record<string, number> = { '24h': 86_400_000, '7d': 7 * 86_400_000, '30d': 30 * 86_400_000 };

/** Values per list parameter at most; a longer list is a mistake, not a filter. */
const MAX_VALUES = 200;
const MAX_SEARCH_CHARS = 200;
const LIST_PARAMETERS = ['tool', 'model', 'provider', 'route', 'device_id', 'user_id', 'status', 'session_id'] as const;
const CALL_STATUSES: readonly CallStatus[] = ['success', 'error', 'truncated', 'aborted'];
/** Device and user ids are UUIDs; any other value cannot match, so it is a mistake worth reporting. */
const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

export interface FilterOptions {
  now: Date;
  /** Range used when the request names none; undefined leaves the time open. */
  defaultRange?: keyof typeof RANGES_MS;
  /** Whether `q` is accepted (the call list and the export). */
  allowSearch: boolean;
  /** The workspace's devices, to turn `user_id` into the devices that person paired. */
  devices: readonly Device[];
}

/**
 * Read the call filters of a query string into a `CallFilter` of `workspaceId`: `from`, `to`, `range`,
 * the list parameters (comma-separated or repeated) and, where allowed, `q`. `user_id` becomes the devices
 * the person paired, narrowed by `device_id` when both are given.
 */
export function parseCallFilter(params: URLSearchParams, workspaceId: string, options: FilterOptions): CallFilter {
  const filter: CallFilter = { workspaceId, ...parseTimeRange(params, options.now, options.defaultRange) };

  const lists = Object.fromEntries(LIST_PARAMETERS.map((name) => [name, listParameter(params, name)]));
  for (const status of lists.status ?? []) {
    if (!(CALL_STATUSES as readonly string[]).includes(status)) {
      throw new TokenwiseError('invalid_argument', `invalid status "${status}": expected ${CALL_STATUSES.join(', ')}`);
    }
  }
  for (const [name, listedBy] of [
    ['device_id', 'GET /api/v1/devices'],
    ['user_id', 'GET /api/v1/members'],
  ] as const) {
    const invalid = lists[name]?.find((id) => !UUID.test(id));
    if (invalid !== undefined)
      throw new TokenwiseError('invalid_argument', `invalid ${name} "${invalid}": expected a UUID as ${listedBy} lists`);
  }
  if (lists.tool) filter.tools = lists.tool;
  if (lists.model) filter.models = lists.model;
  if (lists.provider) filter.providers = lists.provider;
  if (lists.route) filter.routes = lists.route;
  if (lists.status) filter.statuses = lists.status;
  if (lists.session_id) filter.sessionIds = lists.session_id;
  if (lists.device_id) filter.deviceIds = lists.device_id;
  if (lists.user_id) {
    const people = new Set(lists.user_id);
    const theirs = options.devices.filter((device) => device.userId !== null && people.has(device.userId)).map((device) => device.id);
    filter.deviceIds = filter.deviceIds ? filter.deviceIds.filter((id) => theirs.includes(id)) : theirs;
  }

  const q = params.get('q');
  if (q !== null && q.trim() !== '') {
    if (!options.allowSearch)
      throw new TokenwiseError('invalid_argument', 'q is not supported here: search calls with GET /api/v1/calls?q=');
    if (q.length > MAX_SEARCH_CHARS) {
      throw new TokenwiseError(
        'invalid_argument',
        `invalid q: search text is longer than ${MAX_SEARCH_CHARS} characters; search for a shorter part`,
      );
    }
    filter.promptText = q.trim();
  }
  return filter;
}

/**
 * Resolve `from`, `to` and `range`. `range` sets both ends back from `now`; an explicit `from` or `to`
 * replaces that end. Rejects an empty or reversed range.
 */
export function parseTimeRange(params: URLSearchParams, now: Date, defaultRange?: string): { from?: Date; to?: Date } {
  const explicit = ['from', 'to', 'since', 'until'].some((name) => params.has(name));
  const range = params.get('range') ?? (explicit ? null : (defaultRange ?? null));
  let from: Date | undefined;
  let to: Date | undefined;
  if (range !== null && range !== 'custom') {
    const rangeMs = RANGES_MS[range];
    if (rangeMs === undefined) {
      throw new TokenwiseError('invalid_argument', `invalid range "${range}": expected 24h, 7d, 30d, or from and to for a custom range`);
    }
    from = new Date(now.getTime() - rangeMs);
    to = now;
  }

  // `since` and `until` are the older names, which `tokenwise calls` sends.
  const fromName = params.has('from') ? 'from' : 'since';
  const toName = params.has('to') ? 'to' : 'until';
  const fromParam = params.get(fromName);
  const toParam = params.get(toName);
  if (fromParam !== null) from = parseSince(fromParam, now, fromName);
  if (toParam !== null) to = parseSince(toParam, now, toName);
  if (from !== undefined && to !== undefined && from.getTime() >= to.getTime()) {
    throw new TokenwiseError('invalid_argument', `invalid range: from (${from.toISOString()}) must be before to (${to.toISOString()})`);
  }
  return { ...(from ? { from } : {}), ...(to ? { to } : {}) };
}

/** Return the values of a list parameter (repeated or comma-separated), or undefined when it is absent. */
export function listParameter(params: URLSearchParams, name: string): string[] | undefined {
  const raw = params.getAll(name);
  if (raw.length === 0) return undefined;
  const values = raw
    .flatMap((value) => value.split(','))
    .map((value) => value.trim())
    .filter((value) => value !== '');
  if (values.length > MAX_VALUES) {
    throw new TokenwiseError('invalid_argument', `invalid ${name}: more than ${MAX_VALUES} values; narrow the filter`);
  }
  // `tool=` with nothing after it, as a cleared form field sends, filters nothing.
  return values.length === 0 ? undefined : values;
}

/** Parse an integer parameter within bounds, or return `fallback` when it is absent. */
export function integerParameter(params: URLSearchParams, name: string, bounds: { min: number; max: number; fallback: number }): number {
  const value = params.get(name);
  if (value === null) return bounds.fallback;
  const parsed = /^\d{1,9}$/.test(value) ? Number(value) : Number.NaN;
  if (!(parsed >= bounds.min && parsed <= bounds.max)) {
    throw new TokenwiseError('invalid_argument', `invalid ${name} "${value}": expected a whole number from ${bounds.min} to ${bounds.max}`);
  }
  return parsed;
}
