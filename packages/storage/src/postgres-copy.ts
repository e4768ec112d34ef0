import { existsSync } from 'node:fs';
import { TokenwiseError } from '@tokenwise/core';
import Database from 'better-sqlite3';
import pg from 'pg';
import { bodyColumns, booleanBodyColumns } from './body-columns.js';
import { booleanCallColumns, callColumns } from './call-columns.js';
import { addToRollupsSqls } from './call-rollups.js';
import { promptColumns, rateLimitColumns } from './call-side-rows.js';
import { newestVersion } from './migrations.js';
import { ADVISORY_LOCKS } from './postgres-migrations.js';
import { insertSql, PostgresStore, toPgValue } from './postgres-store.js';
import { readSqliteSchemaVersion, sqliteMigrations } from './sqlite-migrations.js';

/** One table as the copy moves it: rows are read in rowid order and inserted unless their key exists. */
interface TableSpec {
  name: string;
  /** The key column, or for a table with a composite key an expression that joins its columns into one text. */
  key: string;
  columns: readonly string[];
  booleans: readonly string[];
  /** Rows per read and per INSERT statement. */
  pageSize: number;
}

/** Add the copied calls whose ids are `$1` to the hourly rollups. */
const ADD_TO_ROLLUPS_SQLS = addToRollupsSqls('id = ANY($1)');

