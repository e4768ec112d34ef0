import { randomUUID } from 'node:crypto';
import { TokenwiseError } from '@tokenwise/core';
import pg from 'pg';
import { type BodyRow, bodyColumns, fromBodyRow } from './body-columns.js';
import { spendUpsertSql } from './budget-spend-sql.js';
import { type CallRow, callColumns, fromCallRow, RATE_LIMITS_SUBQUERY, toCallRow } from './call-columns.js';
import { addToRollupsSqls } from './call-rollups.js';
import { packedBodiesOf, promptColumns, rateLimitColumns, sideRowsOf } from './call-side-rows.js';
import type { MigrationResult } from './migrations.js';
import { describePostgresFailure } from './postgres-errors.js';
import { ADVISORY_LOCKS, currentSchema, migratePostgres, readPostgresSchemaVersion } from './postgres-migrations.js';
import { checkExactPercentileLimit } from './sql-call-store.js';
import { SqlReportStore } from './sql-report-store.js';
import { numberPlaceholders, type SqlParam, type SqlRunner } from './sql-runner.js';
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

export interface PostgresStoreOptions {
  /** Connections in the pool at most; at least 2, because `withLock` keeps one while its task uses another. */
  maxConnections?: number;
  /** How long a query waits for a connection (a free one from the pool, or a new one) before failing, in ms. */
  connectionTimeoutMs?: number;
  /** Called when an idle pooled connection fails, for example when PostgreSQL restarts; the pool replaces it. */
  onConnectionError?: (error: Error) => void;
  /** Wall clock for created/revoked times; tests pass a fixed one. */
  clock?: () => Date;
  /**
   * The maximum of successful calls in an overview's range for its latency percentiles to be ranked
   * exactly over the calls. Above it they come from the hourly latency bins, within 2%. Default 20,000,
   * and tests set 0 to read the bins.
   */
  exactPercentileLimit?: number;
}

type PgValue = string | number | boolean | Buffer | null;

/** Thrown inside a transaction to roll it back when a step that requires a change changed no row. */
const NOTHING_CHANGED = new Error('a required change did not happen');

/** Calls per INSERT statement: 52 columns each stays far below PostgreSQL's 65535 parameters. */
const CALLS_PER_STATEMENT = 500;
/** Body rows per INSERT statement; each row may carry two compressed bodies of up to a few MiB. */
const BODIES_PER_STATEMENT = 20;
/** Prompt rows per INSERT statement; each carries up to 32 Ki characters of text. */
const PROMPTS_PER_STATEMENT = 100;
/** Add the calls whose ids are `$1` to the hourly rollups. */
const ADD_TO_ROLLUPS_SQLS = addToRollupsSqls('id = ANY($1)');
/** Adds the cost of the calls whose ids are `$1` to the budget spend counters. */
const ADD_SPEND_SQL = spendUpsertSql('1', 'c.id = ANY($1)');

/**
 * The team store: PostgreSQL through a `pg` connection pool, with the same tables and the same behaviour
 * as `SqliteStore` (the contract suite runs against both). The schema is the first schema of the
 * connection's `search_path`, so one database can hold several installations: pass
 * `?options=-c%20search_path%3Dname` in the URL. Open it with `PostgresStore.open`, which migrates.
 */
export class PostgresStore extends SqlReportStore implements Store {
  /** The URL without its password and query, safe to print. */
  readonly displayUrl: string;
  /** The schema the tables live in. */
  readonly schema: string;
  readonly migration: MigrationResult;
  private readonly pool: pg.Pool;
  private readonly clock: () => Date;
  private closed = false;

  private constructor(init: {
    pool: pg.Pool;
    displayUrl: string;
    schema: string;
    migration: MigrationResult;
    clock: () => Date;
    exactPercentileLimit: number;
  }) {
    super();
    this.exactPercentileLimit = init.exactPercentileLimit;
    this.readsRunConcurrently = true;
    this.pool = init.pool;
    this.displayUrl = init.displayUrl;
    this.schema = init.schema;
    this.migration = init.migration;
    this.clock = init.clock;
  }

