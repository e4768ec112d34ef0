import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { FAKE_CREDENTIALS, type FakeProvider, startFakeProvider } from '@tokenwise/testkit';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it, vi } from 'vitest';
import { runCli, type ServeProcess, startServe } from './helpers/cli-process.js';

let upstream: FakeProvider;
let dataDir: string;
const servers: ServeProcess[] = [];

beforeAll(async () => {
  upstream = await startFakeProvider();
});

afterAll(async () => {
  await upstream.close();
});

beforeEach(async () => {
  dataDir = await mkdtemp(join(tmpdir(), 'tokenwise-budgets-cli-'));
});

afterEach(async () => {
  for (const server of servers.splice(0)) expect(await server.stop()).toBe(0);
  await rm(dataDir, { recursive: true, force: true });
});

async function callStatus(server: ServeProcess): Promise<number> {
  const response = await fetch(`${server.url}/r/${server.routeToken}/anthropic/v1/messages`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', 'x-api-key': FAKE_CREDENTIALS.anthropicApiKey, 'anthropic-version': '2023-06-01' },
    body: JSON.stringify({ model: 'claude-sonnet-4-5', max_tokens: 16, messages: [{ role: 'user', content: 'say hi' }] }),
  });
  await response.arrayBuffer();
  return response.status;
}

interface ListedBudget {
  id: string;
  name: string;
  action: string;
  state: string;
  spent_usd: number;
}

async function listBudgets(): Promise<ListedBudget[]> {
  const result = await runCli(['budgets', 'list', '--json', '--data-dir', dataDir]);
  expect(result.code).toBe(0);
  return result.stdout
    .split('\n')
    .filter(Boolean)
    .map((line) => JSON.parse(line) as ListedBudget);
}

describe('tokenwise budgets', () => {
  it('creates a blocking budget the proxy enforces', async () => {
    const server = await startServe(['--port', '0', '--data-dir', dataDir, '--upstream', `anthropic=${upstream.url}`]);
    servers.push(server);

    const created = await runCli([
      'budgets',
      'create',
      '--period',
      'day',
      '--amount',
      '0.00001',
      '--block',
      '--name',
      'Tiny',
      '--data-dir',
      dataDir,
    ]);
    expect(created.code).toBe(0);
    const id = created.stdout.trim();
    expect(created.stderr).toContain('Created budget "Tiny": $0.00001 per day, blocking');

    // The amount is less than one call: the first call may use it, the next is refused.
    expect(await callStatus(server)).toBe(200);
    expect(await callStatus(server)).toBe(429);
    await vi.waitFor(async () => expect((await listBudgets())[0]).toMatchObject({ id, name: 'Tiny', action: 'block', state: 'used_up' }), {
      timeout: 15_000,
    });

    const table = await runCli(['budgets', 'list', '--data-dir', dataDir]);
    expect(table.stdout).toMatch(/^ID\s+NAME\s+SCOPE\s+COUNTS\s+SPENT\s+ACTION\s+STATE$/m);
    expect(table.stdout).toContain('api/day');

    const alerts = await runCli(['budgets', 'alerts', '--data-dir', dataDir]);
    expect(alerts.code).toBe(0);

    const deleted = await runCli(['budgets', 'delete', id, '--data-dir', dataDir]);
    expect(deleted.code).toBe(0);
    expect(await listBudgets()).toEqual([]);
  });

  it('names the missing or invalid option', async () => {
    const missing = await runCli(['budgets', 'create', '--amount', '5', '--data-dir', dataDir]);
    expect(missing.code).toBe(2);
    expect(missing.stderr).toContain('missing --period: day, week or month');

    const server = await startServe(['--port', '0', '--data-dir', dataDir]);
    servers.push(server);
    const invalid = await runCli(['budgets', 'create', '--period', 'year', '--amount', '5', '--data-dir', dataDir]);
    expect(invalid.code).toBe(1);
    expect(invalid.stderr).toContain('invalid period "year": expected one of day, week, month');
  });

  it('needs a running server', async () => {
    const result = await runCli(['budgets', 'list', '--data-dir', dataDir]);

    expect(result.code).toBe(1);
    expect(result.stderr).toContain('no Tokenwise server runs for this data directory: start tokenwise serve');
  });
});

describe('budget lists longer than one page', () => {
  /** One more than the API's default page size of 100, so the list needs a second page. */
  const CREATED = 101;

  it('list and alerts follow the cursor', async () => {
    const server = await startServe(['--port', '0', '--data-dir', dataDir, '--upstream', `anthropic=${upstream.url}`]);
    servers.push(server);
    const { api_token: apiToken } = JSON.parse(await readFile(join(dataDir, 'server.json'), 'utf8')) as { api_token: string };
    const api = (path: string, init: RequestInit = {}) =>
      fetch(`${server.url}${path}`, { ...init, headers: { authorization: `Bearer ${apiToken}`, 'content-type': 'application/json' } });
    const created: string[] = [];
    for (let index = 0; index < CREATED; index += 1) {
      // Less than one call, so the next call crosses the threshold and the amount of every budget.
      const response = await api('/api/v1/budgets', {
        method: 'POST',
        body: JSON.stringify({ name: `team ${index}`, period: 'day', amount_usd: 0.000001 }),
      });
      expect(response.status).toBe(201);
      created.push(((await response.json()) as { budget: { id: string } }).budget.id);
    }
    expect(await callStatus(server)).toBe(200);
    // The alert job runs every 10 s and records a threshold and a limit alert per budget.
    await vi.waitFor(
      async () => {
        const alerts = await runCli(['budgets', 'alerts', '--all', '--json', '--data-dir', dataDir]);
        expect(alerts.stdout.trim().split('\n')).toHaveLength(2 * CREATED);
      },
      { timeout: 30_000, interval: 1000 },
    );

    const budgets = await listBudgets();
    const newest = await runCli(['budgets', 'alerts', '--json', '--data-dir', dataDir]);
    const every = await runCli(['budgets', 'alerts', '--all', '--json', '--data-dir', dataDir]);

    expect(budgets.map((budget) => budget.id)).toEqual(created);
    expect(newest.code).toBe(0);
    expect(newest.stdout.trim().split('\n')).toHaveLength(100);
    expect(newest.stderr).toContain('Showing the newest 100 alerts. Pass --all to list every one.');
    const everyIds = every.stdout
      .trim()
      .split('\n')
      .map((line) => (JSON.parse(line) as { id: string }).id);
    expect(new Set(everyIds).size).toBe(2 * CREATED);
    expect(every.stderr).not.toContain('Showing the newest');
  }, 90_000);
});
