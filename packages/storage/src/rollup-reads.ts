import type { CallFilter, FacetValue, Percentiles } from './call-queries.js';
import { addToBin, type BinCounts, binnedPercentiles, latencyBin } from './latency-bins.js';
import type { RollupPlan } from './overview-rollup.js';
import type { SqlParam, SqlRunner } from './sql-runner.js';

/**
 * The dashboard's reads of a workspace over a time range from the hourly rollups (call-rollups.ts): whole
 * hours from `call_latency_bins`, `call_session_hours` and `call_rollups`, and the edges of the range (the
 * parts of its first and last hour) from `calls`. They serve only a filter of workspace and time range,
 * because the session and latency rollups keep no tool, model or other field to filter on.
 */

type Row = Record<string, unknown>;
type TimeRange = readonly [from: number, to: number];

/** Return whether the filter is a workspace and a time range alone, the case the rollup reads serve. */
export function isWorkspaceRange(filter: CallFilter): filter is CallFilter & { from: Date; to: Date } {
  return (
    filter.from !== undefined &&
    filter.to !== undefined &&
    filter.tools === undefined &&
    filter.models === undefined &&
    filter.providers === undefined &&
    filter.routes === undefined &&
    filter.deviceIds === undefined &&
    filter.statuses === undefined &&
    filter.sessionIds === undefined &&
    (filter.promptText === undefined || filter.promptText === '')
  );
}

/** Build the WHERE condition on `calls` of the workspace's calls in one of `ranges`. */
function callsIn(workspaceId: string, ranges: readonly TimeRange[]): { sql: string; params: SqlParam[] } {
  if (ranges.length === 0) return { sql: '1 = 0', params: [] };
  return {
    sql: `workspace_id = ? AND (${ranges.map(() => '(started_at_ms >= ? AND started_at_ms < ?)').join(' OR ')})`,
    params: [workspaceId, ...ranges.flat()],
  };
}

/** Build the WHERE condition on a rollup table of the workspace's rows of the hours in one of `ranges`. */
function hoursIn(workspaceId: string, ranges: readonly TimeRange[]): { sql: string; params: SqlParam[] } {
  if (ranges.length === 0) return { sql: '1 = 0', params: [] };
  return {
    sql: `workspace_id = ? AND (${ranges.map(() => '(hour_ms >= ? AND hour_ms < ?)').join(' OR ')})`,
    params: [workspaceId, ...ranges.flat()],
  };
}

/** Count the distinct sessions of the range: session ids of the whole hours united with those of the edges. */
export async function countSessions(sql: SqlRunner, workspaceId: string, plan: RollupPlan): Promise<number> {
  const hours = hoursIn(workspaceId, [plan.wholeHours]);
  const edges = callsIn(workspaceId, plan.edges);
  const [row] = await sql.all<Row>(
    `SELECT COUNT(*) AS sessions FROM (
       SELECT session_id FROM call_session_hours WHERE ${hours.sql}
       UNION SELECT session_id FROM calls WHERE ${edges.sql} AND session_id IS NOT NULL
     ) AS distinct_sessions`,
    [...hours.params, ...edges.params],
  );
  return Number(row?.sessions ?? 0);
}

/**
 * Read one row per session of the range with the columns the session summaries read (`first_ms`, `last_ms`,
 * `end_ms`, the sums of `SUMS` in sql-call-store.ts and `cost_total`), added up from the session hours of
 * the whole hours and the edges' calls. `order` is 'cost' (top sessions: cost, calls, session id) or
 * 'recent' (the sessions list: last call, session id, both descending, after an optional keyset `after`).
 */
