import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { PostgresStore, SqliteStore, type Store } from '@tokenwise/storage';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { createTestSchema, describeWithPostgres, type TestSchema } from '../../storage/test/postgres-test-database.js';
import { runCli } from './helpers/cli-process.js';

let dataDir: string;

beforeEach(async () => {
  dataDir = await mkdtemp(join(tmpdir(), 'tokenwise-seed-'));
});

afterEach(async () => {
  await rm(dataDir, { recursive: true, force: true });
});

interface SeedResult {
  calls: number;
  sessions: number;
  devices: number;
  days: number;
  workspace_id: string;
}

async function seed(args: string[]): Promise<SeedResult> {
  const result = await runCli(['dev', 'seed', '--json', ...args]);
  expect(result.stderr).toBe('');
  expect(result.code).toBe(0);
  return JSON.parse(result.stdout) as SeedResult;
}

/** Read every seeded call of the workspace back, with the store's own queries. */
async function readBack(store: Store, workspaceId: string, days: number) {
  const to = new Date(Date.now() + 1000);
  const from = new Date(to.getTime() - days * 86_400_000 - 60_000);
  const filter = { workspaceId, from, to };
  const overview = await store.overview({ filter, bucketMs: 86_400_000, groupBy: 'tool', top: 5 });
  const page = await store.searchCalls({ workspaceId }, { limit: 10_000 });
  return { overview, calls: page.calls.map((call) => call.record), from, to };
}

