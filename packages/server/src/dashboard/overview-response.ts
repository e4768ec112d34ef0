import type { CallSums, Device, GroupedSums, ModelSummary, Overview, Percentiles, SessionSummary } from '@tokenwise/storage';

/** What the overview's series stack by, as the API names it. */
export type OverviewGrouping = 'tool' | 'model' | 'provider' | 'route' | 'device' | 'person';

export const OVERVIEW_GROUPINGS: readonly OverviewGrouping[] = ['tool', 'model', 'provider', 'route', 'device', 'person'];

/** Series key of calls without a value (no model, no device, a device nobody paired). */
export const NONE_KEY = '__none__';
/** Series key of the calls of every series past `series_limit`. */
export const OTHER_KEY = '__other__';

export interface OverviewContext {
  from: Date;
  to: Date;
  bucket: string;
  bucketMs: number;
  bucketCount: number;
  groupBy: OverviewGrouping;
  seriesLimit: number;
  devices: readonly Device[];
  /** Display names of the workspace's people by user id. */
  people: ReadonlyMap<string, string>;
}

interface SeriesColumns {
  calls: number[];
  errors: number[];
  api_usd: number[];
  api_equivalent_usd: number[];
  cost_usd: number[];
  input_tokens: number[];
  cache_read_tokens: number[];
  cache_write_tokens: number[];
  output_tokens: number[];
}

/**
 * Build the JSON of `GET /api/v1/overview` from the store's sums: one column per metric and series, one
 * entry per bucket, with the largest `seriesLimit` series by cost (then calls) kept and the rest added
 * up under `__other__`. People are the devices' persons, so their series are sums of device groups.
 */
export function overviewResponse(overview: Overview, context: OverviewContext) {
  const groups = context.groupBy === 'person' ? regroupByPerson(overview.groups, context.devices) : overview.groups;
  const series = buildSeries(groups, context);

  return {
    from: context.from.toISOString(),
    to: context.to.toISOString(),
    bucket: context.bucket,
    bucket_ms: context.bucketMs,
    group_by: context.groupBy,
    totals: describeTotals(overview),
    buckets: Array.from({ length: context.bucketCount }, (_, index) =>
      new Date(context.from.getTime() + index * context.bucketMs).toISOString(),
    ),
    series,
    latency: bucketLatency(overview, context.bucketCount),
    top_sessions: overview.topSessions.map(describeTopSession),
    top_models: overview.topModels.map(describeTopModel),
  };
}

function describeTotals(overview: Overview) {
  const { totals } = overview;
  return {
    calls: totals.calls,
    errors: totals.errors,
    sessions: totals.sessions,
    cost: {
      api_usd: totals.apiUsd,
      api_equivalent_usd: totals.apiEquivalentUsd,
      cost_usd: roundUsd(totals.apiUsd + totals.apiEquivalentUsd),
      unpriced_calls: totals.unpricedCalls,
      unknown_cost_calls: totals.unknownCostCalls,
    },
    tokens: {
      input: totals.inputTokens,
      uncached_input: totals.uncachedInputTokens,
      cache_read: totals.cacheReadTokens,
      cache_write: totals.cacheWriteTokens,
      output: totals.outputTokens,
      reasoning: totals.reasoningTokens,
    },
    latency_ms: overview.latency,
    ttft_ms: overview.ttft,
    cache_hit_ratio: totals.cacheRatioInputTokens > 0 ? totals.cacheRatioReadTokens / totals.cacheRatioInputTokens : null,
  };
}

function regroupByPerson(groups: readonly GroupedSums[], devices: readonly Device[]): GroupedSums[] {
  const personOf = new Map(devices.map((device) => [device.id, device.userId]));
  const merged = new Map<string, GroupedSums>();
  for (const group of groups) {
    const person = group.key === null ? null : (personOf.get(group.key) ?? null);
    const id = `${group.bucket}\u0000${person ?? ''}`;
    const existing = merged.get(id);
    merged.set(id, existing ? { ...addSums(existing, group), bucket: group.bucket, key: person } : { ...group, key: person });
  }
  return [...merged.values()];
}