/** Tables in foreign-key order, so every row's parents are copied first. */
const TABLES: readonly TableSpec[] = [
  {
    name: 'workspaces',
    key: 'id',
    columns: ['id', 'name', 'keep_bodies', 'body_retention_days', 'created_at', 'redact_bodies', 'budgets_fail_closed'],
    booleans: ['keep_bodies', 'redact_bodies', 'budgets_fail_closed'],
    pageSize: 500,
  },
  {
    name: 'users',
    key: 'id',
    columns: ['id', 'email', 'name', 'password_hash', 'created_at', 'password_changed_at'],
    booleans: [],
    pageSize: 500,
  },
  {
    name: 'devices',
    key: 'id',
    columns: ['id', 'workspace_id', 'name', 'os', 'user_id', 'created_at', 'last_seen_at', 'privacy_mode', 'revoked_at'],
    booleans: ['privacy_mode'],
    pageSize: 500,
  },
  {
    name: 'route_tokens',
    key: 'id',
    columns: ['id', 'workspace_id', 'device_id', 'name', 'token_sha256', 'created_at', 'revoked_at', 'last_used_at'],
    booleans: [],
    pageSize: 500,
  },
  {
    name: 'api_tokens',
    key: 'id',
    columns: ['id', 'workspace_id', 'user_id', 'name', 'token_sha256', 'created_at', 'revoked_at', 'last_used_at'],
    booleans: [],
    pageSize: 500,
  },
  { name: 'memberships', key: 'id', columns: ['id', 'workspace_id', 'user_id', 'role', 'created_at'], booleans: [], pageSize: 500 },
  {
    name: 'sessions',
    key: 'id',
    columns: ['id', 'user_id', 'token_sha256', 'created_at', 'expires_at', 'last_seen_at', 'user_agent'],
    booleans: [],
    pageSize: 500,
  },
  {
    name: 'invites',
    key: 'id',
    columns: [
      'id',
      'workspace_id',
      'role',
      'email',
      'token_sha256',
      'created_by',
      'created_at',
      'expires_at',
      'accepted_at',
      'accepted_by',
      'revoked_at',
    ],
    booleans: [],
    pageSize: 500,
  },
  {
    name: 'password_resets',
    key: 'id',
    columns: ['id', 'user_id', 'token_sha256', 'created_by', 'created_at', 'expires_at', 'used_at'],
    booleans: [],
    pageSize: 500,
  },
  {
    name: 'device_codes',
    key: 'id',
    columns: [
      'id',
      'device_code_sha256',
      'user_code',
      'device_name',
      'os',
      'status',
      'workspace_id',
      'user_id',
      'device_id',
      'interval_s',
      'created_at',
      'expires_at',
      'last_polled_at',
    ],
    booleans: [],
    pageSize: 500,
  },
  { name: 'settings', key: 'key', columns: ['key', 'value', 'updated_at'], booleans: [], pageSize: 500 },
  {
    name: 'insights_email_settings',
    key: 'workspace_id',
    columns: ['workspace_id', 'frequency', 'updated_at', 'updated_by'],
    booleans: [],
    pageSize: 500,
  },
  {
    name: 'insights_email_preferences',
    key: 'id',
    columns: ['id', 'workspace_id', 'user_id', 'frequency', 'updated_at'],
    booleans: [],
    pageSize: 500,
  },
  {
    name: 'insights_email_sends',
    key: 'id',
    columns: [
      'id',
      'workspace_id',
      'user_id',
      'frequency',
      'period_start',
      'period_end',
      'status',
      'attempts',
      'claimed_at_ms',
      'finished_at',
      'message_id',
      'error',
    ],
    booleans: [],
    pageSize: 500,
  },
  {
    name: 'judge_settings',
    key: 'workspace_id',
    columns: [
      'workspace_id',
      'enabled',
      'route',
      'model',
      'rubric',
      'sample_rate',
      'pass_score',
      'device_id',
      'scan_from_ms',
      'updated_at',
      'updated_by',
    ],
    booleans: ['enabled'],
    pageSize: 500,
  },
  { name: 'calls', key: 'id', columns: callColumns, booleans: booleanCallColumns, pageSize: 500 },
  // Each body row carries up to two compressed bodies of a few MiB, so pages stay small.
  { name: 'call_bodies', key: 'call_id', columns: ['call_id', ...bodyColumns], booleans: booleanBodyColumns, pageSize: 20 },
  { name: 'call_prompts', key: 'call_id', columns: promptColumns, booleans: [], pageSize: 100 },
  { name: 'call_rate_limits', key: 'call_id', columns: rateLimitColumns, booleans: [], pageSize: 500 },
  {
    name: 'prompt_groups',
    key: 'id',
    columns: ['id', 'workspace_id', 'tool', 'kind', 'template_key', 'opening', 'created_at'],
    booleans: [],
    pageSize: 500,
  },
  {
    name: 'prompt_versions',
    key: 'id',
    columns: [
      'id',
      'workspace_id',
      'group_id',
      'fingerprint',
      'first_call_id',
      'first_seen_ms',
      'tool_version',
      'system_text',
      'tools_json',
      'tool_count',
      'created_at',
    ],
    booleans: [],
    pageSize: 100,
  },
  {
    name: 'call_insights',
    key: 'call_id',
    columns: ['call_id', 'workspace_id', 'device_id', 'session_id', 'started_at_ms', 'group_id', 'version_id', 'request_sha256'],
    booleans: [],
    pageSize: 500,
  },
  {
    name: 'call_scores',
    key: 'id',
    columns: ['id', 'call_id', 'scorer', 'workspace_id', 'started_at_ms', 'passed', 'value', 'detail'],
    booleans: ['passed'],
    pageSize: 500,
  },
  {
    name: 'insights',
    key: 'id',
    columns: ['id', 'workspace_id', 'kind', 'group_id', 'version_id', 'observed_at_ms', 'created_at', 'updated_at', 'summary', 'details'],
    booleans: [],
    pageSize: 500,
  },
  {
    name: 'insight_settings',
    key: 'workspace_id',
    columns: ['workspace_id', 'latency_target_ms', 'metric_shift_pct', 'updated_at'],
    booleans: [],
    pageSize: 500,
  },
  {
    name: 'judge_scores',
    key: 'call_id',
    columns: [
      'call_id',
      'workspace_id',
      'call_started_at_ms',
      'status',
      'score',
      'reason',
      'route',
      'model',
      'response_id',
      'error',
      'attempts',
      'claimed_at_ms',
      'finished_at',
    ],
    booleans: [],
    pageSize: 500,
  },
  {
    name: 'custom_prices',
    key: 'id',
    columns: [
      'id',
      'workspace_id',
      'model',
      'provider',
      'effective_from',
      'effective_from_ms',
      'input_mtok',
      'output_mtok',
      'cache_read_mtok',
      'cache_write_mtok',
      'cache_write_1h_mtok',
      'created_at',
      'created_by',
    ],
    booleans: [],
    pageSize: 500,
  },
  {
    name: 'budgets',
    key: 'id',
    columns: [
      'id',
      'workspace_id',
      'name',
      'scope',
      'scope_id',
      'cost_kind',
      'period',
      'amount_usd',
      'alert_threshold',
      'action',
      'webhook_url',
      'email_to',
      'created_at',
      'created_by',
      'updated_at',
    ],
    booleans: [],
    pageSize: 500,
  },
  // The counters of the source's calls, which the copy inserts without going through `insertCalls`.
  // NOTE: a day the target already counts keeps the target's counter, so copying into a database that
  // took calls of the same days meanwhile leaves those days' budget spend short of the copied calls.
  {
    name: 'budget_spend',
    key: "workspace_id || '|' || scope || '|' || scope_id || '|' || cost_kind || '|' || day_ms",
    columns: ['workspace_id', 'scope', 'scope_id', 'cost_kind', 'day_ms', 'usd', 'max_call_usd'],
    booleans: [],
    pageSize: 500,
  },
  {
    name: 'budget_alerts',
    key: 'id',
    columns: [
      'id',
      'workspace_id',
      'budget_id',
      'budget_name',
      'period_start_ms',
      'level',
      'spent_usd',
      'amount_usd',
      'message',
      'created_at',
      'email_to',
      'webhook_state',
      'webhook_attempts',
      'webhook_next_at_ms',
      'webhook_error',
      'email_state',
      'email_attempts',
      'email_next_at_ms',
      'email_error',
    ],
    booleans: [],
    pageSize: 500,
  },
];