describe('dev seed into SQLite', () => {
  it('adds plausible calls across tools, models, devices and sessions', async () => {
    const result = await seed(['--calls', '3000', '--days', '3', '--data-dir', dataDir]);
    expect(result.calls).toBe(3000);
    expect(result.devices).toBe(4);
    expect(result.sessions).toBeGreaterThan(20);

    const store = new SqliteStore(join(dataDir, 'tokenwise.db'));
    try {
      const { overview, calls, from, to } = await readBack(store, result.workspace_id, 3);
      expect(calls).toHaveLength(3000);
      expect(overview.totals.calls).toBe(3000);
      expect(new Set(calls.map((call) => call.session_id).filter(Boolean)).size).toBe(result.sessions);

      const tools = new Set(calls.map((call) => call.tool));
      for (const tool of ['claude-code', 'codex', 'gemini-cli', 'anthropic-sdk', 'openai-sdk']) expect(tools).toContain(tool);
      expect(new Set(calls.map((call) => call.model_requested)).size).toBeGreaterThanOrEqual(6);
      expect(new Set(calls.map((call) => call.device_id)).size).toBe(4);
      expect(new Set(calls.map((call) => call.status))).toEqual(new Set(['success', 'error', 'aborted']));

      for (const call of calls) {
        const started = Date.parse(call.started_at);
        expect(started).toBeGreaterThanOrEqual(from.getTime());
        expect(started).toBeLessThanOrEqual(to.getTime());
      }

      // Real API spend and subscription usage both appear, and every priced call has a price.
      expect(overview.totals.apiUsd).toBeGreaterThan(0);
      expect(overview.totals.apiEquivalentUsd).toBeGreaterThan(0);
      expect(overview.totals.unpricedCalls).toBe(0);
      const apiUsd = calls
        .filter((call) => call.cost.basis === 'exact' || call.cost.basis === 'partial')
        .reduce((sum, call) => sum + (call.cost.usd ?? 0), 0);
      expect(overview.totals.apiUsd).toBeCloseTo(apiUsd, 6);
      expect(overview.totals.cacheReadTokens).toBeGreaterThan(overview.totals.inputTokens / 2);

      // The bodies read as a conversation and prompt search finds the task of a session.
      const claude = calls.find((call) => call.tool === 'claude-code' && call.status === 'success')!;
      const stored = await store.getCall(claude.id);
      const request = JSON.parse(stored!.bodies!.request!.text!) as { messages: { content: { type: string; text?: string }[] }[] };
      const task = request.messages[0]!.content[0]!.text!;
      expect(task.length).toBeGreaterThan(5);
      expect(stored!.bodies!.request_headers).not.toHaveProperty('x-api-key');
      expect(stored!.bodies!.request_headers).not.toHaveProperty('authorization');
      const found = await store.searchCalls({ workspaceId: result.workspace_id, promptText: task.toUpperCase() }, { limit: 10_000 });
      expect(found.calls.map((call) => call.record.id)).toContain(claude.id);

      // Rate-limit headers are there per device, as providers send them.
      const rateLimits = await store.latestRateLimits(result.workspace_id);
      const headerNames = rateLimits.flatMap((snapshot) => Object.keys(snapshot.headers));
      expect(headerNames.some((name) => name.startsWith('anthropic-ratelimit-'))).toBe(true);
      expect(headerNames.some((name) => name.startsWith('x-codex-'))).toBe(true);

      // Each device was paired before its first call and was last seen at its newest one.
      for (const device of await store.listDevices(result.workspace_id)) {
        const starts = calls.filter((call) => call.device_id === device.id).map((call) => Date.parse(call.started_at));
        expect(Date.parse(device.createdAt)).toBeLessThanOrEqual(Math.min(...starts));
        expect(device.lastSeenAt).not.toBeNull();
        expect(Date.parse(device.lastSeenAt!)).toBe(Math.max(...starts));
      }
    } finally {
      await store.close();
    }
  });

  it('adds to the same workspace and devices when run again', async () => {
    const first = await seed(['--calls', '200', '--data-dir', dataDir]);
    const second = await seed(['--calls', '300', '--data-dir', dataDir, '--seed', '7']);
    expect(second.workspace_id).toBe(first.workspace_id);

    const store = new SqliteStore(join(dataDir, 'tokenwise.db'));
    try {
      const { calls } = await readBack(store, first.workspace_id, 30);
      expect(calls).toHaveLength(500);
      expect(await store.listDevices(first.workspace_id)).toHaveLength(4);
    } finally {
      await store.close();
    }
  });

  it('stores no bodies for a workspace in privacy mode', async () => {
    const setup = new SqliteStore(join(dataDir, 'tokenwise.db'));
    const workspace = await setup.createWorkspace({ name: 'private' });
    await setup.updateWorkspace(workspace.id, { keepBodies: false });
    await setup.close();

    const result = await runCli(['dev', 'seed', '--calls', '50', '--data-dir', dataDir]);
    expect(result.code).toBe(0);
    expect(result.stdout).toContain('privacy mode');

    const store = new SqliteStore(join(dataDir, 'tokenwise.db'));
    try {
      const { calls } = await readBack(store, workspace.id, 30);
      expect(calls).toHaveLength(50);
      for (const call of calls.slice(0, 10)) expect((await store.getCall(call.id))!.bodies).toBeNull();
      expect(await store.hasPromptText(workspace.id)).toBe(false);
    } finally {
      await store.close();
    }
  });

  it('rejects invalid options with the value and the fix', async () => {
    const cases: [string[], RegExp][] = [
      [[], /missing --calls: pass how many calls to add/],
      [['--calls', '0'], /invalid --calls "0": expected a whole number from 1 to 10000000/],
      [['--calls', 'many'], /invalid --calls "many"/],
      [['--calls', '10', '--days', '-1'], /invalid --days "-1": expected a whole number from 1 to 3650/],
      [['--calls', '10', '--data-dir', dataDir, '--database-url', 'postgres://127.0.0.1/x'], /pass one of them/],
      [['--calls', '10', '--data-dir', dataDir, '--workspace', 'nope'], /invalid --workspace "nope": no workspace with this id/],
    ];
    for (const [args, message] of cases) {
      const result = await runCli(['dev', 'seed', ...args]);
      expect(result.code, args.join(' ')).toBe(2);
      expect(result.stderr).toMatch(message);
    }
  });
});

describeWithPostgres('dev seed into PostgreSQL', () => {
  let schema: TestSchema;

  beforeEach(async () => {
    schema = await createTestSchema();
  });

  afterEach(async () => {
    await schema.drop();
  });

  it('adds the calls through --database-url', async () => {
    const result = await seed(['--calls', '600', '--days', '2', '--database-url', schema.url]);
    const store = await PostgresStore.open(schema.url);
    try {
      const { overview, calls } = await readBack(store, result.workspace_id, 2);
      expect(calls).toHaveLength(600);
      expect(overview.totals.calls).toBe(600);
      expect(overview.totals.sessions).toBe(result.sessions);
      expect(await store.hasPromptText(result.workspace_id)).toBe(true);
    } finally {
      await store.close();
    }
  });
});
