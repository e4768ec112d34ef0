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

/** The rollup column each grouping reads; a missing model or device is stored as ''. */
const ROLLUP_GROUP_COLUMNS: Record<CallGrouping, string> = {
  tool: 'tool',
  model: "NULLIF(model, '')",
  provider: 'provider',
  route: 'route',
  device: "NULLIF(device_id, '')",
};

/**
 * The split of an overview over `[from, to)` between the rollup and `calls`. The totals and the top models
 * read `wholeHours` from the rollup and `edges` (the parts of the first and last hour in the range) from
 * `calls`. The series read from the rollup the whole hours that lie inside one bucket, and the rest from
 * `calls`: every hour when the buckets do not start on whole hours.
 */
export interface RollupPlan {
  wholeHours: TimeRange;
  edges: TimeRange[];
  seriesHours: TimeRange[];
  seriesFromCalls: TimeRange[];
}

/** Plan an overview over `[from, to)`; null when the range contains no whole hour, so the rollup saves nothing. */
export function planRollup(from: number, to: number, bucketMs: number): RollupPlan | null {
  const firstHour = Math.ceil(from / HOUR_MS) * HOUR_MS;
  const endHour = Math.floor(to / HOUR_MS) * HOUR_MS;
  if (firstHour >= endHour) return null;

  const edges = [[from, firstHour] as const, [endHour, to] as const].filter(([start, end]) => start < end);
  const seriesHours: [number, number][] = [];
  const seriesFromCalls: [number, number][] = edges.map(([start, end]) => [start, end]);
  const bucketOf = (ms: number) => Math.floor((ms - from) / bucketMs);
  for (let hour = firstHour; hour < endHour; hour += HOUR_MS) {
    const ranges = bucketOf(hour) === bucketOf(hour + HOUR_MS - 1) ? seriesHours : seriesFromCalls;
    const last = ranges.at(-1);
    if (last && last[1] === hour) last[1] = hour + HOUR_MS;
    else ranges.push([hour, hour + HOUR_MS]);
  }
  return { wholeHours: [firstHour, endHour], edges, seriesHours, seriesFromCalls: mergeRanges(seriesFromCalls) };
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
  conditions.push(hours.length === 0 ? '1 = 0' : `(${hours.map(() => '(hour_ms >= ? AND hour_ms < ?)').join(' OR ')})`);
  params.push(...hours.flat());
  return { conditions, params };
}

/** Read the rollup's sums of one where clause, grouped by `groupBy` columns (none for one row of totals). */
export async function readRollupSums(
  sql: SqlRunner,
  where: { conditions: string[]; params: SqlParam[] },
  grouping: { columns: string[]; params: SqlParam[] } = { columns: [], params: [] },
): Promise<Row[]> {
  const keys = grouping.columns.map((column, index) => `${column} AS key_${index}`);
  const groupBy = grouping.columns.length === 0 ? '' : `GROUP BY ${grouping.columns.map((_, index) => index + 1).join(', ')}`;
  return sql.all<Row>(`SELECT ${[...keys, ROLLUP_SUMS].join(', ')} FROM call_rollups WHERE ${where.conditions.join(' AND ')} ${groupBy}`, [
    ...grouping.params,
    ...where.params,
  ]);
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