  /** Connect, migrate the schema to the newest version and return the store. */
  static async open(url: string, options: PostgresStoreOptions = {}): Promise<PostgresStore> {
    const displayUrl = describePostgresUrl(url);
    const exactPercentileLimit = checkExactPercentileLimit(options.exactPercentileLimit);
    const maxConnections = options.maxConnections ?? 10;
    if (!Number.isInteger(maxConnections) || maxConnections < 2) {
      throw new TokenwiseError('invalid_argument', `invalid maxConnections ${maxConnections}: expected a whole number of at least 2`);
    }

    const pool = new pg.Pool({
      connectionString: url,
      max: maxConnections,
      connectionTimeoutMillis: options.connectionTimeoutMs ?? 10_000,
      idleTimeoutMillis: 30_000,
      application_name: 'tokenwise',
      types: { getTypeParser: getTypeParser as pg.CustomTypesConfig['getTypeParser'] },
    });
    // Without a listener, an idle connection dropped by the server would crash the process.
    pool.on('error', (error) => options.onConnectionError?.(error));

    try {
      const client = await pool.connect().catch((error: unknown) => {
        throw connectionError(displayUrl, error);
      });
      try {
        const schema = await currentSchema(client);
        const migration = await migratePostgres(client);
        const clock = options.clock ?? (() => new Date());
        return new PostgresStore({ pool, displayUrl, schema, migration, clock, exactPercentileLimit });
      } finally {
        client.release();
      }
    } catch (error) {
      await pool.end().catch(() => undefined);
      throw error;
    }
  }

