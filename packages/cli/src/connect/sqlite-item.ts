import { readFile, stat } from 'node:fs/promises';
import type { Database, SqlJsStatic, SqlValue } from 'sql.js/dist/sql-wasm-inline.js';
import { FileAccessError } from './file-io.js';

/**
 * A JSON document kept as the value of one row of a key-value table in an SQLite database, as VS Code and
 * the editors built on it (Cursor) keep their settings: `ItemTable(key TEXT UNIQUE, value BLOB)`.
 */
export interface SqliteItem {
  table: string;
  key: string;
  /**
   * The application that keeps the database open and writes it back when it exits, so an edit made while
   * it runs would be lost. Edits are rejected while a process of one of these names runs.
   */
  ownerApp?: { name: string; processNames: string[] };
}

/** One row's value as stored; `bytes` is null when the row does not exist. */
export interface ItemValue {
  bytes: Uint8Array | null;
  /** SQLite storage class of the value, kept when the value is written back. */
  storage: 'text' | 'blob' | null;
}

/**
 * Largest database read, in bytes. sql.js keeps the whole file in memory, about three copies of it while a
 * changed database is written back. Larger databases are left to the person to edit.
 * NOTE: the bound is a judgment of memory use, not measured against real Cursor databases, which grow with chat history.
 */
export const MAX_DATABASE_BYTES = 512 * 1024 * 1024;

const IDENTIFIER = /^[A-Za-z_][A-Za-z0-9_]*$/;

let sqlJs: Promise<SqlJsStatic> | null = null;

/** Load sql.js once per process, on first use: its WebAssembly is about 700 KB to compile. */
function loadSqlJs(): Promise<SqlJsStatic> {
  sqlJs ??= import('sql.js/dist/sql-wasm-inline.js').then((module) => module.default());
  return sqlJs;
}

/** Read the value of `item` from the database file at `path`; a missing file reads as a missing row. */
export async function readItem(path: string, item: SqliteItem): Promise<ItemValue> {
  const file = await readDatabaseFile(path);
  if (file === null) return { bytes: null, storage: null };
  return withDatabase(path, file, (database) => selectValue(database, item));
}

/**
 * Read the value of `item` and which of `keys` have a row in its table, without reading their values, in
 * one pass over the file. A missing file reads as missing rows.
 */
export async function inspectItem(path: string, item: SqliteItem, keys: string[]): Promise<ItemValue & { presentKeys: string[] }> {
  const file = await readDatabaseFile(path);
  if (file === null) return { bytes: null, storage: null, presentKeys: [] };
  return withDatabase(path, file, (database) => ({ ...selectValue(database, item), presentKeys: presentKeys(database, item, keys) }));
}

function presentKeys(database: Database, item: SqliteItem, keys: string[]): string[] {
  const found: string[] = [];
  const statement = database.prepare(`SELECT 1 FROM ${quoteIdentifier(item.table)} WHERE key = ?`);
  try {
    for (const key of keys) {
      statement.bind([key]);
      if (statement.step()) found.push(key);
      statement.reset();
    }
  } finally {
    statement.free();
  }
  return found;
}

/**
 * Return the database's bytes with the item's value replaced: the file is read again, so changes made to
 * other rows since the plan was read are kept. The value keeps its storage class, and the header keeps
 * its journal mode (sql.js writes rollback-journal headers, while VS Code's databases may be in WAL mode).
 */
export async function replaceItem(path: string, item: SqliteItem, content: string | Uint8Array): Promise<Uint8Array> {
  await checkNoPendingJournal(path);
  const file = await readDatabaseFile(path);
  if (file === null) throw new FileAccessError(`${path} no longer exists: run the command again`);

  return withDatabase(path, file, (database) => {
    const current = selectValue(database, item);
    if (current.bytes === null) throw new FileAccessError(`${path} has no row "${item.key}" any more: run the command again`);
    const value = current.storage === 'text' && typeof content !== 'string' ? new TextDecoder().decode(content) : content;
    const stored = current.storage === 'blob' && typeof value === 'string' ? new TextEncoder().encode(value) : value;
    database.run(`UPDATE ${quoteIdentifier(item.table)} SET value = ? WHERE key = ?`, [stored, item.key]);

    const bytes = database.export();
    bytes[18] = file[18]!;
    bytes[19] = file[19]!;
    return bytes;
  });
}

/**
 * Reject a database whose write-ahead log or rollback journal is not empty. Its last changes are not in the
 * main file yet, which is all sql.js reads, so writing the file back would lose them.
 */
export async function checkNoPendingJournal(path: string): Promise<void> {
  for (const suffix of ['-wal', '-journal']) {
    const size = await stat(`${path}${suffix}`).then(
      (info) => info.size,
      () => 0,
    );
    if (size > 0) {
      throw new FileAccessError(
        `${path}${suffix} contains changes not yet written to ${path}: start the application that owns it once and quit it, then run the command again`,
      );
    }
  }
}

async function readDatabaseFile(path: string): Promise<Uint8Array | null> {
  let size: number;
  try {
    size = (await stat(path)).size;
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return null;
    throw new FileAccessError(`failed to read ${path} (${(error as NodeJS.ErrnoException).code ?? 'error'}): check its permissions`);
  }
  if (size > MAX_DATABASE_BYTES) {
    throw new FileAccessError(
      `${path} is ${Math.round(size / 1024 / 1024)} MiB, more than connect edits (${MAX_DATABASE_BYTES / 1024 / 1024} MiB)`,
    );
  }
  try {
    return new Uint8Array(await readFile(path));
  } catch (error) {
    throw new FileAccessError(`failed to read ${path} (${(error as NodeJS.ErrnoException).code ?? 'error'}): check its permissions`);
  }
}

async function withDatabase<T>(path: string, file: Uint8Array, use: (database: Database) => T): Promise<T> {
  const { Database } = await loadSqlJs();
  let database: Database | null = null;
  try {
    database = new Database(file);
    return use(database);
  } catch (error) {
    if (error instanceof FileAccessError) throw error;
    // sql.js throws Error objects for SQLite errors and plain strings for some of its own.
    const message = error instanceof Error ? error.message : String(error);
    throw new FileAccessError(`failed to read ${path} as an SQLite database (${message}): the file may be damaged`);
  } finally {
    database?.close();
  }
}

function selectValue(database: Database, item: SqliteItem): ItemValue {
  const statement = database.prepare(`SELECT typeof(value), value FROM ${quoteIdentifier(item.table)} WHERE key = ?`);
  try {
    statement.bind([item.key]);
    if (!statement.step()) return { bytes: null, storage: null };
    const [storage, value] = statement.get() as [string, SqlValue];
    if (typeof value === 'string') return { bytes: new TextEncoder().encode(value), storage: 'text' };
    // A copy, because the database's memory is freed when it closes.
    if (value instanceof Uint8Array) return { bytes: value.slice(), storage: 'blob' };
    throw new FileAccessError(`the value of "${item.key}" in ${item.table} is ${storage}, not JSON text`);
  } finally {
    statement.free();
  }
}

function quoteIdentifier(name: string): string {
  if (!IDENTIFIER.test(name)) throw new Error(`invalid SQLite table name "${name}"`);
  return `"${name}"`;
}
