import { randomBytes } from 'node:crypto';
import { chmod, mkdir, readFile, rename, rm, writeFile } from 'node:fs/promises';
import { homedir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { TokenwiseError } from '@tokenwise/core';

/** Files of a data directory, each private to the owner (mode 0600) in a directory Tokenwise creates as 0700. */
export interface DataDirPaths {
  dir: string;
  /** The SQLite database (plus its `-wal` and `-shm` files). */
  database: string;
  /** Written by a running server: its URL, pid and the local owner API token; removed on clean exit. */
  serverInfo: string;
  /**
   * Plaintext of the local route token and the owner API token, so every start can print the same base
   * URLs and the CLI can reach the API. The database keeps only their hashes.
   */
  localTokens: string;
  /** Call records on their way to the store (segment files), kept across restarts until stored. */
  spool: string;
}

export interface ServerInfo {
  url: string;
  pid: number;
  api_token: string;
  started_at: string;
  version: string;
}

export interface LocalTokens {
  route_token: string;
  api_token: string;
}

export function defaultDataDir(): string {
  return join(homedir(), '.tokenwise');
}

export function dataDirPaths(dir: string): DataDirPaths {
  const absolute = resolve(expandHome(dir));
  return {
    dir: absolute,
    database: join(absolute, 'tokenwise.db'),
    serverInfo: join(absolute, 'server.json'),
    localTokens: join(absolute, 'local-tokens.json'),
    spool: join(absolute, 'spool'),
  };
}

export interface PreparedDataDir extends DataDirPaths {
  /** The first directory `prepareDataDir` created: the data directory or a parent of it; undefined when it existed. */
  created: string | undefined;
}

/** Create the data directory (mode 0700) if it does not exist; an existing directory keeps its mode. */
export async function prepareDataDir(dir: string): Promise<PreparedDataDir> {
  const paths = dataDirPaths(dir);
  try {
    const created = await mkdir(paths.dir, { recursive: true, mode: 0o700 });
    return { ...paths, created };
  } catch (error) {
    throw new TokenwiseError(
      'invalid_argument',
      `failed to create the data directory ${paths.dir} (${(error as NodeJS.ErrnoException).code ?? 'error'}): pass a writable --data-dir`,
      { cause: error },
    );
  }
}

/**
 * Remove the directory `prepareDataDir` created, with what was written into it since, after the command
 * that needed it failed. A data directory that existed before is left alone.
 */
export async function removeCreatedDataDir(paths: PreparedDataDir): Promise<void> {
  if (paths.created !== undefined) await rm(paths.created, { recursive: true, force: true });
}

/**
 * Write a file so that readers see either the old or the new content, never a part: write a temporary
 * file with the final mode in the same directory, then rename it over the target.
 */
export async function writeFileAtomic(path: string, content: string, mode = 0o600): Promise<void> {
  const temporary = `${path}.${process.pid}.${randomBytes(4).toString('hex')}.tmp`;
  try {
    await writeFile(temporary, content, { mode, flag: 'wx' });
    // The mode passed to writeFile is reduced by the umask; set it exactly.
    await chmod(temporary, mode);
    await rename(temporary, path);
  } catch (error) {
    await rm(temporary, { force: true }).catch(() => undefined);
    throw fileFailure('write', path, error);
  }
}

export async function writeServerInfo(paths: DataDirPaths, info: ServerInfo): Promise<void> {
  await writeFileAtomic(paths.serverInfo, `${JSON.stringify(info, null, 2)}\n`);
}

/** Read the server info file; null when it is missing or was left by a process that no longer runs. */
export async function readServerInfo(paths: DataDirPaths): Promise<ServerInfo | null> {
  const info = await readJsonFile<ServerInfo>(paths.serverInfo);
  if (!info || typeof info.url !== 'string' || typeof info.api_token !== 'string' || !Number.isInteger(info.pid)) return null;
  return isProcessAlive(info.pid) ? info : null;
}

/** Remove the server info file if it still belongs to `pid`, so a newer server's file is left alone. */
export async function removeServerInfo(paths: DataDirPaths, pid: number): Promise<void> {
  const info = await readJsonFile<ServerInfo>(paths.serverInfo);
  if (info?.pid === pid) await rm(paths.serverInfo, { force: true });
}

export async function readLocalTokens(paths: DataDirPaths): Promise<LocalTokens | null> {
  const tokens = await readJsonFile<Partial<LocalTokens>>(paths.localTokens);
  if (!tokens || typeof tokens.route_token !== 'string' || typeof tokens.api_token !== 'string') return null;
  return { route_token: tokens.route_token, api_token: tokens.api_token };
}

export async function writeLocalTokens(paths: DataDirPaths, tokens: LocalTokens): Promise<void> {
  await writeFileAtomic(paths.localTokens, `${JSON.stringify(tokens, null, 2)}\n`);
}

export function isProcessAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    // EPERM: the process exists but belongs to another user.
    return (error as NodeJS.ErrnoException).code === 'EPERM';
  }
}

async function readJsonFile<T>(path: string): Promise<T | null> {
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return null;
    throw fileFailure('read', path, error);
  }
  try {
    return JSON.parse(text) as T;
  } catch {
    throw new TokenwiseError('invalid_argument', `${path} is not valid JSON: delete it and start tokenwise serve again`);
  }
}

/**
 * Turn a file system error on a data directory file into an error that names the file and the fix. An
 * error with no fix the person can apply comes back unchanged.
 */
function fileFailure(action: 'read' | 'write', path: string, error: unknown): unknown {
  const code = (error as NodeJS.ErrnoException).code;
  const dir = dirname(path);
  switch (code) {
    case 'ENOTDIR':
      return new TokenwiseError('invalid_argument', `the data directory ${dir} is not a directory: pass the --data-dir the server uses`, {
        cause: error,
      });
    case 'EACCES':
    case 'EPERM':
    case 'EROFS':
      return new TokenwiseError(
        'store_failed',
        `failed to ${action} ${path} (${code}): run tokenwise as the user that owns ${dir}, make it ${action === 'read' ? 'readable' : 'writable'}, or pass another --data-dir`,
        { cause: error },
      );
    case 'EISDIR':
      return new TokenwiseError('store_failed', `${path} is a directory, not a file: move it aside, then retry`, { cause: error });
    case 'ENOSPC':
    case 'EDQUOT':
      return new TokenwiseError('store_failed', `failed to ${action} ${path} (${code}): the disk is full; free some space, then retry`, {
        cause: error,
      });
    default:
      return error;
  }
}

function expandHome(dir: string): string {
  if (dir === '~') return homedir();
  if (dir.startsWith('~/')) return join(homedir(), dir.slice(2));
  return dir;
}
