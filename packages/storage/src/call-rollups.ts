import type { SqlParam, SqlStep } from './sql-runner.js';

/**
 * The hourly rollup of `calls` (table `call_rollups`): per workspace, UTC hour and every field the
 * dashboard filters or groups by, the count and the sums of the calls. The overview reads whole hours from
 * it instead of summing every call. It stays exact because every change to `calls` changes it in the same
 * transaction: an insert adds its calls, and a re-pricing or a deletion recomputes the hours it touched.
 * The SQL here runs unchanged on SQLite and PostgreSQL; the migrations of version 6 create the table with
 * these columns, in this order.
 */

export const HOUR_MS = 3_600_000;

/**
 * The key columns and how each is computed from a `calls` row. A missing model or device is stored as '',
 * because SQLite treats NULLs in a unique key as distinct, and no model name or device id is ''. Calls
 * without a workspace are left out, because every read of the rollup is scoped to one workspace.
 */
const KEY_COLUMNS = {
  workspace_id: 'workspace_id',
  hour_ms: `started_at_ms - started_at_ms % ${HOUR_MS}`,
  tool: 'tool',
  model: "COALESCE(model_answered, model_requested, '')",
  provider: 'provider',
  route: 'route',
  device_id: "COALESCE(device_id, '')",
  status: 'status',
} as const;

/**
 * The summed columns and each call's share of them. Each sum adds what the overview's SQL over `calls`
 * adds, a NULL counting as 0, so a sum over rollup rows equals that SQL's sum over their calls.
 */
const SUM_COLUMNS = {
  calls: '1',
  cost_usd: 'COALESCE(cost_usd, 0)',
  api_usd: "CASE WHEN cost_basis IN ('exact', 'partial') THEN COALESCE(cost_usd, 0) ELSE 0 END",
  api_equivalent_usd: "CASE WHEN cost_basis = 'api_equivalent' THEN COALESCE(cost_usd, 0) ELSE 0 END",
  input_tokens: 'COALESCE(input_tokens, 0)',
  uncached_input_tokens: 'COALESCE(uncached_input_tokens, 0)',
  cache_read_tokens: 'COALESCE(cache_read_tokens, 0)',
  cache_write_tokens: 'COALESCE(cache_write_tokens, 0)',
  output_tokens: 'COALESCE(output_tokens, 0)',
  reasoning_tokens: 'COALESCE(reasoning_tokens, 0)',
  unpriced_calls: "CASE WHEN cost_basis = 'unpriced' THEN 1 ELSE 0 END",
  unknown_cost_calls: "CASE WHEN cost_basis = 'unknown' THEN 1 ELSE 0 END",
  ratio_read_tokens: 'CASE WHEN input_tokens IS NOT NULL AND cache_read_tokens IS NOT NULL THEN cache_read_tokens ELSE 0 END',
  ratio_input_tokens: 'CASE WHEN input_tokens IS NOT NULL AND cache_read_tokens IS NOT NULL THEN input_tokens ELSE 0 END',
} as const;

const KEYS = Object.keys(KEY_COLUMNS);
const SUMS = Object.keys(SUM_COLUMNS);
const INSERT_INTO = `INSERT INTO call_rollups (${[...KEYS, ...SUMS].join(', ')})`;

/** Rollup rows of the calls of `from` (`calls`, or a join whose other side names no column of `calls`) matching `where`. */
function rollupRowsSql(from: string, where: string): string {
  const keys = Object.values(KEY_COLUMNS);
  const sums = Object.values(SUM_COLUMNS).map((share) => `SUM(${share})`);
  return `SELECT ${[...keys, ...sums].join(', ')} FROM ${from}
    WHERE workspace_id IS NOT NULL AND (${where}) GROUP BY ${keys.map((_, index) => index + 1).join(', ')}`;
}

/**
 * Add the calls matching `where` (a condition on `calls`) to the rollup. Run it once per call, in the
 * transaction that inserts the call: a call added twice would make every sum wrong.
 */
export function addToRollupsSql(where: string): string {
  const additions = SUMS.map((sum) => `${sum} = call_rollups.${sum} + excluded.${sum}`);
  return `${INSERT_INTO} ${rollupRowsSql('calls', where)}
    ON CONFLICT (${KEYS.join(', ')}) DO UPDATE SET ${additions.join(', ')}`;
}

/** Steps that rebuild the whole rollup from `calls`: the migration's backfill, and after rows written around the store. */
export function rebuildRollupsSteps(): SqlStep[] {
  return [
    { sql: 'DELETE FROM call_rollups', params: [] },
    { sql: `${INSERT_INTO} ${rollupRowsSql('calls', '1 = 1')}`, params: [] },
  ];
}

/**
 * Steps that recompute every rollup hour with a call matching `where` (a condition on `calls`) from the
 * calls in those hours that meet `keep`. Put them after a change that keeps the calls (a re-pricing), or
 * before a deletion, with `keep` true for the calls that stay. Each hour is read through the
 * workspace-and-time index, so the cost grows with the calls in the touched hours, not in the table.
 */
export function recomputeRollupsSteps(
  where: { sql: string; params: readonly SqlParam[] },
  keep: { sql: string; params: readonly SqlParam[] } = { sql: '1 = 1', params: [] },
): SqlStep[] {
  const touchedHours = `SELECT DISTINCT workspace_id AS touched_workspace, ${KEY_COLUMNS.hour_ms} AS touched_hour
    FROM calls WHERE workspace_id IS NOT NULL AND (${where.sql})`;
  const callsOfTouchedHours = `(${touchedHours}) AS touched JOIN calls ON calls.workspace_id = touched.touched_workspace
    AND calls.started_at_ms >= touched.touched_hour AND calls.started_at_ms < touched.touched_hour + ${HOUR_MS}`;
  return [
    {
      sql: `DELETE FROM call_rollups WHERE (workspace_id, hour_ms) IN (SELECT touched_workspace, touched_hour FROM (${touchedHours}) AS touched)`,
      params: where.params,
    },
    { sql: `${INSERT_INTO} ${rollupRowsSql(callsOfTouchedHours, keep.sql)}`, params: [...where.params, ...keep.params] },
  ];
}
