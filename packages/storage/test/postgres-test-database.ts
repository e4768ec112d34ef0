/**
 * The PostgreSQL the tests use: `TOKENWISE_TEST_DATABASE_URL`, else `postgres://postgres@127.0.0.1:5432/test`.
 * Each test works in a schema of its own, created and dropped by the test; no other schema is touched.
 * Without a reachable server the PostgreSQL groups are skipped with a message, and with
 * `TOKENWISE_POSTGRES=required` (set by `.ci/run`) they fail.
 */
import { randomBytes } from 'node:crypto';
import pg from 'pg';
import { describe, it } from 'vitest';

export const TEST_DATABASE_URL = process.env.TOKENWISE_TEST_DATABASE_URL || 'postgres://postgres@127.0.0.1:5432/test';
const required = process.env.TOKENWISE_POSTGRES === 'required';

/** Why PostgreSQL cannot be used here, or null when it can. */
const unavailable: string | null = await probe();

async function probe(): Promise<string | null> {
  const client = new pg.Client({ connectionString: TEST_DATABASE_URL, connectionTimeoutMillis: 5000 });
  try {
    await client.connect();
    await client.query('SELECT 1');
    return null;
  } catch (error) {
    const reason = (error as NodeJS.ErrnoException).code ?? (error as Error).message;
    return `PostgreSQL at ${TEST_DATABASE_URL} is not reachable (${reason}): start one there or set TOKENWISE_TEST_DATABASE_URL`;
  } finally {
    await client.end().catch(() => undefined);
  }
}

/** Declare a `describe` group that needs PostgreSQL: skipped with a message without it, failed when required. */
export function describeWithPostgres(name: string, body: () => void): void {
  if (unavailable === null) {
    describe(name, body);
    return;
  }
  if (required) {
    describe(name, () => {
      it('reaches PostgreSQL (TOKENWISE_POSTGRES=required)', () => {
        throw new Error(unavailable);
      });
    });
    return;
  }
  console.warn(`skipping "${name}": ${unavailable}`);
  describe.skip(name, body);
}

export interface TestSchema {
  name: string;
  /** `TEST_DATABASE_URL` with this schema as the `search_path`, as a user would write it. */
  url: string;
  /** Run SQL in this schema on a short-lived connection of its own. */
  query<Row extends pg.QueryResultRow = pg.QueryResultRow>(sql: string, values?: unknown[]): Promise<Row[]>;
  /** Drop the schema and everything in it. */
  drop(): Promise<void>;
}

/** Create an empty schema with a random name for one test. */
export async function createTestSchema(): Promise<TestSchema> {
  const name = `tokenwise_test_${randomBytes(6).toString('hex')}`;
  await runSql(TEST_DATABASE_URL, `CREATE SCHEMA ${name}`);
  const url = withSearchPath(TEST_DATABASE_URL, name);
  return {
    name,
    url,
    query: (sql, values) => runSql(url, sql, values),
    drop: async () => {
      await runSql(TEST_DATABASE_URL, `DROP SCHEMA IF EXISTS ${name} CASCADE`);
    },
  };
}

/** Return `url` with `options=-c search_path=<schema>`, the libpq way to choose the schema. */
export function withSearchPath(url: string, schema: string): string {
  const parsed = new URL(url);
  parsed.searchParams.set('options', `-c search_path=${schema}`);
  return parsed.toString();
}

async function runSql<Row extends pg.QueryResultRow>(url: string, sql: string, values?: unknown[]): Promise<Row[]> {
  const client = new pg.Client({ connectionString: url });
  await client.connect();
  try {
    return (await client.query<Row>(sql, values)).rows;
  } finally {
    await client.end();
  }
}
