import type { CallFilter, CallGrouping } from './call-queries.js';
import { HOUR_MS } from './call-rollups.js';
import type { SqlParam, SqlRunner } from './sql-runner.js';

type Row = Record<string, unknown>;
type TimeRange = readonly [from: number, to: number];

/**
 * Sums of the rollup under the aliases the overview's SQL over `calls` uses, so rows of both can be added
 * up: `SUMS` of sql-call-store.ts and the totals' extra sums, with the successful calls the percentiles rank.
 */
const ROLLUP_SUMS = `SUM(calls) AS calls,
  SUM(CASE WHEN status = 'error' THEN calls ELSE 0 END) AS errors,
  SUM(CASE WHEN status = 'success' THEN calls ELSE 0 END) AS successes,
  SUM(api_usd) AS api_usd,
  SUM(api_equivalent_usd) AS api_equivalent_usd,
  SUM(input_tokens) AS input_tokens,
  SUM(cache_read_tokens) AS cache_read_tokens,
  SUM(cache_write_tokens) AS cache_write_tokens,
  SUM(output_tokens) AS output_tokens,
  SUM(uncached_input_tokens) AS uncached_input_tokens,
  SUM(reasoning_tokens) AS reasoning_tokens,
  SUM(unpriced_calls) AS unpriced_calls,
  SUM(unknown_cost_calls) AS unknown_cost_calls,
  SUM(ratio_read_tokens) AS ratio_read,
  SUM(ratio_input_tokens) AS ratio_input,
  SUM(cost_usd) AS cost_total`;

/** The sums of `ROLLUP_SUMS` that a series entry (`readSums` of sql-call-store.ts) reads. */
const ROLLUP_SERIES_SUMS = `SUM(calls) AS calls,
  SUM(CASE WHEN status = 'error' THEN calls ELSE 0 END) AS errors,
  SUM(api_usd) AS api_usd,
  SUM(api_equivalent_usd) AS api_equivalent_usd,
  SUM(input_tokens) AS input_tokens,
  SUM(cache_read_tokens) AS cache_read_tokens,
  SUM(cache_write_tokens) AS cache_write_tokens,
  SUM(output_tokens) AS output_tokens`;

/** The rollup column each grouping reads; a missing model or device is stored as ''. */
const ROLLUP_GROUP_COLUMNS: Record<CallGrouping, string> = {
  tool: 'tool',
  model: "NULLIF(model, '')",
  provider: 'provider',
  route: 'route',
  device: "NULLIF(device_id, '')",
};

/**
 * The split of an overview over `[from, to)` between the rollups and `calls`. The totals and the top models
 * read `wholeHours` from the rollup and `edges` (the parts of the first and last hour in the range) from
 * `calls`. The series read from the rollup the whole hours that lie inside one bucket (`seriesHours`) and
 * the `splitHours`, and the rest (`seriesFromCalls`) from `calls`.
 */
export interface RollupPlan {
  wholeHours: TimeRange;
  edges: TimeRange[];
  seriesHours: TimeRange[];
  /**
   * Hours that one bucket edge splits, with buckets of an hour or more. Each is read whole from the rollup
   * into `bucket`, the bucket of its larger side, and the calls of its smaller side, `smaller`, are read
   * from `calls` into their own bucket and taken off `bucket`. That reads a quarter of the hour's calls on
   * average instead of all.
   */
  splitHours: { hour: TimeRange; bucket: number; smaller: TimeRange }[];
  /** The edges, and hours that shorter buckets split more than once. */
  seriesFromCalls: TimeRange[];
}

