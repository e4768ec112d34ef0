import { Worker } from 'node:worker_threads';
import { TokenwiseError } from '@tokenwise/core';
import Database from 'better-sqlite3';
import { describeSqliteFailure } from './sqlite-errors.js';

export type SqliteValue = string | number | bigint | Buffer | null;

/** Settings the writer thread opens its connection with. */
export interface WriterSettings {
  path: string;
  /** How long a write waits for another connection's lock before failing with SQLITE_BUSY, in ms. */
  busyTimeoutMs: number;
}

/**
 * One row to insert, with optional rows of dependent tables inserted only when the first one was new.
 * Each row is the values of its statement's `?` parameters in order: an array crosses to the writer
 * thread and binds faster than an object of named parameters. `dependents[i]` goes to the request's
 * `dependentSqls[i]`; null skips that table.
 */
export interface RowPair {
  primary: SqliteValue[];
  dependents: (SqliteValue[] | null)[];
}

/** One statement of a `transaction` request; see `SqlStep`. */
export interface TransactionStep {
  sql: string;
  params: SqliteValue[];
  requireChange: boolean;
}

export type WriteRequest =
  | { id: number; kind: 'run'; sql: string; params: SqliteValue[] }
  | { id: number; kind: 'insertRows'; sql: string; dependentSqls: string[]; rows: RowPair[]; afterSqls: string[] }
  | { id: number; kind: 'transaction'; steps: TransactionStep[] }
  | { id: number; kind: 'checkpoint' };

export interface CheckpointResult {
  /** True when a reader kept the checkpoint from finishing, so the WAL file still holds old pages. */
  busy: boolean;
}

export interface TransactionResult {
  /** Rows changed by each step, or null when a step that requires a change changed none and all was rolled back. */
  changes: number[] | null;
}

export interface RunResult {
  changes: number;
  lastInsertRowid: number;
}

export interface InsertRowsResult {
  /** The rows actually inserted (a conflicting row is skipped): their index in the request and their rowid. */
  inserted: { index: number; rowid: number }[];
}

export type WriteReply =
  | { id: number; ok: true; value: RunResult | InsertRowsResult | TransactionResult | CheckpointResult }
  | { id: number; ok: false; error: { name: string; message: string; code: string | null } };

type DistributiveOmit<T, K extends keyof T> = T extends unknown ? Omit<T, K> : never;

interface Pending {
  resolve(value: RunResult | InsertRowsResult | TransactionResult | CheckpointResult): void;
  reject(error: Error): void;
}

/**
 * Young generation of the thread, in MB. Left to V8, it grew to 16–32 MB of semi-spaces while batches of
 * call bodies and prompt texts passed through, though a batch is garbage once inserted. With 8 MB the
 * thread's heap stayed at about 24 MB instead of 27–47 MB under 64 streamed calls (bench/run.mjs, memory
 * measurement). With 4 MB, more of each batch moved into the old generation instead.
 */
const THREAD_RESOURCE_LIMITS = { maxYoungGenerationSizeMb: 8 };

/** SQLite result codes that mean another connection holds the lock: the write may succeed later. */
const LOCKED_CODES = /^SQLITE_(BUSY|LOCKED)/;

/**
 * The client side of a worker thread that owns the store's only writing connection. better-sqlite3 is
 * synchronous: a write on the main thread that waits for a lock held by another process (busy_timeout) or
 * for a slow disk would freeze every request and stream the proxy serves. Here writes are messages,
 * handled in order, and the main thread only waits on a promise. WAL mode lets the main thread's
 * connection keep reading while the writer holds the write lock.
 */
export class SqliteWriter {
  private readonly settings: WriterSettings;
  private worker: Worker | null = null;
  private readonly pending = new Map<number, Pending>();
  private nextId = 1;

  constructor(settings: WriterSettings) {
    this.settings = settings;
  }

  run(sql: string, params: SqliteValue[]): Promise<RunResult> {
    return this.send({ kind: 'run', sql, params }) as Promise<RunResult>;
  }

