import { randomUUID } from 'node:crypto';
import { link, mkdir, open, readFile, rename, rm, stat, writeFile } from 'node:fs/promises';
import { hostname } from 'node:os';
import { join } from 'node:path';
import { CliError } from '../cli-error.js';

export const LOCK_FILE_NAME = 'connect.lock';

/** The lock file's content: its holder, so another run can tell a live holder from a crashed one. */
interface LockOwner {
  pid: number;
  hostname: string;
  command: string;
  startedAt: string;
  /** Tells two runs in one process apart. */
  runId: string;
}

export interface ConnectLock {
  release(): Promise<void>;
}

/** How often a run retries after it removed a stale lock and another run took the lock first. */
const MAX_ATTEMPTS = 3;
/**
 * Age in ms after which a lock file without a readable holder counts as stale. Only the exclusive-create
 * fallback leaves a moment between creating the file and writing the holder, so such a file is a crashed run's.
 */
const UNREADABLE_STALE_MS = 10_000;

/**
 * Take the data directory's connect lock, so two `connect` or `disconnect` runs never read, plan and write
 * the connect state and the tools' files at the same time. A lock left by a process that no longer runs on
 * this machine is stale and taken over. Throws a `CliError` naming the holder when another run has it.
 */
export async function acquireConnectLock(dataDir: string, command: string): Promise<ConnectLock> {
  const path = join(dataDir, LOCK_FILE_NAME);
  await mkdir(dataDir, { recursive: true, mode: 0o700 });
  const owner: LockOwner = { pid: process.pid, hostname: hostname(), command, startedAt: new Date().toISOString(), runId: randomUUID() };

  for (let attempt = 0; attempt < MAX_ATTEMPTS; attempt += 1) {
    if (await createLockFile(path, owner)) return { release: () => releaseLock(path, owner) };

    const holder = await readOwner(path);
    if (holder === 'missing') continue;
    if (holder === 'unreadable') {
      if (!(await isOlderThan(path, UNREADABLE_STALE_MS))) throw unreadableError(path);
      await removeStaleLock(path, (moved) => moved === 'unreadable');
      continue;
    }
    if (isAlive(holder)) throw heldError(path, holder);
    await removeStaleLock(path, (moved) => isSameOwner(moved, holder));
  }
  throw new CliError(`failed to take the lock ${path}: other tokenwise runs keep taking it; run the command again`);
}

/**
 * Create the lock file with its holder already written, so no other run ever reads an empty lock: the
 * content goes to a temporary file that is then hard-linked to the lock's name, which fails when the lock
 * exists. Where hard links are not supported, the file is created exclusively and written after.
 * Returns false when another run holds the lock.
 */
async function createLockFile(path: string, owner: LockOwner): Promise<boolean> {
  const content = `${JSON.stringify(owner)}\n`;
  const temporary = `${path}.${owner.runId}.tmp`;
  try {
    await writeFile(temporary, content, { mode: 0o600, flag: 'wx' });
    await link(temporary, path);
    return true;
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    if (code === 'EEXIST') return false;
    if (code !== 'EPERM' && code !== 'ENOTSUP' && code !== 'ENOSYS') throw lockError(path, code);
  } finally {
    await rm(temporary, { force: true });
  }
  return createLockFileExclusively(path, content);
}

async function createLockFileExclusively(path: string, content: string): Promise<boolean> {
  let handle: Awaited<ReturnType<typeof open>>;
  try {
    handle = await open(path, 'wx', 0o600);
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    if (code === 'EEXIST') return false;
    throw lockError(path, code);
  }
  try {
    await handle.writeFile(content);
  } finally {
    await handle.close();
  }
  return true;
}

function lockError(path: string, code: string | undefined): CliError {
  return new CliError(`failed to create the lock ${path} (${code ?? 'error'}): check the permissions of its directory`);
}

async function readOwner(path: string): Promise<LockOwner | 'missing' | 'unreadable'> {
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return 'missing';
    return 'unreadable';
  }
  try {
    const parsed = JSON.parse(text) as Partial<LockOwner>;
    if (typeof parsed.pid === 'number' && typeof parsed.hostname === 'string') {
      return {
        pid: parsed.pid,
        hostname: parsed.hostname,
        command: String(parsed.command),
        startedAt: String(parsed.startedAt),
        runId: String(parsed.runId),
      };
    }
  } catch {
    // Fall through: without hard links a holder writes the file right after creating it, so it may be empty for a moment.
  }
  return 'unreadable';
}

/**
 * True when the holder may still run. A process on another machine (a data directory on a network share)
 * cannot be checked, so it counts as alive.
 */
function isAlive(holder: LockOwner): boolean {
  if (holder.hostname !== hostname()) return true;
  try {
    process.kill(holder.pid, 0);
    return true;
  } catch (error) {
    // EPERM: the process exists but belongs to another user.
    return (error as NodeJS.ErrnoException).code !== 'ESRCH';
  }
}

/**
 * Remove a stale lock without removing a fresh one that another run created after this one read the stale
 * holder: the file is first moved aside, and put back when it turns out not to be the stale one.
 */
async function removeStaleLock(path: string, isStale: (moved: LockOwner | 'missing' | 'unreadable') => boolean): Promise<void> {
  const aside = `${path}.${process.pid}.stale`;
  try {
    await rename(path, aside);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return;
    throw error;
  }
  if (!isStale(await readOwner(aside))) {
    // link() fails when a lock exists again, so a third run's lock is never overwritten.
    await link(aside, path).catch(() => undefined);
  }
  await rm(aside, { force: true });
}

async function releaseLock(path: string, owner: LockOwner): Promise<void> {
  // A lock that is no longer ours (removed by hand and taken by another run) stays.
  if (isSameOwner(await readOwner(path), owner)) await rm(path, { force: true });
}

function isSameOwner(found: LockOwner | 'missing' | 'unreadable', owner: LockOwner): boolean {
  return found !== 'missing' && found !== 'unreadable' && found.pid === owner.pid && found.runId === owner.runId;
}

async function isOlderThan(path: string, ageMs: number): Promise<boolean> {
  try {
    return Date.now() - (await stat(path)).mtimeMs > ageMs;
  } catch {
    return false;
  }
}

function heldError(path: string, holder: LockOwner): CliError {
  const where = holder.hostname === hostname() ? `process ${holder.pid}` : `process ${holder.pid} on ${holder.hostname}`;
  return new CliError(
    `another "tokenwise ${holder.command}" (${where}, started ${holder.startedAt}) is changing the connected tools: ` +
      `wait for it to finish and run the command again, or delete ${path} if that process is gone`,
  );
}

function unreadableError(path: string): CliError {
  return new CliError(
    `the lock ${path} exists but names no process: another tokenwise run may have just created it; ` +
      `run the command again, or delete ${path} if no connect or disconnect is running`,
  );
}
