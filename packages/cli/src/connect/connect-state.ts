import { chmod, mkdir, readFile, rename, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { CliError } from '../cli-error.js';
import type { JsonValue, StructuredFormat, TargetId } from './connect-types.js';
import type { ShellKind } from './profile-block.js';
import type { SqliteItem } from './sqlite-item.js';

export const STATE_FILE_NAME = 'connect-state.json';
const STATE_VERSION = 1;

/** How connect got the route token, which decides whether disconnect revokes it. */
export type TokenSourceKind = 'flag' | 'local' | 'api' | 'paired';

/** A key connect set, with what was there before, so disconnect can put it back. */
export interface AppliedSetting {
  target: TargetId;
  key: string[];
  value: JsonValue;
  /** The value before the first connect; absent when the key did not exist. */
  previous: { present: false } | { present: true; value: JsonValue };
  /** Tables connect created on the way to the key, outermost first; removed again when left empty. */
  createdParents: string[][];
}

/** One file connect changed. Keys are the paths the tools read (a symlink stays a symlink). */
export interface FileRecord {
  kind: StructuredFormat | 'profile';
  /** Shell syntax of a profile block. */
  shell?: ShellKind;
  original: { existed: boolean; sha256: string | null };
  /** Copy of the original bytes (`<file>.tokenwise.bak`), made before the first change; null for a new file. */
  backup: string | null;
  /** SHA-256 of what connect last wrote. */
  writtenSha256: string;
  /**
   * True while the file is the original plus connect's edits only. Then, if the file still has
   * `writtenSha256` at disconnect, the backup is restored byte for byte.
   */
  pristine: boolean;
  /** Directories connect created for the file; removed when empty after disconnect. */
  createdDirs: string[];
  settings: AppliedSetting[];
  /** Profile blocks: the targets whose variables the block holds, and the separator written before it. */
  block?: { targets: TargetId[]; separator: string };
  /**
   * Set when connect edited the JSON value of a row in the SQLite database at this path. Then `original`,
   * `writtenSha256` and `settings` describe the value, and `backup` is a copy of the whole database.
   */
  item?: SqliteItem;
}

export interface TargetRecord {
  connectedAt: string;
  variant?: string;
  /** Shell-profile variables this target added to the marked blocks. */
  profileVars: Record<string, string>;
}

export interface ConnectState {
  version: number;
  serverUrl: string;
  /** Where the tools send calls, when pairing named another origin than `serverUrl`. */
  proxyUrl?: string;
  token: { value: string; id: string | null; source: TokenSourceKind };
  targets: Partial<Record<TargetId, TargetRecord>>;
  files: Record<string, FileRecord>;
}

export function statePath(dataDir: string): string {
  return join(dataDir, STATE_FILE_NAME);
}

export async function readState(dataDir: string): Promise<ConnectState | null> {
  const path = statePath(dataDir);
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return null;
    throw new CliError(`failed to read ${path} (${(error as NodeJS.ErrnoException).code ?? 'error'}): check its permissions`);
  }

  let state: ConnectState;
  try {
    state = JSON.parse(text) as ConnectState;
  } catch {
    throw new CliError(`${path} is not valid JSON: restore it from a backup, or delete it and undo the changes listed in it by hand`);
  }
  if (state.version !== STATE_VERSION || typeof state.files !== 'object' || typeof state.targets !== 'object') {
    throw new CliError(`${path} has an unknown format (version ${String(state.version)}): use the tokenwise version that wrote it`);
  }
  return state;
}

/**
 * Write the state file (mode 0600 in a 0700 data directory: it holds the route token) through a rename, so
 * a crash leaves the old or the new state. An empty state removes the file.
 */
export async function writeState(dataDir: string, state: ConnectState): Promise<void> {
  const path = statePath(dataDir);
  if (Object.keys(state.files).length === 0 && Object.keys(state.targets).length === 0) {
    await rm(path, { force: true });
    return;
  }
  await mkdir(dataDir, { recursive: true, mode: 0o700 });
  const temporary = `${path}.${process.pid}.tmp`;
  await writeFile(temporary, `${JSON.stringify(state, null, 2)}\n`, { mode: 0o600 });
  await chmod(temporary, 0o600);
  await rename(temporary, path);
}

export function newState(serverUrl: string, token: ConnectState['token']): ConnectState {
  return { version: STATE_VERSION, serverUrl, token, targets: {}, files: {} };
}
