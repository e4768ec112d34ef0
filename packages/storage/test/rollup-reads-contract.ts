import type { CallRecord, CallStatus } from '@tokenwise/core';
import type { CallFilter, Overview, Percentiles, Store } from '@tokenwise/storage';
import { afterEach, describe, expect, it } from 'vitest';
import { fullRecord, sparseRecord } from './sample-calls.js';
import type { StoreHandle } from './store-contract.js';

const T0 = Date.parse('2026-12-04T00:00:00.000Z');
const MINUTE = 60_000;
const HOUR = 3_600_000;
const WORKSPACE = 'ws-reads';
const STATUSES: CallStatus[] = ['success', 'error', 'truncated', 'aborted'];
const TOOLS: CallRecord['tool'][] = ['claude-code', 'codex', 'gemini-cli'];
const MODELS = ['claude-sonnet-4-5-20250929', 'gpt-5', 'gemini-2.5-pro', 'claude-haiku-4-5-20251001'];

/** Options the contract opens its stores with. */
export interface RollupReadsStoreOptions {
  exactPercentileLimit?: number;
}

/** A deterministic generator of numbers in [0, 1) (mulberry32), so a failure repeats. */
function randomNumbers(seed: number): () => number {
  let state = seed >>> 0;
  return () => {
    state = (state + 0x6d2b79f5) >>> 0;
    let t = state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4_294_967_296;
  };
}

/**
 * Build `count` calls over the six hours from T0, one in ten in another workspace. They have sessions that
 * cross hours, calls without a session, model or device, every status, and whole-ms latencies (as the
 * capture stores them) from 0 to 60 s, spread evenly on a log scale.
 */
export function makeRollupCalls(count: number, seed: number, idPrefix: string): CallRecord[] {
  const random = randomNumbers(seed);
  return Array.from({ length: count }, (_, index) => {
    const base = index % 11 === 0 ? sparseRecord() : fullRecord();
    const totalMs = index % 53 === 0 ? 0 : Math.round(Math.exp(random() * Math.log(60_000)));
    const status: CallStatus = index % 13 === 0 ? 'error' : index % 29 === 0 ? 'truncated' : index % 31 === 0 ? 'aborted' : 'success';
    const basis = (['exact', 'api_equivalent', 'partial', 'unknown', 'unpriced'] as const)[index % 5]!;
    return {
      ...base,
      id: `${idPrefix}-${String(index).padStart(8, '0')}`,
      started_at: new Date(T0 + Math.floor(random() * 6 * HOUR)).toISOString(),
      workspace_id: index % 10 === 9 ? 'ws-other' : WORKSPACE,
      session_id: index % 7 === 0 ? null : `${idPrefix}-session-${Math.floor(random() * 60)}`,
      tool: TOOLS[index % TOOLS.length]!,
      model_answered: index % 5 === 0 ? null : MODELS[index % MODELS.length]!,
      model_requested: index % 10 === 0 ? null : 'requested-model',
      device_id: index % 6 === 0 ? null : `dev-${index % 3}`,
      status,
      timing: { ...base.timing, total_ms: totalMs, ttft_ms: index % 4 === 0 ? null : Math.round(totalMs * random()) },
      cost: {
        ...base.cost,
        basis,
        usd: basis === 'unknown' || basis === 'unpriced' ? null : Math.round(random() * 1e6) / 1e7,
      },
    };
  });
}

/** Rank the p50 and p95 by nearest rank (the value at rank ceil(n·p/100)) of `values`, null without values. */
function nearestRank(values: number[]): Percentiles {
  if (values.length === 0) return { p50: null, p95: null };
  const sorted = [...values].sort((a, b) => a - b);
  return { p50: sorted[Math.ceil(sorted.length * 0.5) - 1]!, p95: sorted[Math.ceil(sorted.length * 0.95) - 1]! };
}

