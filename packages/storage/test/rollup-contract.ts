import type { CallRecord } from '@tokenwise/core';
import type { Overview, Store } from '@tokenwise/storage';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { fullRecord, sparseRecord } from './sample-calls.js';
import type { StoreHandle } from './store-contract.js';

const T0 = Date.parse('2026-12-04T00:00:00.000Z');
const MINUTE = 60_000;
const HOUR = 3_600_000;

let serial = 0;

/** Build a call of workspace `ws-r` at `at` ms after T0; the serial number picks its tool, model, status and cost. */
function rollupCall(at: number, overrides: Partial<CallRecord> = {}): CallRecord {
  serial += 1;
  const variant = serial % 4;
  const base = variant === 3 ? sparseRecord() : fullRecord();
  return {
    ...base,
    id: `0190a1b2-0000-7000-9000-${String(serial).padStart(12, '0')}`,
    started_at: new Date(T0 + at).toISOString(),
    workspace_id: 'ws-r',
    device_id: variant === 2 ? null : `dev-${variant}`,
    tool: variant === 1 ? 'codex' : 'claude-code',
    model_answered: variant === 1 ? null : 'claude-sonnet-4-5-20250929',
    model_requested: variant === 1 ? 'gpt-5' : 'claude-sonnet-4-5',
    status: variant === 0 ? 'error' : 'success',
    cost: {
      ...base.cost,
      usd: variant === 3 ? null : 0.001 * serial,
      basis: (['exact', 'api_equivalent', 'partial', 'unknown'] as const)[variant]!,
    },
    ...overrides,
  };
}

/** What the overview's totals must be, summed here from the records in `[from, to)` as its SQL over `calls` sums them. */
function expectedTotals(records: CallRecord[], from: number, to: number): Overview['totals'] {
  const inRange = records.filter((record) => {
    const at = Date.parse(record.started_at);
    return at >= from && at < to;
  });
  const sum = (value: (record: CallRecord) => number | null) => inRange.reduce((total, record) => total + (value(record) ?? 0), 0);
  const bothKnown = (record: CallRecord) => record.usage.input_tokens !== null && record.usage.cache_read_tokens !== null;
  return {
    calls: inRange.length,
    errors: inRange.filter((record) => record.status === 'error').length,
    apiUsd: round(sum((record) => (['exact', 'partial'].includes(record.cost.basis) ? record.cost.usd : 0))),
    apiEquivalentUsd: round(sum((record) => (record.cost.basis === 'api_equivalent' ? record.cost.usd : 0))),
    inputTokens: sum((record) => record.usage.input_tokens),
    cacheReadTokens: sum((record) => record.usage.cache_read_tokens),
    cacheWriteTokens: sum((record) => record.usage.cache_write_tokens),
    outputTokens: sum((record) => record.usage.output_tokens),
    uncachedInputTokens: sum((record) => record.usage.uncached_input_tokens),
    reasoningTokens: sum((record) => record.usage.reasoning_tokens),
    sessions: new Set(inRange.map((record) => record.session_id).filter((id) => id !== null)).size,
    unpricedCalls: inRange.filter((record) => record.cost.basis === 'unpriced').length,
    unknownCostCalls: inRange.filter((record) => record.cost.basis === 'unknown').length,
    cacheRatioReadTokens: sum((record) => (bothKnown(record) ? record.usage.cache_read_tokens : 0)),
    cacheRatioInputTokens: sum((record) => (bothKnown(record) ? record.usage.input_tokens : 0)),
  };
}

function round(usd: number): number {
  return Math.round(usd * 1e9) / 1e9;
}

/** Calls per bucket of `bucketMs` from `from` and tool, as the overview's series must count them. */
function expectedSeries(records: CallRecord[], from: number, to: number, bucketMs: number): Record<string, number> {
  const series: Record<string, number> = {};
  for (const record of records) {
    const at = Date.parse(record.started_at);
    if (at < from || at >= to) continue;
    const key = `${Math.floor((at - from) / bucketMs)} ${record.tool}`;
    series[key] = (series[key] ?? 0) + 1;
  }
  return series;
}

function seriesOf(overview: Overview): Record<string, number> {
  return Object.fromEntries(overview.groups.map((group) => [`${group.bucket} ${group.key}`, group.calls]));
}

