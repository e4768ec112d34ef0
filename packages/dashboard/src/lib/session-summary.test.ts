import type { CallRecord } from '@tokenwise/core';
import { describe, expect, it } from 'vitest';
import { summarizeSession } from './session-summary.js';

function call(startedAt: string, basis: CallRecord['cost']['basis'], usd: number | null, input: number | null): CallRecord {
  return {
    started_at: startedAt,
    tool: 'claude-code',
    status: 'success',
    model_answered: 'claude-sonnet-4-5-20250929',
    model_requested: 'claude-sonnet-4-5',
    device_id: 'd-1',
    timing: { total_ms: 1000, ttft_ms: null, headers_ms: null },
    cost: { basis, usd },
    usage: { input_tokens: input, cache_read_tokens: null, cache_write_tokens: null, output_tokens: 10 },
  } as unknown as CallRecord;
}

describe('summarizeSession', () => {
  it('keeps API spend apart from subscription usage', () => {
    const summary = summarizeSession('s-1', [
      call('2026-05-04T10:00:05.000Z', 'api_equivalent', 0.5, 100),
      call('2026-05-04T10:00:00.000Z', 'exact', 0.25, null),
    ])!;

    expect(summary.api_usd).toBe(0.25);
    expect(summary.api_equivalent_usd).toBe(0.5);
    expect(summary.cost_usd).toBe(0.75);
  });

  it('measures from the first start to the end of the last call', () => {
    const summary = summarizeSession('s-1', [
      call('2026-05-04T10:00:05.000Z', 'exact', 0, 1),
      call('2026-05-04T10:00:00.000Z', 'exact', 0, 1),
    ])!;

    expect(summary.first_call_at).toBe('2026-05-04T10:00:00.000Z');
    expect(summary.duration_ms).toBe(6000);
  });

  it('leaves unreported token counts out of the sums', () => {
    const summary = summarizeSession('s-1', [
      call('2026-05-04T10:00:00.000Z', 'exact', 0, null),
      call('2026-05-04T10:00:01.000Z', 'exact', 0, 7),
    ])!;
    expect(summary.tokens.input).toBe(7);
    expect(summary.tokens.cache_read).toBeNull();
  });

  it('returns null without calls', () => {
    expect(summarizeSession('s-1', [])).toBeNull();
  });
});
