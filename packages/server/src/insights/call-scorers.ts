import type { CallRecord } from '@tokenwise/core';

/**
 * The built-in deterministic scorers. Each flags a call that failed its check; a call without a flag passed
 * every check it could be given.
 *
 * - `provider_error`: the call ended in an error (HTTP status of 400 or more, an in-band error event, or no
 *   response from the provider).
 * - `refusal`: the model refused or a content filter stopped it.
 * - `max_tokens`: the answer was cut at the request's output token limit.
 * - `stream_cut`: the response stream ended without its final event, or the client aborted it.
 * - `tool_error`: the call asked for tool calls and the next call of its session returned an error result
 *   for one of them (needs kept request bodies).
 * - `retry`: the call repeats an earlier request of the same device byte for byte within `RETRY_WINDOW_MS`
 *   (needs kept request bodies).
 * - `slow`: time to first token (streams) or total time (other calls) above the workspace's latency target.
 */
export const SCORERS = ['provider_error', 'refusal', 'max_tokens', 'stream_cut', 'tool_error', 'retry', 'slow'] as const;

export type ScorerId = (typeof SCORERS)[number];

/** Scorers that read the request body, so calls without a kept body (privacy mode) are not checked by them. */
export const BODY_SCORERS: readonly ScorerId[] = ['tool_error', 'retry'];

/** How far back a repeated request counts as a retry, in ms. */
export const RETRY_WINDOW_MS = 10 * 60_000;

/** Latency target of a workspace that has not set one, in ms. */
export const DEFAULT_LATENCY_TARGET_MS = 30_000;

export interface ScoreFlag {
  scorer: ScorerId;
  /** A number the check compared, where it has one (latency in ms). */
  value: number | null;
  /** The reason for the flag, as JSON for the API. */
  detail: Record<string, unknown>;
}

/** Run the scorers that need only the call record. */
export function scoreRecord(record: CallRecord, latencyTargetMs: number): ScoreFlag[] {
  const flags: ScoreFlag[] = [];
  if (record.status === 'error') {
    flags.push({
      scorer: 'provider_error',
      value: record.http_status,
      detail: { type: record.error?.type ?? null, message: record.error?.message ?? null, http_status: record.http_status },
    });
  }
  if (record.stop_reason_normalized === 'refusal' || record.stop_reason_normalized === 'content_filter') {
    flags.push({ scorer: 'refusal', value: null, detail: { stop_reason: record.stop_reason } });
  }
  if (record.stop_reason_normalized === 'max_tokens') {
    flags.push({ scorer: 'max_tokens', value: record.usage.output_tokens, detail: { stop_reason: record.stop_reason } });
  }
  if (record.status === 'truncated' || record.status === 'aborted') {
    flags.push({ scorer: 'stream_cut', value: null, detail: { status: record.status } });
  }

  const latencyMs = record.streaming && record.timing.ttft_ms !== null ? record.timing.ttft_ms : record.timing.total_ms;
  if (latencyMs > latencyTargetMs) {
    flags.push({
      scorer: 'slow',
      value: latencyMs,
      detail: { measured: record.streaming && record.timing.ttft_ms !== null ? 'ttft_ms' : 'total_ms', target_ms: latencyTargetMs },
    });
  }
  return flags;
}
