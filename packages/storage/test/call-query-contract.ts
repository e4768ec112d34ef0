import type { CallBodies, CallRecord } from '@tokenwise/core';
import type { CallFilter, Store } from '@tokenwise/storage';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { fullRecord, sampleBodies } from './sample-calls.js';
import type { StoreHandle } from './store-contract.js';

const T0 = Date.parse('2026-12-04T00:00:00.000Z');
const HOUR = 3_600_000;

interface CallSpec {
  workspace?: string;
  device?: string | null;
  tool?: CallRecord['tool'];
  model?: string | null;
  requested?: string | null;
  provider?: CallRecord['provider'];
  route?: string;
  status?: CallRecord['status'];
  session?: string | null;
  /** ms after T0 */
  at: number;
  usd?: number | null;
  basis?: CallRecord['cost']['basis'];
  input?: number | null;
  cacheRead?: number | null;
  cacheWrite?: number;
  output?: number;
  totalMs?: number;
  ttftMs?: number | null;
  rateLimits?: Record<string, string>;
}

let serial = 0;

/** Build a call record of workspace `ws-a` unless the spec says otherwise; ids grow with each call built. */
function call(spec: CallSpec): CallRecord {
  serial += 1;
  const record = fullRecord({
    id: `0190a1b2-0000-7000-8000-${String(serial).padStart(12, '0')}`,
    started_at: new Date(T0 + spec.at).toISOString(),
    workspace_id: spec.workspace ?? 'ws-a',
    device_id: spec.device === undefined ? 'dev-1' : spec.device,
    tool: spec.tool ?? 'claude-code',
    model_answered: spec.model === undefined ? 'claude-sonnet-4-5-20250929' : spec.model,
    model_requested: spec.requested === undefined ? 'claude-sonnet-4-5' : spec.requested,
    provider: spec.provider ?? 'anthropic',
    route: spec.route ?? 'anthropic',
    status: spec.status ?? 'success',
    error: null,
    session_id: spec.session === undefined ? 'session-1' : spec.session,
    usage: {
      ...fullRecord().usage,
      input_tokens: spec.input === undefined ? 1000 : spec.input,
      cache_read_tokens: spec.cacheRead === undefined ? 600 : spec.cacheRead,
      cache_write_tokens: spec.cacheWrite ?? 100,
      output_tokens: spec.output ?? 50,
    },
    timing: { ttft_ms: spec.ttftMs === undefined ? 100 : spec.ttftMs, total_ms: spec.totalMs ?? 1000, headers_ms: 50 },
    cost: { ...fullRecord().cost, usd: spec.usd === undefined ? 0.01 : spec.usd, basis: spec.basis ?? 'exact' },
  });
  return spec.rateLimits ? { ...record, rate_limits: spec.rateLimits } : record;
}

function promptBodies(prompt: string): CallBodies {
  const text = JSON.stringify({ model: 'claude-sonnet-4-5', messages: [{ role: 'user', content: prompt }] });
  return sampleBodies({ request: { text, bytes: text.length, truncated: false, content_type: 'application/json', encoding_error: null } });
}

const ids = (calls: { record: CallRecord }[]) => calls.map((listed) => listed.record.id);