/** Columns of `calls` whose sums the check compares, next to the row counts. */
const CHECKED_SUMS = [
  'input_tokens',
  'output_tokens',
  'cache_read_tokens',
  'cache_write_tokens',
  'reasoning_tokens',
  'request_bytes',
  'response_bytes',
] as const;

/** Ids per verification query. */
const VERIFY_CHUNK = 1000;

export interface CopyTableReport {
  table: string;
  /** Rows in the SQLite database. */
  sourceRows: number;
  /** Rows this run inserted; a re-run inserts 0. */
  inserted: number;
  /** Rows of the source whose key the target has after the copy. */
  inTarget: number;
}

export interface CopySumReport {
  /** A `calls` column, or `cost_usd`. */
  column: string;
  /** Sum over the source's calls, as decimal text. */
  source: string;
  /** Sum over the same call ids in the target. */
  target: string;
  equal: boolean;
}

export interface CopyReport {
  source: string;
  target: string;
  tables: CopyTableReport[];
  sums: CopySumReport[];
  /** Settings whose key the target already had with another value; the target's value is kept. */
  settingConflicts: string[];
  /** True when every call and body of the source is in the target and every sum matches. */
  ok: boolean;
}

export interface CopyOptions {
  /** Path of the SQLite database file. */
  sqlitePath: string;
  postgresUrl: string;
  /** Called after each page of a table, with the rows read so far. */
  onProgress?: (table: string, rowsRead: number) => void;
}

/**
 * Copy every table of a SQLite database into PostgreSQL, then check the result. The source is opened
 * read-only and read inside one transaction, so the copy and the check see one snapshot even while a
 * server keeps writing to it. Rows whose key the target already has are skipped, so running the copy
 * again inserts only what is new. Calls keep their ids and go in storage order, so the target's cursors
 * follow the same order.
 */
