import { randomUUID } from 'node:crypto';
import { chmodSync, existsSync } from 'node:fs';
import { TokenwiseError } from '@tokenwise/core';
import Database from 'better-sqlite3';
import { type BodyRow, bodyColumns, booleanBodyColumns, fromBodyRow } from './body-columns.js';
import { spendUpsertSql } from './budget-spend-sql.js';
import { booleanCallColumns, type CallRow, callColumns, fromCallRow, RATE_LIMITS_SUBQUERY, toCallRow } from './call-columns.js';
import { addToRollupsSqls } from './call-rollups.js';
import { packedBodiesOf, promptColumns, rateLimitColumns, sideRowsOf } from './call-side-rows.js';
import type { MigrationResult } from './migrations.js';
import { checkExactPercentileLimit } from './sql-call-store.js';
import { SqlReportStore } from './sql-report-store.js';
import { type SqlParam, type SqlRunner, toSqliteParam } from './sql-runner.js';
import { describeSqliteFailure } from './sqlite-errors.js';
import { migrateSqlite, readSqliteSchemaVersion } from './sqlite-migrations.js';
import { openReadOnly, READ_BUSY_TIMEOUT_MS } from './sqlite-read-only.js';
import { type RowPair, type SqliteValue, SqliteWriter } from './sqlite-writer.js';
import type {
  ApiToken,
  CallToInsert,
  CallToStore,
  ListCallsQuery,
  ListedCall,
  NewRouteToken,
  RouteToken,
  Store,
  StoredCallRef,
} from './store.js';
import { checkSha256, parseCursor, type TokenRow, toApiToken, toRouteToken } from './store-rows.js';

export interface SqliteStoreOptions {
  /**
   * How long a write waits for another connection's write lock before failing with `store_unavailable`, in
   * ms. The wait happens on the writer thread, never on the caller's.
   */
  busyTimeoutMs?: number;
  /** Wall clock for created/revoked times; tests pass a fixed one. */
  clock?: () => Date;
  /**
   * Open for reading only, for commands that read while no server runs: the file must exist, nothing is
   * migrated, and every write fails. It works on a data directory this user cannot write to.
   */
  readonly?: boolean;
  /**
   * The maximum of successful calls in an overview's range for its latency percentiles to be ranked
   * exactly over the calls. Above it they come from the hourly latency bins, within 2%. Default 20,000,
   * and tests set 0 to read the bins.
   */
  exactPercentileLimit?: number;
}

type SqliteRow = Record<string, SqliteValue>;

/**
 * The embedded store: one SQLite file in WAL mode, so the CLI can read while the server writes. Reads run
 * synchronously on the caller's thread (better-sqlite3). Writes go to a worker thread with its own
 * connection (`SqliteWriter`), so a lock held by another process or a slow disk delays only the writes.
 */
export class SqliteStore extends SqlReportStore implements Store {
  readonly path: string;
  /** Schema changes made when this store was opened. */
  readonly migration: MigrationResult;
  private readonly db: Database.Database;
  private readonly writer: SqliteWriter | null;
  private readonly clock: () => Date;
  private readonly locks = new Map<string, Promise<unknown>>();
  private closed = false;

  constructor(path: string, options: SqliteStoreOptions = {}) {
    super();
    if (path === ':memory:' || path === '') {
      throw new TokenwiseError(
        'invalid_argument',
        'SqliteStore needs a database file: its writer thread opens a second connection, which cannot share an in-memory database',
      );
    }
    this.path = path;
    this.clock = options.clock ?? (() => new Date());
    this.exactPercentileLimit = checkExactPercentileLimit(options.exactPercentileLimit);
    const busyTimeoutMs = Math.max(0, Math.trunc(options.busyTimeoutMs ?? 5000));

    if (options.readonly) {
      const { db, version } = openReadOnly(path);
      this.db = db;
      this.migration = { version, applied: [] };
      this.writer = null;
      return;
    }

    let db: Database.Database | null = null;
    try {
      const isNewFile = !existsSync(path);
      db = new Database(path);
      if (isNewFile) {
        // Calls and bodies are private to the owner; SQLite gives the -wal and -shm files the same mode.
        chmodSync(path, 0o600);
      }

      db.pragma('journal_mode = WAL');
      // Opening waits for the lock like a write would: migrations write, and nothing is served yet.
      db.pragma(`busy_timeout = ${busyTimeoutMs}`);
      db.pragma('foreign_keys = ON');
      // With WAL, NORMAL loses at most the last transactions on power loss, never corrupts the file.
      db.pragma('synchronous = NORMAL');

      this.migration = migrateSqlite(db);
      db.pragma(`busy_timeout = ${READ_BUSY_TIMEOUT_MS}`);
    } catch (error) {
      db?.close();
      throw describeSqliteFailure(path, error);
    }
    this.db = db;
    this.writer = new SqliteWriter({ path, busyTimeoutMs });
  }

