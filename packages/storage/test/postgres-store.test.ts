import type { CallRecord } from '@tokenwise/core';
import { newestVersion, PostgresStore, sqliteMigrations } from '@tokenwise/storage';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { latencyBin, latencyBinSql } from '../src/latency-bins.js';
import { describeAccountContract } from './account-contract.js';
import { describeBudgetContract } from './budget-contract.js';
import { describeCallQueryContract } from './call-query-contract.js';
import { describeInsightContract } from './insight-contract.js';
import { describeListPageContract } from './list-page-contract.js';
import { createTestSchema, describeWithPostgres, TEST_DATABASE_URL, type TestSchema, withSearchPath } from './postgres-test-database.js';
import { describeReportContract } from './report-contract.js';
import { describeRollupContract } from './rollup-contract.js';
import { binProbeValues, comparableRows, describeRollupReadsContract, makeRollupCalls } from './rollup-reads-contract.js';
import { fullRecord, recordSeries } from './sample-calls.js';
import { describeStoreContract } from './store-contract.js';

/** The schema versions of this code; PostgreSQL's list has the same numbers as SQLite's. */
const VERSIONS = sqliteMigrations.map((migration) => migration.version).sort((a, b) => a - b);
const NEWEST = newestVersion(sqliteMigrations);

async function createPostgresStore(options: { clock?: () => Date; exactPercentileLimit?: number } = {}) {
  const schema = await createTestSchema();
  return { store: await PostgresStore.open(schema.url, options), cleanup: () => schema.drop() };
}

