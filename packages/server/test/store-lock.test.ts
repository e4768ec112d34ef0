import { once } from 'node:events';
import { mkdtemp, rm } from 'node:fs/promises';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { CallRecord } from '@tokenwise/core';
import { SqliteStore } from '@tokenwise/storage';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { holdSqliteWriteLock } from './helpers/sqlite-lock.js';
import { anthropicCall, startTestServer, type TestServer } from './helpers/test-server.js';

/** Interval of the slow upstream's stream events, in ms. */
const EVENT_INTERVAL_MS = 100;
/** How long another process holds the database's write lock, in ms: within the store's 5 s busy timeout. */
const LOCK_MS = 3000;
/**
 * Maximum pause in the stream and maximum duration of a quick call while the lock is held, in ms. Generous on
 * purpose: it checks that nothing waits for the lock, not speed.
 */
const STALL_BOUND_MS = 2000;

/**
 * Start an Anthropic upstream: a non-streamed request gets a JSON message at once, a streamed one gets an event
 * every EVENT_INTERVAL_MS for `x-stream-ms` milliseconds.
 */
async function startSlowUpstream(): Promise<{ url: string; close(): Promise<void> }> {
  const server: Server = createServer((req: IncomingMessage, res: ServerResponse) => {
    const chunks: Buffer[] = [];
    req.on('data', (chunk: Buffer) => chunks.push(chunk));
    req.on('end', () => {
      const body = JSON.parse(Buffer.concat(chunks).toString('utf8')) as { stream?: boolean };
      if (!body.stream) {
        res.writeHead(200, { 'content-type': 'application/json' });
        res.end(
          JSON.stringify({
            id: 'msg_quick',
            type: 'message',
            role: 'assistant',
            model: 'claude-sonnet-4-5',
            content: [{ type: 'text', text: 'hi' }],
            stop_reason: 'end_turn',
            usage: { input_tokens: 5, output_tokens: 1 },
          }),
        );
        return;
      }

      res.writeHead(200, { 'content-type': 'text/event-stream' });
      const event = (type: string, data: object) => res.write(`event: ${type}\ndata: ${JSON.stringify({ type, ...data })}\n\n`);
      event('message_start', {
        message: {
          id: 'msg_slow',
          type: 'message',
          role: 'assistant',
          model: 'claude-sonnet-4-5',
          content: [],
          usage: { input_tokens: 5, output_tokens: 0 },
        },
      });
      event('content_block_start', { index: 0, content_block: { type: 'text', text: '' } });
      const endAt = Date.now() + Number(req.headers['x-stream-ms'] ?? 1000);
      const timer = setInterval(() => {
        if (Date.now() < endAt) {
          event('content_block_delta', { index: 0, delta: { type: 'text_delta', text: '.' } });
          return;
        }
        clearInterval(timer);
        event('content_block_stop', { index: 0 });
        event('message_delta', { delta: { stop_reason: 'end_turn' }, usage: { output_tokens: 9 } });
        event('message_stop', {});
        res.end();
      }, EVENT_INTERVAL_MS);
      res.on('close', () => clearInterval(timer));
    });
  });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    close: () => new Promise((resolve) => server.close(() => resolve())),
  };
}

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
  let upstream: Awaited<ReturnType<typeof startSlowUpstream>>;
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
