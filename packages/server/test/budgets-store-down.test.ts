import { type FakeProvider, startFakeProvider } from '@tokenwise/testkit';
import pg from 'pg';
import { afterAll, afterEach, beforeAll, describe, expect, it, vi } from 'vitest';
import { withSearchPath } from '../../storage/test/postgres-test-database.js';
import { type PrivatePostgres, privatePostgresUnavailable, startPrivatePostgres } from './helpers/private-postgres.js';
import { anthropicCall, startTestServer, type TestServer } from './helpers/test-server.js';

/** A lease counts for two thirds of this on the proxy's side; the tests wait past that. */
const LEASE_TTL_MS = 900;

const noPrivatePostgres = privatePostgresUnavailable();
const postgresRequired = process.env.TOKENWISE_POSTGRES === 'required';
if (noPrivatePostgres !== null && !postgresRequired) console.warn(`skipping "budgets while the store is down": ${noPrivatePostgres}`);

describe.skipIf(noPrivatePostgres !== null && !postgresRequired)('budgets while the store is down', () => {
  let postgres: PrivatePostgres;
  let upstream: FakeProvider;
  const servers: TestServer[] = [];
  let schemaNumber = 0;

  beforeAll(async () => {
    upstream = await startFakeProvider();
    postgres = await startPrivatePostgres();
  });

  afterAll(async () => {
    await upstream?.close();
    await postgres?.destroy();
  });

  afterEach(async () => {
    // A test that failed while the cluster was stopped leaves it stopped; the server needs it to stop cleanly.
    await postgres.start().catch(() => undefined);
    for (const server of servers.splice(0)) await server.dispose();
  });

  /** Start a server on a schema of its own in the private cluster, with one blocking budget far from spent. */
  async function startWithBudget(): Promise<TestServer> {
    schemaNumber += 1;
    const schema = `budgets_down_${schemaNumber}`;
    const client = new pg.Client({ connectionString: postgres.url });
    await client.connect();
    await client.query(`CREATE SCHEMA ${schema}`);
    await client.end();

    const server = await startTestServer({
      databaseUrl: withSearchPath(postgres.url, schema),
      upstreams: { anthropic: upstream.url },
      tokenCacheMs: 200,
      sink: { flushIntervalMs: 20, maxRetryDelayMs: 300 },
      budgetTimings: { refreshIntervalMs: 100, leaseTtlMs: LEASE_TTL_MS, leaseWaitMs: 300 },
    });
    servers.push(server);
    const created = await server.api('/api/v1/budgets', {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ name: 'Guard', period: 'day', amount_usd: 100, action: 'block' }),
    });
    expect(created.status).toBe(201);
    return server;
  }

  async function call(server: TestServer): Promise<Response> {
    const response = await anthropicCall(server.server.url, server.server.routeToken);
    await response.clone().arrayBuffer();
    return response;
  }

  async function waitPastLease(): Promise<void> {
    await new Promise((resolve) => setTimeout(resolve, LEASE_TTL_MS + 300));
  }

  it('lets calls through with a warning by default', async () => {
    const server = await startWithBudget();
    expect((await call(server)).status).toBe(200);

    await postgres.stop();
    await waitPastLease();

    expect((await call(server)).status).toBe(200);
    expect(server.logs.text()).toContain('budgets cannot be checked because the store is unreachable; calls go through (fail-open)');
  });

  it('refuses calls in a fail-closed workspace', async () => {
    const server = await startWithBudget();
    const { workspaces } = (await (await server.api('/api/v1/workspaces')).json()) as { workspaces: { id: string }[] };
    const changed = await server.api(`/api/v1/workspaces/${workspaces[0]!.id}`, {
      method: 'PATCH',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ budgets_fail_closed: true }),
    });
    expect(((await changed.json()) as { workspace: { budgets_fail_closed: boolean } }).workspace.budgets_fail_closed).toBe(true);
    expect((await call(server)).status).toBe(200);

    await postgres.stop();
    await waitPastLease();

    const refused = await call(server);
    expect(refused.status).toBe(503);
    const body = (await refused.json()) as { type: string; error: { type: string; message: string } };
    expect(body.error.type).toBe('overloaded_error');
    expect(body.error.message).toContain('refuses calls then (fail-closed)');

    await postgres.start();
    await vi.waitFor(async () => expect((await call(server)).status).toBe(200), { timeout: 15_000, interval: 200 });
  });
});
