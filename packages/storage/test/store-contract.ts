import { createHash } from 'node:crypto';
import type { Store } from '@tokenwise/storage';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { fullRecord, recordSeries, sampleBodies, sparseRecord } from './sample-calls.js';

export interface StoreHandle {
  store: Store;
  /** Removes whatever the factory created (files, schemas); the suite closes the store itself first. */
  cleanup?: () => Promise<void>;
}

function sha256(text: string): string {
  return createHash('sha256').update(text).digest('hex');
}

/**
 * The behaviour every `Store` must have. Each implementation's test file calls this with a factory that
 * returns a fresh, empty store per test.
 */
export function describeStoreContract(name: string, createStore: () => Promise<StoreHandle>): void {
  describe(`${name}: store contract`, () => {
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

    describe('calls', () => {
      it('reads back a full record exactly', async () => {
        const record = fullRecord();
        await store.insertCalls([{ record, bodies: null }]);

        const stored = await store.getCall(record.id);
        expect(stored?.record).toStrictEqual(record);
        expect(JSON.stringify(stored?.record)).toBe(JSON.stringify(record));
      });

      it('reads back a sparse record with its nulls', async () => {
        const record = sparseRecord();
        await store.insertCalls([{ record, bodies: null }]);

        const stored = await store.getCall(record.id);
        expect(stored?.record).toStrictEqual(record);
        expect(stored?.record).not.toHaveProperty('stop_reasons');
      });

      it('reads back optional fields and fractions exactly', async () => {
        // The fields a plain record leaves out, and numbers whose last digit a lossy column would change.
        const record = fullRecord({
          timing: {
            ttft_ms: 812.5,
            total_ms: 4210.25,
            headers_ms: 301,
            proxy_before_ms: 0.001,
            proxy_after_ms: 0,
            model_load_ms: 63.915,
            prompt_eval_ms: 0.001,
            eval_ms: 0,
          },
          cost: {
            usd: 1234.000000001,
            basis: 'exact',
            price_key: 'claude-sonnet-4-5',
            breakdown: { input: 0.000000001, output: 1234 },
            price_data_version: '@pydantic/genai-prices@0.1.8',
            price_source: 'custom:price-1',
          },
          error: { type: 'rate_limit_error', message: null, source: 'http', retry_after_s: 0.001 },
          stop_reasons: [null, 'stop'],
          rate_limits: { 'anthropic-ratelimit-requests-remaining': '3999', 'retry-after': '7' },
        });
        await store.insertCalls([{ record, bodies: null }]);

        const stored = await store.getCall(record.id);
        expect(stored?.record).toStrictEqual(record);
        expect(JSON.stringify(stored?.record)).toBe(JSON.stringify(record));
      });

      it('returns null for an unknown id', async () => {
        expect(await store.getCall('no-such-call')).toBeNull();
      });

      it('reads back bodies, including a cut and an undecodable one', async () => {
        const record = fullRecord();
        const bodies = sampleBodies();
        await store.insertCalls([{ record, bodies }]);

        expect((await store.getCall(record.id))?.bodies).toStrictEqual(bodies);
      });

      it('keeps a missing body side as null', async () => {
        const record = fullRecord();
        const bodies = sampleBodies({ request: null });
        await store.insertCalls([{ record, bodies }]);

        const stored = await store.getCall(record.id);
        expect(stored?.bodies?.request).toBeNull();
        expect(stored?.bodies?.response).toStrictEqual(bodies.response);
      });

      it('stores no bodies when given none', async () => {
        const record = fullRecord();
        await store.insertCalls([{ record, bodies: null }]);

        expect((await store.getCall(record.id))?.bodies).toBeNull();
      });

      it('round-trips a 4 MiB body', async () => {
        const text = `${'x'.repeat(4 * 1024 * 1024 - 3)}end`;
        const bodies = sampleBodies({
          request: { text, bytes: text.length, truncated: false, content_type: 'application/json', encoding_error: null },
        });
        await store.insertCalls([{ record: fullRecord(), bodies }]);

        expect((await store.getCall(fullRecord().id))?.bodies?.request?.text).toBe(text);
      });

      it('skips a re-sent call in a later batch', async () => {
        const record = fullRecord();
        const first = await store.insertCalls([{ record, bodies: sampleBodies() }]);
        const again = await store.insertCalls([{ record: { ...record, status: 'success' }, bodies: null }]);

        expect(first.map((ref) => ref.id)).toEqual([record.id]);
        expect(again).toEqual([]);
        expect(await store.listCalls({ limit: 10 })).toHaveLength(1);
        const stored = await store.getCall(record.id);
        expect(stored?.record.status).toBe('error');
        expect(stored?.bodies).toStrictEqual(sampleBodies());
      });

      it('skips a call repeated in the same batch', async () => {
        const record = sparseRecord();
        const stored = await store.insertCalls([
          { record, bodies: null },
          { record, bodies: null },
        ]);

        expect(stored).toHaveLength(1);
        expect(await store.listCalls({ limit: 10 })).toHaveLength(1);
      });

      it('stores nothing from a batch with an invalid record', async () => {
        const [good] = recordSeries(1);
        const bad = sparseRecord({ id: 'bad-time', started_at: 'yesterday' });

        await expect(
          store.insertCalls([
            { record: good!, bodies: null },
            { record: bad, bodies: null },
          ]),
        ).rejects.toThrow(/started_at "yesterday"/);
        expect(await store.listCalls({ limit: 10 })).toEqual([]);
      });

      it('accepts an empty batch', async () => {
        expect(await store.insertCalls([])).toEqual([]);
      });

      it('lists newest first by start time, not by insert order', async () => {
        const records = recordSeries(5);
        const shuffled = [records[2]!, records[0]!, records[4]!, records[1]!, records[3]!];
        await store.insertCalls(shuffled.map((record) => ({ record, bodies: null })));

        const listed = await store.listCalls({ limit: 10 });
        expect(listed.map((call) => call.record.id)).toEqual([...records].reverse().map((record) => record.id));
      });

      it('applies the limit after ordering', async () => {
        const records = recordSeries(5);
        await store.insertCalls(records.map((record) => ({ record, bodies: null })));

        const listed = await store.listCalls({ limit: 2 });
        expect(listed.map((call) => call.record.id)).toEqual([records[4]!.id, records[3]!.id]);
      });

      it('filters by since, inclusive', async () => {
        const records = recordSeries(5);
        await store.insertCalls(records.map((record) => ({ record, bodies: null })));

        const listed = await store.listCalls({ limit: 10, since: new Date(records[3]!.started_at) });
        expect(listed.map((call) => call.record.id)).toEqual([records[4]!.id, records[3]!.id]);
      });

      it('pages forward in storage order after a cursor', async () => {
        const records = recordSeries(5);
        const refs = await store.insertCalls(records.slice(0, 3).map((record) => ({ record, bodies: null })));
        const later = await store.insertCalls(records.slice(3).map((record) => ({ record, bodies: null })));

        const afterFirst = await store.listCalls({ limit: 10, after: refs[0]!.cursor });
        expect(afterFirst.map((call) => call.record.id)).toEqual(records.slice(1).map((record) => record.id));

        const page = await store.listCalls({ limit: 2, after: refs[2]!.cursor });
        expect(page.map((call) => call.cursor)).toEqual(later.map((ref) => ref.cursor));
        expect(await store.listCalls({ limit: 10, after: later[1]!.cursor })).toEqual([]);
      });

      it('orders cursors by storage, not start time', async () => {
        const records = recordSeries(2);
        const [newer] = await store.insertCalls([{ record: records[1]!, bodies: null }]);
        const [older] = await store.insertCalls([{ record: records[0]!, bodies: null }]);

        const afterNewer = await store.listCalls({ limit: 10, after: newer!.cursor });
        expect(afterNewer.map((call) => call.record.id)).toEqual([records[0]!.id]);
        expect(afterNewer[0]!.cursor).toBe(older!.cursor);
      });

      it('returns the same cursors when listing as when inserting', async () => {
        const records = recordSeries(3);
        const refs = await store.insertCalls(records.map((record) => ({ record, bodies: null })));

        const listed = await store.listCalls({ limit: 10 });
        const cursorById = new Map(refs.map((ref) => [ref.id, ref.cursor]));
        for (const call of listed) expect(call.cursor).toBe(cursorById.get(call.record.id));
      });

      it('returns the latest cursor, or null when empty', async () => {
        expect(await store.latestCursor()).toBeNull();

        const refs = await store.insertCalls(recordSeries(3).map((record) => ({ record, bodies: null })));
        await store.insertCalls([{ record: sparseRecord({ id: 'older-start', started_at: '2020-01-01T00:00:00.000Z' }), bodies: null }]);

        const latest = await store.latestCursor();
        expect(latest).not.toBe(refs[2]!.cursor);
        expect(await store.listCalls({ limit: 10, after: refs[2]!.cursor })).toHaveLength(1);
        expect(await store.listCalls({ limit: 10, after: latest! })).toEqual([]);
      });

      it('rejects an invalid cursor and limit', async () => {
        await expect(store.listCalls({ limit: 10, after: 'not-a-cursor' })).rejects.toThrow(/invalid cursor "not-a-cursor"/);
        await expect(store.listCalls({ limit: 0 })).rejects.toThrow(/invalid limit 0/);
        await expect(store.listCalls({ limit: 1.5 })).rejects.toThrow(/invalid limit 1.5/);
      });
    });

    describe('workspaces, devices and tokens', () => {
      it('creates and reads a workspace', async () => {
        const workspace = await store.createWorkspace({ name: 'local', keepBodies: false });

        expect(await store.getWorkspace(workspace.id)).toStrictEqual(workspace);
        expect(workspace.keepBodies).toBe(false);
        expect(await store.getWorkspace('missing')).toBeNull();
      });

      it('keeps bodies by default', async () => {
        expect((await store.createWorkspace({ name: 'default' })).keepBodies).toBe(true);
      });

      it('creates and reads a device', async () => {
        const workspace = await store.createWorkspace({ name: 'local' });
        const device = await store.createDevice({ workspaceId: workspace.id, name: 'laptop' });

        expect(await store.getDevice(device.id)).toStrictEqual(device);
        expect(device.workspaceId).toBe(workspace.id);
      });

      it('finds a route token by its hash only', async () => {
        const workspace = await store.createWorkspace({ name: 'local' });
        const device = await store.createDevice({ workspaceId: workspace.id, name: 'laptop' });
        const created = await store.createRouteToken({
          workspaceId: workspace.id,
          deviceId: device.id,
          name: 'first',
          tokenSha256: sha256('twr_secret'),
        });

        expect(await store.findRouteTokenByHash(sha256('twr_secret'))).toStrictEqual(created);
        expect(await store.findRouteTokenByHash(sha256('twr_other'))).toBeNull();
        expect(created.revokedAt).toBeNull();
        expect(created.lastUsedAt).toBeNull();
      });

      it('rejects a route token hash that is not SHA-256 hex', async () => {
        const workspace = await store.createWorkspace({ name: 'local' });

        await expect(
          store.createRouteToken({ workspaceId: workspace.id, deviceId: null, name: 'plain', tokenSha256: 'twr_plaintext' }),
        ).rejects.toThrow(/invalid token hash/);
      });

      it('rejects two route tokens with one hash', async () => {
        const workspace = await store.createWorkspace({ name: 'local' });
        const input = { workspaceId: workspace.id, deviceId: null, name: 'dup', tokenSha256: sha256('twr_same') };
        await store.createRouteToken(input);

        await expect(store.createRouteToken(input)).rejects.toThrow();
      });

      it('revokes a route token once', async () => {
        const workspace = await store.createWorkspace({ name: 'local' });
        const token = await store.createRouteToken({ workspaceId: workspace.id, deviceId: null, name: 't', tokenSha256: sha256('a') });

        expect(await store.revokeRouteToken(token.id)).toBe(true);
        expect(await store.revokeRouteToken(token.id)).toBe(false);
        expect(await store.revokeRouteToken('missing')).toBe(false);
        expect((await store.findRouteTokenByHash(sha256('a')))?.revokedAt).toEqual(expect.any(String));
      });

      it('records when a route token was last used', async () => {
        const workspace = await store.createWorkspace({ name: 'local' });
        const token = await store.createRouteToken({ workspaceId: workspace.id, deviceId: null, name: 't', tokenSha256: sha256('b') });
        await store.touchRouteToken(token.id, new Date('2026-12-04T11:00:00.000Z'));

        expect((await store.findRouteTokenByHash(sha256('b')))?.lastUsedAt).toBe('2026-12-04T11:00:00.000Z');
      });

      it('lists the route tokens of one workspace', async () => {
        const mine = await store.createWorkspace({ name: 'mine' });
        const other = await store.createWorkspace({ name: 'other' });
        await store.createRouteToken({ workspaceId: mine.id, deviceId: null, name: 'one', tokenSha256: sha256('1') });
        await store.createRouteToken({ workspaceId: other.id, deviceId: null, name: 'two', tokenSha256: sha256('2') });

        expect((await store.listRouteTokens(mine.id)).map((token) => token.name)).toEqual(['one']);
      });

      it('lists only active API tokens', async () => {
        const workspace = await store.createWorkspace({ name: 'local' });
        const kept = await store.createApiToken({ workspaceId: workspace.id, name: 'kept', tokenSha256: sha256('api1') });
        const revoked = await store.createApiToken({ workspaceId: workspace.id, name: 'revoked', tokenSha256: sha256('api2') });
        expect(await store.revokeApiToken(revoked.id)).toBe(true);

        expect(await store.listActiveApiTokens()).toStrictEqual([kept]);
        expect((await store.findApiTokenByHash(sha256('api2')))?.revokedAt).toEqual(expect.any(String));
      });
    });

    describe('settings', () => {
      it('stores, overwrites and misses settings', async () => {
        expect(await store.getSetting('local_workspace_id')).toBeNull();

        await store.setSetting('local_workspace_id', 'ws-1');
        await store.setSetting('local_workspace_id', 'ws-2');

        expect(await store.getSetting('local_workspace_id')).toBe('ws-2');
      });
    });

    describe('readiness and locks', () => {
      it('is ready once opened', async () => {
        await expect(store.checkReady()).resolves.toBeUndefined();
      });

      it('runs tasks under one lock one at a time', async () => {
        const events: string[] = [];
        const task = (label: string) => async () => {
          events.push(`${label} start`);
          await new Promise((resolve) => setTimeout(resolve, 20));
          events.push(`${label} end`);
          return label;
        };

        const results = await Promise.all([store.withLock('setup', task('a')), store.withLock('setup', task('b'))]);

        expect(results).toEqual(['a', 'b']);
        // Either task may take the lock first (with PostgreSQL each waits on a connection of its own);
        // what matters is that the second starts only after the first ended.
        const first = events[0]!.split(' ')[0];
        const second = first === 'a' ? 'b' : 'a';
        expect(events).toEqual([`${first} start`, `${first} end`, `${second} start`, `${second} end`]);
      });

      it('releases a lock after a failed task', async () => {
        await expect(store.withLock('setup', async () => Promise.reject(new Error('task failed')))).rejects.toThrow('task failed');

        await expect(store.withLock('setup', async () => 'next')).resolves.toBe('next');
      });

      it('keeps separate locks apart', async () => {
        let release!: () => void;
        const gate = new Promise<void>((resolve) => {
          release = resolve;
        });
        const held = store.withLock('first', () => gate);

        await expect(store.withLock('second', async () => 'ran')).resolves.toBe('ran');
        release();
        await held;
      });
    });

    describe('closing', () => {
      it('fails calls after close and closes twice', async () => {
        await store.close();
        await store.close();

        await expect(store.listCalls({ limit: 1 })).rejects.toMatchObject({ code: 'store_failed' });
      });
    });
  });
}
