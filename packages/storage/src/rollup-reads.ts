import type { CallFilter, FacetValue, Percentiles } from './call-queries.js';
import { HAS_SESSION_SQL } from './call-rollups.js';
import { addToBin, type BinCounts, binnedPercentiles, latencyBinSql } from './latency-bins.js';
import { type RollupPlan, readParts, splitByBucket } from './overview-rollup.js';
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

/**
 * Build one SELECT per range, each led by `union`, over the workspace's calls in its range. A range per
 * SELECT keeps each on the workspace-and-time index: SQLite reads every call of the workspace for ranges
 * joined by OR. `select` gets the WHERE condition and writes the SELECT, whose placeholders after the
 * condition take `selectParams`. It should return a row per call and leave grouping to the outer query,
 * because a GROUP BY of its own can make SQLite pick an index in that order (such as
 * `calls_by_workspace_tool`) and read every call of the workspace.
 */
function perRange(
  workspaceId: string,
  ranges: readonly TimeRange[],
  union: 'UNION' | 'UNION ALL',
  select: (where: string) => string,
  selectParams: readonly SqlParam[] = [],
): { sql: string; params: SqlParam[] } {
  return {
    sql: ranges.map(() => `${union} ${select('workspace_id = ? AND started_at_ms >= ? AND started_at_ms < ?')}`).join('\n'),
    params: ranges.flatMap(([from, to]) => [workspaceId, from, to, ...selectParams]),
  };
}

/** Build the WHERE condition on a rollup table of the workspace's rows of the hours in `hours`. */
function hoursIn(workspaceId: string, [from, to]: TimeRange): { sql: string; params: SqlParam[] } {
  return { sql: 'workspace_id = ? AND hour_ms >= ? AND hour_ms < ?', params: [workspaceId, from, to] };
}

/**
 * Read one row per session of the range with the columns the session summaries read (`first_ms`, `last_ms`,
 * `end_ms`, the sums of `SUMS` in sql-call-store.ts and `cost_total`), added up from the session hours of
 * the whole hours and the edges' calls. `order` is 'cost' (top sessions: cost, calls, session id) or
 * 'recent' (the sessions list: last call, session id, both descending, after an optional keyset `after`).
 * `sessions` is the number of distinct sessions of the range (after `after`), read by the same query.
 */