  /**
   * Stores the batch in one transaction. The transaction first takes an advisory lock, so batches from
   * several servers commit one at a time and `seq` values become visible in increasing order. Without it
   * a batch could commit seq 8 while seq 7 is still open, and a follower paging with `after=8` would
   * never see 7.
   */
  async insertCalls(calls: readonly CallToInsert[]): Promise<StoredCallRef[]> {
    this.assertOpen();
    if (calls.length === 0) return [];

    // Flatten and compress before the transaction, so the lock is held only for the inserts. A call
    // repeated within the batch keeps its first occurrence, as in SQLite.
    const unique = new Map<string, CallToInsert>();
    for (const call of calls) {
      if (!unique.has(call.record.id)) unique.set(call.record.id, call);
    }
    const rows = new Map(
      await Promise.all(
        [...unique.values()].map(async (call) => {
          const packed = await packedBodiesOf(call);
          const row = { call: toCallRow(call.record), bodies: packed?.row ?? null, side: sideRowsOf(call.record, packed) };
          return [call.record.id, row] as const;
        }),
      ),
    );
    this.assertOpen();

    // A stopped or restarting server is `store_unavailable`, so the record sink keeps the batch and retries.
    return this.transaction(async (client) => {
      await client.query('SELECT pg_advisory_xact_lock($1, hashtext($2))', [ADVISORY_LOCKS.insertCalls, this.schema]);

      const stored: { id: string; seq: number }[] = [];
      for (const chunk of chunks([...rows.values()], CALLS_PER_STATEMENT)) {
        // Named, so each connection parses and plans the statement of a chunk size once: with 52
        // parameters per call, planning it anew took about half the time of the insert.
        // NOTE: a pooler in transaction mode must pass prepared statements through (PgBouncer 1.21 and
        // later with max_prepared_statements set); older ones reject the second use of the name.
        const result = await client.query<{ id: string; seq: number }>({
          name: `tokenwise_insert_calls_${chunk.length}`,
          text: `${insertSql('calls', callColumns, chunk.length)} ON CONFLICT (id) DO NOTHING RETURNING id, seq`,
          values: chunk.flatMap((row) => callColumns.map((column) => toPgValue(row.call[column]))),
        });
        stored.push(...result.rows);
      }

      const bodyRows = stored.flatMap(({ id }) => {
        const bodies = rows.get(id)?.bodies;
        return bodies ? [{ call_id: id, ...bodies }] : [];
      });
      const bodyTableColumns = ['call_id', ...bodyColumns] as const;
      for (const chunk of chunks(bodyRows, BODIES_PER_STATEMENT)) {
        await client.query(
          `${insertSql('call_bodies', bodyTableColumns, chunk.length)} ON CONFLICT (call_id) DO NOTHING`,
          chunk.flatMap((row) => bodyTableColumns.map((column) => toPgValue(row[column]))),
        );
      }

      const storedSides = stored.map(({ id }) => rows.get(id)!.side);
      const promptRows = storedSides.flatMap((side) => (side.prompt ? [side.prompt] : []));
      for (const chunk of chunks(promptRows, PROMPTS_PER_STATEMENT)) {
        await client.query(
          `${insertSql('call_prompts', promptColumns, chunk.length)} ON CONFLICT (call_id) DO NOTHING`,
          chunk.flatMap((row) => promptColumns.map((column) => toPgValue(row[column]))),
        );
      }
      const rateLimitRows = storedSides.flatMap((side) => (side.rateLimits ? [side.rateLimits] : []));
      for (const chunk of chunks(rateLimitRows, CALLS_PER_STATEMENT)) {
        await client.query(
          `${insertSql('call_rate_limits', rateLimitColumns, chunk.length)} ON CONFLICT (call_id) DO NOTHING`,
          chunk.flatMap((row) => rateLimitColumns.map((column) => toPgValue(row[column]))),
        );
      }

      if (stored.length > 0) {
        const ids = [stored.map(({ id }) => id)];
        await client.query({ name: 'tokenwise_add_spend', text: ADD_SPEND_SQL, values: ids });
        for (const [index, text] of ADD_TO_ROLLUPS_SQLS.entries()) {
          await client.query({ name: `tokenwise_add_to_rollups_${index}`, text, values: ids });
        }
      }

      return stored.sort((a, b) => a.seq - b.seq).map(({ id, seq }) => ({ id, cursor: String(seq) }));
    }).catch((error: unknown) => {
      throw describePostgresFailure(this.displayUrl, error);
    });
  }

  async listCalls(query: ListCallsQuery): Promise<ListedCall[]> {
    this.assertOpen();
    if (!Number.isInteger(query.limit) || query.limit < 1) {
      throw new TokenwiseError('invalid_argument', `invalid limit ${query.limit}: expected a whole number of at least 1`);
    }

    const conditions: string[] = [];
    const parameters: PgValue[] = [];
    if (query.since !== undefined) {
      parameters.push(query.since.getTime());
      conditions.push(`started_at_ms >= $${parameters.length}`);
    }
    if (query.after !== undefined) {
      parameters.push(parseCursor(query.after));
      conditions.push(`seq > $${parameters.length}`);
    }
    if (query.until !== undefined) {
      parameters.push(query.until.getTime());
      conditions.push(`started_at_ms < $${parameters.length}`);
    }
    for (const [column, value] of [
      ['workspace_id', query.workspaceId],
      ['device_id', query.deviceId],
      ['session_id', query.sessionId],
    ] as const) {
      if (value === undefined) continue;
      parameters.push(value);
      conditions.push(`${column} = $${parameters.length}`);
    }
    const where = conditions.length > 0 ? `WHERE ${conditions.join(' AND ')}` : '';
    const order = query.after !== undefined ? 'seq ASC' : 'started_at_ms DESC, seq DESC';
    parameters.push(query.limit);

    const result = await this.pool.query<CallRow & { seq: number; rate_limits_json: string | null }>(
      `SELECT seq, ${callColumns.join(', ')}, ${RATE_LIMITS_SUBQUERY} FROM calls ${where} ORDER BY ${order} LIMIT $${parameters.length}`,
      parameters,
    );
    return result.rows.map(({ seq, rate_limits_json, ...row }) => ({ cursor: String(seq), record: fromCallRow(row, rate_limits_json) }));
  }

