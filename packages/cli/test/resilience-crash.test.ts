import { once } from 'node:events';
import { rm } from 'node:fs/promises';
import { join } from 'node:path';
import { SqliteStore } from '@tokenwise/storage';
import { FAKE_CREDENTIALS, type FakeProvider, makeTestDir, startFakeProvider } from '@tokenwise/testkit';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { holdSqliteWriteLock } from '../../server/test/helpers/sqlite-lock.js';
import { type ServeProcess, startServe } from './helpers/cli-process.js';

/**
 * The record sink's flush interval in `tokenwise serve`, in ms: a record reaches the spool's fsync at
 * most this long after its call ended (plus one append), so a crash loses at most the calls of that window.
 */
const FLUSH_INTERVAL_MS = 1_000;
/** Margin on top of the interval for a slow or loaded machine; the bound is part of correctness, not speed. */
const MARGIN_MS = 2_000;

interface FinishedCall {
  requestId: string;
  /** Date.now() when the client had read the whole response. */
  finishedAtMs: number;
}

let upstream: FakeProvider;
const cleanup: (() => Promise<unknown>)[] = [];

beforeAll(async () => {
  upstream = await startFakeProvider();
});

afterAll(async () => {
  await upstream.close();
});

afterEach(async () => {
  while (cleanup.length > 0) await cleanup.pop()!();
});

async function startServer(dataDir: string): Promise<ServeProcess> {
  const server = await startServe(['--port', '0', '--data-dir', dataDir, '--upstream', `anthropic=${upstream.url}`]);
  cleanup.push(() => server.stop());
  return server;
}

async function newDataDir(): Promise<string> {
  const { dir, keep } = await makeTestDir('tokenwise-crash-');
  if (!keep) cleanup.push(() => rm(dir, { recursive: true, force: true }));
  return dir;
}

/** Servers this file has sent SIGKILL. */
const killed = new WeakSet<ServeProcess>();

/** Send one Anthropic call and read it whole; null when the server went away meanwhile. */
async function sendCall(server: ServeProcess, stream: boolean): Promise<FinishedCall | null> {
  try {
    const response = await fetch(`${server.url}/r/${server.routeToken}/anthropic/v1/messages`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', 'x-api-key': FAKE_CREDENTIALS.anthropicApiKey, 'anthropic-version': '2023-06-01' },
      body: JSON.stringify({ model: 'claude-sonnet-4-5', max_tokens: 16, stream, messages: [{ role: 'user', content: 'say hi' }] }),
    });
    await response.arrayBuffer();
    if (response.status !== 200) throw new Error(`call failed with status ${response.status}`);
    return { requestId: response.headers.get('request-id')!, finishedAtMs: Date.now() };
  } catch (error) {
    // A call cut by the kill fails before the child's exit is reported, so the kill itself is the sign.
    if (killed.has(server)) return null;
    throw error;
  }
}

/** Kill the server with SIGKILL, as the kernel's OOM killer or a power cut would end it. */
async function crash(server: ServeProcess): Promise<number> {
  const killedAtMs = Date.now();
  const exited = once(server.child, 'exit');
  killed.add(server);
  server.child.kill('SIGKILL');
  await exited;
  return killedAtMs;
}

/** Count the stored calls per upstream request id, after a graceful stop has stored everything it can. */
async function storedRequestIds(dataDir: string): Promise<Map<string, number>> {
  const store = new SqliteStore(join(dataDir, 'tokenwise.db'), { readonly: true });
  try {
    const counts = new Map<string, number>();
    for (const call of await store.listCalls({ limit: 100_000 })) {
      const id = call.record.upstream_request_id ?? '';
      counts.set(id, (counts.get(id) ?? 0) + 1);
    }
    return counts;
  } finally {
    await store.close();
  }
}

describe('tokenwise serve killed with SIGKILL', () => {
  it('loses at most the last flush interval of calls', async () => {
    const dataDir = await newDataDir();
    const server = await startServer(dataDir);

    const finished: FinishedCall[] = [];
    let running = true;
    const loops = [0, 1].map(async (loop) => {
      for (let index = 0; running; index += 1) {
        const call = await sendCall(server, (index + loop) % 2 === 0);
        if (call === null) return;
        finished.push(call);
      }
    });
    await new Promise((resolve) => setTimeout(resolve, 4_000));
    const killedAtMs = await crash(server);
    running = false;
    await Promise.all(loops);

    await (await startServer(dataDir)).stop();
    const stored = await storedRequestIds(dataDir);

    const older = finished.filter((call) => call.finishedAtMs < killedAtMs - FLUSH_INTERVAL_MS - MARGIN_MS);
    expect(older.length).toBeGreaterThan(10);
    for (const call of older)
      expect({ requestId: call.requestId, stored: stored.get(call.requestId) ?? 0 }).toEqual({ requestId: call.requestId, stored: 1 });
    // No call is stored twice, however late it finished.
    expect([...stored.values()].filter((count) => count > 1)).toEqual([]);
  });

  it('stores every spooled call after a crash while the database was locked', async () => {
    const dataDir = await newDataDir();
    const server = await startServer(dataDir);
    expect(await sendCall(server, false)).not.toBeNull();
    await new Promise((resolve) => setTimeout(resolve, FLUSH_INTERVAL_MS + MARGIN_MS));

    // Another process holds the write lock, so the calls below reach only the spool.
    const lock = await holdSqliteWriteLock(join(dataDir, 'tokenwise.db'), 120_000);
    cleanup.push(async () => {
      lock.child.kill('SIGKILL');
      await lock.released;
    });
    const calls: FinishedCall[] = [];
    for (let index = 0; index < 30; index += 1) calls.push((await sendCall(server, index % 2 === 0))!);
    await new Promise((resolve) => setTimeout(resolve, FLUSH_INTERVAL_MS + MARGIN_MS));
    await crash(server);
    lock.child.kill('SIGKILL');
    await lock.released;

    const restarted = await startServer(dataDir);
    expect(await restarted.stop()).toBe(0);
    expect(restarted.stderr() + restarted.stdout()).toContain('storing the call records an earlier run left in the spool');

    const stored = await storedRequestIds(dataDir);
    for (const call of calls)
      expect({ requestId: call.requestId, stored: stored.get(call.requestId) ?? 0 }).toEqual({ requestId: call.requestId, stored: 1 });
    expect(stored.size).toBe(31);
  });
});
