import { latencyBinSql } from './latency-bins.js';
import type { SqlParam, SqlStep } from './sql-runner.js';

/**
 * The hourly rollups of `calls`, each a table keyed by workspace and UTC hour that the dashboard reads
 * instead of every call of a range:
 * - `call_rollups`: per field the dashboard filters or groups by, the count and the sums of the calls.
 * - `call_latency_bins`: per latency metric and logarithmic bin (latency-bins.ts), the successful calls.
 * - `call_session_hours`: per session, the sums and times the session summaries read.
 * They stay exact because every change to `calls` changes them in the same transaction: an insert adds
 * its calls, and a re-pricing or a deletion recomputes the hours it touched. The SQL here runs unchanged
 * on SQLite and PostgreSQL; migrations 6 and 10 create the tables with these columns.
 */

export const HOUR_MS = 3_600_000;

/** The aggregate of a value column, which also merges two rows of the same key. */
type Merge = 'sum' | 'min' | 'max';

/** One rollup: the table, its key and value columns, and the expression on `calls` behind each. */
interface RollupTable {
  table: string;
  /** Key columns and how each is computed from a `calls` row; the first two are always workspace and hour. */
  keys: Record<string, string>;
  values: Record<string, { share: string; merge: Merge }>;
  /** A source joined to `calls` (naming no column of `calls`), for tables with more than one row per call and key. */
  join?: string;
  /** The calls the rollup counts, besides having a workspace. */
  where?: string;
}

const HOUR_KEY = `started_at_ms - started_at_ms % ${HOUR_MS}`;

function sum(share: string): { share: string; merge: Merge } {
  return { share, merge: 'sum' };
}

/**
 * Per workspace, hour and every field the dashboard filters or groups by. A missing model or device is
 * stored as '', because SQLite treats NULLs in a unique key as distinct, and no model name or device id is
 * ''. Each sum adds what the overview's SQL over `calls` adds, a NULL counting as 0, so a sum over rollup
 * rows equals that SQL's sum over their calls.
 */
const CALL_ROLLUPS: RollupTable = {
  table: 'call_rollups',
  keys: {
    workspace_id: 'workspace_id',
    hour_ms: HOUR_KEY,
    tool: 'tool',
    model: "COALESCE(model_answered, model_requested, '')",
    provider: 'provider',
    route: 'route',
    device_id: "COALESCE(device_id, '')",
    status: 'status',
  },
  values: {
    calls: sum('1'),
    cost_usd: sum('COALESCE(cost_usd, 0)'),
    api_usd: sum("CASE WHEN cost_basis IN ('exact', 'partial') THEN COALESCE(cost_usd, 0) ELSE 0 END"),
    api_equivalent_usd: sum("CASE WHEN cost_basis = 'api_equivalent' THEN COALESCE(cost_usd, 0) ELSE 0 END"),
    input_tokens: sum('COALESCE(input_tokens, 0)'),
    uncached_input_tokens: sum('COALESCE(uncached_input_tokens, 0)'),
    cache_read_tokens: sum('COALESCE(cache_read_tokens, 0)'),
    cache_write_tokens: sum('COALESCE(cache_write_tokens, 0)'),
    output_tokens: sum('COALESCE(output_tokens, 0)'),
    reasoning_tokens: sum('COALESCE(reasoning_tokens, 0)'),
    unpriced_calls: sum("CASE WHEN cost_basis = 'unpriced' THEN 1 ELSE 0 END"),
    unknown_cost_calls: sum("CASE WHEN cost_basis = 'unknown' THEN 1 ELSE 0 END"),
    ratio_read_tokens: sum('CASE WHEN input_tokens IS NOT NULL AND cache_read_tokens IS NOT NULL THEN cache_read_tokens ELSE 0 END'),
    ratio_input_tokens: sum('CASE WHEN input_tokens IS NOT NULL AND cache_read_tokens IS NOT NULL THEN input_tokens ELSE 0 END'),
  },
};

/** The latency of a row of the metrics join: `total_ms` for 'total', `ttft_ms` for 'ttft'. */
const LATENCY_VALUE = "CASE latency_metric WHEN 'total' THEN total_ms ELSE ttft_ms END";

/**
 * Per workspace, hour, metric ('total' for `total_ms`, 'ttft' for `ttft_ms`) and bin, the successful calls
 * with a value, which are the calls the percentiles rank. Each call gives one row per metric through the
 * two-row join.
 */
const LATENCY_BINS: RollupTable = {
  table: 'call_latency_bins',
  keys: {
    workspace_id: 'workspace_id',
    hour_ms: HOUR_KEY,
    metric: 'latency_metric',
    bin: latencyBinSql(LATENCY_VALUE),
  },
  values: { calls: sum('1') },
  join: "CROSS JOIN (SELECT 'total' AS latency_metric UNION ALL SELECT 'ttft' AS latency_metric) AS latency_metrics",
  where: `status = 'success' AND ${LATENCY_VALUE} IS NOT NULL`,
};

/**
 * The condition that a call has a session, spelled as CASE so that SQLite keeps to the index the rest of
 * the statement needs (`seq`, or workspace and time). With `session_id IS NOT NULL` it may pick the partial
 * index `calls_by_workspace_session` and read every call of the workspace.
 */
export const HAS_SESSION_SQL = 'CASE WHEN session_id IS NULL THEN 0 ELSE 1 END = 1';