describeWithPostgres('PostgresStore', () => {
  describeStoreContract('PostgresStore', createPostgresStore);
  describeAccountContract('PostgresStore', createPostgresStore);
  describeBudgetContract('PostgresStore', createPostgresStore);
  describeCallQueryContract('PostgresStore', createPostgresStore);
  describeInsightContract('PostgresStore', createPostgresStore);
  describeListPageContract('PostgresStore', createPostgresStore);
  describeReportContract('PostgresStore', createPostgresStore);
  describeRollupContract('PostgresStore', createPostgresStore);
  describeRollupReadsContract('PostgresStore', createPostgresStore);

  describe('PostgresStore schema', () => {
    let schema: TestSchema;
    const opened: PostgresStore[] = [];

    beforeEach(async () => {
      schema = await createTestSchema();
    });

    afterEach(async () => {
      for (const store of opened.splice(0)) await store.close();
      await schema.drop();
    });

    async function open(url = schema.url): Promise<PostgresStore> {
      const store = await PostgresStore.open(url);
      opened.push(store);
      return store;
    }

    it('creates its tables in the search_path schema only', async () => {
      const store = await open();

      expect(store.schema).toBe(schema.name);
      const tables = await schema.query<{ table_name: string }>(
        'SELECT table_name FROM information_schema.tables WHERE table_schema = $1 ORDER BY table_name',
        [schema.name],
      );
      expect(tables.map((row) => row.table_name)).toEqual([
        'api_tokens',
        'budget_alerts',
        'budget_leases',
        'budget_spend',
        'budgets',
        'call_bodies',
        'call_insights',
        'call_latency_bins',
        'call_prompts',
        'call_rate_limits',
        'call_rollups',
        'call_scores',
        'call_session_hours',
        'calls',
        'custom_prices',
        'device_codes',
        'devices',
        'insight_settings',
        'insights',
        'insights_email_preferences',
        'insights_email_sends',
        'insights_email_settings',
        'invites',
        'judge_scores',
        'judge_settings',
        'memberships',
        'password_resets',
        'prompt_groups',
        'prompt_versions',
        'route_tokens',
        'schema_migrations',
        'sessions',
        'settings',
        'users',
        'workspaces',
      ]);
    });

    it('applies each migration once when two servers start at once', async () => {
      const stores = await Promise.all([open(), open(), open()]);

      const versions = await schema.query<{ version: number }>('SELECT version FROM schema_migrations ORDER BY version');
      expect(versions.map((row) => row.version)).toEqual(VERSIONS);
      expect(stores.map((store) => store.migration.applied.length).sort()).toEqual([0, 0, VERSIONS.length]);
    });

    it('reports an up-to-date schema on a later open', async () => {
      await open();

      expect((await open()).migration).toEqual({ version: NEWEST, applied: [] });
    });

    it('rejects a schema from a newer version', async () => {
      await open();
      await schema.query("INSERT INTO schema_migrations (version, name, applied_at) VALUES (99, 'future', '2030-01-01')");

      await expect(open()).rejects.toThrow(
        new RegExp(`schema version 99 in schema "tokenwise_test_\\w+" is newer than this Tokenwise supports \\(${NEWEST}\\)`),
      );
    });

    it('stops being ready when a newer version migrates the schema', async () => {
      const store = await open();
      await schema.query("INSERT INTO schema_migrations (version, name, applied_at) VALUES (99, 'next', '2030-01-01')");

      await expect(store.checkReady()).rejects.toThrow(`is at version 99, but this Tokenwise runs version ${NEWEST}`);
    });

    it('names a missing schema and the fix', async () => {
      await expect(open(withSearchPath(TEST_DATABASE_URL, `${schema.name}_missing`))).rejects.toThrow(
        /no schema of the search_path "tokenwise_test_\w+_missing" exists in this database: create it first/,
      );
    });

    it('keeps the password out of a connection error', async () => {
      const failure = PostgresStore.open('postgres://tokenwise:hunter2-secret@127.0.0.1:1/tokenwise?password=also-secret', {
        connectionTimeoutMs: 2000,
      });

      await expect(failure).rejects.toMatchObject({ code: 'store_failed' });
      const message = await failure.catch((error: Error) => error.message);
      expect(message).toContain('failed to connect to PostgreSQL at postgres://tokenwise@127.0.0.1:1/tokenwise');
      expect(message).not.toContain('secret');
    });

    it('stores a NUL in a text field as U+FFFD', async () => {
      const store = await open();
      const record: CallRecord = fullRecord({
        error: { type: 'api_error', message: 'bad\u0000byte', source: 'http', retry_after_s: null },
      });

      await expect(store.insertCalls([{ record, bodies: null }])).resolves.toHaveLength(1);
      expect((await store.getCall(record.id))?.record.error?.message).toBe('bad\uFFFDbyte');
    });

    it('fills the latency bins and session hours from calls stored before version 10', async () => {
      const records = makeRollupCalls(1500, 7, 'migrated');
      const store = await open();
      for (let start = 0; start < records.length; start += 200) {
        await store.insertCalls(records.slice(start, start + 200).map((record) => ({ record, bodies: null })));
      }
      const readRollups = async () => ({
        bins: comparableRows(await schema.query('SELECT * FROM call_latency_bins ORDER BY workspace_id, hour_ms, metric, bin')),
        sessions: comparableRows(await schema.query('SELECT * FROM call_session_hours ORDER BY workspace_id, hour_ms, session_id')),
      });
      const kept = await readRollups();
      // Make the schema what a Tokenwise without version 10 left: its calls, and neither table.
      await schema.query('DROP TABLE call_latency_bins; DROP TABLE call_session_hours; DELETE FROM schema_migrations WHERE version = 10');

      const migrated = await open();

      expect(migrated.migration.applied).toEqual([10]);
      expect(kept.bins.length).toBeGreaterThan(100);
      expect(kept.sessions.length).toBeGreaterThan(100);
      expect(await readRollups()).toEqual(kept);
    });

    it('bins latencies in SQL as in JavaScript', async () => {
      const values = binProbeValues();

      const rows = await schema.query<{ bin: number }>(
        `SELECT ${latencyBinSql('value')} AS bin FROM unnest($1::double precision[]) WITH ORDINALITY AS probe(value, position) ORDER BY position`,
        [values],
      );

      expect(rows.map((row) => row.bin)).toEqual(values.map(latencyBin));
    });

    it('reads BIGINT columns back as numbers', async () => {
      const store = await open();
      const [record] = recordSeries(1);
      await store.insertCalls([{ record: record!, bodies: null }]);

      const row = (await store.listCalls({ limit: 1 }))[0]!;
      expect(typeof row.record.request_bytes).toBe('number');
      expect(row.record.usage).toStrictEqual(record!.usage);
    });
  });

  describe('PostgresStore with several writers', () => {
    let schema: TestSchema;
    let writers: PostgresStore[];

    beforeEach(async () => {
      schema = await createTestSchema();
      writers = await Promise.all([PostgresStore.open(schema.url), PostgresStore.open(schema.url), PostgresStore.open(schema.url)]);
    });

    afterEach(async () => {
      for (const store of writers) await store.close();
      await schema.drop();
    });

    it('lets a follower see every call when servers insert at once', async () => {
      const records = recordSeries(150);
      const follower = writers[0]!;
      const seen: string[] = [];
      let cursor = '0';

      const writing = Promise.all(
        writers.map(async (store, writer) => {
          const mine = records.filter((_, index) => index % writers.length === writer);
          for (let start = 0; start < mine.length; start += 5) {
            await store.insertCalls(mine.slice(start, start + 5).map((record) => ({ record, bodies: null })));
          }
        }),
      );

      // Page forward while the writers run: a call committed behind the cursor would never be seen.
      let done = false;
      void writing.finally(() => {
        done = true;
      });
      while (!done || seen.length < records.length) {
        // Read `done` before the query: a page read while the last batch commits can be empty although
        // the writers finish before it returns.
        const writersFinished = done;
        const page = await follower.listCalls({ limit: 20, after: cursor });
        for (const call of page) seen.push(call.record.id);
        cursor = page.at(-1)?.cursor ?? cursor;
        if (writersFinished && page.length === 0) break;
      }
      await writing;

      expect(new Set(seen).size).toBe(seen.length);
      expect(seen.sort()).toEqual(records.map((record) => record.id).sort());
    });

    it('holds a named lock across servers', async () => {
      const events: string[] = [];
      const task = (label: string) => async () => {
        events.push(`${label} start`);
        await new Promise((resolve) => setTimeout(resolve, 30));
        events.push(`${label} end`);
      };

      await Promise.all(writers.map((store, index) => store.withLock('setup', task(String(index)))));

      for (let index = 0; index < events.length; index += 2) {
        expect(events[index]?.replace(' start', '')).toBe(events[index + 1]?.replace(' end', ''));
      }
      expect(events).toHaveLength(6);
    });
  });
});