/** Rank the exact percentiles of the workspace's successful calls in `[from, to)`, overall and per bucket. */
function expectedLatency(records: CallRecord[], from: number, to: number, bucketMs: number) {
  const scoped = records.filter((record) => {
    const at = Date.parse(record.started_at);
    return record.workspace_id === WORKSPACE && record.status === 'success' && at >= from && at < to;
  });
  const totals = (calls: CallRecord[]) => nearestRank(calls.map((record) => record.timing.total_ms));
  const ttfts = (calls: CallRecord[]) =>
    nearestRank(calls.flatMap((record) => (record.timing.ttft_ms === null ? [] : [record.timing.ttft_ms])));
  const byBucket = new Map<number, CallRecord[]>();
  for (const record of scoped) {
    const bucket = Math.floor((Date.parse(record.started_at) - from) / bucketMs);
    byBucket.set(bucket, [...(byBucket.get(bucket) ?? []), record]);
  }
  return {
    latency: totals(scoped),
    ttft: ttfts(scoped),
    bucketLatency: [...byBucket.entries()]
      .sort((a, b) => a[0] - b[0])
      .map(([bucket, calls]) => ({ bucket, totalMs: totals(calls), ttftMs: ttfts(calls) })),
  };
}

/** Assert that `actual` is within 2% of `expected`, both null alike. */
function expectWithin2Percent(actual: number | null, expected: number | null, what: string): void {
  if (expected === null) {
    expect(actual, what).toBeNull();
    return;
  }
  expect(actual, what).not.toBeNull();
  expect(Math.abs(actual! - expected), `${what}: ${actual} for ${expected}`).toBeLessThanOrEqual(expected * 0.02);
}

/** Return a filter of the same calls that needs the SQL over `calls`, because it lists every status. */
function exactPath(filter: CallFilter): CallFilter {
  return { ...filter, statuses: STATUSES };
}

/** Ranges of the checks: with edges, starting mid-hour, and of whole hours only. */
const RANGES = [
  { name: 'edges, 2 h buckets', from: T0 + 17 * MINUTE, to: T0 + 5 * HOUR + 41 * MINUTE, bucketMs: 2 * HOUR },
  { name: 'edges, hourly buckets', from: T0 + 17 * MINUTE, to: T0 + 5 * HOUR + 41 * MINUTE, bucketMs: HOUR },
  { name: 'edges, 25 min buckets', from: T0 + 17 * MINUTE, to: T0 + 5 * HOUR + 41 * MINUTE, bucketMs: 25 * MINUTE },
  { name: 'edges at :43, 2 h buckets', from: T0 + 43 * MINUTE, to: T0 + 5 * HOUR + 41 * MINUTE, bucketMs: 2 * HOUR },
  { name: 'whole hours, hourly buckets', from: T0 + HOUR, to: T0 + 5 * HOUR, bucketMs: HOUR },
  { name: 'whole hours, one bucket', from: T0, to: T0 + 6 * HOUR, bucketMs: 24 * HOUR },
];

/**
 * Register the tests of the dashboard's reads of a workspace and time range from the latency bins, the session hours and the
 * hourly rollup. Percentiles are within 2% above the exact limit and exact below it. Sessions and facets
 * equal the SQL over `calls`, across inserts, re-pricing and deletions.
 */
