import { readdir } from 'node:fs/promises';
import { join } from 'node:path';
import { PostgresStore, SqliteStore } from '@tokenwise/storage';
import { type FakeProvider, startFakeProvider } from '@tokenwise/testkit';
import pg from 'pg';
import { afterAll, afterEach, beforeAll, describe, expect, it, vi } from 'vitest';
import { type PrivatePostgres, privatePostgresUnavailable, startPrivatePostgres } from './helpers/private-postgres.js';
import { anthropicCall, startTestServer, type TestServer } from './helpers/test-server.js';

/** A real SQLite store whose writer connection can be capped at a number of pages, as a full disk caps it. */
class CappedSqliteStore extends SqliteStore {
  /** Cap the database at its current size (`PRAGMA max_page_count` on the writing connection). */
  async capAtCurrentSize(): Promise<void> {
    const [row] = await this.sql().all<{ page_count: number }>('PRAGMA page_count', []);
    await this.sql().run(`PRAGMA max_page_count = ${row!.page_count}`, []);
  }

  async uncap(): Promise<void> {
    await this.sql().run('PRAGMA max_page_count = 1073741823', []);
  }
}

interface CallResult {
  status: number;
  /** The fake provider's `request-id`, which the record keeps as `upstream_request_id`. */
  requestId: string | null;
}

/** Send one Anthropic call, streamed or not, and read it to the end. */
async function sendCall(server: TestServer, stream: boolean): Promise<CallResult> {
  const response = await anthropicCall(server.server.url, server.server.routeToken, { stream });
  await response.arrayBuffer();
  return { status: response.status, requestId: response.headers.get('request-id') };
}

/** Calls sent one after another on `concurrency` loops until `stop()`; every result is kept. */
function startTraffic(server: TestServer, concurrency: number) {
  const results: CallResult[] = [];
  let running = true;
  const loops = Array.from({ length: concurrency }, async (_, loop) => {
    for (let index = 0; running; index += 1) results.push(await sendCall(server, (index + loop) % 2 === 0));
  });
  return {
    results,
    async stop(): Promise<CallResult[]> {
      running = false;
      await Promise.all(loops);
      return results;
    },
  };
}

let upstream: FakeProvider;

beforeAll(async () => {
  upstream = await startFakeProvider();
});

afterAll(async () => {
  await upstream.close();
});

const servers: TestServer[] = [];
afterEach(async () => {
  // Newest first: a later server may use the data directory an earlier one deletes.
  for (const server of servers.splice(0).reverse()) await server.dispose();
});

describe('SQLite disk full', () => {
  it('keeps calls flowing and stores every record once space is back', async () => {
    const server = await startTestServer({ upstreams: { anthropic: upstream.url }, sink: { flushIntervalMs: 20, maxRetryDelayMs: 200 } });
    servers.push(server);
    await server.server.close();
    // The same data directory again, now with a store whose size the test controls.
    const store = new CappedSqliteStore(join(server.dataDir, 'tokenwise.db'));
    const capped = await startTestServer({
      dataDir: server.dataDir,
      store,
      upstreams: { anthropic: upstream.url },
      sink: { flushIntervalMs: 20, maxRetryDelayMs: 200 },
    });
    servers.push(capped);

    await store.capAtCurrentSize();
    const results: CallResult[] = [];
    for (let index = 0; index < 20; index += 1) results.push(await sendCall(capped, index % 2 === 0));

    expect(results.map((result) => result.status)).toEqual(Array(20).fill(200));
    await vi.waitFor(() => expect(capped.server.stats().sink.storeUnavailable).toBe(true));
    expect(capped.server.stats().sink.spooled).toBeGreaterThan(0);
    expect(capped.logs.text()).toContain('is full (SQLITE_FULL)');

    await store.uncap();
    await vi.waitFor(() => expect(capped.server.stats().sink).toMatchObject({ queued: 0, storeUnavailable: false }), { timeout: 15_000 });
    const stored = (await store.listCalls({ limit: 100 })).map((call) => call.record.upstream_request_id).sort();
    expect(stored).toEqual(results.map((result) => result.requestId).sort());
    expect(capped.server.stats().sink).toMatchObject({ lost: 0, dropped: 0 });
  });
});

const noPrivatePostgres = privatePostgresUnavailable();
const postgresRequired = process.env.TOKENWISE_POSTGRES === 'required';
if (noPrivatePostgres !== null && !postgresRequired) console.warn(`skipping "PostgreSQL restart": ${noPrivatePostgres}`);

