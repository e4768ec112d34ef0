import type { CallRecord } from '@tokenwise/core';
import { FAKE_CREDENTIALS, type FakeProvider, startFakeProvider } from '@tokenwise/testkit';
import { afterAll, afterEach, beforeAll, beforeEach, expect, it, vi } from 'vitest';
import { createTestSchema, describeWithPostgres, type TestSchema } from '../../storage/test/postgres-test-database.js';
import { type ServeRoleProcess, startServeRole } from './helpers/cli-process.js';

/** Concurrent callers per proxy process; each calls until its first 429. */
const LOOPS_PER_PROXY = 6;
/** Calls per caller at most, far more than the budget allows, so a gate that never refuses fails the test. */
const MAX_CALLS_PER_LOOP = 40;
/** The budget leaves room for this many calls after the first one. */
const ROOM_IN_CALLS = 10.5;
/** Each proxy reloads budgets every second by default; this gives every proxy time to load the new one. */
const BUDGET_PROPAGATION_MS = 5000;

async function callAnthropic(proxyUrl: string, routeToken: string): Promise<Response> {
  const response = await fetch(`${proxyUrl}/r/${routeToken}/anthropic/v1/messages`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', 'x-api-key': FAKE_CREDENTIALS.anthropicApiKey, 'anthropic-version': '2023-06-01' },
    body: JSON.stringify({ model: 'claude-sonnet-4-5', max_tokens: 16, messages: [{ role: 'user', content: 'say hi' }] }),
  });
  await response.clone().arrayBuffer();
  return response;
}

describeWithPostgres('a blocking budget across three proxy processes', () => {
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
    app = await startServeRole([...common, '--role', 'app']);
    proxies = await Promise.all([1, 2, 3].map(() => startServeRole([...common, '--role', 'proxy'])));
    apiToken = await app.apiToken();
  });

  afterEach(async () => {
    const codes = await Promise.all([app, ...proxies].map((server) => server.stop()));
    expect(codes).toEqual([0, 0, 0, 0]);
    await schema.drop();
  });

  async function api<T>(path: string, init: RequestInit = {}): Promise<T> {
    const response = await fetch(`${app.url}${path}`, {
      ...init,
      headers: { authorization: `Bearer ${apiToken}`, 'content-type': 'application/json', ...init.headers },
    });
    expect(response.ok, `${init.method ?? 'GET'} ${path}: ${response.status}`).toBe(true);
    return (await response.json()) as T;
  }

  async function storedCalls(): Promise<CallRecord[]> {
    return (await api<{ calls: CallRecord[] }>('/api/v1/calls?limit=1000')).calls;
  }

  it('pass the budget by at most one call per process', async () => {
    const { token } = await api<{ token: string }>('/api/v1/route-tokens', { method: 'POST', body: '{"name":"team"}' });
    expect((await callAnthropic(proxies[0]!.url, token)).status).toBe(200);
    await vi.waitFor(async () => expect(await storedCalls()).toHaveLength(1), 15_000);
    const callUsd = (await storedCalls())[0]!.cost.usd!;
    expect(callUsd).toBeGreaterThan(0);

    const amountUsd = callUsd * (1 + ROOM_IN_CALLS);
    const { budget } = await api<{ budget: { id: string } }>('/api/v1/budgets', {
      method: 'POST',
      body: JSON.stringify({ name: 'Team daily', period: 'day', amount_usd: amountUsd, action: 'block' }),
    });
    await new Promise((resolve) => setTimeout(resolve, BUDGET_PROPAGATION_MS));

    const statuses: number[] = [];
    const refusals: string[] = [];
    await Promise.all(
      proxies.flatMap((proxy) =>
        Array.from({ length: LOOPS_PER_PROXY }, async () => {
          for (let call = 0; call < MAX_CALLS_PER_LOOP; call += 1) {
            const response = await callAnthropic(proxy.url, token);
            statuses.push(response.status);
            if (response.status !== 429) continue;
            refusals.push(((await response.json()) as { error: { message: string } }).error.message);
            return;
          }
        }),
      ),
    );

    const admitted = statuses.filter((status) => status === 200).length;
    expect(statuses.filter((status) => status !== 200 && status !== 429)).toEqual([]);
    expect(refusals).toHaveLength(proxies.length * LOOPS_PER_PROXY);
    expect(refusals[0]).toContain('Tokenwise budget "Team daily"');

    await vi.waitFor(async () => expect(await storedCalls()).toHaveLength(admitted + 1), { timeout: 15_000, interval: 200 });
    const { budget: after } = await api<{ budget: { spent_usd: number } }>(`/api/v1/budgets/${budget.id}`);
    expect(after.spent_usd).toBeCloseTo(callUsd * (admitted + 1), 9);
    expect(after.spent_usd).toBeLessThanOrEqual(amountUsd + proxies.length * callUsd + 1e-9);
  });
});
