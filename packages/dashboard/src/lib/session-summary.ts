import type { CallRecord } from '@tokenwise/core';
import type { SessionSummary } from '../api/types.js';

/**
 * Summarise a session from its calls, for servers without the sessions route. Costs follow the API's
 * split: `exact` and `partial` calls are API spend, `api_equivalent` calls are subscription usage.
 */
export function summarizeSession(sessionId: string, calls: CallRecord[]): SessionSummary | null {
  if (calls.length === 0) return null;
  const sorted = [...calls].sort((a, b) => a.started_at.localeCompare(b.started_at));
  const first = sorted[0]!;
  const last = sorted.at(-1)!;
  const sumOf = (pick: (call: CallRecord) => number | null) => {
    const values = sorted.map(pick).filter((value): value is number => value !== null);
    return values.length === 0 ? null : values.reduce((total, value) => total + value, 0);
  };
  const apiUsd = sumOf((call) => (call.cost.basis === 'exact' || call.cost.basis === 'partial' ? call.cost.usd : null));
  const equivalentUsd = sumOf((call) => (call.cost.basis === 'api_equivalent' ? call.cost.usd : null));
  const tools = [...new Set(sorted.map((call) => call.tool))];
  return {
    session_id: sessionId,
    tool: tools[0]!,
    tools,
    first_call_at: first.started_at,
    last_call_at: last.started_at,
    duration_ms: Date.parse(last.started_at) + last.timing.total_ms - Date.parse(first.started_at),
    calls: sorted.length,
    errors: sorted.filter((call) => call.status === 'error').length,
    cost_usd: apiUsd === null && equivalentUsd === null ? null : (apiUsd ?? 0) + (equivalentUsd ?? 0),
    api_usd: apiUsd,
    api_equivalent_usd: equivalentUsd,
    tokens: {
      input: sumOf((call) => call.usage.input_tokens),
      cache_read: sumOf((call) => call.usage.cache_read_tokens),
      cache_write: sumOf((call) => call.usage.cache_write_tokens),
      output: sumOf((call) => call.usage.output_tokens),
    },
    models: [
      ...new Set(sorted.map((call) => call.model_answered ?? call.model_requested).filter((model): model is string => model !== null)),
    ],
    device_ids: [...new Set(sorted.map((call) => call.device_id).filter((id): id is string => id !== null))],
  };
}