  async getCall(id: string): Promise<CallToStore | null> {
    this.assertOpen();
    const call = await this.pool.query<CallRow & { rate_limits_json: string | null }>(
      `SELECT ${callColumns.join(', ')}, ${RATE_LIMITS_SUBQUERY} FROM calls WHERE id = $1`,
      [id],
    );
    const found = call.rows[0];
    if (!found) return null;
    const { rate_limits_json, ...row } = found;

    const bodies = await this.pool.query<BodyRow>(`SELECT ${bodyColumns.join(', ')} FROM call_bodies WHERE call_id = $1`, [id]);
    const bodyRow = bodies.rows[0];
    return { record: fromCallRow(row, rate_limits_json), bodies: bodyRow ? await fromBodyRow(bodyRow) : null };
  }

  async latestCursor(): Promise<string | null> {
    this.assertOpen();
    const result = await this.pool.query<{ seq: number | null }>('SELECT max(seq) AS seq FROM calls');
    const seq = result.rows[0]?.seq ?? null;
    return seq === null ? null : String(seq);
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
    await this.pool.query(
      `INSERT INTO route_tokens (id, workspace_id, device_id, name, token_sha256, created_at)
       VALUES ($1, $2, $3, $4, $5, $6)`,
      [token.id, token.workspaceId, token.deviceId, token.name, token.tokenSha256, token.createdAt],
    );
    return token;
  }

  async findRouteTokenByHash(tokenSha256: string): Promise<RouteToken | null> {
    this.assertOpen();
    const result = await this.pool.query<TokenRow>('SELECT * FROM route_tokens WHERE token_sha256 = $1', [tokenSha256]);
    const row = result.rows[0];
    return row ? toRouteToken(row) : null;
  }

  async listRouteTokens(workspaceId: string): Promise<RouteToken[]> {
    this.assertOpen();
    // COLLATE "C" sorts ids by code point, as SQLite's BINARY collation does.
    const result = await this.pool.query<TokenRow>(
      'SELECT * FROM route_tokens WHERE workspace_id = $1 ORDER BY created_at COLLATE "C", id COLLATE "C"',
      [workspaceId],
    );
    return result.rows.map(toRouteToken);
  }

  async revokeRouteToken(id: string): Promise<boolean> {
    this.assertOpen();
    const result = await this.pool.query('UPDATE route_tokens SET revoked_at = $1 WHERE id = $2 AND revoked_at IS NULL', [this.now(), id]);
    return (result.rowCount ?? 0) > 0;
  }

  async findApiTokenByHash(tokenSha256: string): Promise<ApiToken | null> {
    this.assertOpen();
    const result = await this.pool.query<TokenRow>('SELECT * FROM api_tokens WHERE token_sha256 = $1', [tokenSha256]);
    const row = result.rows[0];
    return row ? toApiToken(row) : null;
  }

  async listActiveApiTokens(): Promise<ApiToken[]> {
    this.assertOpen();
    const result = await this.pool.query<TokenRow>(
      'SELECT * FROM api_tokens WHERE revoked_at IS NULL ORDER BY created_at COLLATE "C", id COLLATE "C"',
    );
    return result.rows.map(toApiToken);
  }

  async revokeApiToken(id: string): Promise<boolean> {
    this.assertOpen();
    const result = await this.pool.query('UPDATE api_tokens SET revoked_at = $1 WHERE id = $2 AND revoked_at IS NULL', [this.now(), id]);
    return (result.rowCount ?? 0) > 0;
  }

  async getSetting(key: string): Promise<string | null> {
    this.assertOpen();
    const result = await this.pool.query<{ value: string }>('SELECT value FROM settings WHERE key = $1', [key]);
    return result.rows[0]?.value ?? null;
  }

