import { existsSync } from 'node:fs';
import { join } from 'node:path';
import type { CallBodies, CallRecord } from '@tokenwise/core';
import { newestVersion, sqliteMigrations } from '@tokenwise/storage';
import { type FakeProvider, startFakeProvider } from '@tokenwise/testkit';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it, vi } from 'vitest';
import { createTestSchema, describeWithPostgres, type TestSchema } from '../../storage/test/postgres-test-database.js';
import { readSseEvents } from './helpers/sse-events.js';
import { anthropicCall, startTestServer, type TestServer } from './helpers/test-server.js';

let upstream: FakeProvider;

beforeAll(async () => {
  upstream = await startFakeProvider();
});

afterAll(async () => {
  await upstream.close();
});

/** Record fields that differ between two runs of the same call. */
const VOLATILE_FIELDS = ['id', 'started_at', 'workspace_id', 'device_id', 'timing', 'upstream_request_id', 'response_id'];

function stable(record: CallRecord): Record<string, unknown> {
  const copy: Record<string, unknown> = { ...record };
  for (const field of VOLATILE_FIELDS) delete copy[field];
  return copy;
}

async function callsOf(server: TestServer): Promise<CallRecord[]> {
  const response = await server.api('/api/v1/calls');
  expect(response.status).toBe(200);
  return ((await response.json()) as { calls: CallRecord[] }).calls;
}

async function sendCalls(server: TestServer): Promise<void> {
  for (const stream of [false, true]) {
    const response = await anthropicCall(server.server.url, server.server.routeToken, { stream });
    expect(response.status).toBe(200);
    await response.arrayBuffer();
  }
}