export async function readSessionSums(
  sql: SqlRunner,
  workspaceId: string,
  plan: RollupPlan,
  page: { order: 'cost' | 'recent'; limit: number; after?: [lastMs: number, sessionId: string] },
): Promise<{ rows: Row[]; sessions: number }> {
  const hours = hoursIn(workspaceId, plan.wholeHours);

  // First rank the sessions on the few columns the order reads, then add up every sum of the page's
  // sessions only: carrying all sums through the sort of every session took twice the time.
  const rankEdges = perRange(
    workspaceId,
    plan.edges,
    'UNION ALL',
    (where) => `SELECT session_id, started_at_ms, 1, COALESCE(cost_usd, 0) FROM calls WHERE ${where} AND ${HAS_SESSION_SQL}`,
  );
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
      : 'MAX(last_ms) DESC, session_id DESC';
  const ranked = await sql.all<Row>(
    `SELECT session_id, COUNT(*) OVER () AS sessions FROM (
       SELECT session_id, last_ms, calls, cost_usd AS cost_total FROM call_session_hours WHERE ${hours.sql}
       ${rankEdges.sql}
     ) AS parts GROUP BY session_id ${having} ORDER BY ${orderBy} LIMIT ?`,
    [...hours.params, ...rankEdges.params, ...havingParams, page.limit],
  );
  if (ranked.length === 0) return { rows: [], sessions: 0 };

  const sessionIds = ranked.map((row) => String(row.session_id));
  const inPage = `session_id IN (${sessionIds.map(() => '?').join(', ')})`;
  const edges = perRange(
    workspaceId,
    plan.edges,
    'UNION ALL',
    (where) => `SELECT session_id, started_at_ms, started_at_ms, started_at_ms + total_ms, 1,
      CASE WHEN status = 'error' THEN 1 ELSE 0 END,
      CASE WHEN cost_basis IN ('exact', 'partial') THEN COALESCE(cost_usd, 0) ELSE 0 END,
      CASE WHEN cost_basis = 'api_equivalent' THEN COALESCE(cost_usd, 0) ELSE 0 END,
      COALESCE(input_tokens, 0), COALESCE(cache_read_tokens, 0), COALESCE(cache_write_tokens, 0),
      COALESCE(output_tokens, 0), COALESCE(cost_usd, 0)
    FROM calls WHERE ${where} AND ${HAS_SESSION_SQL} AND ${inPage}`,
    sessionIds,
  );
  const rows = await sql.all<Row>(
    `SELECT session_id, MIN(first_ms) AS first_ms, MAX(last_ms) AS last_ms, MAX(end_ms) AS end_ms, SUM(calls) AS calls,
       SUM(errors) AS errors, SUM(api_usd) AS api_usd, SUM(api_equivalent_usd) AS api_equivalent_usd,
       SUM(input_tokens) AS input_tokens, SUM(cache_read_tokens) AS cache_read_tokens,
       SUM(cache_write_tokens) AS cache_write_tokens, SUM(output_tokens) AS output_tokens, SUM(cost_total) AS cost_total
     FROM (
       SELECT session_id, first_ms, last_ms, end_ms, calls, errors, api_usd, api_equivalent_usd, input_tokens,
         cache_read_tokens, cache_write_tokens, output_tokens, cost_usd AS cost_total
       FROM call_session_hours WHERE ${hours.sql} AND ${inPage}
       ${edges.sql}
     ) AS parts GROUP BY session_id`,
    [...hours.params, ...sessionIds, ...edges.params],
  );
  const bySession = new Map(rows.map((row) => [String(row.session_id), row]));
  return { rows: sessionIds.map((sessionId) => bySession.get(sessionId)!), sessions: Number(ranked[0]!.sessions) };
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
  const { rollup, calls } = FACET_COLUMNS[facet];
  const hours = hoursIn(workspaceId, plan.wholeHours);
  const edges = perRange(workspaceId, plan.edges, 'UNION ALL', (where) => `SELECT ${calls} AS value, 1 AS calls FROM calls WHERE ${where}`);
  const rows = await sql.all<Row>(
    `SELECT value, SUM(calls) AS calls FROM (
       SELECT ${rollup} AS value, SUM(calls) AS calls FROM call_rollups WHERE ${hours.sql} GROUP BY 1
       ${edges.sql}
     ) AS parts WHERE value IS NOT NULL GROUP BY value ORDER BY 2 DESC, 1 LIMIT ?`,
    [...hours.params, ...edges.params, limit],
  );
  return rows.map((row) => ({ value: String(row.value), calls: Number(row.calls) }));
}

/**
 * The parts of an overview's range the latencies are read from: hours of the latency bins, each counted
 * in `bucket`, and ranges of calls, each counted in the bucket of its calls and, with `subtractFrom`,
 * taken off that bucket too.
 */
interface LatencyParts {
  fromBins: { bucket: number; range: TimeRange }[];
  fromCalls: { subtractFrom: number | null; range: TimeRange }[];
}

/** Split the range for the latencies as the plan splits it for the series. */
function latencyParts(plan: RollupPlan, fromMs: number, bucketMs: number): LatencyParts {
  return {
    fromBins: [
      ...splitByBucket(plan.seriesHours, fromMs, bucketMs).map(([bucket, range]) => ({ bucket, range })),
      ...plan.splitHours.map(({ hour, bucket }) => ({ bucket, range: hour })),
    ],
    fromCalls: [
      ...plan.seriesFromCalls.map((range) => ({ subtractFrom: null, range })),
      ...plan.splitHours.map(({ bucket, smaller }) => ({ subtractFrom: bucket, range: smaller })),
    ],
  };
}

