/**
 * Entry point of the SQLite writer thread (see sqlite-writer.ts). It owns the only connection that writes
 * and runs one request at a time, so a write that waits for another process's lock, or for a slow disk,
 * blocks this thread and never the proxy's event loop.
 */
import { parentPort, workerData } from 'node:worker_threads';
import Database from 'better-sqlite3';
import type {
  CheckpointResult,
  InsertRowsResult,
  RunResult,
  SqliteValue,
  TransactionResult,
  WriteReply,
  WriteRequest,
  WriterSettings,
} from './sqlite-writer.js';

const settings = workerData as WriterSettings;
const port = parentPort!;

const db = new Database(settings.path, { fileMustExist: true });
db.pragma(`busy_timeout = ${settings.busyTimeoutMs}`);
db.pragma('foreign_keys = ON');
db.pragma('synchronous = NORMAL');
// Deleted calls, bodies and accounts are overwritten with zeros instead of lingering in free pages.
db.pragma('secure_delete = ON');

const statements = new Map<string, Database.Statement>();

function prepare(sql: string): Database.Statement {
  let statement = statements.get(sql);
  if (!statement) {
    statement = db.prepare(sql);
    statements.set(sql, statement);
  }
  return statement;
}

/** Wrap a Uint8Array as a Buffer again, because structured cloning turned the Buffer sent into a plain Uint8Array. */
function toBindable(value: SqliteValue | Uint8Array): SqliteValue {
  return value instanceof Uint8Array && !Buffer.isBuffer(value) ? Buffer.from(value.buffer, value.byteOffset, value.byteLength) : value;
}

/** Make `row` bindable in place: it is this thread's own copy, and copying every row cost more than inserting it. */
function bindRow(row: SqliteValue[]): SqliteValue[] {
  for (let index = 0; index < row.length; index++) {
    const value = row[index];
    if (value instanceof Uint8Array) row[index] = toBindable(value);
  }
  return row;
}

/** Thrown inside a transaction to roll it back when a step that requires a change changed nothing. */
class NothingChanged extends Error {}

function handle(request: WriteRequest): RunResult | InsertRowsResult | TransactionResult | CheckpointResult {
  switch (request.kind) {
    case 'checkpoint': {
      // TRUNCATE waits (busy_timeout) for readers of older snapshots, then empties the WAL file.
      const [row] = db.pragma('wal_checkpoint(TRUNCATE)') as { busy: number }[];
      return { busy: row?.busy === 1 };
    }
    case 'run': {
      const result = prepare(request.sql).run(...request.params.map(toBindable));
      return { changes: result.changes, lastInsertRowid: Number(result.lastInsertRowid) };
    }
    case 'insertRows': {
      const primary = prepare(request.sql);
      const dependents = request.dependentSqls.map(prepare);
      const insertAll = db.transaction(() => {
        const inserted: { index: number; rowid: number }[] = [];
        request.rows.forEach((row, index) => {
          const result = primary.run(bindRow(row.primary));
          if (result.changes === 0) return;
          row.dependents.forEach((dependent, table) => {
            if (dependent !== null) dependents[table]!.run(bindRow(dependent));
          });
          inserted.push({ index, rowid: Number(result.lastInsertRowid) });
        });
        // The rows inserted now are exactly those from the first new rowid on: this connection is the only
        // writer, the transaction holds the write lock, and rowids only grow.
        if (inserted.length > 0) for (const sql of request.afterSqls) prepare(sql).run({ first_rowid: inserted[0]!.rowid });
        return inserted;
      });
      return { inserted: insertAll.immediate() };
    }
    case 'transaction': {
      const runAll = db.transaction(() =>
        request.steps.map((step) => {
          const { changes } = prepare(step.sql).run(...step.params.map(toBindable));
          if (step.requireChange && changes === 0) throw new NothingChanged();
          return changes;
        }),
      );
      try {
        return { changes: runAll.immediate() };
      } catch (error) {
        if (error instanceof NothingChanged) return { changes: null };
        throw error;
      }
    }
  }
}

port.on('message', (request: WriteRequest | { kind: 'close' }) => {
  if (request.kind === 'close') {
    db.close();
    port.close();
    return;
  }

  let reply: WriteReply;
  try {
    reply = { id: request.id, ok: true, value: handle(request) };
  } catch (error) {
    const { name, message, code } = error as Error & { code?: unknown };
    reply = { id: request.id, ok: false, error: { name, message, code: typeof code === 'string' ? code : null } };
  }
  port.postMessage(reply);
});
