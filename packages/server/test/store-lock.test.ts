import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { CallRecord } from '@tokenwise/core';
import { SqliteStore } from '@tokenwise/storage';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { type SlowUpstream, startSlowUpstream } from './helpers/slow-upstream.js';
import { holdSqliteWriteLock } from './helpers/sqlite-lock.js';
import { anthropicCall, startTestServer, type TestServer } from './helpers/test-server.js';

/** How long another process holds the database's write lock, in ms: within the store's 5 s busy timeout. */
const LOCK_MS = 3000;
/**
 * Maximum pause in the stream and maximum duration of a quick call while the lock is held, in ms. Generous on
 * purpose: it checks that nothing waits for the lock, not speed.
 */
const STALL_BOUND_MS = 2000;

/** Read a streamed response to its end; returns when each chunk arrived, in ms since the epoch. */
async function chunkArrivalTimes(response: Response): Promise<number[]> {
  const times: number[] = [];
  const reader = response.body!.getReader();
  for (let read = await reader.read(); !read.done; read = await reader.read()) times.push(Date.now());
  return times;
}

function largestGapMs(times: number[]): number {
  let largest = 0;
  for (let index = 1; index < times.length; index += 1) largest = Math.max(largest, times[index]! - times[index - 1]!);
  return largest;
}

async function storedCalls(running: TestServer): Promise<CallRecord[]> {
  const response = await running.api('/api/v1/calls?limit=100');
  return ((await response.json()) as { calls: CallRecord[] }).calls;
}

// Regression: better-sqlite3 is synchronous, and the store wrote on the proxy's thread with a 5 s busy
// timeout. A database locked by another process froze every stream and request for seconds per flush.
describe('serve with a locked database', () => {
  let upstream: SlowUpstream;
  let running: TestServer | null = null;

  beforeEach(async () => {
    upstream = await startSlowUpstream();
  });

  afterEach(async () => {
    await running?.dispose();
    running = null;
    await upstream.close();
  });

  async function warmUp(server: TestServer): Promise<void> {
    const response = await anthropicCall(server.server.url, server.server.routeToken);
    expect(response.status).toBe(200);
    await response.arrayBuffer();
    await vi.waitFor(async () => expect(await storedCalls(server)).toHaveLength(1));
  }

  it('keeps streams and calls flowing while the lock is held', async () => {
    running = await startTestServer({ upstreams: { anthropic: upstream.url } });
    const server = running;
    await warmUp(server);

    const stream = await fetch(`${server.server.url}/r/${server.server.routeToken}/anthropic/v1/messages`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', 'x-api-key': 'sk-ant-api03-FAKE-lock', 'x-stream-ms': String(LOCK_MS + 2000) },
      body: JSON.stringify({ model: 'claude-sonnet-4-5', max_tokens: 16, stream: true, messages: [{ role: 'user', content: 'hi' }] }),
    });
    const arrivals = chunkArrivalTimes(stream);

    const lock = await holdSqliteWriteLock(join(server.dataDir, 'tokenwise.db'), LOCK_MS);
    const lockedUntil = Date.now() + LOCK_MS;
    const quickCalls: { status: number; ms: number }[] = [];
    while (Date.now() < lockedUntil - 300) {
      const startedAt = Date.now();
      const response = await anthropicCall(server.server.url, server.server.routeToken);
      await response.arrayBuffer();
      quickCalls.push({ status: response.status, ms: Date.now() - startedAt });
      await new Promise((resolve) => setTimeout(resolve, 200));
    }
    await lock.released;

    const times = await arrivals;
    expect(stream.status).toBe(200);
    expect(largestGapMs(times)).toBeLessThan(STALL_BOUND_MS);
    expect(quickCalls.length).toBeGreaterThanOrEqual(3);
    for (const call of quickCalls) {
      expect(call.status).toBe(200);
      expect(call.ms).toBeLessThan(STALL_BOUND_MS);
    }

    const expected = 1 + 1 + quickCalls.length;
    await vi.waitFor(async () => expect(await storedCalls(server)).toHaveLength(expected), { timeout: 15_000 });
    const streamed = (await storedCalls(server)).find((call) => call.streaming);
    expect(streamed).toMatchObject({ status: 'success', usage: { output_tokens: 9 } });
    expect(server.server.stats().sink).toMatchObject({ lost: 0, dropped: 0 });
  });

  it('stores every record after a long lock', async () => {
    const dataDir = await mkdtemp(join(tmpdir(), 'tokenwise-lock-'));
    const store = new SqliteStore(join(dataDir, 'tokenwise.db'), { busyTimeoutMs: 100 });
    running = await startTestServer({
      dataDir,
      store,
      upstreams: { anthropic: upstream.url },
      sink: { flushIntervalMs: 20, maxAttempts: 2 },
    });
    const server = running;
    await warmUp(server);

    const lock = await holdSqliteWriteLock(join(dataDir, 'tokenwise.db'), 2000);
    for (let index = 0; index < 4; index += 1) {
      const response = await anthropicCall(server.server.url, server.server.routeToken);
      expect(response.status).toBe(200);
      await response.arrayBuffer();
    }
    await vi.waitFor(() => expect(server.server.stats().sink.storeUnavailable).toBe(true));
    await lock.released;

    await vi.waitFor(async () => expect(await storedCalls(server)).toHaveLength(5), { timeout: 15_000 });
    expect(server.server.stats().sink).toMatchObject({ lost: 0, dropped: 0 });
    await running.dispose();
    running = null;
    await rm(dataDir, { recursive: true, force: true });
  });
});
