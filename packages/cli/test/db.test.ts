import { createHash } from 'node:crypto';
import { mkdtemp, readdir, rm, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { CallRecord } from '@tokenwise/core';
import { type CopyReport, newestVersion, PostgresStore, SqliteStore, sqliteMigrations } from '@tokenwise/storage';
import { type FakeProvider, startFakeProvider } from '@tokenwise/testkit';
import Database from 'better-sqlite3';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { createTestSchema, describeWithPostgres, type TestSchema } from '../../storage/test/postgres-test-database.js';
import { fullRecord, recordSeries, sampleBodies } from '../../storage/test/sample-calls.js';
import { runCli, startServe } from './helpers/cli-process.js';

let dataDir: string;
/** The schema versions of this code, as `db migrate` lists them. */
const VERSIONS = sqliteMigrations
  .map((migration) => migration.version)
  .sort((a, b) => a - b)
  .join(', ');
const NEWEST = newestVersion(sqliteMigrations);

beforeEach(async () => {
  dataDir = await mkdtemp(join(tmpdir(), 'tokenwise-db-'));
});

afterEach(async () => {
  await rm(dataDir, { recursive: true, force: true });
});

function sha256(text: string): string {
  return createHash('sha256').update(text).digest('hex');
}

/** Fill the data directory's SQLite database as a used installation looks: a workspace, tokens, settings, calls with costs and bodies. */
async function fillSqlite(callCount: number): Promise<CallRecord[]> {
  const store = new SqliteStore(join(dataDir, 'tokenwise.db'));
  const workspace = await store.createWorkspace({ name: 'local' });
  const device = await store.createDevice({ workspaceId: workspace.id, name: 'laptop' });
  const routeToken = await store.createRouteToken({
    workspaceId: workspace.id,
    deviceId: device.id,
    name: 'local',
    tokenSha256: sha256('r'),
  });
  await store.revokeRouteToken(routeToken.id);
  await store.createRouteToken({ workspaceId: workspace.id, deviceId: null, name: 'cli', tokenSha256: sha256('r2') });
  await store.createApiToken({ workspaceId: workspace.id, name: 'local owner', tokenSha256: sha256('a') });
  await store.setSetting('local_workspace_id', workspace.id);
  const user = await store.createUser({ email: 'owner@example.com', name: 'Owner', passwordHash: 'scrypt$test' });
  await store.addMembership({ workspaceId: workspace.id, userId: user.id, role: 'owner' });

  const records = [
    fullRecord({
      workspace_id: workspace.id,
      device_id: device.id,
      timing: { ttft_ms: 812.5, total_ms: 4210, headers_ms: 301, model_load_ms: 41.5, prompt_eval_ms: 130, eval_ms: 0.001 },
    }),
    ...recordSeries(callCount - 1).map((record, index) => ({
      ...record,
      usage: { ...record.usage, input_tokens: 1000 + index, output_tokens: 10 * index },
      cost: { ...record.cost, usd: 0.001 * (index + 1), basis: 'exact' as const },
    })),
  ];
  await store.insertCalls(records.map((record, index) => ({ record, bodies: index % 2 === 0 ? sampleBodies() : null })));
  await fillReportTables(store, workspace.id, user.id, records[0]!);
  await store.close();
  return records;
}

/** One row in each table of the insights email and the LLM judge. */
async function fillReportTables(store: SqliteStore, workspaceId: string, userId: string, judged: CallRecord): Promise<void> {
  const now = new Date('2026-12-07T00:00:00.000Z');
  await store.setInsightsEmailFrequency(workspaceId, 'daily', userId);
  await store.setInsightsEmailPreference(workspaceId, userId, 'weekly');
  const send = { workspaceId, userId, frequency: 'weekly' as const, periodStart: '2026-11-30T00:00:00.000Z' };
  await store.claimInsightsEmailSend({ ...send, periodEnd: now.toISOString(), now, leaseMs: 60_000, maxAttempts: 3 });
  await store.finishInsightsEmailSend(send, { status: 'sent', messageId: '<m@test>', error: null, now });
  await store.saveJudgeSettings({
    workspaceId,
    enabled: true,
    route: 'anthropic',
    model: 'claude-haiku-4-5',
    rubric: 'Answers the question.',
    sampleRate: 0.5,
    passScore: 6,
    deviceId: null,
    scanFromMs: now.getTime(),
    updatedBy: userId,
  });
  const callStartedAtMs = Date.parse(judged.started_at);
  await store.claimJudgeScore({ callId: judged.id, workspaceId, callStartedAtMs, route: 'anthropic', model: 'm', now, leaseMs: 1000 });
  await store.finishJudgeScore(judged.id, { status: 'scored', score: 7.5, reason: 'fine', responseId: 'msg_1', error: null, now });
}

describe('db migrate with SQLite', () => {
  it('creates the schema once', async () => {
    const first = await runCli(['db', 'migrate', '--data-dir', dataDir]);
    const second = await runCli(['db', 'migrate', '--data-dir', dataDir]);

    expect(first.code).toBe(0);
    expect(first.stdout).toBe(`SQLite ${join(dataDir, 'tokenwise.db')}: applied schema version ${VERSIONS}; now at version ${NEWEST}.\n`);
    expect(second.code).toBe(0);
    expect(second.stdout).toContain(`already at schema version ${NEWEST}, nothing to apply.`);
  });

  it('rejects copy options', async () => {
    const result = await runCli(['db', 'migrate', '--to', 'x', '--data-dir', dataDir]);

    expect(result.code).toBe(2);
    expect(result.stderr).toContain('--to is not an option of tokenwise db migrate');
  });
});

describe('db backup', () => {
  it('copies the database while the server runs', async () => {
    const upstream: FakeProvider = await startFakeProvider();
    const server = await startServe(['--port', '0', '--data-dir', dataDir, '--upstream', `anthropic=${upstream.url}`]);
    try {
      const response = await fetch(`${server.url}/r/${server.routeToken}/anthropic/v1/messages`, {
        method: 'POST',
        headers: { 'content-type': 'application/json', 'x-api-key': 'sk-ant-api03-FAKE-db-test', 'anthropic-version': '2023-06-01' },
        body: JSON.stringify({ model: 'claude-sonnet-4-5', max_tokens: 16, messages: [{ role: 'user', content: 'say hi' }] }),
      });
      await response.arrayBuffer();
      await expect
        .poll(async () => (await runCli(['calls', '--json', '--data-dir', dataDir])).stdout.split('\n').filter(Boolean).length, {
          timeout: 15_000,
        })
        .toBe(1);

      const result = await runCli(['db', 'backup', '--data-dir', dataDir]);

      expect(result.code).toBe(0);
      const backups = await readdir(join(dataDir, 'backups'));
      expect(backups).toHaveLength(1);
      expect(backups[0]).toMatch(/^tokenwise-\d{8}T\d{6}Z\.db$/);
      const backupPath = join(dataDir, 'backups', backups[0]!);
      expect(result.stdout).toContain(`Backed up ${join(dataDir, 'tokenwise.db')} to ${backupPath} (1 call, `);
      expect(result.stdout).toContain('MiB); integrity check ok.');
      expect((await stat(backupPath)).mode & 0o777).toBe(0o600);
      const copy = new SqliteStore(backupPath);
      expect(await copy.listCalls({ limit: 10 })).toHaveLength(1);
      await copy.close();
    } finally {
      await server.stop();
      await upstream.close();
    }
  });

  it('never overwrites a file', async () => {
    await fillSqlite(2);
    const target = join(dataDir, 'copy.db');
    expect((await runCli(['db', 'backup', '--data-dir', dataDir, '--to', target])).code).toBe(0);

    const again = await runCli(['db', 'backup', '--data-dir', dataDir, '--to', target]);

    expect(again.code).toBe(2);
    expect(again.stderr).toContain(`failed to create the backup file ${target} (EEXIST): pass another --to or delete the old file`);
  });

  it('names a missing database', async () => {
    const result = await runCli(['db', 'backup', '--data-dir', join(dataDir, 'empty')]);

    expect(result.code).toBe(2);
    expect(result.stderr).toContain(`no SQLite database at ${join(dataDir, 'empty', 'tokenwise.db')}`);
  });
});

describe('tokenwise --version', () => {
  it('prints the package version', async () => {
    const result = await runCli(['--version']);

    expect(result.code).toBe(0);
    expect(result.stdout).toMatch(/^\d+\.\d+\.\d+\n$/);
  });
});

describeWithPostgres('db with PostgreSQL', () => {
  let schema: TestSchema;

  beforeEach(async () => {
    schema = await createTestSchema();
  });

  afterEach(async () => {
    await schema.drop();
  });

  async function copy(extra: string[] = []) {
    return runCli(['db', 'copy', '--from', `sqlite:${dataDir}`, '--to', schema.url, ...extra]);
  }

  it('migrates PostgreSQL once', async () => {
    const first = await runCli(['db', 'migrate', '--database-url', schema.url]);
    const second = await runCli(['db', 'migrate'], { TOKENWISE_DATABASE_URL: schema.url });

    expect(first.code).toBe(0);
    expect(first.stdout).toBe(
      `PostgreSQL postgres://postgres@127.0.0.1:5432/test (schema ${schema.name}): applied schema version ${VERSIONS}; now at version ${NEWEST}.\n`,
    );
    expect(second.stdout).toContain(`already at schema version ${NEWEST}, nothing to apply.`);
  });

  it('copies every table and checks the sums', async () => {
    const records = await fillSqlite(40);

    const result = await copy();

    expect(result.code).toBe(0);
    expect(result.stdout).toContain('Check passed: all 40 calls are in the target, with equal sums.');
    const source = new SqliteStore(join(dataDir, 'tokenwise.db'));
    const target = await PostgresStore.open(schema.url);
    for (const record of records) {
      expect(await target.getCall(record.id)).toStrictEqual(await source.getCall(record.id));
    }
    expect((await target.getCall(records[0]!.id))?.record.timing).toMatchObject({
      model_load_ms: 41.5,
      prompt_eval_ms: 130,
      eval_ms: 0.001,
    });
    const reportTables = [
      'insights_email_settings',
      'insights_email_preferences',
      'insights_email_sends',
      'judge_settings',
      'judge_scores',
    ];
    for (const table of ['workspaces', 'devices', 'route_tokens', 'api_tokens', 'settings', 'users', 'memberships', ...reportTables]) {
      expect(await schema.query(`SELECT * FROM ${table}`)).toHaveLength(table === 'route_tokens' ? 2 : 1);
    }
    const revoked = await target.findRouteTokenByHash(sha256('r'));
    expect(revoked?.revokedAt).toEqual((await source.findRouteTokenByHash(sha256('r')))?.revokedAt);
    expect(revoked?.revokedAt).not.toBeNull();
    const workspaceId = (await source.listWorkspaces())[0]!.id;
    expect(await target.listJudgeScores({ workspaceId, order: 'newest', limit: 10 })).toEqual(
      await source.listJudgeScores({ workspaceId, order: 'newest', limit: 10 }),
    );
    expect(await target.getJudgeSettings(workspaceId)).toEqual(await source.getJudgeSettings(workspaceId));
    await source.close();
    await target.close();
  });

  it('keeps storage order, so cursors page the same calls', async () => {
    await fillSqlite(10);
    await copy();

    const source = new SqliteStore(join(dataDir, 'tokenwise.db'));
    const target = await PostgresStore.open(schema.url);
    const sourceOrder = (await source.listCalls({ limit: 100, after: '0' })).map((call) => call.record.id);
    const targetOrder = (await target.listCalls({ limit: 100, after: '0' })).map((call) => call.record.id);
    expect(targetOrder).toEqual(sourceOrder);
    await source.close();
    await target.close();
  });

  it('inserts nothing when run again, and only new calls later', async () => {
    await fillSqlite(5);
    await copy();

    const again = await copy(['--json']);
    const report = JSON.parse(again.stdout) as CopyReport;
    expect(again.code).toBe(0);
    expect(report.ok).toBe(true);
    expect(report.tables.length).toBeGreaterThanOrEqual(21);
    expect(report.tables.filter((table) => table.inserted !== 0)).toEqual([]);

    const store = new SqliteStore(join(dataDir, 'tokenwise.db'));
    const [later] = recordSeries(1, Date.parse('2026-12-05T00:00:00.000Z'));
    await store.insertCalls([{ record: { ...later!, id: 'later-call' }, bodies: null }]);
    await store.close();
    const third = JSON.parse((await copy(['--json'])).stdout) as CopyReport;
    expect(third.tables.find((table) => table.table === 'calls')).toEqual({ table: 'calls', sourceRows: 6, inserted: 1, inTarget: 6 });
  });

  it('fails when the target sums differ', async () => {
    await fillSqlite(5);
    await runCli(['db', 'migrate', '--database-url', schema.url]);
    // A trigger that alters every copied call simulates a copy that corrupted data on the way.
    await schema.query(`
      CREATE FUNCTION ${schema.name}.inflate_tokens() RETURNS trigger LANGUAGE plpgsql AS $$
      BEGIN NEW.input_tokens := NEW.input_tokens + 1; RETURN NEW; END $$;
      CREATE TRIGGER inflate_tokens BEFORE INSERT ON ${schema.name}.calls FOR EACH ROW EXECUTE FUNCTION ${schema.name}.inflate_tokens();
    `);

    const result = await copy();

    expect(result.code).toBe(1);
    expect(result.stdout).toMatch(/input_tokens\s+\d+\s+\d+ {2}DIFFERENT/);
    expect(result.stderr).toContain('the copy check failed');
  });

  it('rejects a source from another schema version', async () => {
    await fillSqlite(1);
    const raw = new Database(join(dataDir, 'tokenwise.db'));
    raw.prepare("INSERT INTO schema_migrations (version, name, applied_at) VALUES (99, 'future', '2030-01-01')").run();
    raw.close();

    const result = await copy();

    expect(result.code).toBe(2);
    expect(result.stderr).toContain(`is at schema version 99, but this Tokenwise copies version ${NEWEST}: upgrade Tokenwise`);
  });

  it('refuses to serve a schema newer than the code', async () => {
    await runCli(['db', 'migrate', '--database-url', schema.url]);
    await schema.query("INSERT INTO schema_migrations (version, name, applied_at) VALUES (99, 'future', '2030-01-01')");

    const result = await runCli(['serve', '--port', '0', '--data-dir', dataDir, '--database-url', schema.url]);

    expect(result.code).toBe(1);
    expect(result.stderr).toContain(`is newer than this Tokenwise supports (${NEWEST}); upgrade Tokenwise or use another --database-url`);
  });
});
