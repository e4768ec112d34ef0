import type { PageRequest } from '@tokenwise/storage';
import { integerParameter } from './dashboard/call-filter-params.js';

/**
 * Items per page without `limit` of the short lists: workspaces, devices, members, invites, tokens,
 * prices, budgets, budget alerts, prompt groups, insights and rate limits.
 */
export const LIST_DEFAULT_LIMIT = 100;
/** The largest `limit` those lists accept. */
export const LIST_MAX_LIMIT = 500;

/**
 * Read `limit` and `cursor` of a short list, rejecting a bad `limit` (400). The store rejects a cursor it
 * did not issue, and the API returns 400 for that too.
 */
export function parseListPage(params: URLSearchParams): PageRequest {
  const limit = integerParameter(params, 'limit', { min: 1, max: LIST_MAX_LIMIT, fallback: LIST_DEFAULT_LIMIT });
  const cursor = params.get('cursor');
  return cursor === null ? { limit } : { limit, cursor };
}