export async function readSessionSums(
  sql: SqlRunner,
  workspaceId: string,
  plan: RollupPlan,
  page: { order: 'cost' | 'recent'; limit: number; after?: [lastMs: number, sessionId: string] },
): Promise<Row[]> {
  const hours = hoursIn(workspaceId, [plan.wholeHours]);
  const edges = callsIn(workspaceId, plan.edges);
  const parts = `SELECT session_id, first_ms, last_ms, end_ms, calls, errors, api_usd, api_equivalent_usd, input_tokens,
      cache_read_tokens, cache_write_tokens, output_tokens, cost_usd AS cost_total
    FROM call_session_hours WHERE ${hours.sql}
    UNION ALL
    SELECT session_id, MIN(started_at_ms), MAX(started_at_ms), MAX(started_at_ms + total_ms), COUNT(*),
      SUM(CASE WHEN status = 'error' THEN 1 ELSE 0 END),
      SUM(CASE WHEN cost_basis IN ('exact', 'partial') THEN COALESCE(cost_usd, 0) ELSE 0 END),
      SUM(CASE WHEN cost_basis = 'api_equivalent' THEN COALESCE(cost_usd, 0) ELSE 0 END),
      SUM(COALESCE(input_tokens, 0)), SUM(COALESCE(cache_read_tokens, 0)), SUM(COALESCE(cache_write_tokens, 0)),
      SUM(COALESCE(output_tokens, 0)), SUM(COALESCE(cost_usd, 0))
    FROM calls WHERE ${edges.sql} AND session_id IS NOT NULL GROUP BY session_id`;

  let having = '';
  const havingParams: SqlParam[] = [];
  if (page.after !== undefined) {
    having = 'HAVING MAX(last_ms) < ? OR (MAX(last_ms) = ? AND session_id < ?)';
    havingParams.push(page.after[0], page.after[0], page.after[1]);
  }
  // Cost sums are compared at 9 decimals, the records' own precision, because the parts add them in
  // another order than one SUM over the calls, which changes the last bits of a double.
  const orderBy =
    page.order === 'cost'
      ? 'ROUND(CAST(SUM(cost_total) AS NUMERIC), 9) DESC, SUM(calls) DESC, session_id'
      : 'last_ms DESC, session_id DESC';
  return sql.all<Row>(
    `SELECT session_id, MIN(first_ms) AS first_ms, MAX(last_ms) AS last_ms, MAX(end_ms) AS end_ms, SUM(calls) AS calls,
       SUM(errors) AS errors, SUM(api_usd) AS api_usd, SUM(api_equivalent_usd) AS api_equivalent_usd,
       SUM(input_tokens) AS input_tokens, SUM(cache_read_tokens) AS cache_read_tokens,
       SUM(cache_write_tokens) AS cache_write_tokens, SUM(output_tokens) AS output_tokens, SUM(cost_total) AS cost_total
     FROM (${parts}) AS parts GROUP BY session_id ${having} ORDER BY ${orderBy} LIMIT ?`,
    [...hours.params, ...edges.params, ...havingParams, page.limit],
  );
}

/** A facet's expression on `call_rollups` and on `calls`; the rollup stores a missing model or device as ''. */
export const FACET_COLUMNS = {
  tools: { rollup: 'tool', calls: 'tool' },
  models: { rollup: "NULLIF(model, '')", calls: 'COALESCE(model_answered, model_requested)' },
  providers: { rollup: 'provider', calls: 'provider' },
  statuses: { rollup: 'status', calls: 'status' },
  devices: { rollup: "NULLIF(device_id, '')", calls: 'device_id' },
} as const;