  async setSetting(key: string, value: string): Promise<void> {
    this.assertOpen();
    await this.pool.query(
      `INSERT INTO settings (key, value, updated_at) VALUES ($1, $2, $3)
       ON CONFLICT (key) DO UPDATE SET value = excluded.value, updated_at = excluded.updated_at`,
      [key, value, this.now()],
    );
  }

  async checkReady(): Promise<void> {
    this.assertOpen();
    const version = await readPostgresSchemaVersion(this.pool);
    if (version !== this.migration.version) {
      throw new TokenwiseError(
        'store_failed',
        `the PostgreSQL schema "${this.schema}" is at version ${version}, but this Tokenwise runs version ${this.migration.version}: upgrade every server that shares the database`,
      );
    }
  }

  /**
   * Holds a session advisory lock on a connection of its own while `task` runs on others. If this
   * process dies, PostgreSQL ends the session and the lock with it.
   */
  async withLock<T>(name: string, task: () => Promise<T>): Promise<T> {
    this.assertOpen();
    const client = await this.checkOut();
    const key = [ADVISORY_LOCKS.named, `${this.schema}:${name}`];
    let healthy = false;
    try {
      await client.query('SELECT pg_advisory_lock($1, hashtext($2))', key);
      healthy = true;
      try {
        return await task();
      } finally {
        await client.query('SELECT pg_advisory_unlock($1, hashtext($2))', key).catch(() => {
          healthy = false;
        });
      }
    } finally {
      // A connection whose unlock failed may still hold the lock; destroying it ends the session.
      client.release(!healthy);
    }
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    await this.pool.end();
  }

  protected sql(): SqlRunner {
    this.assertOpen();
    return {
      all: async <Row>(sql: string, params: readonly SqlParam[]) =>
        (await this.pool.query(numberPlaceholders(sql), [...params])).rows as Row[],
      run: async (sql, params) => (await this.pool.query(numberPlaceholders(sql), [...params])).rowCount ?? 0,
      transaction: (steps) =>
        this.transaction(async (client) => {
          const changes: number[] = [];
          for (const step of steps) {
            const result = await client.query(numberPlaceholders(step.sql), [...step.params]);
            if (step.requireChange && (result.rowCount ?? 0) === 0) throw NOTHING_CHANGED;
            changes.push(result.rowCount ?? 0);
          }
          return changes;
        }).catch((error: unknown) => {
          if (error === NOTHING_CHANGED) return null;
          throw error;
        }),
    };
  }

  /**
   * Run `work` in a transaction on one pooled connection. A connection whose ROLLBACK failed is
   * destroyed instead of going back to the pool in an unknown state.
   */
  private async transaction<T>(work: (client: pg.PoolClient) => Promise<T>): Promise<T> {
    const client = await this.checkOut();
    let broken = false;
    try {
      await client.query('BEGIN');
      const result = await work(client);
      await client.query('COMMIT');
      return result;
    } catch (error) {
      await client.query('ROLLBACK').catch(() => {
        broken = true;
      });
      throw error;
    } finally {
      client.release(broken);
    }
  }

  /**
   * Take a connection from the pool. While a connection is checked out, pg emits its connection errors
   * (PostgreSQL shutting down, the network dropping) on the client rather than on the pool, and an
   * `error` event without a listener would crash the process. The listener here keeps the error, so the
   * next query fails instead, and `release` then destroys the connection.
   */
  private async checkOut(): Promise<pg.PoolClient> {
    const client = await this.pool.connect();
    let failed = false;
    const onError = () => {
      failed = true;
    };
    client.on('error', onError);
    const release = client.release.bind(client);
    client.release = (destroy?: boolean | Error) => {
      client.off('error', onError);
      release(failed || destroy);
    };
    return client;
  }

  protected now(): string {
    return this.clock().toISOString();
  }

  private assertOpen(): void {
    if (this.closed) {
      throw new TokenwiseError('store_failed', `the PostgreSQL store ${this.displayUrl} is closed; open a new PostgresStore`);
    }
  }
}

