import type { CallRecord } from '@tokenwise/core';

/** The call list's filters, as query parameters of the page and of the API (docs/api.md, call filters). */
export const FILTER_KEYS = ['tool', 'model', 'provider', 'device_id', 'user_id', 'status', 'session_id', 'q'] as const;
export type FilterKey = (typeof FILTER_KEYS)[number];
export type CallFilters = Partial<Record<FilterKey, string>>;

export function readFilters(params: URLSearchParams): CallFilters {
  const filters: CallFilters = {};
  for (const key of FILTER_KEYS) {
    const value = params.get(key);
    if (value) filters[key] = value;
  }
  return filters;
}

/**
 * True when a call that arrived on the live stream belongs in the filtered list. The stream carries every
 * call of the workspace; prompt search (`q`) and the person (`user_id`) cannot be checked on the record,
 * so with those filters live calls are not added and the list refreshes from the API instead.
 */
export function matchesLive(call: CallRecord, filters: CallFilters, window: { from: Date | null; to: Date | null }): boolean | 'unknown' {
  if (filters.q || filters.user_id) return 'unknown';
  const started = new Date(call.started_at);
  if (window.from && started < window.from) return false;
  if (window.to && started >= window.to) return false;
  const model = call.model_answered ?? call.model_requested ?? '';
  const checks: [string | undefined, string | null][] = [
    [filters.tool, call.tool],
    [filters.provider, call.provider],
    [filters.device_id, call.device_id],
    [filters.status, call.status],
    [filters.session_id, call.session_id],
  ];
  for (const [wanted, actual] of checks) {
    if (wanted && !wanted.split(',').includes(actual ?? '')) return false;
  }
  if (filters.model && !filters.model.split(',').some((name) => modelMatches(name, model))) return false;
  return true;
}

/** Match a model exactly or without its date suffix (`claude-haiku-4-5` matches `claude-haiku-4-5-20251001`). */
function modelMatches(wanted: string, model: string): boolean {
  return model === wanted || model.replace(/-\d{4}-?\d{2}-?\d{2}$/, '') === wanted;
}