  async insertCalls(calls: readonly CallToInsert[]): Promise<StoredCallRef[]> {
    this.assertOpen();
    if (calls.length === 0) return [];

    // Flatten and compress before the transaction, so the write lock is held only for the inserts.
    const rows = await Promise.all(
      calls.map(async (call): Promise<RowPair> => {
        const packed = await packedBodiesOf(call);
        const side = sideRowsOf(call.record, packed);
        return {
          primary: toSqliteValues(toCallRow(call.record), callColumns, CALL_BOOLEANS),
          dependents: [
            packed === null ? null : [call.record.id, ...toSqliteValues(packed.row, bodyColumns, BODY_BOOLEANS)],
            side.prompt === null ? null : toSqliteValues(side.prompt, promptColumns, NO_BOOLEANS),
            side.rateLimits === null ? null : toSqliteValues(side.rateLimits, rateLimitColumns, NO_BOOLEANS),
          ],
        };
      }),
    );
    this.assertOpen();

    const { inserted } = await this.writes().insertRows(
      INSERT_CALL_SQL,
      [INSERT_BODIES_SQL, INSERT_PROMPT_SQL, INSERT_RATE_LIMITS_SQL],
      rows,
      [ADD_SPEND_SQL, ...ADD_TO_ROLLUPS_SQLS],
    );
    return inserted.map(({ index, rowid }) => ({ id: calls[index]!.record.id, cursor: String(rowid) }));
  }

  async listCalls(query: ListCallsQuery): Promise<ListedCall[]> {
    this.assertOpen();
    if (!Number.isInteger(query.limit) || query.limit < 1) {
      throw new TokenwiseError('invalid_argument', `invalid limit ${query.limit}: expected a whole number of at least 1`);
    }

    const conditions: string[] = [];
    const parameters: SqliteValue[] = [];
    if (query.since !== undefined) {
      conditions.push('started_at_ms >= ?');
      parameters.push(query.since.getTime());
    }
    if (query.after !== undefined) {
      conditions.push('seq > ?');
      parameters.push(parseCursor(query.after));
    }
    if (query.until !== undefined) {
      conditions.push('started_at_ms < ?');
      parameters.push(query.until.getTime());
    }
    for (const [column, value] of [
      ['workspace_id', query.workspaceId],
      ['device_id', query.deviceId],
      ['session_id', query.sessionId],
    ] as const) {
      if (value === undefined) continue;
      conditions.push(`${column} = ?`);
      parameters.push(value);
    }
    const where = conditions.length > 0 ? `WHERE ${conditions.join(' AND ')}` : '';
    const order = query.after !== undefined ? 'seq ASC' : 'started_at_ms DESC, seq DESC';

    const rows = this.read(() =>
      this.db
        .prepare<SqliteValue[], SqliteRow>(
          `SELECT seq, ${callColumns.join(', ')}, ${RATE_LIMITS_SUBQUERY} FROM calls ${where} ORDER BY ${order} LIMIT ?`,
        )
        .all(...parameters, query.limit),
    );
    return rows.map((row) => ({
      cursor: String(row.seq),
      record: fromCallRow(fromSqliteRow<CallRow>(row, booleanCallColumns), row.rate_limits_json as string | null),
    }));
  }

  async getCall(id: string): Promise<CallToStore | null> {
    this.assertOpen();
    const row = this.read(() =>
      this.db.prepare<[string], SqliteRow>(`SELECT ${callColumns.join(', ')}, ${RATE_LIMITS_SUBQUERY} FROM calls WHERE id = ?`).get(id),
    );
    if (!row) return null;

    const bodyRow = this.read(() =>
      this.db.prepare<[string], SqliteRow>(`SELECT ${bodyColumns.join(', ')} FROM call_bodies WHERE call_id = ?`).get(id),
    );
    return {
      record: fromCallRow(fromSqliteRow<CallRow>(row, booleanCallColumns), row.rate_limits_json as string | null),
      bodies: bodyRow ? await fromBodyRow(fromSqliteRow<BodyRow>(bodyRow, booleanBodyColumns)) : null,
    };
  }

  async latestCursor(): Promise<string | null> {
    this.assertOpen();
    const row = this.read(() => this.db.prepare<[], { seq: number | null }>('SELECT max(seq) AS seq FROM calls').get());
    return row?.seq == null ? null : String(row.seq);
  }