function buildSeries(groups: readonly GroupedSums[], context: OverviewContext) {
  const ranking = new Map<string, CallSums>();
  for (const group of groups) {
    const key = group.key ?? NONE_KEY;
    const total = ranking.get(key);
    ranking.set(key, total ? addSums(total, group) : group);
  }
  const ordered = [...ranking.entries()]
    .sort(([keyA, a], [keyB, b]) => costOf(b) - costOf(a) || b.calls - a.calls || keyA.localeCompare(keyB))
    .map(([key]) => key);
  const kept = new Set(ordered.slice(0, context.seriesLimit));
  const keys = [...ordered.filter((key) => kept.has(key)), ...(ordered.length > kept.size ? [OTHER_KEY] : [])];

  const columns = new Map(keys.map((key) => [key, emptyColumns(context.bucketCount)]));
  for (const group of groups) {
    if (group.bucket < 0 || group.bucket >= context.bucketCount) continue;
    const key = group.key ?? NONE_KEY;
    const column = columns.get(kept.has(key) ? key : OTHER_KEY)!;
    const at = group.bucket;
    column.calls[at]! += group.calls;
    column.errors[at]! += group.errors;
    column.api_usd[at] = roundUsd(column.api_usd[at]! + group.apiUsd);
    column.api_equivalent_usd[at] = roundUsd(column.api_equivalent_usd[at]! + group.apiEquivalentUsd);
    column.cost_usd[at] = roundUsd(column.cost_usd[at]! + group.apiUsd + group.apiEquivalentUsd);
    column.input_tokens[at]! += group.inputTokens;
    column.cache_read_tokens[at]! += group.cacheReadTokens;
    column.cache_write_tokens[at]! += group.cacheWriteTokens;
    column.output_tokens[at]! += group.outputTokens;
  }
  return keys.map((key) => ({ key, label: labelOf(key, context), ...columns.get(key)! }));
}

function labelOf(key: string, context: OverviewContext): string {
  if (key === OTHER_KEY) return 'Other';
  if (key === NONE_KEY) return context.groupBy === 'person' ? 'No person' : `No ${context.groupBy}`;
  if (context.groupBy === 'device') return context.devices.find((device) => device.id === key)?.name ?? key;
  if (context.groupBy === 'person') return context.people.get(key) ?? key;
  return key;
}

function bucketLatency(overview: Overview, bucketCount: number) {
  const byBucket = new Map(overview.bucketLatency.map((entry) => [entry.bucket, entry]));
  const column = (pick: (entry: { totalMs: Percentiles; ttftMs: Percentiles }) => number | null) =>
    Array.from({ length: bucketCount }, (_, index) => {
      const entry = byBucket.get(index);
      return entry ? pick(entry) : null;
    });
  return {
    p50_ms: column((entry) => entry.totalMs.p50),
    p95_ms: column((entry) => entry.totalMs.p95),
    ttft_p50_ms: column((entry) => entry.ttftMs.p50),
    ttft_p95_ms: column((entry) => entry.ttftMs.p95),
  };
}

export function describeSessionSums(sums: CallSums) {
  return {
    calls: sums.calls,
    errors: sums.errors,
    cost_usd: roundUsd(sums.apiUsd + sums.apiEquivalentUsd),
    api_usd: sums.apiUsd,
    api_equivalent_usd: sums.apiEquivalentUsd,
  };
}

function describeTopSession(session: SessionSummary) {
  return {
    session_id: session.sessionId,
    tool: session.tools[0] ?? null,
    ...describeSessionSums(session.sums),
    first_call_at: session.firstCallAt,
    last_call_at: session.lastCallAt,
  };
}

function describeTopModel(model: ModelSummary) {
  return {
    model: model.model,
    provider: model.provider,
    ...describeSessionSums(model.sums),
    input_tokens: model.sums.inputTokens,
    output_tokens: model.sums.outputTokens,
  };
}

function addSums<T extends CallSums>(a: T, b: CallSums): T {
  return {
    ...a,
    calls: a.calls + b.calls,
    errors: a.errors + b.errors,
    apiUsd: roundUsd(a.apiUsd + b.apiUsd),
    apiEquivalentUsd: roundUsd(a.apiEquivalentUsd + b.apiEquivalentUsd),
    inputTokens: a.inputTokens + b.inputTokens,
    cacheReadTokens: a.cacheReadTokens + b.cacheReadTokens,
    cacheWriteTokens: a.cacheWriteTokens + b.cacheWriteTokens,
    outputTokens: a.outputTokens + b.outputTokens,
  };
}

function emptyColumns(length: number): SeriesColumns {
  const zeros = () => new Array<number>(length).fill(0);
  return {
    calls: zeros(),
    errors: zeros(),
    api_usd: zeros(),
    api_equivalent_usd: zeros(),
    cost_usd: zeros(),
    input_tokens: zeros(),
    cache_read_tokens: zeros(),
    cache_write_tokens: zeros(),
    output_tokens: zeros(),
  };
}

function costOf(sums: CallSums): number {
  return sums.apiUsd + sums.apiEquivalentUsd;
}

/** USD to 9 decimals, the precision of the records, so sums of floating-point values print cleanly. */
export function roundUsd(usd: number): number {
  return Math.round(usd * 1e9) / 1e9;
}
