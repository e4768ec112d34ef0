import { type ChildProcess, spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import { once } from 'node:events';
import { mkdir, mkdtemp, readFile, rm, symlink } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { type RunningServer, resolveServeConfig, serve } from '@tokenwise/server';
import Database from 'better-sqlite3';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { type ConnectHome, createConnectHome } from './helpers/connect-home.js';

const PUBLIC_URL = 'https://tokenwise.example.com';
const SETTINGS_KEY = 'src.vs.platform.reactivestorage.browser.reactiveStorageServiceImpl.persistentStorage.applicationUser';
const DATABASE = '.config/Cursor/User/globalStorage/state.vscdb';
/** Cursor's application settings as it stores them: compact JSON with many unrelated fields. */
const ORIGINAL_SETTINGS =
  '{"composerState":{"mode":"agent","unifiedMode":"chat"},"openAIBaseUrl":"","useOpenAIKey":false,"aiSettings":{"modelOverrideEnabled":["gpt-5"]}}';
const OPENAI_KEY = 'sk-proj-FAKE-key-for-tests';

let running: RunningServer;
let dataDir: string;
let home: ConnectHome;
let cursorProcess: ChildProcess | null = null;

beforeAll(async () => {
  dataDir = await mkdtemp(join(tmpdir(), 'tokenwise-cursor-'));
  running = await serve(resolveServeConfig({ host: '127.0.0.1', port: '0', dataDir, logLevel: 'silent', publicUrl: PUBLIC_URL }, {}));
});
afterAll(async () => {
  await running?.close();
  await rm(dataDir, { recursive: true, force: true });
});
beforeEach(async () => {
  home = await createConnectHome(dataDir);
});
afterEach(async () => {
  if (cursorProcess && cursorProcess.exitCode === null && cursorProcess.signalCode === null) {
    cursorProcess.kill();
    await once(cursorProcess, 'exit');
  }
  cursorProcess = null;
  await home.remove();
});

/** Create a settings database shaped like Cursor's, in WAL mode as VS Code keeps it. */
async function createCursorDatabase(options: { withKey?: boolean; settings?: string } = {}): Promise<string> {
  const path = home.path(DATABASE);
  await mkdir(dirname(path), { recursive: true });
  const database = new Database(path);
  database.pragma('journal_mode = WAL');
  database.exec('CREATE TABLE ItemTable (key TEXT UNIQUE ON CONFLICT REPLACE, value BLOB)');
  const insert = database.prepare('INSERT INTO ItemTable (key, value) VALUES (?, ?)');
  insert.run(SETTINGS_KEY, options.settings ?? ORIGINAL_SETTINGS);
  if (options.withKey ?? true) insert.run('cursorAuth/openAIKey', OPENAI_KEY);
  insert.run('workbench.colorTheme', 'Cursor Dark');
  for (let index = 0; index < 200; index += 1) insert.run(`history.entry.${index}`, Buffer.from(`{"n":${index}}`));
  database.close();
  return path;
}

function readRow(path: string, key: string): { value: unknown; type: string } | undefined {
  const database = new Database(path, { readonly: true });
  try {
    return database.prepare('SELECT value, typeof(value) AS type FROM ItemTable WHERE key = ?').get(key) as
      | { value: unknown; type: string }
      | undefined;
  } finally {
    database.close();
  }
}

function readSettings(path: string): string {
  return readRow(path, SETTINGS_KEY)!.value as string;
}

function integrity(path: string): string {
  const database = new Database(path, { readonly: true });
  try {
    return database.pragma('integrity_check', { simple: true }) as string;
  } finally {
    database.close();
  }
}

async function fileSha(path: string): Promise<string> {
  return createHash('sha256')
    .update(await readFile(path))
    .digest('hex');
}

/** Start a process named `cursor`, as the running editor looks in the process list. */
async function startFakeCursor(): Promise<number> {
  const bin = home.path('bin');
  await mkdir(bin, { recursive: true });
  await symlink(process.execPath, join(bin, 'cursor'));
  cursorProcess = spawn(join(bin, 'cursor'), ['-e', 'setTimeout(() => {}, 60_000)'], { stdio: 'ignore' });
  await once(cursorProcess, 'spawn');
  return cursorProcess.pid!;
}

describe('connect cursor', () => {
  it('sets the base URL and restores the value exactly', async () => {
    const path = await createCursorDatabase();

    const result = await home.tokenwise(['connect', '--only', 'cursor', '--yes']);

    expect(result.code, result.stdout + result.stderr).toBe(0);
    expect(result.stdout).toContain('Warning: this turns on your own OpenAI API key in Cursor');
    const settings = JSON.parse(readSettings(path));
    expect(settings.openAIBaseUrl).toBe(`${PUBLIC_URL}/r/${running.routeToken}/openai/v1`);
    expect(settings.useOpenAIKey).toBe(true);
    expect(settings.composerState).toEqual({ mode: 'agent', unifiedMode: 'chat' });
    expect(readRow(path, 'cursorAuth/openAIKey')).toEqual({ value: OPENAI_KEY, type: 'text' });
    expect(readRow(path, 'history.entry.7')?.type).toBe('blob');
    expect(integrity(path)).toBe('ok');
    // The header still says WAL (bytes 18 and 19 are 2), as the database was before.
    expect([...(await readFile(path)).subarray(18, 20)]).toEqual([2, 2]);
    expect(await fileSha(`${path}.tokenwise.bak`)).toBeDefined();

    const connected = await fileSha(path);
    const again = await home.tokenwise(['connect', '--only', 'cursor', '--yes']);
    expect(again.code).toBe(0);
    expect(again.stdout).toContain('Already connected: nothing to change.');
    expect(await fileSha(path)).toBe(connected);

    const status = JSON.parse((await home.tokenwise(['status', '--json'])).stdout);
    expect(status.tools.find((tool: { id: string }) => tool.id === 'cursor').connected).toBe(true);

    const disconnected = await home.tokenwise(['disconnect', '--yes']);
    expect(disconnected.code, disconnected.stdout).toBe(0);
    expect(readSettings(path)).toBe(ORIGINAL_SETTINGS);
    expect(readRow(path, 'cursorAuth/openAIKey')).toEqual({ value: OPENAI_KEY, type: 'text' });
    expect(integrity(path)).toBe('ok');
    await expect(readFile(`${path}.tokenwise.bak`)).rejects.toThrow(/ENOENT/);
  });

  it('keeps a base URL the person changed', async () => {
    const path = await createCursorDatabase();
    expect((await home.tokenwise(['connect', '--only', 'cursor', '--yes'])).code).toBe(0);
    const database = new Database(path);
    const changed = JSON.stringify({ ...JSON.parse(readSettings(path)), openAIBaseUrl: 'https://gateway.example/v1' });
    database.prepare('UPDATE ItemTable SET value = ? WHERE key = ?').run(changed, SETTINGS_KEY);
    database.close();

    const result = await home.tokenwise(['disconnect', '--yes']);

    expect(result.code, result.stdout).toBe(0);
    expect(result.stdout).toContain('kept openAIBaseUrl as it is: it was changed since connect');
    const settings = JSON.parse(readSettings(path));
    expect(settings.openAIBaseUrl).toBe('https://gateway.example/v1');
    expect(settings.useOpenAIKey).toBe(false);
    expect(integrity(path)).toBe('ok');
  });

  it('sets only the base URL without a stored key', async () => {
    const path = await createCursorDatabase({ withKey: false });

    const result = await home.tokenwise(['connect', '--only', 'cursor', '--yes']);

    expect(result.code, result.stdout).toBe(0);
    expect(result.stdout).toContain('No OpenAI API key is stored in Cursor');
    const settings = JSON.parse(readSettings(path));
    expect(settings.openAIBaseUrl).toBe(`${PUBLIC_URL}/r/${running.routeToken}/openai/v1`);
    expect(settings.useOpenAIKey).toBe(false);
  });

  it('rejects connect while Cursor runs', async () => {
    const path = await createCursorDatabase();
    const before = await fileSha(path);
    const pid = await startFakeCursor();

    const result = await home.tokenwise(['connect', '--only', 'cursor', '--yes']);

    expect(result.stdout).toContain(`Skipped: Cursor is running (process ${pid}): quit it and run connect again`);
    expect(result.stdout).toContain(`Override OpenAI Base URL = ${PUBLIC_URL}/r/${running.routeToken}/openai/v1`);
    expect(await fileSha(path)).toBe(before);
  });

  it('rejects disconnect while Cursor runs', async () => {
    const path = await createCursorDatabase();
    expect((await home.tokenwise(['connect', '--only', 'cursor', '--yes'])).code).toBe(0);
    const connected = await fileSha(path);
    const pid = await startFakeCursor();

    const result = await home.tokenwise(['disconnect', '--yes']);

    expect(result.code).toBe(1);
    expect(result.stdout).toContain(`Cursor is running (process ${pid})`);
    expect(await fileSha(path)).toBe(connected);

    cursorProcess!.kill();
    await once(cursorProcess!, 'exit');
    expect((await home.tokenwise(['disconnect', '--yes'])).code).toBe(0);
    expect(readSettings(path)).toBe(ORIGINAL_SETTINGS);
  });

  it('rejects a database with pending changes', async () => {
    const path = await createCursorDatabase();
    // A second connection that stays open keeps its changes in the write-ahead log.
    const writer = new Database(path);
    writer.pragma('wal_autocheckpoint = 0');
    writer.prepare('INSERT INTO ItemTable (key, value) VALUES (?, ?)').run('pending', 'x');

    try {
      const result = await home.tokenwise(['connect', '--only', 'cursor', '--yes']);

      expect(result.code).toBe(1);
      expect(result.stdout).toContain(`${path}-wal contains changes not yet written to ${path}`);
    } finally {
      writer.close();
    }
  });

  it('edits the database from the connect bundle', async () => {
    const path = await createCursorDatabase();
    // The single file the server hands to connect.sh, built by `npm run build` (sql.js inside it).
    const bundle = fileURLToPath(new URL('../dist/tokenwise-connect.mjs', import.meta.url));
    const child = spawn(process.execPath, [bundle, 'connect', '--only', 'cursor', '--yes', '--data-dir', dataDir], {
      env: { HOME: home.home, PATH: '/usr/bin:/bin', NO_COLOR: '1' },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let output = '';
    child.stdout.setEncoding('utf8').on('data', (text: string) => (output += text));
    child.stderr.setEncoding('utf8').on('data', (text: string) => (output += text));
    const [code] = (await once(child, 'exit')) as [number | null];

    expect(code, output).toBe(0);
    expect(JSON.parse(readSettings(path)).openAIBaseUrl).toBe(`${PUBLIC_URL}/r/${running.routeToken}/openai/v1`);
    expect(integrity(path)).toBe('ok');
  });

  it('skips without a public https URL', async () => {
    const local = await mkdtemp(join(tmpdir(), 'tokenwise-cursor-local-'));
    const plain = await serve(resolveServeConfig({ host: '127.0.0.1', port: '0', dataDir: local, logLevel: 'silent' }, {}));
    try {
      const path = await createCursorDatabase();
      const before = await fileSha(path);

      const result = await home.tokenwise(['connect', '--only', 'cursor', '--yes'], { dataDir: local });

      expect(result.stdout).toContain(
        `Skipped: Cursor calls a custom OpenAI base URL from its own servers, which cannot reach ${plain.url}; it needs the Tokenwise server at a public https URL`,
      );
      expect(await fileSha(path)).toBe(before);
    } finally {
      await plain.close();
      await rm(local, { recursive: true, force: true });
    }
  });
});
