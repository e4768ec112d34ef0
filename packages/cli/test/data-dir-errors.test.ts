import { once } from 'node:events';
import { existsSync } from 'node:fs';
import { chmod, chown, cp, mkdtemp, open, readdir, rm, writeFile } from 'node:fs/promises';
import type { AddressInfo } from 'node:net';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { CallRecord } from '@tokenwise/core';
import { type FakeProvider, startFakeProvider } from '@tokenwise/testkit';
import { afterAll, beforeAll, beforeEach, describe, expect, it, vi } from 'vitest';
import { runCli, startServe } from './helpers/cli-process.js';

/**
 * Root ignores file modes, so as root the read-only cases run the CLI as `nobody` on files it owns;
 * otherwise as the current user. Either way the files are readable but not writable by the CLI.
 */
const NOBODY = 65_534;
const cliUser = process.getuid?.() === 0 ? { uid: NOBODY, gid: NOBODY } : null;

let upstream: FakeProvider;
let root: string;
/** A data directory with one stored call, copied by each test. */
let seedDir: string;

beforeAll(async () => {
  upstream = await startFakeProvider();
  root = await mkdtemp(join(tmpdir(), 'tokenwise-datadir-'));
  await chmod(root, 0o755);
  seedDir = join(root, 'seed');

  const server = await startServe(['--port', '0', '--data-dir', seedDir, '--upstream', `anthropic=${upstream.url}`]);
  const response = await fetch(`${server.url}/r/${server.routeToken}/anthropic/v1/messages`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', 'x-api-key': 'sk-ant-api03-FAKE-datadir', 'anthropic-version': '2023-06-01' },
    body: JSON.stringify({ model: 'claude-sonnet-4-5', max_tokens: 16, messages: [{ role: 'user', content: 'say hi' }] }),
  });
  await response.arrayBuffer();
  await vi.waitFor(async () => expect((await runCli(['calls', '--json', '--data-dir', seedDir])).stdout).toContain('claude-sonnet-4-5'), {
    timeout: 15_000,
  });
  expect(await server.stop()).toBe(0);
});

afterAll(async () => {
  await upstream.close();
  await rm(root, { recursive: true, force: true });
});

let testDir: string;

beforeEach(async (context) => {
  testDir = join(root, context.task.id);
  await cp(seedDir, testDir, { recursive: true });
});

/** Make the data directory and its files owned by the CLI's user and read-only for it. */
async function makeReadOnly(dir: string): Promise<void> {
  for (const name of await readdir(dir)) {
    if (cliUser) await chown(join(dir, name), cliUser.uid, cliUser.gid);
    await chmod(join(dir, name), 0o400);
  }
  if (cliUser) await chown(dir, cliUser.uid, cliUser.gid);
  await chmod(dir, 0o500);
}

/** Check for a failure the person can act on: the message, no stack trace, no request to report a bug. */
function expectPlainFailure(result: { code: number | null; stderr: string }, ...phrases: string[]): void {
  expect(result.code).not.toBe(0);
  for (const phrase of phrases) expect(result.stderr).toContain(phrase);
  expect(result.stderr).not.toContain('please report');
  expect(result.stderr).not.toMatch(/^\s+at /m);
}

describe('a read-only data directory', () => {
  // Regression: `calls` opened the database for writing (WAL set-up, migrations) and failed with
  // "unexpected error, please report it: SqliteError: attempt to write a readonly database".
  it('still lists calls', async () => {
    await makeReadOnly(testDir);

    const table = await runCli(['calls', '--data-dir', testDir], {}, cliUser);
    const json = await runCli(['calls', '--json', '--data-dir', testDir], {}, cliUser);

    expect(table.stderr).toBe('');
    expect(table.code).toBe(0);
    expect(table.stdout).toMatch(/claude-sonnet-4-5\S*\s+success/);
    expect(json.code).toBe(0);
    const records = json.stdout
      .trim()
      .split('\n')
      .map((line) => JSON.parse(line) as CallRecord);
    expect(records).toHaveLength(1);
    expect(records[0]).toMatchObject({ model_requested: 'claude-sonnet-4-5', status: 'success' });
  });

  it('fails serve naming the database', async () => {
    await makeReadOnly(testDir);

    const result = await runCli(['serve', '--port', '0', '--data-dir', testDir], {}, cliUser);

    expectPlainFailure(result, join(testDir, 'tokenwise.db'), 'is read-only for this user', 'pass another --data-dir');
  });

  it('fails token create naming the database', async () => {
    await makeReadOnly(testDir);

    const result = await runCli(['token', 'create', '--data-dir', testDir], {}, cliUser);

    expectPlainFailure(result, join(testDir, 'tokenwise.db'), 'is read-only for this user');
    expect(result.stdout).toBe('');
  });
});

describe('a broken database', () => {
  // Regression: a database file of random bytes or with a damaged page gave "unexpected error, please
  // report it" and a stack trace instead of saying which file to move aside.
  it('names a file that is not a database', async () => {
    const database = join(testDir, 'tokenwise.db');
    await writeFile(database, Buffer.alloc(8192, 0x5a));

    for (const args of [['serve', '--port', '0'], ['calls'], ['token', 'create']]) {
      const result = await runCli([...args, '--data-dir', testDir]);
      expectPlainFailure(result, `${database} is not a SQLite database`, `mv ${database} ${database}.broken`);
    }
  });

  it('names a damaged database', async () => {
    const database = join(testDir, 'tokenwise.db');
    const file = await open(database, 'r+');
    await file.write(Buffer.alloc(4096, 0xff), 0, 4096, 2 * 4096);
    await file.close();

    const result = await runCli(['serve', '--port', '0', '--data-dir', testDir]);

    expectPlainFailure(result, `the database ${database} is damaged`, 'move it aside');
  });
});

describe('a data directory that is a file', () => {
  // Regression: `calls --data-dir FILE` failed with "unexpected error ... ENOTDIR ... server.json".
  it('names the path for every command', async () => {
    const file = join(testDir, 'tokenwise.db');

    for (const args of [['calls'], ['tail'], ['token', 'create'], ['serve', '--port', '0']]) {
      const result = await runCli([...args, '--data-dir', file]);
      expectPlainFailure(result, file);
    }
  });
});

describe('a failed command', () => {
  it('leaves no new data directory from dev seed', async () => {
    const fresh = join(root, 'fresh-seed', 'data');

    const result = await runCli(['dev', 'seed', '--calls', '5', '--workspace', 'nope', '--data-dir', fresh]);

    expect(result.code).not.toBe(0);
    expect(result.stderr).toContain('no workspace with this id');
    expect(existsSync(join(root, 'fresh-seed'))).toBe(false);
  });

  it('leaves no new data directory from serve on a busy port', async () => {
    const busy = createServer();
    busy.listen(0, '127.0.0.1');
    await once(busy, 'listening');
    const { port } = busy.address() as AddressInfo;
    const fresh = join(root, 'fresh-serve');
    try {
      const result = await runCli(['serve', '--port', String(port), '--data-dir', fresh]);

      expect(result.code).not.toBe(0);
      expect(result.stderr).toContain('already in use');
      expect(existsSync(fresh)).toBe(false);
    } finally {
      busy.close();
    }
  });

  it('keeps a data directory that existed', async () => {
    const result = await runCli(['dev', 'seed', '--calls', '5', '--workspace', 'nope', '--data-dir', testDir]);

    expect(result.code).not.toBe(0);
    expect(existsSync(join(testDir, 'tokenwise.db'))).toBe(true);
  });
});