describe.skipIf(noPrivatePostgres !== null && !postgresRequired)('PostgreSQL restart', () => {
  let postgres: PrivatePostgres;

  beforeAll(async () => {
    postgres = await startPrivatePostgres();
  });

  afterAll(async () => {
    await postgres?.destroy();
  });

  async function storedRequestIds(): Promise<string[]> {
    const client = new pg.Client({ connectionString: postgres.url });
    await client.connect();
    try {
      const { rows } = await client.query<{ upstream_request_id: string }>('SELECT upstream_request_id FROM calls');
      return rows.map((row) => row.upstream_request_id).sort();
    } finally {
      await client.end();
    }
  }

  it('stores every call made while it was down, once', async () => {
    const server = await startTestServer({
      databaseUrl: postgres.url,
      upstreams: { anthropic: upstream.url },
      // A short cache so that calls during the outage need the cached grant past its expiry.
      tokenCacheMs: 500,
      sink: { flushIntervalMs: 20, maxRetryDelayMs: 500 },
    });
    servers.push(server);

    const traffic = startTraffic(server, 2);
    await vi.waitFor(() => expect(traffic.results.length).toBeGreaterThanOrEqual(6));
    await postgres.stop();
    const atStop = traffic.results.length;

    // N calls while it is down, over three times the token cache time.
    await new Promise((resolve) => setTimeout(resolve, 1_500));
    await vi.waitFor(() => expect(traffic.results.length).toBeGreaterThanOrEqual(atStop + 40), { timeout: 30_000 });
    await vi.waitFor(() => expect(server.server.stats().sink.storeUnavailable).toBe(true));
    const waitingWhileDown = server.server.stats().sink;
    expect(waitingWhileDown.spooled).toBeGreaterThan(0);
    expect(server.logs.text()).toContain('the store is unavailable; call records wait in the spool');

    await postgres.start();
    await vi.waitFor(() => expect(traffic.results.length).toBeGreaterThanOrEqual(atStop + 50), { timeout: 30_000 });
    const results = await traffic.stop();

    expect(results.filter((result) => result.status !== 200)).toEqual([]);
    const expected = results.map((result) => result.requestId).sort();
    await vi.waitFor(async () => expect(await storedRequestIds()).toHaveLength(expected.length), { timeout: 30_000, interval: 200 });
    expect(await storedRequestIds()).toEqual(expected);
    expect(server.server.stats().sink).toMatchObject({ lost: 0, dropped: 0, queued: 0, spooled: 0 });
    expect(server.logs.text()).toContain('the store is available again');
  });

  // Regression: PostgreSQL's shutdown notice on a checked-out connection was emitted as an `error`
  // event with no listener, an uncaught exception that would end `tokenwise serve`.
  it('survives a restart while a connection is checked out', async () => {
    const store = await PostgresStore.open(postgres.url);
    try {
      const during = store.withLock('restart-test', async () => {
        await postgres.stop();
        return 'task ran';
      });
      expect(await during).toBe('task ran');
      await postgres.start();
      await expect(store.checkReady()).resolves.toBeUndefined();
    } finally {
      await store.close();
    }
  });

  it('stores on restart what waited in the spool at shutdown', async () => {
    const server = await startTestServer({
      databaseUrl: postgres.url,
      upstreams: { anthropic: upstream.url },
      sink: { flushIntervalMs: 20, maxRetryDelayMs: 500 },
    });
    servers.push(server);
    await sendCall(server, false);
    await vi.waitFor(() => expect(server.server.stats().sink.stored).toBe(1));
    const before = (await storedRequestIds()).length;

    await postgres.stop();
    const whileDown: CallResult[] = [];
    for (let index = 0; index < 10; index += 1) whileDown.push(await sendCall(server, index % 2 === 1));
    await server.server.close();
    expect(server.server.stats().sink).toMatchObject({ lost: 0, spooled: 10 });
    expect((await readdir(join(server.dataDir, 'spool'))).length).toBeGreaterThan(0);

    await postgres.start();
    const restarted = await startTestServer({
      dataDir: server.dataDir,
      databaseUrl: postgres.url,
      upstreams: { anthropic: upstream.url },
      sink: { flushIntervalMs: 20 },
    });
    servers.push(restarted);
    await vi.waitFor(() => expect(restarted.server.stats().sink.spooled).toBe(0), { timeout: 15_000 });

    const stored = await storedRequestIds();
    expect(stored).toHaveLength(before + 10);
    for (const call of whileDown) expect(stored.filter((id) => id === call.requestId)).toHaveLength(1);
    expect(await readdir(join(restarted.dataDir, 'spool'))).toEqual([]);
  });
});