describeWithPostgres('serve with PostgreSQL', () => {
  let schema: TestSchema;
  const servers: TestServer[] = [];

  beforeEach(async () => {
    schema = await createTestSchema();
  });

  afterEach(async () => {
    for (const server of servers.splice(0)) await server.dispose();
    await schema.drop();
  });

  async function start(options: Parameters<typeof startTestServer>[0] = {}): Promise<TestServer> {
    const server = await startTestServer({ databaseUrl: schema.url, upstreams: { anthropic: upstream.url }, ...options });
    servers.push(server);
    return server;
  }

  it('stores proxied calls and their bodies in PostgreSQL', async () => {
    const server = await start();
    await sendCalls(server);

    await vi.waitFor(async () => expect(await callsOf(server)).toHaveLength(2));
    const [newest] = await callsOf(server);
    const found = (await (await server.api(`/api/v1/calls/${newest!.id}`)).json()) as { call: CallRecord; bodies: CallBodies };
    expect(found.call).toStrictEqual(newest);
    expect(found.bodies.request?.text).toContain('say hi');
    expect(await schema.query('SELECT id FROM calls')).toHaveLength(2);
    expect(await schema.query('SELECT call_id FROM call_bodies')).toHaveLength(2);
    expect(existsSync(join(server.dataDir, 'tokenwise.db'))).toBe(false);
    expect(server.server.database).toBe(`postgres://postgres@127.0.0.1:5432/test (schema ${schema.name})`);
  });

  it('records the same calls as SQLite', async () => {
    const onPostgres = await start();
    const onSqlite = await startTestServer({ upstreams: { anthropic: upstream.url } });
    servers.push(onSqlite);
    await sendCalls(onPostgres);
    await sendCalls(onSqlite);

    await vi.waitFor(async () => expect(await callsOf(onPostgres)).toHaveLength(2));
    await vi.waitFor(async () => expect(await callsOf(onSqlite)).toHaveLength(2));
    const fromPostgres = (await callsOf(onPostgres)).map(stable);
    const fromSqlite = (await callsOf(onSqlite)).map(stable);
    expect(fromPostgres).toStrictEqual(fromSqlite);
  });

  it('creates one workspace when servers start at once', async () => {
    const started = await Promise.all([start(), start(), start()]);

    expect(await schema.query('SELECT id FROM workspaces')).toHaveLength(1);
    expect(started.filter((server) => server.server.firstStart)).toHaveLength(1);
    for (const server of started) {
      const response = await anthropicCall(server.server.url, started[0]!.server.routeToken);
      await response.arrayBuffer();
      expect(response.status).toBe(200);
    }
  });

  it('refuses a schema newer than the code', async () => {
    const server = await start();
    await server.server.close();
    await schema.query("INSERT INTO schema_migrations (version, name, applied_at) VALUES (99, 'future', '2030-01-01')");

    await expect(startTestServer({ databaseUrl: schema.url })).rejects.toThrow(
      new RegExp(
        `database schema version 99 in schema "tokenwise_test_\\w+" is newer than this Tokenwise supports \\(${newestVersion(sqliteMigrations)}\\); upgrade Tokenwise`,
      ),
    );
  });

  it('reports not ready once a newer version migrates the schema', async () => {
    const server = await start();
    expect((await fetch(`${server.server.url}/readyz`)).status).toBe(200);

    await schema.query("INSERT INTO schema_migrations (version, name, applied_at) VALUES (99, 'next', '2030-01-01')");

    expect((await fetch(`${server.server.url}/readyz`)).status).toBe(503);
    expect((await fetch(`${server.server.url}/healthz`)).status).toBe(200);
  });

  describe('a proxy and an app process', () => {
    it('streams a call stored by the proxy from the app', async () => {
      const app = await start({ role: 'app' });
      const proxy = await start({ role: 'proxy' });
      const controller = new AbortController();
      const stream = await app.api('/api/v1/calls/stream', { signal: controller.signal });
      const events = readSseEvents(stream);
      expect((await events.next()).event).toBe('ready');

      await (await anthropicCall(proxy.server.url, proxy.server.routeToken)).arrayBuffer();

      const event = await events.next();
      const record = JSON.parse(event.data) as CallRecord;
      expect(record.route).toBe('anthropic');
      expect((await callsOf(app)).map((call) => call.id)).toEqual([record.id]);
      controller.abort();
    });

    it('stops a revoked route token on the proxy within the token cache time', async () => {
      const tokenCacheMs = 1_000;
      const app = await start({ role: 'app' });
      const proxy = await start({ role: 'proxy', tokenCacheMs });
      const created = (await (await app.api('/api/v1/route-tokens', { method: 'POST', body: '{"name":"laptop"}' })).json()) as {
        id: string;
        token: string;
      };
      const first = await anthropicCall(proxy.server.url, created.token);
      await first.arrayBuffer();
      expect(first.status).toBe(200);

      expect((await app.api(`/api/v1/route-tokens/${created.id}`, { method: 'DELETE' })).status).toBe(200);

      // The cache time bounds how long the revoked token keeps working; the 10 s margin covers a slow machine.
      await vi.waitFor(
        async () => {
          const response = await anthropicCall(proxy.server.url, created.token);
          await response.arrayBuffer();
          expect(response.status).toBe(401);
        },
        { timeout: tokenCacheMs + 10_000, interval: 100 },
      );
    });

    it('stops a revoked device on the proxy within the token cache time', async () => {
      const tokenCacheMs = 1_000;
      const app = await start({ role: 'app' });
      const proxy = await start({ role: 'proxy', tokenCacheMs });
      const created = (await (await app.api('/api/v1/route-tokens', { method: 'POST', body: '{"name":"laptop"}' })).json()) as {
        token: string;
        device_id: string;
      };
      expect((await anthropicCall(proxy.server.url, created.token)).status).toBe(200);

      expect((await app.api(`/api/v1/devices/${created.device_id}/revoke`, { method: 'POST' })).status).toBe(200);

      // As for a revoked token, the cache time bounds how long the device keeps working; 10 s covers a slow machine.
      await vi.waitFor(
        async () => {
          const response = await anthropicCall(proxy.server.url, created.token);
          await response.arrayBuffer();
          expect(response.status).toBe(401);
        },
        { timeout: tokenCacheMs + 10_000, interval: 100 },
      );
    });

    it('applies privacy mode on the proxy within the token cache time', async () => {
      const tokenCacheMs = 1_000;
      const app = await start({ role: 'app' });
      const proxy = await start({ role: 'proxy', tokenCacheMs });
      await (await anthropicCall(proxy.server.url, proxy.server.routeToken)).arrayBuffer();
      await vi.waitFor(async () => expect(await callsOf(app)).toHaveLength(1));
      const before = (await (await app.api(`/api/v1/calls/${(await callsOf(app))[0]!.id}`)).json()) as { bodies: CallBodies | null };
      expect(before.bodies?.request?.text).toContain('say hi');

      const me = (await (await app.api('/api/v1/me')).json()) as { workspaces: { id: string }[] };
      const changed = await app.api(`/api/v1/workspaces/${me.workspaces[0]!.id}`, {
        method: 'PATCH',
        headers: { 'content-type': 'application/json' },
        body: '{"privacy_mode": true}',
      });
      expect(changed.status).toBe(200);

      await vi.waitFor(
        async () => {
          const response = await anthropicCall(proxy.server.url, proxy.server.routeToken);
          await response.arrayBuffer();
          let newest: CallRecord | undefined;
          await vi.waitFor(async () => {
            newest = (await callsOf(app))[0];
            expect(newest).toBeDefined();
          });
          const detail = (await (await app.api(`/api/v1/calls/${newest!.id}`)).json()) as { bodies: CallBodies | null };
          expect(detail.bodies).toBeNull();
        },
        { timeout: tokenCacheMs + 10_000, interval: 200 },
      );
    });
  });
});