/**
 * Per workspace, hour and session, what the session summaries read: the sums of `SUMS` in
 * sql-call-store.ts, the cost they rank by, and the first and last start and the last end.
 */
const SESSION_HOURS: RollupTable = {
  table: 'call_session_hours',
  keys: { workspace_id: 'workspace_id', hour_ms: HOUR_KEY, session_id: 'session_id' },
  values: {
    calls: sum('1'),
    errors: sum("CASE WHEN status = 'error' THEN 1 ELSE 0 END"),
    cost_usd: sum('COALESCE(cost_usd, 0)'),
    api_usd: sum("CASE WHEN cost_basis IN ('exact', 'partial') THEN COALESCE(cost_usd, 0) ELSE 0 END"),
    api_equivalent_usd: sum("CASE WHEN cost_basis = 'api_equivalent' THEN COALESCE(cost_usd, 0) ELSE 0 END"),
    input_tokens: sum('COALESCE(input_tokens, 0)'),
    cache_read_tokens: sum('COALESCE(cache_read_tokens, 0)'),
    cache_write_tokens: sum('COALESCE(cache_write_tokens, 0)'),
    output_tokens: sum('COALESCE(output_tokens, 0)'),
    first_ms: { share: 'started_at_ms', merge: 'min' },
    last_ms: { share: 'started_at_ms', merge: 'max' },
    end_ms: { share: 'started_at_ms + total_ms', merge: 'max' },
  },
  where: HAS_SESSION_SQL,
};

const ROLLUP_TABLES: readonly RollupTable[] = [CALL_ROLLUPS, LATENCY_BINS, SESSION_HOURS];

const AGGREGATES: Record<Merge, string> = { sum: 'SUM', min: 'MIN', max: 'MAX' };

function insertInto(rollup: RollupTable): string {
  return `INSERT INTO ${rollup.table} (${[...Object.keys(rollup.keys), ...Object.keys(rollup.values)].join(', ')})`;
}

/** Rollup rows of the calls of `from` (`calls`, or a join whose other side names no column of `calls`) matching `where`. */
function rollupRowsSql(rollup: RollupTable, from: string, where: string): string {
  const keys = Object.values(rollup.keys);
  const values = Object.values(rollup.values).map(({ share, merge }) => `${AGGREGATES[merge]}(${share})`);
  return `SELECT ${[...keys, ...values].join(', ')} FROM ${from} ${rollup.join ?? ''}
    WHERE workspace_id IS NOT NULL AND (${rollup.where ?? '1 = 1'}) AND (${where}) GROUP BY ${keys.map((_, index) => index + 1).join(', ')}`;
}

/** Build the SET clause that merges a new row into the stored row of the same key. */
function mergeSql(rollup: RollupTable): string {
  return Object.entries(rollup.values)
    .map(([column, { merge }]) => {
      const stored = `${rollup.table}.${column}`;
      const added = `excluded.${column}`;
      if (merge === 'sum') return `${column} = ${stored} + ${added}`;
      // MIN and MAX of two values are spelled as CASE, because SQLite's scalar MIN is PostgreSQL's LEAST.
      const comparison = merge === 'min' ? '<' : '>';
      return `${column} = CASE WHEN ${added} ${comparison} ${stored} THEN ${added} ELSE ${stored} END`;
    })
    .join(', ');
}

/**
 * Build the statements that add the calls matching `where` (a condition on `calls`) to every rollup, in order.
 * Run them once per call, in the transaction that inserts the call: a call added twice would make every
 * sum wrong.
 */
export function addToRollupsSqls(where: string): string[] {
  return ROLLUP_TABLES.map(
    (rollup) => `${insertInto(rollup)} ${rollupRowsSql(rollup, 'calls', where)}
    ON CONFLICT (${Object.keys(rollup.keys).join(', ')}) DO UPDATE SET ${mergeSql(rollup)}`,
  );
}

/** Steps that rebuild every rollup from `calls`: after rows written around the store, as the bench seeds them. */
export function rebuildRollupsSteps(): SqlStep[] {
  return [
    ...ROLLUP_TABLES.map((rollup) => ({ sql: `DELETE FROM ${rollup.table}`, params: [] })),
    ...ROLLUP_TABLES.map((rollup) => ({ sql: `${insertInto(rollup)} ${rollupRowsSql(rollup, 'calls', '1 = 1')}`, params: [] })),
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
  const touchedHours = `SELECT DISTINCT workspace_id AS touched_workspace, ${HOUR_KEY} AS touched_hour
    FROM calls WHERE workspace_id IS NOT NULL AND (${where.sql})`;
  const callsOfTouchedHours = `(${touchedHours}) AS touched JOIN calls ON calls.workspace_id = touched.touched_workspace
    AND calls.started_at_ms >= touched.touched_hour AND calls.started_at_ms < touched.touched_hour + ${HOUR_MS}`;
  return [
    ...ROLLUP_TABLES.map((rollup) => ({
      sql: `DELETE FROM ${rollup.table} WHERE (workspace_id, hour_ms) IN (SELECT touched_workspace, touched_hour FROM (${touchedHours}) AS touched)`,
      params: where.params,
    })),
    ...ROLLUP_TABLES.map((rollup) => ({
      sql: `${insertInto(rollup)} ${rollupRowsSql(rollup, callsOfTouchedHours, keep.sql)}`,
      params: [...where.params, ...keep.params],
    })),
  ];
}