export function describeRollupReadsContract(name: string, createStore: (options: RollupReadsStoreOptions) => Promise<StoreHandle>): void {
  describe(`${name}: rollup reads`, () => {
    let handle: StoreHandle | null = null;

    afterEach(async () => {
      await handle?.store.close();
      await handle?.cleanup?.();
      handle = null;
    });

    /** Open a store and insert `records` in batches of 250, so hours and sessions span batches. */
    async function storeWith(records: CallRecord[], options: RollupReadsStoreOptions): Promise<Store> {
      handle = await createStore(options);
      for (let start = 0; start < records.length; start += 250) {
        await handle.store.insertCalls(records.slice(start, start + 250).map((record) => ({ record, bodies: null })));
      }
      return handle.store;
    }

    async function overviewOf(store: Store, filter: CallFilter & { from: Date; to: Date }, bucketMs: number): Promise<Overview> {
      return store.overview({ filter, bucketMs, groupBy: 'model', top: 8 });
    }

    /** Read every page of the sessions list, 7 sessions a page. */
    async function allSessionPages(store: Store, filter: CallFilter) {
      const pages = [];
      let cursor: string | undefined;
      do {
        const page = await store.listSessions(filter, { limit: 7, ...(cursor === undefined ? {} : { cursor }) });
        pages.push(page);
        cursor = page.nextCursor ?? undefined;
      } while (cursor !== undefined && pages.length < 100);
      return pages;
    }

    /** Check every read of every range against the SQL over `calls` and, for the percentiles, the records. */
    async function expectReadsMatch(store: Store, records: CallRecord[], binned: boolean): Promise<void> {
      for (const range of RANGES) {
        const filter = { workspaceId: WORKSPACE, from: new Date(range.from), to: new Date(range.to) };
        const fast = await overviewOf(store, filter, range.bucketMs);
        const exact = await overviewOf(store, exactPath(filter) as typeof filter, range.bucketMs);
        const expected = expectedLatency(records, range.from, range.to, range.bucketMs);

        const { latency, ttft, bucketLatency, ...sums } = fast;
        const { latency: _latency, ttft: _ttft, bucketLatency: _bucketLatency, ...exactSums } = exact;
        expect(sums, range.name).toEqual(exactSums);
        const sessions = new Set(
          records
            .filter((record) => {
              const at = Date.parse(record.started_at);
              return record.workspace_id === WORKSPACE && at >= range.from && at < range.to;
            })
            .flatMap((record) => (record.session_id === null ? [] : [record.session_id])),
        );
        expect(fast.totals.sessions, range.name).toBe(sessions.size);

        if (!binned) {
          expect({ latency, ttft, bucketLatency }, range.name).toEqual(expected);
          expect({ latency: exact.latency, ttft: exact.ttft, bucketLatency: exact.bucketLatency }, range.name).toEqual(expected);
        } else {
          expectWithin2Percent(latency.p50, expected.latency.p50, `${range.name} latency p50`);
          expectWithin2Percent(latency.p95, expected.latency.p95, `${range.name} latency p95`);
          expectWithin2Percent(ttft.p50, expected.ttft.p50, `${range.name} ttft p50`);
          expectWithin2Percent(ttft.p95, expected.ttft.p95, `${range.name} ttft p95`);
          expect(
            bucketLatency.map((entry) => entry.bucket),
            range.name,
          ).toEqual(expected.bucketLatency.map((entry) => entry.bucket));
          for (const [index, entry] of bucketLatency.entries()) {
            const want = expected.bucketLatency[index]!;
            const what = `${range.name} bucket ${entry.bucket}`;
            expectWithin2Percent(entry.totalMs.p50, want.totalMs.p50, `${what} total p50`);
            expectWithin2Percent(entry.totalMs.p95, want.totalMs.p95, `${what} total p95`);
            expectWithin2Percent(entry.ttftMs.p50, want.ttftMs.p50, `${what} ttft p50`);
            expectWithin2Percent(entry.ttftMs.p95, want.ttftMs.p95, `${what} ttft p95`);
          }
        }

        expect(await allSessionPages(store, filter), range.name).toEqual(await allSessionPages(store, exactPath(filter)));
        expect(await store.callFacets(filter, 3), range.name).toEqual(await store.callFacets(exactPath(filter), 3));
        expect(await store.callFacets(filter, 50), range.name).toEqual(await store.callFacets(exactPath(filter), 50));
      }
    }

    it('ranks percentiles from bins within 2%', async () => {
      const records = makeRollupCalls(3000, 1, 'bins');
      const store = await storeWith(records, { exactPercentileLimit: 0 });

      await expectReadsMatch(store, records, true);
    });

    it('ranks small ranges exactly by default', async () => {
      const records = makeRollupCalls(3000, 2, 'exact');
      const store = await storeWith(records, {});

      await expectReadsMatch(store, records, false);
    });

    it('sums the top session from its calls', async () => {
      const records = makeRollupCalls(600, 3, 'sessions');
      const store = await storeWith(records, { exactPercentileLimit: 0 });
      const filter = { workspaceId: WORKSPACE, from: new Date(T0 + 17 * MINUTE), to: new Date(T0 + 5 * HOUR + 41 * MINUTE) };

      const [first] = (await overviewOf(store, filter, HOUR)).topSessions;
      const calls = records.filter((record) => {
        const at = Date.parse(record.started_at);
        return (
          record.session_id === first!.sessionId &&
          record.workspace_id === WORKSPACE &&
          at >= filter.from.getTime() &&
          at < filter.to.getTime()
        );
      });
      const starts = calls.map((record) => Date.parse(record.started_at));
      const ends = calls.map((record) => Date.parse(record.started_at) + record.timing.total_ms);

      expect(first!.sums.calls).toBe(calls.length);
      expect(first!.firstCallAt).toBe(new Date(Math.min(...starts)).toISOString());
      expect(first!.lastCallAt).toBe(new Date(Math.max(...starts)).toISOString());
      expect(first!.durationMs).toBe(Math.max(...ends) - Math.min(...starts));
    });

    it('follows inserts, re-pricing and deletions', async () => {
      let records = makeRollupCalls(2000, 4, 'changes');
      const store = await storeWith(records, { exactPercentileLimit: 0 });

      const added = makeRollupCalls(700, 5, 'added');
      for (let start = 0; start < added.length; start += 250) {
        await store.insertCalls(added.slice(start, start + 250).map((record) => ({ record, bodies: null })));
      }
      records = [...records, ...added];
      await expectReadsMatch(store, records, true);

      const repriced = records
        .filter((_, index) => index % 9 === 0)
        .map((record) => ({ ...record, cost: { ...record.cost, usd: 1.5, basis: 'exact' as const } }));
      await store.updateCallCosts(repriced.map((record) => ({ id: record.id, cost: record.cost })));
      const repricedById = new Map(repriced.map((record) => [record.id, record]));
      records = records.map((record) => repricedById.get(record.id) ?? record);
      await expectReadsMatch(store, records, true);

      const removedIds = records.filter((_, index) => index % 17 === 0).map((record) => record.id);
      await store.deleteCalls({ workspaceId: WORKSPACE, deviceIds: ['dev-1'] });
      await store.deleteCalls({ workspaceId: WORKSPACE, ids: removedIds });
      const removed = new Set(removedIds);
      records = records.filter(
        (record) => !(record.workspace_id === WORKSPACE && (record.device_id === 'dev-1' || removed.has(record.id))),
      );
      await expectReadsMatch(store, records, true);
    });
  });
}

/**
 * Latencies in ms to compare the bins of JavaScript and SQL on: the named cases, every whole ms up to
 * 100,000, and values a billionth below and above each bin edge 1.04^k. A value exactly at an edge is left
 * out, because the C library's `log` and V8's `Math.log` may differ in the last bit there.
 */
export function binProbeValues(): number[] {
  const values = [0, 0.5, 0.999, 1, 2, 25, 26, 1000, 59_999];
  for (let ms = 1; ms <= 100_000; ms += 1) values.push(ms);
  for (let k = 1; k <= 350; k += 1) {
    const edge = 1.04 ** k;
    values.push(edge * (1 - 1e-9), edge * (1 + 1e-9));
  }
  return values;
}

/** Rollup rows as comparable values: numbers rounded to 9 decimals, because summation order changes the last bits. */
export function comparableRows(rows: Record<string, unknown>[]): Record<string, unknown>[] {
  return rows.map((row) =>
    Object.fromEntries(
      Object.entries(row).map(([column, value]) => [
        column,
        typeof value === 'number' || (typeof value === 'string' && /^-?\d+(\.\d+)?$/.test(value))
          ? Math.round(Number(value) * 1e9) / 1e9
          : value,
      ]),
    ),
  );
}
