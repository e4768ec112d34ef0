import type { CallRecord } from '@tokenwise/core';
import { type FakeProvider, startFakeProvider } from '@tokenwise/testkit';
import { afterAll, afterEach, beforeAll, beforeEach, expect, it, vi } from 'vitest';
import { postgresMigrations } from '../../storage/src/postgres-migrations.js';
import { createTestSchema, describeWithPostgres, type TestSchema } from '../../storage/test/postgres-test-database.js';
import { runCli, type ServeRoleProcess, startServeRole } from './helpers/cli-process.js';

/** Route tokens are cached this long in each proxy; revocation must reach every proxy within it. */
const TOKEN_CACHE_SECONDS = 2;
/** Margin over the cache time for a slow or busy machine; the bound itself is what the test checks. */
const MARGIN_MS = 10_000;

async function callAnthropic(proxyUrl: string, routeToken: string): Promise<Response> {
  const response = await fetch(`${proxyUrl}/r/${routeToken}/anthropic/v1/messages`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', 'x-api-key': 'sk-ant-api03-FAKE-several', 'anthropic-version': '2023-06-01' },
    body: JSON.stringify({ model: 'claude-sonnet-4-5', max_tokens: 16, messages: [{ role: 'user', content: 'say hi' }] }),
  });
  await response.arrayBuffer();
  return response;
}

describeWithPostgres('three proxy processes and one app on PostgreSQL', () => {
  let upstream: FakeProvider;
  let schema: TestSchema;
  let proxies: ServeRoleProcess[];
  let app: ServeRoleProcess;
  let apiToken: string;

  beforeAll(async () => {
    upstream = await startFakeProvider();
  });

  afterAll(async () => {
    await upstream.close();
  });

  beforeEach(async () => {
    schema = await createTestSchema();
    const common = ['--database-url', schema.url, '--upstream', `anthropic=${upstream.url}`];
    // All four start at once on an empty schema: migrations and first-start setup must cope.
    [app, ...proxies] = await Promise.all([
      startServeRole([...common, '--role', 'app']),
      ...[1, 2, 3].map(() => startServeRole([...common, '--role', 'proxy', '--token-cache-seconds', String(TOKEN_CACHE_SECONDS)])),
    ]);
    apiToken = await app.apiToken();
  });

  afterEach(async () => {
    const codes = await Promise.all([app, ...proxies].map((server) => server.stop()));
    expect(codes).toEqual([0, 0, 0, 0]);
    await schema.drop();
  });

  async function api(path: string, init: RequestInit = {}): Promise<Response> {
    return fetch(`${app.url}${path}`, { ...init, headers: { authorization: `Bearer ${apiToken}`, ...init.headers } });
  }

  it('start together with one schema version and one workspace', async () => {
    expect(await schema.query('SELECT version FROM schema_migrations ORDER BY version')).toEqual(
      postgresMigrations.map((migration) => ({ version: migration.version })),
    );
    expect(await schema.query('SELECT id FROM workspaces')).toHaveLength(1);
    for (const server of [app, ...proxies]) {
      expect((await fetch(`${server.url}/readyz`)).status).toBe(200);
    }
  });

  it('record calls through every proxy for the app to list', async () => {
    const created = (await (await api('/api/v1/route-tokens', { method: 'POST', body: '{"name":"team laptop"}' })).json()) as {
      token: string;
    };

    for (const proxy of proxies) expect((await callAnthropic(proxy.url, created.token)).status).toBe(200);

    await vi.waitFor(async () => {
      const result = await runCli(['calls', '--json', '--server', app.url], { TOKENWISE_API_TOKEN: apiToken });
      const records = result.stdout
        .trim()
        .split('\n')
        .filter(Boolean)
        .map((line) => JSON.parse(line) as CallRecord);
      expect(records).toHaveLength(3);
    }, 15_000);
  });

  it('stop a revoked token on every proxy within the token cache time', async () => {
    const created = (await (await api('/api/v1/route-tokens', { method: 'POST', body: '{"name":"lost laptop"}' })).json()) as {
      id: string;
      token: string;
    };
    // Every proxy now has the grant in its cache.
    for (const proxy of proxies) expect((await callAnthropic(proxy.url, created.token)).status).toBe(200);

    expect((await api(`/api/v1/route-tokens/${created.id}`, { method: 'DELETE' })).status).toBe(200);

    const boundMs = TOKEN_CACHE_SECONDS * 1000 + MARGIN_MS;
    await Promise.all(
      proxies.map((proxy) =>
        vi.waitFor(async () => expect((await callAnthropic(proxy.url, created.token)).status).toBe(401), {
          timeout: boundMs,
          interval: 200,
        }),
      ),
    );
    const rejected = await fetch(`${proxies[0]!.url}/r/${created.token}/anthropic/v1/messages`, { method: 'POST', body: '{}' });
    expect(((await rejected.json()) as { error: { message: string } }).error.message).toContain('the route token is unknown or revoked');
  });

  it('serve only their own role', async () => {
    expect((await fetch(`${proxies[0]!.url}/api/v1/calls`, { headers: { authorization: `Bearer ${apiToken}` } })).status).toBe(404);
    expect((await callAnthropic(app.url, 'twr_anything')).status).toBe(404);
    expect(proxies[0]!.output()).toContain('Role: proxy');
    expect(app.output()).toContain('Role: app');
  });
});