/** Plan an overview over `[from, to)`; null when the range contains no whole hour, so the rollup saves nothing. */
export function planRollup(from: number, to: number, bucketMs: number): RollupPlan | null {
  const firstHour = Math.ceil(from / HOUR_MS) * HOUR_MS;
  const endHour = Math.floor(to / HOUR_MS) * HOUR_MS;
  if (firstHour >= endHour) return null;

  const edges = [[from, firstHour] as const, [endHour, to] as const].filter(([start, end]) => start < end);
  const seriesHours: [number, number][] = [];
  const splitHours: RollupPlan['splitHours'] = [];
  const seriesFromCalls: [number, number][] = edges.map(([start, end]) => [start, end]);
  const bucketOf = (ms: number) => Math.floor((ms - from) / bucketMs);
  for (let hour = firstHour; hour < endHour; hour += HOUR_MS) {
    const before = bucketOf(hour);
    if (before !== bucketOf(hour + HOUR_MS - 1) && bucketMs >= HOUR_MS) {
      // A bucket of an hour or more has at most one edge in an hour.
      const edge = from + (before + 1) * bucketMs;
      splitHours.push(
        edge - hour <= hour + HOUR_MS - edge
          ? { hour: [hour, hour + HOUR_MS], bucket: before + 1, smaller: [hour, edge] }
          : { hour: [hour, hour + HOUR_MS], bucket: before, smaller: [edge, hour + HOUR_MS] },
      );
      continue;
    }
    const ranges = before === bucketOf(hour + HOUR_MS - 1) ? seriesHours : seriesFromCalls;
    const last = ranges.at(-1);
    if (last && last[1] === hour) last[1] = hour + HOUR_MS;
    else ranges.push([hour, hour + HOUR_MS]);
  }
  return { wholeHours: [firstHour, endHour], edges, seriesHours, splitHours, seriesFromCalls: mergeRanges(seriesFromCalls) };
}

function mergeRanges(ranges: [number, number][]): [number, number][] {
  const sorted = [...ranges].sort((a, b) => a[0] - b[0]);
  const merged: [number, number][] = [];
  for (const range of sorted) {
    const last = merged.at(-1);
    if (last && last[1] >= range[0]) last[1] = Math.max(last[1], range[1]);
    else merged.push([range[0], range[1]]);
  }
  return merged;
}

/**
 * Build the rollup's WHERE conditions of a filter, with the hour ranges. Returns null when the filter needs a
 * field the rollup does not keep (sessions, prompt text), because the overview must then read `calls`.
 */
export function rollupWhere(filter: CallFilter, hours: readonly TimeRange[]): { conditions: string[]; params: SqlParam[] } | null {
  if (filter.sessionIds !== undefined || (filter.promptText !== undefined && filter.promptText !== '')) return null;
  const conditions = ['workspace_id = ?'];
  const params: SqlParam[] = [filter.workspaceId];
  const lists: [string, readonly string[] | undefined][] = [
    ['tool', filter.tools],
    ['model', filter.models],
    ['provider', filter.providers],
    ['route', filter.routes],
    ['device_id', filter.deviceIds],
    ['status', filter.statuses],
  ];
  for (const [column, values] of lists) {
    if (values === undefined) continue;
    if (values.length === 0) {
      conditions.push('1 = 0');
      continue;
    }
    conditions.push(`${column} IN (${values.map(() => '?').join(', ')})`);
    params.push(...values);
  }
  conditions.push(...hoursWhere(hours).conditions);
  params.push(...hoursWhere(hours).params);
  return { conditions, params };
}

/**
 * Build the conditions on `hour_ms` of the hours in one of `hours`. The span from the first to the last
 * range comes first, so the read is one range of the primary key: SQLite reads every row of the
 * workspace for ranges joined by OR alone.
 */
export function hoursWhere(hours: readonly TimeRange[]): { conditions: string[]; params: SqlParam[] } {
  if (hours.length === 0) return { conditions: ['1 = 0'], params: [] };
  const from = Math.min(...hours.map((range) => range[0]));
  const to = Math.max(...hours.map((range) => range[1]));
  const conditions = ['hour_ms >= ?', 'hour_ms < ?'];
  if (hours.length > 1) conditions.push(`(${hours.map(() => '(hour_ms >= ? AND hour_ms < ?)').join(' OR ')})`);
  return { conditions, params: hours.length > 1 ? [from, to, ...hours.flat()] : [from, to] };
}