  async createRouteToken(input: NewRouteToken): Promise<RouteToken> {
    this.assertOpen();
    const token: RouteToken = {
      id: randomUUID(),
      workspaceId: input.workspaceId,
      deviceId: input.deviceId,
      name: input.name,
      tokenSha256: checkSha256(input.tokenSha256),
      createdAt: this.now(),
      revokedAt: null,
      lastUsedAt: null,
    };
    await this.writes().run(
      `INSERT INTO route_tokens (id, workspace_id, device_id, name, token_sha256, created_at)
       VALUES (?, ?, ?, ?, ?, ?)`,
      [token.id, token.workspaceId, token.deviceId, token.name, token.tokenSha256, token.createdAt],
    );
    return token;
  }

  async findRouteTokenByHash(tokenSha256: string): Promise<RouteToken | null> {
    this.assertOpen();
    const row = this.read(() => this.db.prepare<[string], TokenRow>('SELECT * FROM route_tokens WHERE token_sha256 = ?').get(tokenSha256));
    return row ? toRouteToken(row) : null;
  }

  async listRouteTokens(workspaceId: string): Promise<RouteToken[]> {
    this.assertOpen();
    return this.read(() =>
      this.db
        .prepare<[string], TokenRow>('SELECT * FROM route_tokens WHERE workspace_id = ? ORDER BY created_at, id')
        .all(workspaceId)
        .map(toRouteToken),
    );
  }

  async revokeRouteToken(id: string): Promise<boolean> {
    this.assertOpen();
    const result = await this.writes().run('UPDATE route_tokens SET revoked_at = ? WHERE id = ? AND revoked_at IS NULL', [this.now(), id]);
    return result.changes > 0;
  }

  async findApiTokenByHash(tokenSha256: string): Promise<ApiToken | null> {
    this.assertOpen();
    const row = this.read(() => this.db.prepare<[string], TokenRow>('SELECT * FROM api_tokens WHERE token_sha256 = ?').get(tokenSha256));
    return row ? toApiToken(row) : null;
  }

  async listActiveApiTokens(): Promise<ApiToken[]> {
    this.assertOpen();
    return this.read(() =>
      this.db.prepare<[], TokenRow>('SELECT * FROM api_tokens WHERE revoked_at IS NULL ORDER BY created_at, id').all().map(toApiToken),
    );
  }

  async revokeApiToken(id: string): Promise<boolean> {
    this.assertOpen();
    const result = await this.writes().run('UPDATE api_tokens SET revoked_at = ? WHERE id = ? AND revoked_at IS NULL', [this.now(), id]);
    return result.changes > 0;
  }

  async getSetting(key: string): Promise<string | null> {
    this.assertOpen();
    const row = this.read(() => this.db.prepare<[string], { value: string }>('SELECT value FROM settings WHERE key = ?').get(key));
    return row?.value ?? null;
  }

  async setSetting(key: string, value: string): Promise<void> {
    this.assertOpen();
    await this.writes().run(
      `INSERT INTO settings (key, value, updated_at) VALUES (?, ?, ?)
       ON CONFLICT (key) DO UPDATE SET value = excluded.value, updated_at = excluded.updated_at`,
      [key, value, this.now()],
    );
  }

  async checkReady(): Promise<void> {
    this.assertOpen();
    const version = this.read(() => readSqliteSchemaVersion(this.db));
    if (version !== this.migration.version) {
      throw new TokenwiseError(
        'store_failed',
        `the SQLite database ${this.path} is at schema version ${version}, but this Tokenwise runs version ${this.migration.version}: restart it with the Tokenwise that migrated the database`,
      );
    }
  }

  async withLock<T>(name: string, task: () => Promise<T>): Promise<T> {
    this.assertOpen();
    const previous = this.locks.get(name) ?? Promise.resolve();
    const run = previous.then(task);
    const settled = run.catch(() => undefined);
    this.locks.set(name, settled);
    try {
      return await run;
    } finally {
      if (this.locks.get(name) === settled) this.locks.delete(name);
    }
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    try {
      await this.writer?.close();
    } finally {
      this.db.close();
    }
  }

  protected sql(): SqlRunner {
    this.assertOpen();
    return {
      all: async <Row>(sql: string, params: readonly SqlParam[]) =>
        this.read(() => this.db.prepare<SqliteValue[], Row>(sql).all(...params.map(toSqliteParam))),
      run: async (sql, params) => (await this.writes().run(sql, params.map(toSqliteParam))).changes,
      transaction: async (steps) => {
        const result = await this.writes().transaction(
          steps.map((step) => ({ sql: step.sql, params: step.params.map(toSqliteParam), requireChange: step.requireChange ?? false })),
        );
        return result.changes;
      },
    };
  }