  /**
   * Insert every row in one IMMEDIATE transaction: all of them or none. Each of `afterSqls` then runs once
   * in the same transaction when a row was new, with `@first_rowid`, the rowid of the first row inserted.
   */
  insertRows(sql: string, dependentSqls: string[], rows: RowPair[], afterSqls: string[] = []): Promise<InsertRowsResult> {
    return this.send({ kind: 'insertRows', sql, dependentSqls, rows, afterSqls }) as Promise<InsertRowsResult>;
  }

  /** Run the steps in one IMMEDIATE transaction: all of them or none. */
  transaction(steps: TransactionStep[]): Promise<TransactionResult> {
    return this.send({ kind: 'transaction', steps }) as Promise<TransactionResult>;
  }

  /**
   * Copy every page of the WAL into the database file and truncate the WAL to zero bytes, so rows deleted
   * (and zeroed by `secure_delete`) leave no old copy in the WAL. Waits for readers up to the busy timeout.
   */
  checkpoint(): Promise<CheckpointResult> {
    return this.send({ kind: 'checkpoint' }) as Promise<CheckpointResult>;
  }

  /** Finish the writes already sent, then stop the thread. */
  async close(): Promise<void> {
    const worker = this.worker;
    if (worker === null) return;
    this.worker = null;
    worker.ref();
    const exited = new Promise<void>((resolve) => worker.once('exit', () => resolve()));
    worker.postMessage({ kind: 'close' });
    await exited;
  }

  private send(
    request: DistributiveOmit<WriteRequest, 'id'>,
  ): Promise<RunResult | InsertRowsResult | TransactionResult | CheckpointResult> {
    const worker = this.start();
    const id = this.nextId++;
    return new Promise((resolve, reject) => {
      this.pending.set(id, { resolve, reject });
      // A pending write keeps the process alive until it is stored; an idle writer does not.
      worker.ref();
      worker.postMessage({ ...request, id });
    });
  }

  private start(): Worker {
    if (this.worker) return this.worker;

    const worker = new Worker(new URL('./sqlite-writer-thread.js', import.meta.url), {
      workerData: this.settings,
      resourceLimits: THREAD_RESOURCE_LIMITS,
    });
    worker.unref();
    worker.on('message', (reply: WriteReply) => this.settle(reply));
    worker.on('error', (error) => this.failAll(error));
    worker.on('exit', (code) => {
      if (this.worker === worker) this.worker = null;
      this.failAll(new Error(`the SQLite writer thread exited with code ${code}`));
    });
    this.worker = worker;
    return worker;
  }

  private settle(reply: WriteReply): void {
    const pending = this.pending.get(reply.id);
    if (!pending) return;
    this.pending.delete(reply.id);
    if (this.pending.size === 0) this.worker?.unref();

    if (reply.ok) pending.resolve(reply.value);
    else pending.reject(this.toError(reply.error));
  }

  private failAll(cause: Error): void {
    for (const pending of this.pending.values()) {
      pending.reject(
        new TokenwiseError('store_failed', `writing to the SQLite database ${this.settings.path} failed: ${cause.message}`, { cause }),
      );
    }
    this.pending.clear();
  }

  /**
   * Rebuild the thread's error here: a lock held elsewhere or a full disk becomes `store_unavailable`, a
   * problem with the file a `store_failed` naming the fix, anything else a `SqliteError`.
   */
  private toError(error: { name: string; message: string; code: string | null }): Error {
    if (error.name !== 'SqliteError' || error.code === null) {
      return new TokenwiseError('store_failed', `writing to the SQLite database ${this.settings.path} failed: ${error.message}`);
    }
    const sqliteError = new Database.SqliteError(error.message, error.code);
    if (error.code === 'SQLITE_FULL') {
      // The same write succeeds once space is freed (or `max_page_count` raised), so callers that can wait do.
      return new TokenwiseError(
        'store_unavailable',
        `the disk holding the database ${this.settings.path} is full (${error.code}): free some space; the write is retried`,
        { cause: sqliteError },
      );
    }
    if (!LOCKED_CODES.test(error.code)) return describeSqliteFailure(this.settings.path, sqliteError) as Error;
    return new TokenwiseError(
      'store_unavailable',
      `the SQLite database ${this.settings.path} is locked by another connection (${error.message}): the write is retried; stop the other program if it keeps the lock`,
      { cause: sqliteError },
    );
  }
}