/** The hourly rollup behind the overview, which every `Store` must keep equal to its calls. */
export function describeRollupContract(name: string, createStore: () => Promise<StoreHandle>): void {
  describe(`${name}: hourly rollup`, () => {
    let handle: StoreHandle;
    let store: Store;
    let records: CallRecord[];

    beforeEach(async () => {
      handle = await createStore();
      store = handle.store;
      // Five hours of calls, every 7 minutes, in batches of 10, and one call sent again in a later batch.
      records = Array.from({ length: 45 }, (_, index) => rollupCall(index * 7 * MINUTE - 20 * MINUTE));
      for (let start = 0; start < records.length; start += 10) {
        await store.insertCalls(records.slice(start, start + 10).map((record) => ({ record, bodies: null })));
      }
      await store.insertCalls([{ record: records[3]!, bodies: null }]);
    });

    afterEach(async () => {
      await store.close();
      await handle.cleanup?.();
    });

    async function overviewOf(from: number, to: number, bucketMs: number): Promise<Overview> {
      return store.overview({
        filter: { workspaceId: 'ws-r', from: new Date(from), to: new Date(to) },
        bucketMs,
        groupBy: 'tool',
        top: 10,
      });
    }

    it('adds up whole hours and edges as the calls do', async () => {
      const from = T0 - 10 * MINUTE;
      const to = T0 + 4 * HOUR + 25 * MINUTE;

      const hourly = await overviewOf(from, to, HOUR);
      const aligned = await overviewOf(T0, T0 + 4 * HOUR, HOUR);
      const daily = await overviewOf(from, to, 24 * HOUR);

      expect(hourly.totals).toEqual(expectedTotals(records, from, to));
      expect(aligned.totals).toEqual(expectedTotals(records, T0, T0 + 4 * HOUR));
      expect(seriesOf(hourly)).toEqual(expectedSeries(records, from, to, HOUR));
      expect(seriesOf(aligned)).toEqual(expectedSeries(records, T0, T0 + 4 * HOUR, HOUR));
      expect(seriesOf(daily)).toEqual(expectedSeries(records, from, to, 24 * HOUR));
    });

    it('ranks the top models as the calls do', async () => {
      const from = T0 - 10 * MINUTE;
      const to = T0 + 4 * HOUR + 25 * MINUTE;

      const overview = await overviewOf(from, to, HOUR);

      const models = new Map<string, { model: string; provider: string; calls: number; usd: number }>();
      for (const record of records) {
        const at = Date.parse(record.started_at);
        if (at < from || at >= to) continue;
        const model = (record.model_answered ?? record.model_requested)!;
        const entry = models.get(`${model} ${record.provider}`) ?? { model, provider: record.provider, calls: 0, usd: 0 };
        entry.calls += 1;
        entry.usd += record.cost.usd ?? 0;
        models.set(`${model} ${record.provider}`, entry);
      }
      const expected = [...models.values()].sort((a, b) => round(b.usd) - round(a.usd) || b.calls - a.calls);
      expect(overview.topModels.map((entry) => [entry.model, entry.provider, entry.sums.calls])).toEqual(
        expected.map((entry) => [entry.model, entry.provider, entry.calls]),
      );
    });

    it('follows a re-pricing of stored calls', async () => {
      const repriced = records.slice(5, 25).map((record) => ({ ...record, cost: { ...record.cost, usd: 2, basis: 'exact' as const } }));
      await store.updateCallCosts(repriced.map((record) => ({ id: record.id, cost: record.cost })));
      const now = records.map((record) => repriced.find((changed) => changed.id === record.id) ?? record);

      const overview = await overviewOf(T0, T0 + 4 * HOUR, HOUR);

      expect(overview.totals).toEqual(expectedTotals(now, T0, T0 + 4 * HOUR));
    });

    it('follows deleted calls', async () => {
      await store.deleteCalls({ workspaceId: 'ws-r', deviceIds: ['dev-1'] });
      await store.deleteCalls({ workspaceId: 'ws-r', ids: [records[10]!.id, records[11]!.id] });
      const left = records.filter((record, index) => record.device_id !== 'dev-1' && index !== 10 && index !== 11);

      const overview = await overviewOf(T0, T0 + 4 * HOUR, HOUR);

      expect(overview.totals).toEqual(expectedTotals(left, T0, T0 + 4 * HOUR));
      expect(seriesOf(overview)).toEqual(expectedSeries(left, T0, T0 + 4 * HOUR, HOUR));
    });
  });
}