/**
 * Read the rollup's sums of one where clause, grouped by `groupBy` columns (none for one row of totals):
 * every sum, or with `sums` 'series' the fewer a series entry reads, which halves the time of a long range.
 */
export async function readRollupSums(
  sql: SqlRunner,
  where: { conditions: string[]; params: SqlParam[] },
  grouping: { columns: string[]; params: SqlParam[] } = { columns: [], params: [] },
  sums: 'all' | 'series' = 'all',
): Promise<Row[]> {
  const query = rollupSumsSql(where, grouping, sums);
  return sql.all<Row>(query.sql, query.params);
}

/** Build the statement `readRollupSums` runs, with its parameters. */
export function rollupSumsSql(
  where: { conditions: string[]; params: SqlParam[] },
  grouping: { columns: string[]; params: SqlParam[] },
  sums: 'all' | 'series',
): { sql: string; params: SqlParam[] } {
  const keys = grouping.columns.map((column, index) => `${column} AS key_${index}`);
  const groupBy = grouping.columns.length === 0 ? '' : `GROUP BY ${grouping.columns.map((_, index) => index + 1).join(', ')}`;
  const columns = [...keys, sums === 'all' ? ROLLUP_SUMS : ROLLUP_SERIES_SUMS];
  return {
    sql: `SELECT ${columns.join(', ')} FROM call_rollups WHERE ${where.conditions.join(' AND ')} ${groupBy}`,
    params: [...grouping.params, ...where.params],
  };
}

/** SELECTs per statement of `readParts`; SQLite allows 500 in a compound SELECT by default. */
const PARTS_PER_STATEMENT = 100;

/**
 * Run one SELECT per part, joined by UNION ALL into statements of up to 100 parts, and return every row.
 * One statement instead of one per part saves PostgreSQL a round trip and a plan per part.
 */
export async function readParts<Part>(
  sql: SqlRunner,
  parts: readonly Part[],
  select: (part: Part) => { sql: string; params: SqlParam[] },
): Promise<Row[]> {
  const rows: Row[] = [];
  for (let start = 0; start < parts.length; start += PARTS_PER_STATEMENT) {
    const selects = parts.slice(start, start + PARTS_PER_STATEMENT).map(select);
    rows.push(
      ...(await sql.all<Row>(
        selects.map((query) => query.sql).join('\nUNION ALL\n'),
        selects.flatMap((query) => query.params),
      )),
    );
  }
  return rows;
}

/**
 * Split hour ranges that each lie inside buckets at the bucket edges; returns each part with its bucket.
 * Buckets count `bucketMs` from `fromMs`. A read per bucket groups by fewer keys, which sorts less.
 */
export function splitByBucket(ranges: readonly TimeRange[], fromMs: number, bucketMs: number): [number, TimeRange][] {
  const parts: [number, TimeRange][] = [];
  for (const [from, to] of ranges) {
    for (let start = from; start < to; ) {
      const bucket = Math.floor((start - fromMs) / bucketMs);
      const end = Math.min(to, fromMs + (bucket + 1) * bucketMs);
      parts.push([bucket, [start, end]]);
      start = end;
    }
  }
  return parts;
}

/** Return the rollup column a grouping reads. */
export function rollupGroupColumn(groupBy: CallGrouping): string {
  return ROLLUP_GROUP_COLUMNS[groupBy];
}

/** Add up rows with the same values in `keyFields`, summing every other field as a number. */
export function addRows(rows: readonly Row[], keyFields: readonly string[]): Row[] {
  const byKey = new Map<string, Row>();
  for (const row of rows) {
    const key = JSON.stringify(keyFields.map((field) => row[field] ?? null));
    const total = byKey.get(key);
    if (!total) {
      byKey.set(key, { ...row });
      continue;
    }
    for (const [field, value] of Object.entries(row)) {
      if (keyFields.includes(field)) continue;
      total[field] = Number(total[field] ?? 0) + Number(value ?? 0);
    }
  }
  return [...byKey.values()];
}
