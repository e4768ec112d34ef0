import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { mkdtemp, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { migrateSqlite, newestVersion, SqliteStore, sqliteMigrations } from '@tokenwise/storage';
import Database from 'better-sqlite3';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { latencyBin, latencyBinSql } from '../src/latency-bins.js';
import { describeAccountContract } from './account-contract.js';
import { describeBudgetContract } from './budget-contract.js';
import { describeCallQueryContract } from './call-query-contract.js';
import { describeInsightContract } from './insight-contract.js';
import { describeListPageContract } from './list-page-contract.js';
import { describeReportContract } from './report-contract.js';
import { describeRollupContract } from './rollup-contract.js';
import { binProbeValues, comparableRows, describeRollupReadsContract, makeRollupCalls } from './rollup-reads-contract.js';
import { recordSeries } from './sample-calls.js';
import { describeStoreContract } from './store-contract.js';

async function createSqliteStore(options: { clock?: () => Date; exactPercentileLimit?: number } = {}) {
  const dir = await mkdtemp(join(tmpdir(), 'tokenwise-store-'));
  return {
    store: new SqliteStore(join(dir, 'tokenwise.db'), options),
    cleanup: () => rm(dir, { recursive: true, force: true }),
  };
}

describeStoreContract('SqliteStore', createSqliteStore);
describeAccountContract('SqliteStore', createSqliteStore);
describeBudgetContract('SqliteStore', createSqliteStore);
describeCallQueryContract('SqliteStore', createSqliteStore);
describeInsightContract('SqliteStore', createSqliteStore);
describeListPageContract('SqliteStore', createSqliteStore);
describeReportContract('SqliteStore', createSqliteStore);
describeRollupContract('SqliteStore', createSqliteStore);
describeRollupReadsContract('SqliteStore', createSqliteStore);

describe('SqliteStore file', () => {
  let dir: string;
  let path: string;

  beforeEach(async () => {
    dir = await mkdtemp(join(tmpdir(), 'tokenwise-store-'));
    path = join(dir, 'tokenwise.db');
  });

  afterEach(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  it('uses WAL', async () => {
    await new SqliteStore(path).close();

    const db = new Database(path, { readonly: true });
    expect(db.pragma('journal_mode', { simple: true })).toBe('wal');
    db.close();
  });

  it('creates the database readable by the owner only', async () => {
    const store = new SqliteStore(path);
    await store.insertCalls(recordSeries(1).map((record) => ({ record, bodies: null })));

    expect((await stat(path)).mode & 0o777).toBe(0o600);
    expect((await stat(`${path}-wal`)).mode & 0o777).toBe(0o600);
    await store.close();
  });

  it('keeps calls across reopening', async () => {
    const first = new SqliteStore(path);
    await first.insertCalls(recordSeries(3).map((record) => ({ record, bodies: null })));
    await first.close();

    const second = new SqliteStore(path);
    expect(await second.listCalls({ limit: 10 })).toHaveLength(3);
    await second.close();
  });

  it('applies each migration once', async () => {
    await new SqliteStore(path).close();
    await new SqliteStore(path).close();

    const db = new Database(path, { readonly: true });
    const versions = db.prepare('SELECT version FROM schema_migrations ORDER BY version').pluck().all();
    db.close();
    expect(versions).toEqual(sqliteMigrations.map((migration) => migration.version).sort((a, b) => a - b));
  });

  it('gives each token of a version 1 database a device', async () => {
    const db = new Database(path);
    migrateSqlite(db, sqliteMigrations.slice(0, 1));
    db.prepare("INSERT INTO workspaces (id, name, keep_bodies, created_at) VALUES ('ws', 'local', 1, '2026-01-01')").run();
    const insertToken = db.prepare(
      "INSERT INTO route_tokens (id, workspace_id, device_id, name, token_sha256, created_at, revoked_at) VALUES (?, 'ws', NULL, ?, ?, '2026-01-01', ?)",
    );
    insertToken.run('active', 'laptop', 'a'.repeat(64), null);
    insertToken.run('gone', 'old', 'b'.repeat(64), '2026-02-01');
    db.close();

    const store = new SqliteStore(path);
    const active = await store.findRouteTokenByHash('a'.repeat(64));
    const gone = await store.findRouteTokenByHash('b'.repeat(64));

    expect(await store.getDevice(active!.deviceId!)).toMatchObject({ workspaceId: 'ws', name: 'laptop', revokedAt: null });
    expect(await store.getDevice(gone!.deviceId!)).toMatchObject({ name: 'old', revokedAt: '2026-02-01' });
    await store.close();
  });

  it('fills the hourly rollup from calls stored before version 6', async () => {
    const store = new SqliteStore(path);
    await store.insertCalls(recordSeries(5).map((record) => ({ record: { ...record, workspace_id: 'ws-1' }, bodies: null })));
    await store.close();
    // Make the file what a Tokenwise without version 6 left: its calls, and no rollup.
    const db = new Database(path);
    db.exec('DROP TABLE call_rollups; DROP INDEX calls_by_workspace_tool_model; DELETE FROM schema_migrations WHERE version = 6');
    db.close();

    const migrated = new SqliteStore(path);
    const overview = await migrated.overview({
      filter: { workspaceId: 'ws-1', from: new Date('2026-12-04T09:00:00.000Z'), to: new Date('2026-12-04T10:00:00.000Z') },
      bucketMs: 3_600_000,
      groupBy: 'tool',
      top: 5,
    });
    await migrated.close();

    expect(migrated.migration.applied).toEqual([6]);
    expect(overview.totals.calls).toBe(5);
    expect(overview.groups.map((group) => group.calls)).toEqual([5]);
  });

  it('fills the latency bins and session hours from calls stored before version 10', async () => {
    const records = makeRollupCalls(1500, 7, 'migrated');
    const store = new SqliteStore(path);
    for (let start = 0; start < records.length; start += 200) {
      await store.insertCalls(records.slice(start, start + 200).map((record) => ({ record, bodies: null })));
    }
    await store.close();
    const readRollups = (db: Database.Database) => ({
      bins: comparableRows(
        db.prepare('SELECT * FROM call_latency_bins ORDER BY workspace_id, hour_ms, metric, bin').all() as Record<string, unknown>[],
      ),
      sessions: comparableRows(
        db.prepare('SELECT * FROM call_session_hours ORDER BY workspace_id, hour_ms, session_id').all() as Record<string, unknown>[],
      ),
    });
    // Make the file what a Tokenwise without version 10 left: its calls, and neither table.
    const db = new Database(path);
    const kept = readRollups(db);
    db.exec('DROP TABLE call_latency_bins; DROP TABLE call_session_hours; DELETE FROM schema_migrations WHERE version = 10');
    db.close();

    const migrated = new SqliteStore(path);
    await migrated.close();
    const reopened = new Database(path, { readonly: true });
    const filled = readRollups(reopened);
    reopened.close();

    expect(migrated.migration.applied).toEqual([10]);
    expect(kept.bins.length).toBeGreaterThan(100);
    expect(kept.sessions.length).toBeGreaterThan(100);
    expect(filled).toEqual(kept);
  });

  it('bins latencies in SQL as in JavaScript', () => {
    const values = binProbeValues();
    const db = new Database(':memory:');
    const rows = db
      .prepare(`SELECT value.key AS position, ${latencyBinSql('value.value')} AS bin FROM json_each(?) AS value ORDER BY value.key`)
      .all(JSON.stringify(values)) as { position: number; bin: number }[];
    db.close();

    for (const value of values.filter((ms) => ms >= 1)) {
      expect(1.04 ** (latencyBin(value) - 1), `lower edge of ${value}`).toBeLessThanOrEqual(value);
      expect(1.04 ** latencyBin(value), `upper edge of ${value}`).toBeGreaterThan(value);
    }
    expect(values.filter((ms) => ms < 1).map(latencyBin)).toEqual(values.filter((ms) => ms < 1).map(() => 0));
    expect(rows.map((row) => row.bin)).toEqual(values.map(latencyBin));
  });

  it('rejects a database from a newer version', async () => {
    await new SqliteStore(path).close();
    const db = new Database(path);
    db.prepare("INSERT INTO schema_migrations (version, name, applied_at) VALUES (99, 'future', '2030-01-01')").run();
    db.close();

    expect(() => new SqliteStore(path)).toThrow(
      `schema version 99 is newer than this Tokenwise supports (${newestVersion(sqliteMigrations)})`,
    );
  });

  it('opens read-only and rejects writes', async () => {
    const writer = new SqliteStore(path);
    await writer.insertCalls(recordSeries(2).map((record) => ({ record, bodies: null })));
    await writer.close();

    const reader = new SqliteStore(path, { readonly: true });
    expect(await reader.listCalls({ limit: 10 })).toHaveLength(2);
    await expect(reader.setSetting('key', 'value')).rejects.toThrow(/opened read-only/);
    await reader.close();
  });

  it('names a file that is not a database', async () => {
    await writeFile(path, Buffer.alloc(8192, 0x5a));

    expect(() => new SqliteStore(path)).toThrow(`${path} is not a SQLite database (SQLITE_NOTADB)`);
    expect(() => new SqliteStore(path, { readonly: true })).toThrow(`${path} is not a SQLite database (SQLITE_NOTADB)`);
  });

  it('waits for another process holding the write lock', async () => {
    const store = new SqliteStore(path, { busyTimeoutMs: 10_000 });
    const holder = await holdWriteLock(path, 300);

    await expect(store.insertCalls(recordSeries(1).map((record) => ({ record, bodies: null })))).resolves.toHaveLength(1);
    await holder.exited;
    await store.close();
  });

  it('fails on a held write lock with a zero busy timeout', async () => {
    const store = new SqliteStore(path, { busyTimeoutMs: 0 });
    const holder = await holdWriteLock(path, 2000);

    const insert = store.insertCalls(recordSeries(1).map((record) => ({ record, bodies: null })));
    await expect(insert).rejects.toThrow(/locked|busy/i);
    await expect(insert).rejects.toMatchObject({ code: 'store_unavailable' });
    holder.child.kill();
    await holder.exited;
    await store.close();
  });

  // Regression: writes ran on the caller's thread, so waiting for another process's lock froze the
  // server's event loop for the whole busy timeout.
  it('waits for a held lock off the caller thread', async () => {
    const store = new SqliteStore(path, { busyTimeoutMs: 10_000 });
    const calls = recordSeries(3).map((record) => ({ record, bodies: null }));
    await store.insertCalls(calls.slice(0, 1));
    const holder = await holdWriteLock(path, 1500);

    const insert = store.insertCalls(calls.slice(1));
    const timerStartedAt = Date.now();
    await new Promise((resolve) => setTimeout(resolve, 50));
    expect(Date.now() - timerStartedAt).toBeLessThan(1000);
    expect(await store.listCalls({ limit: 10 })).toHaveLength(1);

    await expect(insert).resolves.toHaveLength(2);
    await holder.exited;
    expect(await store.listCalls({ limit: 10 })).toHaveLength(3);
    await store.close();
  });
});

/** Take SQLite's write lock in another process for `holdMs`, as another program writing to the file would. */
async function holdWriteLock(path: string, holdMs: number) {
  await new SqliteStore(path).close();
  const script = `
    const Database = require('better-sqlite3');
    const db = new Database(process.argv[1]);
    db.exec('BEGIN IMMEDIATE');
    process.stdout.write('locked');
    setTimeout(() => { db.exec('COMMIT'); db.close(); }, Number(process.argv[2]));
  `;
  const child = spawn(process.execPath, ['-e', script, path, String(holdMs)], { stdio: ['ignore', 'pipe', 'inherit'] });
  const exited = once(child, 'exit');
  await new Promise<void>((resolve, reject) => {
    child.stdout.once('data', () => resolve());
    child.once('exit', (code) => reject(new Error(`lock holder exited with ${code} before taking the lock`)));
  });
  return { child, exited };
}