/** Percentiles of the total time and the time to first token, overall and per bucket. */
export interface BinnedLatency {
  latency: Percentiles;
  ttft: Percentiles;
  buckets: Map<number, { totalMs: Percentiles; ttftMs: Percentiles }>;
}

/**
 * Rank the latencies of the range from bins: whole hours from `call_latency_bins` and the rest from the
 * successful calls, binned by the rollup's formula (see `latencyParts`). Buckets count `bucketMs` from
 * `fromMs`.
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

  const parts = latencyParts(plan, fromMs, bucketMs);
  // One SELECT per part, grouped by metric and bin alone: a read of the primary key with a small sort,
  // where grouping every bucket's rows by bucket too took twice the time. The ranges read from `calls` are
  // binned by the rollup's own SQL, so only a row per bucket and pair of bins comes back.
  const [binRows, callRows] = await Promise.all([
    readParts(sql, parts.fromBins, ({ bucket, range: [from, to] }) => ({
      sql: `SELECT CAST(? AS INTEGER) AS bucket, metric, bin, SUM(calls) AS calls
        FROM call_latency_bins WHERE workspace_id = ? AND hour_ms >= ? AND hour_ms < ? GROUP BY 2, 3`,
      params: [bucket, workspaceId, from, to],
    })),
    readParts(sql, parts.fromCalls, ({ subtractFrom, range: [from, to] }) => ({
      sql: `SELECT CAST(? AS INTEGER) AS subtract_from, CAST((started_at_ms - ?) / ? AS INTEGER) AS bucket,
          ${latencyBinSql('total_ms')} AS total_bin, ${latencyBinSql('ttft_ms')} AS ttft_bin, COUNT(*) AS calls
        FROM calls WHERE workspace_id = ? AND started_at_ms >= ? AND started_at_ms < ? AND status = 'success' GROUP BY 2, 3, 4`,
      params: [subtractFrom, fromMs, bucketMs, workspaceId, from, to],
    })),
  ]);
  for (const row of binRows) {
    addToBin(countsOf(row.metric === 'ttft' ? 'ttft' : 'total', Number(row.bucket)), Number(row.bin), Number(row.calls));
  }
  for (const row of callRows) {
    // total_ms is NOT NULL, and a NULL ttft_ms gives a NULL bin.
    const add = (bucket: number, calls: number) => {
      addToBin(countsOf('total', bucket), Number(row.total_bin), calls);
      if (row.ttft_bin != null) addToBin(countsOf('ttft', bucket), Number(row.ttft_bin), calls);
    };
    add(Number(row.bucket), Number(row.calls));
    if (row.subtract_from != null) add(Number(row.subtract_from), -Number(row.calls));
  }

  const overall = (byBucket: Map<number, BinCounts>): Percentiles => {
    const all: BinCounts = new Map();
    for (const bins of byBucket.values()) for (const [bin, binCalls] of bins) addToBin(all, bin, binCalls);
    return binnedPercentiles(all);
  };
  const buckets = new Map<number, { totalMs: Percentiles; ttftMs: Percentiles }>();
  for (const bucket of [...new Set([...counts.total.keys(), ...counts.ttft.keys()])]) {
    // A bucket whose calls the subtraction took away entirely had no successful call, so it is left out.
    if (![...(counts.total.get(bucket) ?? new Map()).values()].some((calls) => calls > 0)) continue;
    buckets.set(bucket, {
      totalMs: binnedPercentiles(counts.total.get(bucket) ?? new Map()),
      ttftMs: binnedPercentiles(counts.ttft.get(bucket) ?? new Map()),
    });
  }
  return { latency: overall(counts.total), ttft: overall(counts.ttft), buckets };
}