export async function copySqliteToPostgres(options: CopyOptions): Promise<CopyReport> {
  const source = openSource(options.sqlitePath);
  const store = await PostgresStore.open(options.postgresUrl).catch((error: unknown) => {
    source.close();
    throw error;
  });
  const target = `${store.displayUrl} (schema ${store.schema})`;
  await store.close();

  const client = new pg.Client({ connectionString: options.postgresUrl, application_name: 'tokenwise db copy' });
  try {
    await client.connect();
    source.exec('BEGIN');

    const inserted = new Map<string, number>();
    for (const table of TABLES) {
      inserted.set(table.name, await copyTable(source, client, table, store.schema, options.onProgress));
    }

    const tables = await countInTarget(source, client, inserted);
    const sums = await compareSums(source, client);
    const settingConflicts = await findSettingConflicts(source, client);
    const complete = tables
      .filter((table) => table.table === 'calls' || table.table === 'call_bodies')
      .every((table) => table.inTarget === table.sourceRows);
    return { source: options.sqlitePath, target, tables, sums, settingConflicts, ok: complete && sums.every((sum) => sum.equal) };
  } finally {
    if (source.inTransaction) source.exec('COMMIT');
    source.close();
    await client.end().catch(() => undefined);
  }
}

function openSource(path: string): Database.Database {
  if (!existsSync(path)) {
    throw new TokenwiseError(
      'invalid_argument',
      `no SQLite database at ${path}: pass --from sqlite:PATH with the tokenwise.db file to copy`,
    );
  }
  const db = new Database(path, { readonly: true, fileMustExist: true });

  const found = readSqliteSchemaVersion(db);
  const expected = newestVersion(sqliteMigrations);
  if (found !== expected) {
    db.close();
    const fix = found < expected ? `run "tokenwise db migrate --data-dir DIR" on it first` : 'upgrade Tokenwise';
    throw new TokenwiseError(
      'invalid_argument',
      `the SQLite database ${path} is at schema version ${found}, but this Tokenwise copies version ${expected}: ${fix}`,
    );
  }
  return db;
}

/** Copy one table page by page; returns the rows inserted. Calls take the insert lock, as `insertCalls` does. */
async function copyTable(
  source: Database.Database,
  client: pg.Client,
  table: TableSpec,
  schema: string,
  onProgress: CopyOptions['onProgress'],
): Promise<number> {
  const read = source.prepare<[number, number], Record<string, unknown>>(
    `SELECT rowid AS source_rowid, ${table.columns.join(', ')} FROM ${table.name} WHERE rowid > ? ORDER BY rowid LIMIT ?`,
  );
  let lastRowid = 0;
  let rowsRead = 0;
  let inserted = 0;

  for (;;) {
    const rows = read.all(lastRowid, table.pageSize);
    if (rows.length === 0) return inserted;
    lastRowid = rows.at(-1)!.source_rowid as number;
    rowsRead += rows.length;

    const values = rows.flatMap((row) => table.columns.map((column) => toTargetValue(row[column], table.booleans.includes(column))));
    await client.query('BEGIN');
    try {
      if (table.name === 'calls') {
        await client.query('SELECT pg_advisory_xact_lock($1, hashtext($2))', [ADVISORY_LOCKS.insertCalls, schema]);
      }
      const returning = table.name === 'calls' ? ' RETURNING id' : '';
      const result = await client.query<{ id: string }>(
        `${insertSql(table.name, table.columns, rows.length)} ON CONFLICT DO NOTHING${returning}`,
        values,
      );
      // The copy inserts calls without `insertCalls`, so it adds them to the hourly rollups itself.
      if (table.name === 'calls' && result.rows.length > 0) {
        for (const sql of ADD_TO_ROLLUPS_SQLS) await client.query(sql, [result.rows.map((row) => row.id)]);
      }
      await client.query('COMMIT');
      inserted += result.rowCount ?? 0;
    } catch (error) {
      await client.query('ROLLBACK').catch(() => undefined);
      throw error;
    }
    onProgress?.(table.name, rowsRead);
  }
}