/** Return the URL without password and query string (which may carry `password=`), for messages and logs. */
export function describePostgresUrl(url: string): string {
  let parsed: URL;
  try {
    parsed = new URL(url);
  } catch {
    throw new TokenwiseError('invalid_argument', 'invalid PostgreSQL URL: expected postgres://user:password@host:5432/database');
  }
  if (parsed.protocol !== 'postgres:' && parsed.protocol !== 'postgresql:') {
    throw new TokenwiseError(
      'invalid_argument',
      `invalid PostgreSQL URL scheme "${parsed.protocol}": expected postgres://user:password@host:5432/database`,
    );
  }
  parsed.password = '';
  parsed.search = '';
  return parsed.toString();
}

/** The longest VALUES statement built so far per table and column list, and where each of its tuples ends. */
const builtInserts = new Map<string, { text: string; tupleEnds: number[] }>();

/**
 * Build `INSERT INTO table (columns) VALUES ($1, …), (…)` for `rowCount` rows. The statement for n rows is
 * a prefix of the one for more rows, so the longest one is kept per table and column list and cut to
 * length. Building 200 rows of `calls` anew took about 0.7 ms of every store batch on the event loop.
 */
export function insertSql(table: string, columns: readonly string[], rowCount: number): string {
  const head = `INSERT INTO ${table} (${columns.join(', ')}) VALUES `;
  let built = builtInserts.get(head);
  if (built === undefined || built.tupleEnds.length < rowCount) {
    let text = head;
    const tupleEnds: number[] = [];
    let parameter = 1;
    for (let row = 0; row < rowCount; row += 1) {
      text += row === 0 ? '(' : ', (';
      for (let column = 0; column < columns.length; column += 1) {
        text += column === 0 ? `$${parameter}` : `, $${parameter}`;
        parameter += 1;
      }
      text += ')';
      tupleEnds.push(text.length);
    }
    built = { text, tupleEnds };
    builtInserts.set(head, built);
  }
  return rowCount < 1 ? head : built.text.slice(0, built.tupleEnds[rowCount - 1]);
}

export function* chunks<T>(items: readonly T[], size: number): Generator<T[]> {
  for (let start = 0; start < items.length; start += size) yield items.slice(start, start + size);
}

/**
 * PostgreSQL text cannot contain U+0000, and one such character would fail the whole batch. A provider's
 * error message or a user agent could carry one, so it is stored as U+FFFD instead. SQLite keeps it.
 */
export function toPgValue(value: unknown): PgValue {
  if (typeof value === 'string') return value.includes('\u0000') ? value.replaceAll('\u0000', '\uFFFD') : value;
  return value as PgValue;
}

/**
 * pg returns BIGINT as a string, because it can exceed 2^53. Tokenwise's BIGINT columns hold counts and
 * ms timestamps, which stay far below that, so they are read as numbers; a larger value fails loudly.
 */
function getTypeParser(oid: number, format?: 'text' | 'binary'): (text: string) => unknown {
  if (oid === pg.types.builtins.INT8 && format !== 'binary') return parseBigint;
  return (pg.types.getTypeParser as (oid: number, format?: 'text' | 'binary') => (text: string) => unknown)(oid, format);
}

function parseBigint(text: string): number {
  const value = Number(text);
  if (!Number.isSafeInteger(value)) {
    throw new TokenwiseError('store_failed', `the BIGINT value ${text} is beyond what JavaScript numbers hold exactly (2^53)`);
  }
  return value;
}

function connectionError(displayUrl: string, error: unknown): TokenwiseError {
  const reason = (error as NodeJS.ErrnoException).code ?? (error as Error).message;
  return new TokenwiseError(
    'store_failed',
    `failed to connect to PostgreSQL at ${displayUrl} (${reason}): check --database-url and that the server accepts connections`,
    { cause: error },
  );
}
