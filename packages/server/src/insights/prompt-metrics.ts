import type { PromptSums } from '@tokenwise/storage';

/** Per-call metrics of a prompt group or version; null where no call reported the parts. */
export interface PromptMetrics {
  calls: number;
  /** Input (with cache reads and writes) plus output tokens, per call that reported them. */
  tokens_per_call: number | null;
  input_tokens_per_call: number | null;
  output_tokens_per_call: number | null;
  /** API spend plus subscription traffic at API prices, per priced call, in USD. */
  cost_per_call_usd: number | null;
  /** Cache-read tokens over input tokens, from 0 to 1. */
  cache_hit_ratio: number | null;
  /** Calls that ended in an error, from 0 to 1. */
  error_rate: number | null;
  /** Mean total time of the successful calls, in ms. */
  latency_ms: number | null;
}

export type MetricName = Exclude<keyof PromptMetrics, 'calls' | 'input_tokens_per_call' | 'output_tokens_per_call'>;

/** Metrics compared between versions, with whether they are ratios (shifts in those also need `MIN_RATIO_SHIFT`). */
export const COMPARED_METRICS: readonly { name: MetricName; ratio: boolean; label: string }[] = [
  { name: 'tokens_per_call', ratio: false, label: 'tokens per call' },
  { name: 'cost_per_call_usd', ratio: false, label: 'cost per call' },
  { name: 'cache_hit_ratio', ratio: true, label: 'cache hit ratio' },
  { name: 'error_rate', ratio: true, label: 'error rate' },
  { name: 'latency_ms', ratio: false, label: 'latency' },
];

/** Calls each side of a comparison needs before a metric shift is reported. */
export const MIN_CALLS_FOR_SHIFT = 5;

/**
 * Smallest absolute change of a ratio metric that counts as a shift, so that an error rate moving from 1 %
 * to 2 % (a 100 % rise) is not reported on its own.
 */
export const MIN_RATIO_SHIFT = 0.05;

export function promptMetrics(sums: PromptSums): PromptMetrics {
  const per = (value: number, count: number) => (count > 0 ? value / count : null);
  return {
    calls: sums.calls,
    tokens_per_call: per(sums.inputTokens + sums.outputTokens, sums.tokenCalls),
    input_tokens_per_call: per(sums.inputTokens, sums.tokenCalls),
    output_tokens_per_call: per(sums.outputTokens, sums.tokenCalls),
    cost_per_call_usd: sums.pricedCalls > 0 ? round((sums.apiUsd + sums.apiEquivalentUsd) / sums.pricedCalls, 9) : null,
    cache_hit_ratio: per(sums.cacheRatioReadTokens, sums.cacheRatioInputTokens),
    error_rate: per(sums.errors, sums.calls),
    latency_ms: per(sums.latencyMsSum, sums.latencyCalls),
  };
}

export interface MetricShift {
  metric: MetricName;
  label: string;
  before: number;
  after: number;
  /** Relative change in percent; null when `before` is 0. */
  change_pct: number | null;
}

/**
 * Compare two versions' metrics. A per-call metric shifts when it changes by `thresholdPct` percent or
 * more, and a ratio only when it also moves by `MIN_RATIO_SHIFT` or more. Both sides need
 * `MIN_CALLS_FOR_SHIFT` calls.
 */
export function metricShifts(before: PromptMetrics, after: PromptMetrics, thresholdPct: number): MetricShift[] {
  if (before.calls < MIN_CALLS_FOR_SHIFT || after.calls < MIN_CALLS_FOR_SHIFT) return [];
  const shifts: MetricShift[] = [];
  for (const { name, ratio, label } of COMPARED_METRICS) {
    const old = before[name];
    const now = after[name];
    if (old === null || now === null || old === now) continue;
    const changePct = old === 0 ? null : ((now - old) / Math.abs(old)) * 100;
    const relativeShift = changePct === null || Math.abs(changePct) >= thresholdPct;
    const absoluteShift = !ratio || Math.abs(now - old) >= MIN_RATIO_SHIFT;
    if (relativeShift && absoluteShift) {
      shifts.push({ metric: name, label, before: old, after: now, change_pct: changePct === null ? null : round(changePct, 1) });
    }
  }
  return shifts;
}

function round(value: number, digits: number): number {
  const factor = 10 ** digits;
  return Math.round(value * factor) / factor;
}
