import { stat } from 'node:fs/promises';
import {
  FileAccessError,
  type FileSnapshot,
  isReadOnly,
  readBackup,
  readSnapshot,
  removeFile,
  resolveLink,
  sha256,
  writeFileAtomic,
} from './file-io.js';
import { findRunningProcess } from './running-processes.js';
import { checkNoPendingJournal, readItem, replaceItem, type SqliteItem } from './sqlite-item.js';

/**
 * The documents connect edits: a whole file, or the JSON value in one row of an SQLite database file
 * (`item`). Both read as a `FileSnapshot` whose `text` is the document, so planning, diffs and undo treat
 * them alike; only reading and writing differ.
 */

/** Read a file, or the value of `item` in the SQLite database at `path`. */
export async function readDocument(path: string, item?: SqliteItem): Promise<FileSnapshot> {
  if (!item) return readSnapshot(path);

  const realPath = await resolveLink(path);
  const info = await stat(realPath).catch(() => null);
  const value = await readItem(realPath, item);
  return {
    path,
    realPath,
    exists: value.bytes !== null,
    text: value.bytes === null ? '' : new TextDecoder().decode(value.bytes),
    sha256: value.bytes === null ? null : sha256(value.bytes),
    mode: info ? info.mode & 0o7777 : null,
    uid: info?.uid ?? null,
    gid: info?.gid ?? null,
    item,
  };
}

/**
 * Throw a `FileAccessError` when the document cannot be written now: a read-only file, or a database
 * whose application runs (it writes the database back when it exits) or whose journal is not empty.
 */
export async function checkEditable(snapshot: FileSnapshot): Promise<void> {
  if (isReadOnly(snapshot)) {
    throw new FileAccessError(
      `${snapshot.path} is read-only: make it writable (chmod u+w ${snapshot.path}) and run the command again, or edit it by hand`,
    );
  }
  if (!snapshot.item) return;
  await checkOwnerAppClosed(snapshot.item, snapshot.path);
  await checkNoPendingJournal(snapshot.realPath);
}

/**
 * Write the document's new content atomically. For a database item the database file is read again,
 * the row's value replaced, and the whole file written through a rename. Returns the directories created.
 */
export async function writeDocument(snapshot: FileSnapshot, content: string | Uint8Array): Promise<string[]> {
  if (!snapshot.item) return writeFileAtomic(snapshot, content);
  await checkEditable(snapshot);
  const database = await replaceItem(snapshot.realPath, snapshot.item, content);
  return writeFileAtomic(snapshot, database);
}

/** Delete a document connect created. Connect never creates database rows, so it never deletes one. */
export async function removeDocument(snapshot: FileSnapshot): Promise<void> {
  if (snapshot.item) throw new Error(`refusing to delete the row "${snapshot.item.key}" in ${snapshot.path}: connect never creates rows`);
  await removeFile(snapshot.realPath);
}

/** Read the original document from its backup: the backup file, or the item's value in the backed-up database. */
export async function readOriginal(backupPath: string, item: SqliteItem | undefined): Promise<Buffer | null> {
  if (!item) return readBackup(backupPath);
  const value = await readItem(backupPath, item);
  return value.bytes === null ? null : Buffer.from(value.bytes);
}

async function checkOwnerAppClosed(item: SqliteItem, path: string): Promise<void> {
  if (!item.ownerApp) return;
  const { name, processNames } = item.ownerApp;
  let pid: number | null;
  try {
    pid = await findRunningProcess(processNames, process.platform);
  } catch (error) {
    throw new FileAccessError(
      `failed to check whether ${name} is running (${(error as Error).message}): quit ${name} and run the command again`,
    );
  }
  if (pid !== null) {
    throw new FileAccessError(
      `${name} is running (process ${pid}): quit it and run the command again, because it writes ${path} back when it exits and would undo the change`,
    );
  }
}