/** SQLite stores booleans as 0 and 1; PostgreSQL columns are BOOLEAN. */
function toTargetValue(value: unknown, isBoolean: boolean): unknown {
  if (isBoolean && value !== null) return value === 1;
  return toPgValue(value);
}

async function countInTarget(source: Database.Database, client: pg.Client, inserted: Map<string, number>): Promise<CopyTableReport[]> {
  const reports: CopyTableReport[] = [];
  for (const table of TABLES) {
    const keys = source.prepare(`SELECT ${table.key} FROM ${table.name} ORDER BY rowid`).pluck().all() as string[];
    let inTarget = 0;
    for (let start = 0; start < keys.length; start += VERIFY_CHUNK) {
      const result = await client.query<{ count: string }>(`SELECT count(*) AS count FROM ${table.name} WHERE ${table.key} = ANY($1)`, [
        keys.slice(start, start + VERIFY_CHUNK),
      ]);
      inTarget += Number(result.rows[0]?.count ?? 0);
    }
    reports.push({ table: table.name, sourceRows: keys.length, inserted: inserted.get(table.name) ?? 0, inTarget });
  }
  return reports;
}

/**
 * Sum the token, byte and cost columns over the source's calls and over the same ids in the target.
 * Counts are compared exactly as integers. Costs are floating-point sums whose order of addition
 * differs between the two databases, so they match within a relative 1e-9.
 */
async function compareSums(source: Database.Database, client: pg.Client): Promise<CopySumReport[]> {
  const columns = [...CHECKED_SUMS, 'cost_usd'];
  const sourceRow = source
    .prepare<[], Record<string, number | bigint | null>>(
      `SELECT ${columns.map((column) => `sum(${column}) AS ${column}`).join(', ')} FROM calls`,
    )
    .safeIntegers(true)
    .get()!;

  const targetTotals = new Map<string, bigint>(CHECKED_SUMS.map((column) => [column, 0n]));
  let targetCost = 0;
  const ids = source.prepare('SELECT id FROM calls ORDER BY rowid').pluck().all() as string[];
  for (let start = 0; start < ids.length; start += VERIFY_CHUNK) {
    const result = await client.query<Record<string, string | null>>(
      `SELECT ${CHECKED_SUMS.map((column) => `sum(${column})::text AS ${column}`).join(', ')}, sum(cost_usd)::text AS cost_usd
       FROM calls WHERE id = ANY($1)`,
      [ids.slice(start, start + VERIFY_CHUNK)],
    );
    const row = result.rows[0] ?? {};
    for (const column of CHECKED_SUMS) targetTotals.set(column, targetTotals.get(column)! + BigInt(row[column] ?? '0'));
    targetCost += Number(row.cost_usd ?? '0');
  }

  const reports: CopySumReport[] = CHECKED_SUMS.map((column) => {
    const sourceTotal = BigInt(sourceRow[column] ?? 0);
    const targetTotal = targetTotals.get(column)!;
    return { column, source: String(sourceTotal), target: String(targetTotal), equal: sourceTotal === targetTotal };
  });

  const sourceCost = Number(sourceRow.cost_usd ?? 0);
  const costEqual = Math.abs(sourceCost - targetCost) <= 1e-9 * Math.max(1, Math.abs(sourceCost));
  reports.push({ column: 'cost_usd', source: sourceCost.toFixed(6), target: targetCost.toFixed(6), equal: costEqual });
  return reports;
}

async function findSettingConflicts(source: Database.Database, client: pg.Client): Promise<string[]> {
  const settings = source.prepare<[], { key: string; value: string }>('SELECT key, value FROM settings ORDER BY key').all();
  const result = await client.query<{ key: string; value: string }>('SELECT key, value FROM settings WHERE key = ANY($1)', [
    settings.map((setting) => setting.key),
  ]);
  const targetValues = new Map(result.rows.map((row) => [row.key, row.value]));
  return settings.filter((setting) => targetValues.get(setting.key) !== toPgValue(setting.value)).map((setting) => setting.key);
}
