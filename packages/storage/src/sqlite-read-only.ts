import { existsSync, readFileSync, statSync } from 'node:fs';
import { dirname } from 'node:path';
import { TokenwiseError } from '@tokenwise/core';
import Database from 'better-sqlite3';
import { newestVersion } from './migrations.js';
import { describeSqliteFailure } from './sqlite-errors.js';
import { readSqliteSchemaVersion, sqliteMigrations } from './sqlite-migrations.js';

/**
 * Maximum wait of a read on the caller's thread, in ms. In WAL mode a read does not wait for writers, so
 * only rare cases (another process recovering the WAL) make it wait at all.
 */
export const READ_BUSY_TIMEOUT_MS = 100;

/**
 * Maximum size of a database that a read-only open copies into memory when SQLite cannot read it in place, in bytes. The
 * copy is needed when the directory is not writable and has no `-shm` file, which WAL mode requires.
 */
const MAX_IN_MEMORY_COPY_BYTES = 256 * 1024 * 1024;

/**
 * Open an existing database for reading and return it with its schema version, which must be the one this
 * code reads. SQLite reads a WAL database in place only when it can use the `-shm` file. In a directory
 * this user cannot write to, with no `-shm` and no `-wal` left (the server stopped cleanly, so every write
 * is in the main file), a copy in memory is read instead.
 */
export function openReadOnly(path: string): { db: Database.Database; version: number } {
  let db: Database.Database;
  try {
    db = openInPlace(path);
  } catch (error) {
    const code = (error as { code?: unknown }).code;
    const inPlaceImpossible = code === 'SQLITE_READONLY_DIRECTORY' || code === 'SQLITE_CANTOPEN';
    if (!inPlaceImpossible || !existsSync(path) || existsSync(`${path}-wal`)) throw describeSqliteFailure(path, error);
    try {
      db = openInMemoryCopy(path);
    } catch (copyError) {
      throw describeSqliteFailure(path, copyError);
    }
  }

  try {
    const version = readSqliteSchemaVersion(db);
    const newest = newestVersion(sqliteMigrations);
    if (version > newest) {
      throw new TokenwiseError(
        'store_failed',
        `database schema version ${version} is newer than this Tokenwise supports (${newest}); upgrade Tokenwise or use another --data-dir`,
      );
    }
    if (version < newest) {
      throw new TokenwiseError(
        'store_failed',
        `the database ${path} is at schema version ${version}, older than this Tokenwise reads (${newest}): start tokenwise serve once to upgrade it`,
      );
    }
    return { db, version };
  } catch (error) {
    db.close();
    throw describeSqliteFailure(path, error);
  }
}

function openInPlace(path: string): Database.Database {
  const db = new Database(path, { readonly: true, fileMustExist: true });
  try {
    // Opening is lazy: the first read is what needs the -shm file.
    db.pragma(`busy_timeout = ${READ_BUSY_TIMEOUT_MS}`);
    db.prepare('SELECT count(*) FROM sqlite_master').get();
    return db;
  } catch (error) {
    db.close();
    throw error;
  }
}

function openInMemoryCopy(path: string): Database.Database {
  const size = statSync(path).size;
  if (size > MAX_IN_MEMORY_COPY_BYTES) {
    throw new TokenwiseError(
      'store_failed',
      `SQLite cannot read ${path} in place because ${dirname(path)} is not writable (it needs to create ${path}-shm), and the file is too large to copy into memory: make the directory writable, or start tokenwise serve and read through it`,
    );
  }
  const image = readFileSync(path);
  // Bytes 18 and 19 of the header are the file format versions, 2 for WAL. An in-memory database cannot
  // use WAL, so the copy is marked as a rollback-journal database (1), which it then reads as usual.
  image[18] = 1;
  image[19] = 1;
  return new Database(image, { readonly: true });
}
