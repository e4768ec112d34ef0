import { existsSync } from 'node:fs';
import { open, rm, stat } from 'node:fs/promises';
import { TokenwiseError } from '@tokenwise/core';
import Database from 'better-sqlite3';

export interface SqliteBackupReport {
  source: string;
  target: string;
  bytes: number;
  calls: number;
}

/**
 * Copy a SQLite database to `targetPath` with SQLite's online backup API, which copies a consistent
 * snapshot page by page while a server keeps writing (better-sqlite3 12 `Database#backup`). The target
 * is created owner-only before any page is written and must not exist yet. Afterwards the copy must
 * pass `PRAGMA integrity_check`, or it is deleted and the backup fails.
 */
export async function backupSqlite(sourcePath: string, targetPath: string): Promise<SqliteBackupReport> {
  if (!existsSync(sourcePath)) {
    throw new TokenwiseError('invalid_argument', `no SQLite database at ${sourcePath}: pass the --data-dir the server uses`);
  }

  // SQLite reads an empty file as an empty database, so the backup writes into this owner-only file.
  const handle = await open(targetPath, 'wx', 0o600).catch((error: NodeJS.ErrnoException) => {
    const fix = error.code === 'EEXIST' ? 'pass another --to or delete the old file' : 'pass a writable --to';
    throw new TokenwiseError('invalid_argument', `failed to create the backup file ${targetPath} (${error.code ?? 'error'}): ${fix}`);
  });
  await handle.close();

  const source = new Database(sourcePath, { readonly: true, fileMustExist: true });
  try {
    await source.backup(targetPath);
  } catch (error) {
    await rm(targetPath, { force: true });
    throw error;
  } finally {
    source.close();
  }

  const calls = checkBackup(targetPath);
  if (calls === null) {
    await rm(targetPath, { force: true });
    throw new TokenwiseError(
      'store_failed',
      `the backup of ${sourcePath} failed its integrity check and was deleted: run the backup again`,
    );
  }
  return { source: sourcePath, target: targetPath, bytes: (await stat(targetPath)).size, calls };
}

/**
 * Return the number of calls in the backup, or null when it fails SQLite's integrity check. The copy
 * inherits WAL mode from the source; switching it to a rollback journal leaves one self-contained file.
 */
function checkBackup(path: string): number | null {
  const db = new Database(path, { fileMustExist: true });
  try {
    db.pragma('journal_mode = DELETE');
    const result = db.prepare('PRAGMA integrity_check').pluck().get();
    if (result !== 'ok') return null;
    return db.prepare<[], number>('SELECT count(*) FROM calls').pluck().get() ?? 0;
  } finally {
    db.close();
  }
}