  /**
   * Checkpoint the WAL into the database file and truncate it. `secure_delete` zeroes deleted rows in the
   * pages it writes, but in WAL mode those pages are appended to the WAL, whose earlier frames still hold
   * the old rows until a checkpoint resets it.
   */
  protected override async eraseDeletedData(): Promise<void> {
    for (let attempt = 0; attempt < 3; attempt += 1) {
      if (!(await this.writes().checkpoint()).busy) return;
    }
    // NOTE: a reader that keeps an old snapshot open through every try (another process reading this
    // file) keeps the WAL from being truncated; the deleted rows stay in it until a later checkpoint,
    // which SQLite runs on its own once the WAL grows past 1000 pages.
  }

  /** Run a read on this thread's connection, naming the file and the fix when the file is the problem. */
  private read<T>(query: () => T): T {
    try {
      return query();
    } catch (error) {
      throw describeSqliteFailure(this.path, error);
    }
  }

  private writes(): SqliteWriter {
    if (this.writer === null) {
      throw new TokenwiseError(
        'store_failed',
        `the SQLite store ${this.path} was opened read-only: open it without the readonly option to write`,
      );
    }
    return this.writer;
  }

  protected now(): string {
    return this.clock().toISOString();
  }

  private assertOpen(): void {
    if (this.closed) {
      throw new TokenwiseError('store_failed', `the SQLite store ${this.path} is closed; open a new SqliteStore`);
    }
  }
}

/** `?` placeholders for `columns`, in their order: the rows of `insertCalls` are arrays in that order. */
function placeholdersOf(columns: readonly string[]): string {
  return columns.map(() => '?').join(', ');
}

const INSERT_CALL_SQL = `INSERT INTO calls (${callColumns.join(', ')}) VALUES (${placeholdersOf(callColumns)})
  ON CONFLICT (id) DO NOTHING`;
const INSERT_BODIES_SQL = `INSERT INTO call_bodies (call_id, ${bodyColumns.join(', ')}) VALUES (?, ${placeholdersOf(bodyColumns)})
  ON CONFLICT (call_id) DO NOTHING`;
const INSERT_PROMPT_SQL = `INSERT INTO call_prompts (${promptColumns.join(', ')}) VALUES (${placeholdersOf(promptColumns)})
  ON CONFLICT (call_id) DO NOTHING`;
const INSERT_RATE_LIMITS_SQL = `INSERT INTO call_rate_limits (${rateLimitColumns.join(', ')}) VALUES (${placeholdersOf(rateLimitColumns)})
  ON CONFLICT (call_id) DO NOTHING`;

const CALL_BOOLEANS = new Set<string>(booleanCallColumns);
const BODY_BOOLEANS = new Set<string>(booleanBodyColumns);
const NO_BOOLEANS = new Set<string>();

/**
 * Adds the costs of the calls a batch inserted to the budget spend counters, once per batch: one statement
 * per call took a fifth of the writer thread's time. `@first_rowid` is the first new call's `seq`.
 */
const ADD_SPEND_SQL = spendUpsertSql('1', 'c.seq >= @first_rowid');

/** Add the calls a batch inserted to the hourly rollups; `@first_rowid` is the first call's `seq`. */
const ADD_TO_ROLLUPS_SQLS = addToRollupsSqls('seq >= @first_rowid');

/**
 * Return the values of `row` in the order of `columns`, for a statement with a `?` per column. better-sqlite3
 * binds no booleans, so those in `booleans` travel as 0 and 1; a missing value binds NULL.
 */
function toSqliteValues(row: object, columns: readonly string[], booleans: ReadonlySet<string>): SqliteValue[] {
  const record = row as Record<string, unknown>;
  const values: SqliteValue[] = new Array(columns.length);
  for (let index = 0; index < columns.length; index++) {
    const column = columns[index]!;
    const value = record[column] ?? null;
    if (booleans.has(column) && value !== null) values[index] = value ? 1 : 0;
    else values[index] = value as SqliteValue;
  }
  return values;
}

function fromSqliteRow<Row>(row: SqliteRow, booleanColumns: readonly string[]): Row {
  const converted: Record<string, unknown> = { ...row };
  for (const column of booleanColumns) {
    const value = row[column];
    converted[column] = value === null || value === undefined ? null : value === 1;
  }
  delete converted.seq;
  delete converted.rate_limits_json;
  return converted as Row;
}