/** Read the `limit` most frequent values of a facet with their calls, from `call_rollups` and the edges' calls. */
export async function readFacet(
  sql: SqlRunner,
  workspaceId: string,
  plan: RollupPlan,
  facet: keyof typeof FACET_COLUMNS,
  limit: number,
): Promise<FacetValue[]> {
  const hours = hoursIn(workspaceId, [plan.wholeHours]);
  const edges = callsIn(workspaceId, plan.edges);
  const { rollup, calls } = FACET_COLUMNS[facet];
  const rows = await sql.all<Row>(
    `SELECT value, SUM(calls) AS calls FROM (
       SELECT ${rollup} AS value, SUM(calls) AS calls FROM call_rollups WHERE ${hours.sql} GROUP BY 1
       UNION ALL
       SELECT ${calls} AS value, COUNT(*) AS calls FROM calls WHERE ${edges.sql} GROUP BY 1
     ) AS parts WHERE value IS NOT NULL GROUP BY value ORDER BY 2 DESC, 1 LIMIT ?`,
    [...hours.params, ...edges.params, limit],
  );
  return rows.map((row) => ({ value: String(row.value), calls: Number(row.calls) }));
}

/** Percentiles of the total time and the time to first token, overall and per bucket. */
export interface BinnedLatency {
  latency: Percentiles;
  ttft: Percentiles;
  buckets: Map<number, { totalMs: Percentiles; ttftMs: Percentiles }>;
}

/**
 * Rank the latencies of the range from bins: the hours that lie inside one bucket (`plan.seriesHours`)
 * from `call_latency_bins`, and every other part of the range from its successful calls, binned here by
 * `latencyBin`, the formula the rollup uses. Buckets count `bucketMs` from `fromMs`.
 */
export async function readBinnedLatency(
  sql: SqlRunner,
  workspaceId: string,
  plan: RollupPlan,
  fromMs: number,
  bucketMs: number,
): Promise<BinnedLatency> {
  const counts = { total: new Map<number, BinCounts>(), ttft: new Map<number, BinCounts>() };
  const countsOf = (metric: 'total' | 'ttft', bucket: number): BinCounts => {
    const byBucket = counts[metric];
    const found = byBucket.get(bucket);
    if (found) return found;
    const created: BinCounts = new Map();
    byBucket.set(bucket, created);
    return created;
  };

  if (plan.seriesHours.length > 0) {
    const hours = hoursIn(workspaceId, plan.seriesHours);
    const rows = await sql.all<Row>(
      `SELECT CAST((hour_ms - ?) / ? AS INTEGER) AS bucket, metric, bin, SUM(calls) AS calls
       FROM call_latency_bins WHERE ${hours.sql} GROUP BY 1, 2, 3`,
      [fromMs, bucketMs, ...hours.params],
    );
    for (const row of rows) {
      const metric = row.metric === 'ttft' ? 'ttft' : 'total';
      addToBin(countsOf(metric, Number(row.bucket)), Number(row.bin), Number(row.calls));
    }
  }

  const rest = callsIn(workspaceId, plan.seriesFromCalls);
  const calls = await sql.all<Row>(
    `SELECT started_at_ms, total_ms, ttft_ms FROM calls WHERE ${rest.sql} AND status = 'success'`,
    rest.params,
  );
  for (const call of calls) {
    const bucket = Math.floor((Number(call.started_at_ms) - fromMs) / bucketMs);
    if (call.total_ms != null) addToBin(countsOf('total', bucket), latencyBin(Number(call.total_ms)), 1);
    if (call.ttft_ms != null) addToBin(countsOf('ttft', bucket), latencyBin(Number(call.ttft_ms)), 1);
  }

  const overall = (byBucket: Map<number, BinCounts>): Percentiles => {
    const all: BinCounts = new Map();
    for (const bins of byBucket.values()) for (const [bin, binCalls] of bins) addToBin(all, bin, binCalls);
    return binnedPercentiles(all);
  };
  const buckets = new Map<number, { totalMs: Percentiles; ttftMs: Percentiles }>();
  for (const bucket of [...new Set([...counts.total.keys(), ...counts.ttft.keys()])]) {
    buckets.set(bucket, {
      totalMs: binnedPercentiles(counts.total.get(bucket) ?? new Map()),
      ttftMs: binnedPercentiles(counts.ttft.get(bucket) ?? new Map()),
    });
  }
  return { latency: overall(counts.total), ttft: overall(counts.ttft), buckets };
}
