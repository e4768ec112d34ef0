import { mkdtemp, readFile, rm, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { CallBodies, CallRecord } from '@tokenwise/core';
import { SqliteStore } from '@tokenwise/storage';
import { type FakeProvider, startFakeProvider } from '@tokenwise/testkit';
import { afterAll, afterEach, beforeAll, describe, expect, it, vi } from 'vitest';
import { FlakyStore } from './helpers/flaky-store.js';
import { anthropicCall, startTestServer, type TestServer } from './helpers/test-server.js';

let upstream: FakeProvider;

beforeAll(async () => {
  upstream = await startFakeProvider();
});

afterAll(async () => {
  await upstream.close();
});

describe('serve', () => {
  let running: TestServer;

  afterEach(async () => {
    await running?.dispose();
  });

  const start = async () => {
    running = await startTestServer({ upstreams: { anthropic: upstream.url } });
    return running;
  };

  async function listCalls(query = ''): Promise<CallRecord[]> {
    const response = await running.api(`/api/v1/calls${query}`);
    expect(response.status).toBe(200);
    return ((await response.json()) as { calls: CallRecord[] }).calls;
  }

  it('answers the health check without a token', async () => {
    const { server } = await start();

    const response = await fetch(`${server.url}/healthz`);

    expect(response.status).toBe(200);
    expect(await response.json()).toEqual({ status: 'ok' });
  });

  it('writes server.json for the CLI, owner-only', async () => {
    const { server, dataDir } = await start();

    const info = JSON.parse(await readFile(join(dataDir, 'server.json'), 'utf8'));
    expect(info).toMatchObject({ url: server.url, pid: process.pid, api_token: server.apiToken });
    expect((await stat(join(dataDir, 'server.json'))).mode & 0o777).toBe(0o600);
    expect((await stat(join(dataDir, 'local-tokens.json'))).mode & 0o777).toBe(0o600);
  });

  it('creates a fresh data directory owner-only', async () => {
    const parent = await mkdtemp(join(tmpdir(), 'tokenwise-parent-'));
    const dataDir = join(parent, 'nested', 'data');
    running = await startTestServer({ dataDir });

    expect((await stat(dataDir)).mode & 0o777).toBe(0o700);
    await running.dispose();
    await rm(parent, { recursive: true, force: true });
  });

  it('removes server.json on close', async () => {
    const { dataDir } = await start();
    await running.server.close();

    await expect(stat(join(dataDir, 'server.json'))).rejects.toMatchObject({ code: 'ENOENT' });
  });

  it('refuses a second server on one data directory', async () => {
    const { dataDir, server } = await start();

    await expect(startTestServer({ dataDir })).rejects.toThrow(`already runs on ${server.url}`);
  });

  it('keeps the route token across restarts', async () => {
    const dataDir = await mkdtemp(join(tmpdir(), 'tokenwise-restart-'));
    const first = await startTestServer({ dataDir });
    const firstToken = first.server.routeToken;
    expect(first.server.firstStart).toBe(true);
    await first.dispose();

    running = await startTestServer({ dataDir });

    expect(running.server.routeToken).toBe(firstToken);
    expect(running.server.firstStart).toBe(false);
    await running.dispose();
    await rm(dataDir, { recursive: true, force: true });
  });

  it('keeps the token plaintext out of the database', async () => {
    const { server, dataDir } = await start();
    await running.server.close();

    const database = await readFile(join(dataDir, 'tokenwise.db'));
    expect(database.includes(server.routeToken)).toBe(false);
    expect(database.includes(server.apiToken)).toBe(false);
  });

  describe('API auth', () => {
    it('rejects a missing token with a JSON 401', async () => {
      const { server } = await start();

      const response = await fetch(`${server.url}/api/v1/calls`);

      expect(response.status).toBe(401);
      expect(response.headers.get('www-authenticate')).toBe('Bearer');
      expect(await response.json()).toEqual({
        error: { code: 'unauthorized', message: 'missing or invalid API token: send Authorization: Bearer <api token>' },
      });
    });

    it('rejects a wrong token and a route token', async () => {
      const { server } = await start();

      for (const token of ['twa_wrong', server.routeToken, `${server.apiToken}x`]) {
        const response = await fetch(`${server.url}/api/v1/calls`, { headers: { authorization: `Bearer ${token}` } });
        expect(response.status).toBe(401);
        expect(await response.text()).not.toContain(token);
      }
    });
  });

  describe('calls', () => {
    it('lists a proxied call and logs one line for it', async () => {
      const { server, logs } = await start();

      const response = await anthropicCall(server.url, server.routeToken);
      expect(response.status).toBe(200);
      await response.arrayBuffer();

      await vi.waitFor(async () => expect(await listCalls()).toHaveLength(1));
      const [call] = await listCalls();
      expect(call).toMatchObject({ route: 'anthropic', provider: 'anthropic', method: 'POST', path: '/v1/messages', http_status: 200 });

      const callLines = logs.lines().filter((line) => line.msg === 'call');
      expect(callLines).toHaveLength(1);
      expect(callLines[0]).toMatchObject({ call_id: call!.id, route: 'anthropic', status: call!.status });
    });

    it('reads one call with its bodies by id', async () => {
      const { server } = await start();
      await (await anthropicCall(server.url, server.routeToken)).arrayBuffer();
      await vi.waitFor(async () => expect(await listCalls()).toHaveLength(1));
      const [listed] = await listCalls();

      const found = await running.api(`/api/v1/calls/${listed!.id}`);
      expect(found.status).toBe(200);
      const body = (await found.json()) as { call: CallRecord; bodies: CallBodies | null };
      expect(body.call).toStrictEqual(listed);
      expect(body.bodies?.request?.text).toContain('say hi');
      expect(body.bodies?.request_headers).not.toHaveProperty('x-api-key');

      const missing = await running.api('/api/v1/calls/no-such-call');
      expect(missing.status).toBe(404);
      expect(await missing.json()).toEqual({ error: { code: 'not_found', message: 'no call with id "no-such-call"' } });
    });

    it('lists newest first with limit and since', async () => {
      const { server } = await start();
      for (let index = 0; index < 3; index += 1) await (await anthropicCall(server.url, server.routeToken)).arrayBuffer();
      await vi.waitFor(async () => expect(await listCalls()).toHaveLength(3));

      const all = await listCalls();
      const startTimes = all.map((call) => Date.parse(call.started_at));
      expect(startTimes).toEqual([...startTimes].sort((a, b) => b - a));
      expect(await listCalls('?limit=2')).toEqual(all.slice(0, 2));
      expect(await listCalls('?since=1h')).toHaveLength(3);
      expect(await listCalls(`?since=${encodeURIComponent(new Date(Date.now() + 60_000).toISOString())}`)).toEqual([]);
    });

    it('pages forward with after', async () => {
      const { server } = await start();
      await (await anthropicCall(server.url, server.routeToken)).arrayBuffer();
      await vi.waitFor(async () => expect(await listCalls()).toHaveLength(1));

      const first = (await (await running.api('/api/v1/calls?after=0')).json()) as { calls: CallRecord[]; next_after: string };
      expect(first.calls).toHaveLength(1);
      await (await anthropicCall(server.url, server.routeToken)).arrayBuffer();
      await vi.waitFor(async () => expect(await listCalls()).toHaveLength(2));

      const next = (await (await running.api(`/api/v1/calls?after=${first.next_after}`)).json()) as { calls: CallRecord[] };
      expect(next.calls).toHaveLength(1);
      expect(next.calls[0]!.id).not.toBe(first.calls[0]!.id);
    });

    it.each([
      ['?limit=0', 'invalid limit "0": expected a whole number from 1 to 1000'],
      ['?limit=abc', 'invalid limit "abc": expected a whole number from 1 to 1000'],
      ['?since=yesterday', 'invalid since "yesterday"'],
      ['?after=xyz', 'invalid cursor "xyz"'],
    ])('rejects %s with a 400 naming the value', async (query, message) => {
      await start();

      const response = await running.api(`/api/v1/calls${query}`);

      expect(response.status).toBe(400);
      const body = (await response.json()) as { error: { code: string; message: string } };
      expect(body.error.code).toBe('invalid_argument');
      expect(body.error.message).toContain(message);
    });

    it('answers unknown endpoints and methods with JSON', async () => {
      await start();

      const unknown = await running.api('/api/v1/nothing');
      expect(unknown.status).toBe(404);
      const wrongMethod = await running.api('/api/v1/calls', { method: 'DELETE' });
      expect(wrongMethod.status).toBe(405);
      expect(await wrongMethod.json()).toEqual({
        error: { code: 'method_not_allowed', message: 'DELETE is not allowed on /api/v1/calls' },
      });
    });
  });

  describe('route tokens', () => {
    it('creates a token that the proxy accepts', async () => {
      const { server } = await start();

      const response = await running.api('/api/v1/route-tokens', { method: 'POST', body: JSON.stringify({ name: 'laptop' }) });

      expect(response.status).toBe(201);
      const created = (await response.json()) as { id: string; name: string; token: string };
      expect(created.name).toBe('laptop');
      expect(created.token).toMatch(/^twr_[A-Za-z0-9_-]{43}$/);
      expect((await anthropicCall(server.url, created.token)).status).toBe(200);
    });

    it('lists the tokens of the workspace without secrets', async () => {
      const { server } = await start();
      const created = (await (await running.api('/api/v1/route-tokens', { method: 'POST', body: '{"name":"laptop"}' })).json()) as {
        id: string;
        token: string;
        device_id: string;
      };
      await running.api(`/api/v1/route-tokens/${created.id}`, { method: 'DELETE' });

      const response = await running.api('/api/v1/route-tokens');

      expect(response.status).toBe(200);
      const text = await response.text();
      const { route_tokens: tokens } = JSON.parse(text) as { route_tokens: Record<string, unknown>[] };
      expect(tokens.map((token) => token.name)).toEqual(['local', 'laptop']);
      expect(tokens[1]).toEqual({
        id: created.id,
        name: 'laptop',
        device_id: created.device_id,
        created_at: expect.any(String),
        last_used_at: null,
        revoked_at: expect.any(String),
      });
      expect(text).not.toContain(created.token);
      expect(text).not.toContain(server.routeToken);
      expect(text).not.toContain('sha256');
    });

    it('rejects an invalid token name', async () => {
      await start();

      const response = await running.api('/api/v1/route-tokens', { method: 'POST', body: JSON.stringify({ name: 42 }) });

      expect(response.status).toBe(400);
      expect(((await response.json()) as { error: { message: string } }).error.message).toContain('invalid route token name');
    });

    it('stops proxying for a token as soon as it is revoked', async () => {
      const { server } = await start();
      const created = (await (await running.api('/api/v1/route-tokens', { method: 'POST', body: '{}' })).json()) as {
        id: string;
        token: string;
      };
      expect((await anthropicCall(server.url, created.token)).status).toBe(200);

      const revoked = await running.api(`/api/v1/route-tokens/${created.id}`, { method: 'DELETE' });
      expect(revoked.status).toBe(200);

      const refused = await anthropicCall(server.url, created.token);
      expect(refused.status).toBe(401);
      expect(await refused.text()).toContain('invalid route');
      expect((await running.api(`/api/v1/route-tokens/${created.id}`, { method: 'DELETE' })).status).toBe(404);
    });
  });

  describe('call stream', () => {
    it('sends a call made after connecting and resumes from Last-Event-ID', async () => {
      const { server } = await start();
      const controller = new AbortController();
      const response = await running.api('/api/v1/calls/stream', { signal: controller.signal });
      expect(response.status).toBe(200);
      expect(response.headers.get('content-type')).toContain('text/event-stream');
      const reader = readEvents(response);
      expect((await reader.next()).event).toBe('ready');

      await (await anthropicCall(server.url, server.routeToken)).arrayBuffer();
      const event = await reader.next();
      expect(event.event).toBe('call');
      const record = JSON.parse(event.data) as CallRecord;
      expect(record.route).toBe('anthropic');
      controller.abort();

      await (await anthropicCall(server.url, server.routeToken)).arrayBuffer();
      await vi.waitFor(async () => expect(await listCalls()).toHaveLength(2));

      const resumeController = new AbortController();
      const resumed = await running.api('/api/v1/calls/stream', {
        signal: resumeController.signal,
        headers: { 'last-event-id': event.id },
      });
      const missed = await readEvents(resumed).next();
      const missedRecord = JSON.parse(missed.data) as CallRecord;
      expect(missedRecord.id).not.toBe(record.id);
      resumeController.abort();
    });

    // Regression: a new stream carried no position until its first call, so a client that lost the
    // connection before then reconnected without Last-Event-ID and missed the calls stored meanwhile.
    it('opens with a ready event at the latest cursor', async () => {
      const { server } = await start();
      await (await anthropicCall(server.url, server.routeToken)).arrayBuffer();
      await vi.waitFor(async () => expect(await listCalls()).toHaveLength(1));
      const [first] = await listCalls();

      const controller = new AbortController();
      const ready = await readEvents(await running.api('/api/v1/calls/stream', { signal: controller.signal })).next();
      controller.abort();
      expect(ready.event).toBe('ready');
      expect(ready.id).toMatch(/^\d+$/);

      await (await anthropicCall(server.url, server.routeToken)).arrayBuffer();
      await vi.waitFor(async () => expect(await listCalls()).toHaveLength(2));

      const resumeController = new AbortController();
      const resumed = await running.api('/api/v1/calls/stream', {
        signal: resumeController.signal,
        headers: { 'last-event-id': ready.id },
      });
      const missed = await readEvents(resumed).next();
      resumeController.abort();
      expect(missed.event).toBe('call');
      expect((JSON.parse(missed.data) as CallRecord).id).not.toBe(first!.id);
    });

    it('opens an empty store at cursor 0', async () => {
      await start();
      const controller = new AbortController();
      const ready = await readEvents(await running.api('/api/v1/calls/stream', { signal: controller.signal })).next();
      controller.abort();

      expect(ready).toMatchObject({ event: 'ready', id: '0' });
    });
  });

  describe('a failing store', () => {
    it('keeps calls flowing and counts the failures', async () => {
      const dataDir = await mkdtemp(join(tmpdir(), 'tokenwise-flaky-'));
      const store = new FlakyStore(join(dataDir, 'tokenwise.db'));
      running = await startTestServer({ dataDir, store, upstreams: { anthropic: upstream.url } });
      store.failAll = true;

      for (let index = 0; index < 3; index += 1) {
        const response = await anthropicCall(running.server.url, running.server.routeToken);
        expect(response.status).toBe(200);
        await response.arrayBuffer();
      }

      await vi.waitFor(() => expect(running.server.stats().sink.storeFailures).toBeGreaterThan(0));
      expect(running.server.stats().proxy.sinkFailures).toBe(0);
      expect(running.logs.text()).toContain('storing a batch of call records failed');
      await running.dispose();
      await rm(dataDir, { recursive: true, force: true });
    });
  });

  it('stores calls still queued when it closes', async () => {
    const dataDir = await mkdtemp(join(tmpdir(), 'tokenwise-flush-'));
    running = await startTestServer({ dataDir, upstreams: { anthropic: upstream.url }, sink: { flushIntervalMs: 3_600_000 } });
    await (await anthropicCall(running.server.url, running.server.routeToken)).arrayBuffer();
    await vi.waitFor(() => expect(running.server.stats().sink.queued).toBe(1));

    await running.server.close();

    const store = new SqliteStore(join(dataDir, 'tokenwise.db'));
    expect(await store.listCalls({ limit: 10 })).toHaveLength(1);
    await store.close();
    await rm(dataDir, { recursive: true, force: true });
  });
});

interface SseEvent {
  id: string;
  event: string;
  data: string;
}

/** Minimal SSE reader for the tests: yields events with a `data` field, skipping comments. */
function readEvents(response: Response) {
  const reader = response.body!.pipeThrough(new TextDecoderStream()).getReader();
  let buffer = '';
  return {
    async next(): Promise<SseEvent> {
      for (;;) {
        const end = buffer.indexOf('\n\n');
        if (end !== -1) {
          const block = buffer.slice(0, end);
          buffer = buffer.slice(end + 2);
          const event: SseEvent = { id: '', event: 'message', data: '' };
          for (const line of block.split('\n')) {
            if (line.startsWith('id: ')) event.id = line.slice(4);
            else if (line.startsWith('event: ')) event.event = line.slice(7);
            else if (line.startsWith('data: ')) event.data += line.slice(6);
          }
          if (event.data !== '') return event;
          continue;
        }
        const { value, done } = await reader.read();
        if (done) throw new Error('event stream ended');
        buffer += value;
      }
    },
  };
}
