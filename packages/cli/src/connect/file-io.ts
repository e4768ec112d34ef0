import { createHash, randomBytes } from 'node:crypto';
import { chmod, chown, lstat, mkdir, readFile, readlink, realpath, rename, rm, rmdir, stat, writeFile } from 'node:fs/promises';
import { dirname, resolve } from 'node:path';
import type { SqliteItem } from './sqlite-item.js';

/** A file as connect found it. Symlinks are followed: reads and writes go to the link's target. */
export interface FileSnapshot {
  /** The path as the tool and the person know it (possibly a symlink). */
  path: string;
  /** Where the bytes live: the symlink's target, or `path` itself. */
  realPath: string;
  exists: boolean;
  text: string;
  sha256: string | null;
  /** Permission bits, or null for a missing file. */
  mode: number | null;
  uid: number | null;
  gid: number | null;
  /**
   * Set when the document is the JSON value of a row in an SQLite database at `path`: `text` and `sha256`
   * are the value's, `exists` says whether the row exists, and mode and owner are the database file's.
   */
  item?: SqliteItem;
}

export class FileAccessError extends Error {}

export async function readSnapshot(path: string): Promise<FileSnapshot> {
  const realPath = await resolveLink(path);
  let bytes: Buffer;
  try {
    bytes = await readFile(realPath);
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    if (code === 'ENOENT') return { path, realPath, exists: false, text: '', sha256: null, mode: null, uid: null, gid: null };
    if (code === 'EISDIR') throw new FileAccessError(`${path} is a directory, not a file: move it away and run connect again`);
    throw new FileAccessError(`failed to read ${path} (${code ?? 'error'}): check its permissions`);
  }
  const info = await stat(realPath);
  return {
    path,
    realPath,
    exists: true,
    text: bytes.toString('utf8'),
    sha256: sha256(bytes),
    mode: info.mode & 0o7777,
    uid: info.uid,
    gid: info.gid,
  };
}

/**
 * A file without the owner's write bit counts as read-only even for root. Writes go through a rename, which
 * the file's own mode would not stop, so the check is explicit: a person (or a tool such as home-manager)
 * who made a dotfile read-only does not want it rewritten.
 */
export function isReadOnly(snapshot: FileSnapshot): boolean {
  return snapshot.mode !== null && (snapshot.mode & 0o200) === 0;
}

export function sha256(content: string | Uint8Array): string {
  return createHash('sha256').update(content).digest('hex');
}

/**
 * Write `content` so that readers see the old or the new content, never a part: a temporary file in the same
 * directory, given the old file's mode and owner, renamed over the target. A new file gets mode 0600
 * because the base URLs written into it carry the route token. Returns the directories it had to create.
 */
export async function writeFileAtomic(snapshot: FileSnapshot, content: string | Uint8Array): Promise<string[]> {
  const createdDirs = await makeParentDirs(snapshot.realPath);
  const temporary = `${snapshot.realPath}.tokenwise-${process.pid}-${randomBytes(4).toString('hex')}.tmp`;
  try {
    await writeFile(temporary, content, { flag: 'wx', mode: 0o600 });
    await chmod(temporary, snapshot.mode ?? 0o600);
    if (snapshot.uid !== null && snapshot.gid !== null) await keepOwner(temporary, snapshot.uid, snapshot.gid);
    await rename(temporary, snapshot.realPath);
  } catch (error) {
    await rm(temporary, { force: true });
    throw error;
  }
  return createdDirs;
}

/** Copy a file's current bytes to `backupPath`, with the same mode, replacing an older backup. */
export async function writeBackup(snapshot: FileSnapshot, backupPath: string): Promise<void> {
  const bytes = await readFile(snapshot.realPath);
  const temporary = `${backupPath}.${process.pid}.tmp`;
  await writeFile(temporary, bytes, { mode: 0o600 });
  await chmod(temporary, snapshot.mode ?? 0o600);
  await rename(temporary, backupPath);
}

export async function readBackup(backupPath: string): Promise<Buffer | null> {
  try {
    return await readFile(backupPath);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return null;
    throw error;
  }
}

export async function removeFile(path: string): Promise<void> {
  await rm(path, { force: true });
}

/** Remove directories connect created, deepest first, as long as they are empty. */
export async function removeEmptyDirs(dirs: string[]): Promise<void> {
  for (const dir of [...dirs].sort((a, b) => b.length - a.length)) {
    try {
      await rmdir(dir);
    } catch {
      // Not empty (the person or the tool put files there since) or already gone: leave it.
    }
  }
}

async function makeParentDirs(file: string): Promise<string[]> {
  const created: string[] = [];
  let dir = dirname(file);
  while (!(await exists(dir))) {
    created.unshift(dir);
    dir = dirname(dir);
  }
  if (created.length > 0) await mkdir(created.at(-1)!, { recursive: true, mode: 0o700 });
  return created;
}

async function exists(path: string): Promise<boolean> {
  try {
    await stat(path);
    return true;
  } catch {
    return false;
  }
}

/**
 * Follow a symlinked dotfile (for example one managed in a dotfiles repository) to the file it points to,
 * so the edit lands there and the link stays. A dangling link is followed to where its target would be.
 */
export async function resolveLink(path: string): Promise<string> {
  try {
    return await realpath(path);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== 'ENOENT') throw error;
  }
  try {
    const info = await lstat(path);
    if (info.isSymbolicLink()) return resolve(dirname(path), await readlink(path));
  } catch {
    // The path does not exist at all: it is created as a plain file.
  }
  return path;
}

async function keepOwner(path: string, uid: number, gid: number): Promise<void> {
  try {
    await chown(path, uid, gid);
  } catch (error) {
    // Only root can give a file away; a person editing their own files keeps their own ownership anyway.
    if ((error as NodeJS.ErrnoException).code !== 'EPERM') throw error;
  }
}