/** The dashboard's queries, which every `Store` must answer alike. */
export function describeCallQueryContract(name: string, createStore: () => Promise<StoreHandle>): void {
  describe(`${name}: dashboard queries`, () => {
    let handle: StoreHandle;
    let store: Store;

    beforeEach(async () => {
      handle = await createStore();
      store = handle.store;
    });

    afterEach(async () => {
      await store.close();
      await handle.cleanup?.();
    });

    async function insert(...records: CallRecord[]): Promise<CallRecord[]> {
      await store.insertCalls(records.map((record) => ({ record, bodies: null })));
      return records;
    }

    /** Read every page of a search, checking that pages neither repeat nor skip a call. */
    async function searchAll(filter: CallFilter, limit: number): Promise<string[]> {
      const found: string[] = [];
      let cursor: string | undefined;
      for (let pages = 0; pages < 100; pages += 1) {
        const page = await store.searchCalls(filter, { limit, cursor });
        found.push(...ids(page.calls));
        if (page.nextCursor === null) return found;
        cursor = page.nextCursor;
      }
      throw new Error('search did not end after 100 pages');
    }

    describe('searchCalls', () => {
      it('pages newest first without repeating or skipping a call', async () => {
        // Two calls share a start time, so the order within it comes from storage order.
        const records = await insert(call({ at: 0 }), call({ at: 5000 }), call({ at: 5000 }), call({ at: 9000 }), call({ at: 2000 }));

        const found = await searchAll({ workspaceId: 'ws-a' }, 2);

        expect(found).toEqual([records[3]!.id, records[2]!.id, records[1]!.id, records[4]!.id, records[0]!.id]);
      });

      it('keeps every page stable while calls arrive', async () => {
        await insert(call({ at: 0 }), call({ at: 1000 }), call({ at: 2000 }));
        const first = await store.searchCalls({ workspaceId: 'ws-a' }, { limit: 2 });
        const newer = await insert(call({ at: 3000 }));

        const second = await store.searchCalls({ workspaceId: 'ws-a' }, { limit: 2, cursor: first.nextCursor! });

        expect(second.calls).toHaveLength(1);
        expect(ids(second.calls)).not.toContain(newer[0]!.id);
      });

      it('returns no next cursor on a short last page', async () => {
        await insert(call({ at: 0 }));

        expect((await store.searchCalls({ workspaceId: 'ws-a' }, { limit: 5 })).nextCursor).toBeNull();
      });

      it('filters by every field', async () => {
        const [base, gpt, google, device2, failed, other, late] = await insert(
          call({ at: 0 }),
          call({ at: 1000, model: null, requested: 'gpt-5', provider: 'openai', route: 'openai', tool: 'codex' }),
          call({ at: 2000, provider: 'google', route: 'gemini', tool: 'gemini-cli', model: 'gemini-2.5-pro' }),
          call({ at: 3000, device: 'dev-2' }),
          call({ at: 4000, status: 'error', session: 'session-2' }),
          call({ at: 5000, workspace: 'ws-b' }),
          call({ at: 10 * HOUR }),
        );
        const search = (filter: Omit<CallFilter, 'workspaceId'>) => searchAll({ workspaceId: 'ws-a', ...filter }, 50);

        expect(await search({ tools: ['codex', 'gemini-cli'] })).toEqual([google!.id, gpt!.id]);
        expect(await search({ models: ['gpt-5'] })).toEqual([gpt!.id]);
        expect(await search({ providers: ['google'] })).toEqual([google!.id]);
        expect(await search({ routes: ['openai'] })).toEqual([gpt!.id]);
        expect(await search({ deviceIds: ['dev-2'] })).toEqual([device2!.id]);
        expect(await search({ statuses: ['error'] })).toEqual([failed!.id]);
        expect(await search({ sessionIds: ['session-2'] })).toEqual([failed!.id]);
        expect(await search({ from: new Date(T0 + 1000), to: new Date(T0 + 4000) })).toEqual([device2!.id, google!.id, gpt!.id]);
        expect(await search({ tools: [] })).toEqual([]);
        expect(await search({})).toEqual([late!.id, failed!.id, device2!.id, google!.id, gpt!.id, base!.id]);
        expect(await searchAll({ workspaceId: 'ws-b' }, 50)).toEqual([other!.id]);
      });

      it('finds prompt text case-insensitively, with LIKE wildcards taken literally', async () => {
        const matching = call({ at: 0 });
        const other = call({ at: 1000 });
        const percent = call({ at: 2000 });
        const withoutBodies = call({ at: 3000 });
        await store.insertCalls([
          { record: matching, bodies: promptBodies('Please fix the Migration script') },
          { record: other, bodies: promptBodies('write a poem') },
          { record: percent, bodies: promptBodies('raise it by 50% today') },
          { record: withoutBodies, bodies: null },
        ]);

        expect(await searchAll({ workspaceId: 'ws-a', promptText: 'migration' }, 10)).toEqual([matching.id]);
        expect(await searchAll({ workspaceId: 'ws-a', promptText: 'FIX THE' }, 10)).toEqual([matching.id]);
        expect(await searchAll({ workspaceId: 'ws-a', promptText: '50%' }, 10)).toEqual([percent.id]);
        expect(await searchAll({ workspaceId: 'ws-a', promptText: '5_%' }, 10)).toEqual([]);
        expect(await searchAll({ workspaceId: 'ws-b', promptText: 'migration' }, 10)).toEqual([]);
        expect(await store.hasPromptText('ws-a')).toBe(true);
        expect(await store.hasPromptText('ws-b')).toBe(false);
      });

      it('rejects a cursor it did not make', async () => {
        await expect(store.searchCalls({ workspaceId: 'ws-a' }, { limit: 5, cursor: 'not-a-cursor' })).rejects.toMatchObject({
          code: 'invalid_argument',
        });
      });

      it('reads back the proxy timings, price source and rate limits', async () => {
        const record = call({ at: 0, rateLimits: { 'anthropic-ratelimit-unified-status': 'allowed' } });
        const extended: CallRecord = {
          ...record,
          timing: { ...record.timing, proxy_before_ms: 0.25, proxy_after_ms: 0.125 },
          cost: { ...record.cost, price_source: 'custom:p-1' },
          rate_limits: record.rate_limits,
        };
        await insert(extended);

        expect((await store.getCall(extended.id))?.record).toStrictEqual(extended);
        expect(JSON.stringify((await store.getCall(extended.id))?.record)).toBe(JSON.stringify(extended));
        expect((await store.listCalls({ limit: 1 }))[0]?.record).toStrictEqual(extended);
        expect((await store.searchCalls({ workspaceId: 'ws-a' }, { limit: 1 })).calls[0]?.record).toStrictEqual(extended);
      });
    });

    describe('overview', () => {
      it('adds up costs apart, tokens, sessions and the cache ratio', async () => {
        await insert(
          call({ at: 0, usd: 1.5, basis: 'exact', input: 1000, cacheRead: 600, cacheWrite: 100, output: 10 }),
          call({ at: 1000, usd: 0.25, basis: 'partial', input: 2000, cacheRead: null, cacheWrite: 0, output: 20, session: 'session-2' }),
          call({ at: 2000, usd: 4, basis: 'api_equivalent', input: 3000, cacheRead: 3000, cacheWrite: 0, output: 30, route: 'chatgpt' }),
          call({ at: 3000, usd: null, basis: 'unpriced', input: 10, cacheRead: 0, cacheWrite: 0, output: 1, session: null }),
          call({ at: 4000, usd: null, basis: 'unknown', input: null, cacheRead: null, cacheWrite: 0, output: 0, status: 'error' }),
          call({ at: 5000, workspace: 'ws-b', usd: 100 }),
        );

        const overview = await store.overview({
          filter: { workspaceId: 'ws-a', from: new Date(T0), to: new Date(T0 + HOUR) },
          bucketMs: HOUR,
          groupBy: 'tool',
          top: 5,
        });

        expect(overview.totals).toEqual({
          calls: 5,
          errors: 1,
          apiUsd: 1.75,
          apiEquivalentUsd: 4,
          inputTokens: 6010,
          cacheReadTokens: 3600,
          cacheWriteTokens: 100,
          outputTokens: 61,
          uncachedInputTokens: 500,
          reasoningTokens: 600,
          sessions: 2,
          unpricedCalls: 1,
          unknownCostCalls: 1,
          cacheRatioReadTokens: 3600,
          cacheRatioInputTokens: 4010,
        });
      });

      it('groups by bucket and key, and computes nearest-rank percentiles', async () => {
        await insert(
          call({ at: 0, totalMs: 100, ttftMs: 10, tool: 'claude-code' }),
          call({ at: 1, totalMs: 200, ttftMs: 20, tool: 'claude-code' }),
          call({ at: 2, totalMs: 300, ttftMs: null, tool: 'codex', model: 'gpt-5' }),
          call({ at: 3, totalMs: 9000, ttftMs: 90, tool: 'codex', status: 'error' }),
          call({ at: HOUR + 5, totalMs: 400, ttftMs: 40, tool: 'codex', model: 'gpt-5' }),
          call({ at: 3 * HOUR, totalMs: 1, tool: 'codex' }),
        );

        const overview = await store.overview({
          filter: { workspaceId: 'ws-a', from: new Date(T0), to: new Date(T0 + 2 * HOUR) },
          bucketMs: HOUR,
          groupBy: 'tool',
          top: 5,
        });

        const groups = [...overview.groups].sort((a, b) => a.bucket - b.bucket || String(a.key).localeCompare(String(b.key)));
        expect(groups.map(({ bucket, key, calls, errors }) => ({ bucket, key, calls, errors }))).toEqual([
          { bucket: 0, key: 'claude-code', calls: 2, errors: 0 },
          { bucket: 0, key: 'codex', calls: 2, errors: 1 },
          { bucket: 1, key: 'codex', calls: 1, errors: 0 },
        ]);
        // Success calls only: 100, 200, 300, 400 overall; p50 is rank 2, p95 rank 4.
        expect(overview.latency).toEqual({ p50: 200, p95: 400 });
        expect(overview.ttft).toEqual({ p50: 20, p95: 40 });
        expect(overview.bucketLatency).toEqual([
          { bucket: 0, totalMs: { p50: 200, p95: 300 }, ttftMs: { p50: 10, p95: 20 } },
          { bucket: 1, totalMs: { p50: 400, p95: 400 }, ttftMs: { p50: 40, p95: 40 } },
        ]);
      });

      it('groups by model, falling back to the requested model, and by device', async () => {
        await insert(call({ at: 0, model: null, requested: 'gpt-5' }), call({ at: 1, device: null }), call({ at: 2, device: 'dev-2' }));
        const query = { filter: { workspaceId: 'ws-a', from: new Date(T0), to: new Date(T0 + HOUR) }, bucketMs: HOUR, top: 5 };

        const byModel = await store.overview({ ...query, groupBy: 'model' });
        const byDevice = await store.overview({ ...query, groupBy: 'device' });

        expect(Object.fromEntries(byModel.groups.map((group) => [group.key, group.calls]))).toEqual({
          'gpt-5': 1,
          'claude-sonnet-4-5-20250929': 2,
        });
        expect(Object.fromEntries(byDevice.groups.map((group) => [String(group.key), group.calls]))).toEqual({
          'dev-1': 1,
          'dev-2': 1,
          null: 1,
        });
      });

      it('ranks the top sessions and models by cost', async () => {
        await insert(
          call({ at: 0, session: 'cheap', usd: 0.5 }),
          call({ at: 1000, session: 'dear', usd: 2, model: 'claude-opus-4-5' }),
          call({ at: 2000, session: 'dear', usd: 3, tool: 'claude-cli', model: 'claude-opus-4-5', totalMs: 500 }),
          call({ at: 3000, session: 'middle', usd: 1, basis: 'api_equivalent' }),
        );

        const overview = await store.overview({
          filter: { workspaceId: 'ws-a', from: new Date(T0), to: new Date(T0 + HOUR) },
          bucketMs: HOUR,
          groupBy: 'tool',
          top: 2,
        });

        expect(overview.topSessions.map((session) => [session.sessionId, session.sums.apiUsd + session.sums.apiEquivalentUsd])).toEqual([
          ['dear', 5],
          ['middle', 1],
        ]);
        expect(overview.topSessions[0]).toMatchObject({
          tools: ['claude-cli', 'claude-code'],
          models: ['claude-opus-4-5'],
          firstCallAt: new Date(T0 + 1000).toISOString(),
          lastCallAt: new Date(T0 + 2000).toISOString(),
          durationMs: 1500,
        });
        expect(overview.topModels.map((model) => [model.model, model.sums.calls])).toEqual([
          ['claude-opus-4-5', 2],
          ['claude-sonnet-4-5-20250929', 2],
        ]);
      });
    });

    describe('sessions', () => {
      it('lists sessions by latest activity, a page at a time', async () => {
        await insert(
          call({ at: 0, session: 's-old' }),
          call({ at: 5000, session: 's-new', device: 'dev-2' }),
          call({ at: 1000, session: 's-mid', tool: 'codex', model: 'gpt-5' }),
          call({ at: 2000, session: 's-mid', status: 'error' }),
          call({ at: 3000, session: null }),
          call({ at: 9000, session: 's-other', workspace: 'ws-b' }),
        );

        const first = await store.listSessions({ workspaceId: 'ws-a' }, { limit: 2 });
        const second = await store.listSessions({ workspaceId: 'ws-a' }, { limit: 2, cursor: first.nextCursor! });

        expect(first.sessions.map((session) => session.sessionId)).toEqual(['s-new', 's-mid']);
        expect(second.sessions.map((session) => session.sessionId)).toEqual(['s-old']);
        expect(second.nextCursor).toBeNull();
        expect(first.sessions[1]).toMatchObject({
          tools: ['claude-code', 'codex'],
          models: ['claude-sonnet-4-5-20250929', 'gpt-5'],
          deviceIds: ['dev-1'],
          durationMs: 2000,
          sums: { calls: 2, errors: 1 },
        });
      });

      it('reads one session and its calls oldest first', async () => {
        const [a, b, c] = await insert(call({ at: 2000, session: 's' }), call({ at: 0, session: 's' }), call({ at: 1000, session: 's' }));
        await insert(call({ at: 500, session: 's', workspace: 'ws-b' }));

        const session = await store.getSession('ws-a', 's');
        const first = await store.listSessionCalls('ws-a', 's', { limit: 2 });
        const second = await store.listSessionCalls('ws-a', 's', { limit: 2, cursor: first.nextCursor! });

        expect(session?.sums.calls).toBe(3);
        expect(ids(first.calls)).toEqual([b!.id, c!.id]);
        expect(ids(second.calls)).toEqual([a!.id]);
        expect(await store.getSession('ws-a', 'missing')).toBeNull();
        expect(await store.getSession('ws-c', 's')).toBeNull();
      });
    });

    describe('facets, devices and rate limits', () => {
      it('counts the values of each filter field', async () => {
        await insert(
          call({ at: 0 }),
          call({ at: 1, tool: 'codex', model: 'gpt-5', provider: 'openai', device: 'dev-2' }),
          call({ at: 2, status: 'error' }),
          call({ at: 3, workspace: 'ws-b', tool: 'cursor' }),
        );

        const facets = await store.callFacets({ workspaceId: 'ws-a' }, 10);

        expect(facets.tools).toEqual([
          { value: 'claude-code', calls: 2 },
          { value: 'codex', calls: 1 },
        ]);
        expect(facets.models).toEqual([
          { value: 'claude-sonnet-4-5-20250929', calls: 2 },
          { value: 'gpt-5', calls: 1 },
        ]);
        expect(facets.providers.map((facet) => facet.value)).toEqual(['anthropic', 'openai']);
        expect(facets.statuses).toEqual([
          { value: 'success', calls: 2 },
          { value: 'error', calls: 1 },
        ]);
        expect(facets.devices).toEqual([
          { value: 'dev-1', calls: 2 },
          { value: 'dev-2', calls: 1 },
        ]);
      });

      it('counts the calls of each device', async () => {
        await insert(call({ at: 0 }), call({ at: 2 * HOUR }), call({ at: 3 * HOUR, device: 'dev-2' }));

        const stats = await store.deviceCallStats(['dev-1', 'dev-2', 'dev-3'], new Date(T0 + HOUR));

        expect(stats).toEqual([
          { deviceId: 'dev-1', calls: 2, callsSince: 1, lastCallAt: new Date(T0 + 2 * HOUR).toISOString() },
          { deviceId: 'dev-2', calls: 1, callsSince: 1, lastCallAt: new Date(T0 + 3 * HOUR).toISOString() },
          { deviceId: 'dev-3', calls: 0, callsSince: 0, lastCallAt: null },
        ]);
      });

      it('keeps the newest rate limits of each device, route and tool', async () => {
        const [, newest, codex] = await insert(
          call({ at: 0, rateLimits: { 'anthropic-ratelimit-unified-5h-utilization': '0.1' } }),
          call({ at: 1000, rateLimits: { 'anthropic-ratelimit-unified-5h-utilization': '0.2' } }),
          call({ at: 500, tool: 'codex', route: 'chatgpt', provider: 'openai', rateLimits: { 'x-codex-primary-used-percent': '7' } }),
          call({ at: 2000 }),
          call({ at: 3000, workspace: 'ws-b', rateLimits: { 'x-ratelimit-remaining-tokens': '1' } }),
        );

        const snapshots = await store.latestRateLimits('ws-a');

        expect(snapshots).toEqual([
          {
            deviceId: 'dev-1',
            route: 'anthropic',
            tool: 'claude-code',
            provider: 'anthropic',
            callId: newest!.id,
            observedAt: newest!.started_at,
            headers: { 'anthropic-ratelimit-unified-5h-utilization': '0.2' },
          },
          {
            deviceId: 'dev-1',
            route: 'chatgpt',
            tool: 'codex',
            provider: 'openai',
            callId: codex!.id,
            observedAt: codex!.started_at,
            headers: { 'x-codex-primary-used-percent': '7' },
          },
        ]);
      });
    });

    describe('custom prices and re-pricing', () => {
      it('creates, lists and deletes custom prices per workspace', async () => {
        const workspace = await store.createWorkspace({ name: 'a' });
        const other = await store.createWorkspace({ name: 'b' });
        const price = await store.createCustomPrice({
          workspaceId: workspace.id,
          model: 'claude-sonnet-4-5',
          provider: null,
          effectiveFrom: '2026-12-01T00:00:00Z',
          input_mtok: 3,
          output_mtok: 15,
          cache_read_mtok: 0.3,
          cache_write_mtok: null,
          cache_write_1h_mtok: null,
          createdBy: 'user-1',
        });

        expect(price.effectiveFrom).toBe('2026-12-01T00:00:00.000Z');
        expect(await store.listCustomPrices(workspace.id)).toEqual([price]);
        expect(await store.listCustomPrices(other.id)).toEqual([]);
        expect(await store.listAllCustomPrices()).toEqual([price]);
        expect(await store.deleteCustomPrice(other.id, price.id)).toBe(false);
        expect(await store.deleteCustomPrice(workspace.id, price.id)).toBe(true);
        expect(await store.listCustomPrices(workspace.id)).toEqual([]);
      });

      it('replaces the cost of stored calls', async () => {
        const [record] = await insert(call({ at: 0 }));
        const cost = {
          usd: 1.25,
          basis: 'exact' as const,
          price_key: 'x',
          breakdown: { input: 1.25 },
          price_data_version: null,
          price_source: 'custom:p',
        };

        expect(await store.updateCallCosts([{ id: record!.id, cost }])).toBe(1);
        expect((await store.getCall(record!.id))?.record.cost).toStrictEqual(cost);
      });
    });

    describe('deletion of derived rows', () => {
      it('deletes prompt text and rate limits with their calls', async () => {
        const record = call({ at: 0, rateLimits: { 'retry-after': '5' } });
        await store.insertCalls([{ record, bodies: promptBodies('secret plan') }]);

        expect(await store.deleteCalls({ workspaceId: 'ws-a', ids: [record.id] })).toBe(1);

        expect(await store.hasPromptText('ws-a')).toBe(false);
        expect(await store.latestRateLimits('ws-a')).toEqual([]);
      });

      it('expires prompt text with the bodies, keeping rate limits', async () => {
        const workspace = await store.createWorkspace({ name: 'w', bodyRetentionDays: 1 });
        const record = { ...call({ at: 0, rateLimits: { 'retry-after': '5' } }), workspace_id: workspace.id };
        await store.insertCalls([{ record, bodies: promptBodies('old plan') }]);

        await store.deleteExpiredBodies(new Date(T0 + 3 * 24 * HOUR));

        expect(await store.hasPromptText(workspace.id)).toBe(false);
        expect(await store.latestRateLimits(workspace.id)).toHaveLength(1);
      });

      it('deletes them with the workspace', async () => {
        const workspace = await store.createWorkspace({ name: 'w' });
        const record = { ...call({ at: 0, rateLimits: { 'retry-after': '5' } }), workspace_id: workspace.id };
        await store.insertCalls([{ record, bodies: promptBodies('plan') }]);
        await store.createCustomPrice({
          workspaceId: workspace.id,
          model: 'm',
          provider: null,
          effectiveFrom: '2026-01-01T00:00:00Z',
          input_mtok: 1,
          output_mtok: 1,
          cache_read_mtok: null,
          cache_write_mtok: null,
          cache_write_1h_mtok: null,
          createdBy: null,
        });

        expect(await store.deleteWorkspace(workspace.id)).toBe(true);

        expect(await store.hasPromptText(workspace.id)).toBe(false);
        expect(await store.latestRateLimits(workspace.id)).toEqual([]);
        expect(await store.listCustomPrices(workspace.id)).toEqual([]);
      });
    });
  });
}
