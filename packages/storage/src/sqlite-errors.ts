import { dirname } from 'node:path';
import { TokenwiseError } from '@tokenwise/core';

/**
 * Turn a better-sqlite3 error about the database file itself (permissions, damage, a full disk) into a
 * `store_failed` error whose message names the file and what to do. Other errors (a constraint, a bug in a
 * statement) come back unchanged, since no action by the person fixes them.
 */
export function describeSqliteFailure(path: string, error: unknown): unknown {
  const code = (error as { code?: unknown } | null)?.code;
  if (typeof code !== 'string' || !code.startsWith('SQLITE_')) return error;

  const message = messageFor(path, code, (error as Error).message);
  return message === null ? error : new TokenwiseError('store_failed', message, { cause: error });
}

function messageFor(path: string, code: string, detail: string): string | null {
  const dir = dirname(path);
  if (code.startsWith('SQLITE_READONLY') || code === 'SQLITE_PERM' || code === 'SQLITE_AUTH') {
    return `the database ${path} is read-only for this user (${code}): make ${dir} and the files in it writable (chmod u+w), run tokenwise as the user that owns them, or pass another --data-dir`;
  }
  if (code.startsWith('SQLITE_CANTOPEN')) {
    return `failed to open the database ${path} (${code}): check that ${dir} is a directory this user can read and write, or pass another --data-dir`;
  }
  if (code === 'SQLITE_NOTADB') {
    return `${path} is not a SQLite database (${code}): move it aside (mv ${path} ${path}.broken) so tokenwise serve creates a new one, or pass another --data-dir`;
  }
  if (code.startsWith('SQLITE_CORRUPT')) {
    return `the database ${path} is damaged (${code}: ${detail}): move it aside (mv ${path} ${path}.broken) and restore a backup, or let tokenwise serve create a new one`;
  }
  if (code === 'SQLITE_FULL') {
    return `the disk holding the database ${path} is full (${code}): free some space, then retry`;
  }
  if (code.startsWith('SQLITE_IOERR')) {
    return `reading or writing the database ${path} failed (${code}): check the disk and that ${dir} is still mounted`;
  }
  return null;
}
