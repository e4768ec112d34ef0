import { type ChildProcess, spawn } from 'node:child_process';
import { once } from 'node:events';
import { mkdtemp, readdir, rm, writeFile } from 'node:fs/promises';
import { hostname, tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { type ConnectHome, createConnectHome, startLocalServer } from './helpers/connect-home.js';

let local: Awaited<ReturnType<typeof startLocalServer>>;
let home: ConnectHome;
/** A data directory of its own, so connect does not take the local server's token. */
let remoteDataDir: string;
let child: ChildProcess | null = null;

beforeAll(async () => {
  local = await startLocalServer();
});
afterAll(async () => {
  await local?.close();
});
beforeEach(async () => {
  home = await createConnectHome(local.dataDir);
  remoteDataDir = await mkdtemp(join(tmpdir(), 'tokenwise-connect-runs-'));
});
afterEach(async () => {
  if (child && child.exitCode === null && child.signalCode === null) {
    child.kill();
    await once(child, 'exit');
  }
  child = null;
  await home.remove();
  await rm(remoteDataDir, { recursive: true, force: true });
});

/** Write a lock file as a connect run in process `pid` leaves it. */
async function writeLock(dataDir: string, pid: number): Promise<void> {
  const holder = { pid, hostname: hostname(), command: 'connect', startedAt: '2026-01-01T00:00:00.000Z', runId: 'test-run' };
  await writeFile(join(dataDir, 'connect.lock'), JSON.stringify(holder));
}

/** Start a process that stays alive until the test ends it. */
async function startIdleProcess(): Promise<number> {
  child = spawn(process.execPath, ['-e', 'setTimeout(() => {}, 60_000)'], { stdio: 'ignore' });
  await once(child, 'spawn');
  return child.pid!;
}

async function createRouteToken(name: string): Promise<string> {
  const response = await fetch(`${local.server.url}/api/v1/route-tokens`, {
    method: 'POST',
    headers: { authorization: `Bearer ${local.server.apiToken}` },
    body: JSON.stringify({ name }),
  });
  expect(response.status).toBe(201);
  return ((await response.json()) as { token: string }).token;
}

async function tokenStatus(token: string): Promise<number> {
  const response = await fetch(`${local.server.url}/api/v1/route-tokens/self`, { headers: { authorization: `Bearer ${token}` } });
  await response.arrayBuffer();
  return response.status;
}

function claudeToken(settingsText: string): string {
  return /\/r\/([^/]+)\/anthropic$/.exec(JSON.parse(settingsText).env.ANTHROPIC_BASE_URL)![1]!;
}

describe('connect lock', () => {
  it('rejects a run while another holds it', async () => {
    const pid = await startIdleProcess();
    await writeLock(local.dataDir, pid);

    const result = await home.tokenwise(['connect', '--only', 'claude-code', '--yes']);

    expect(result.code).toBe(1);
    expect(result.stderr).toContain(`another "tokenwise connect" (process ${pid}, started 2026-01-01T00:00:00.000Z)`);
    expect(result.stderr).toContain(join(local.dataDir, 'connect.lock'));
    await expect(home.read('.claude/settings.json')).rejects.toThrow(/ENOENT/);
    await rm(join(local.dataDir, 'connect.lock'));
  });

  it('rejects disconnect while connect holds it', async () => {
    expect((await home.tokenwise(['connect', '--only', 'claude-code', '--yes'])).code).toBe(0);
    const pid = await startIdleProcess();
    await writeLock(local.dataDir, pid);

    const result = await home.tokenwise(['disconnect', '--yes']);

    expect(result.code).toBe(1);
    expect(result.stderr).toContain(`another "tokenwise connect" (process ${pid}`);
    expect(await home.read('.claude/settings.json')).toContain('ANTHROPIC_BASE_URL');
    await rm(join(local.dataDir, 'connect.lock'));
    expect((await home.tokenwise(['disconnect', '--yes'])).code).toBe(0);
  });

  it('lets a dry run pass a held lock', async () => {
    await writeLock(local.dataDir, await startIdleProcess());

    const result = await home.tokenwise(['connect', '--only', 'claude-code', '--dry-run']);

    expect(result.code, result.stderr).toBe(0);
    await rm(join(local.dataDir, 'connect.lock'));
  });

  it('takes over a stale lock', async () => {
    const exited = spawn(process.execPath, ['-e', ''], { stdio: 'ignore' });
    await once(exited, 'exit');
    await writeLock(local.dataDir, exited.pid!);

    const result = await home.tokenwise(['connect', '--only', 'claude-code', '--yes']);

    expect(result.code, result.stderr).toBe(0);
    expect(await home.read('.claude/settings.json')).toContain('ANTHROPIC_BASE_URL');
    expect(await readdir(local.dataDir)).not.toContain('connect.lock');
  });

  it('runs one of two concurrent connects', async () => {
    const results = await Promise.all([
      home.tokenwise(['connect', '--only', 'claude-code', '--yes']),
      home.tokenwise(['connect', '--only', 'claude-code', '--yes']),
    ]);

    expect(results.map((result) => result.code).sort()).toEqual([0, 1]);
    expect(results.find((result) => result.code === 1)?.stderr).toContain('another "tokenwise connect" (process');
    expect(await readdir(local.dataDir)).not.toContain('connect.lock');
  });
});

describe('connect with a new token', () => {
  it('revokes the token connect created before', async () => {
    const env = { TOKENWISE_API_TOKEN: local.server.apiToken };
    const first = await home.tokenwise(['connect', '--server', local.server.url, '--only', 'claude-code', '--yes'], {
      env,
      dataDir: remoteDataDir,
    });
    expect(first.code, first.stderr).toBe(0);
    const created = claudeToken(await home.read('.claude/settings.json'));
    const replacement = await createRouteToken('replacement');

    const second = await home.tokenwise(
      ['connect', '--server', local.server.url, '--token', replacement, '--only', 'claude-code', '--yes'],
      {
        dataDir: remoteDataDir,
      },
    );

    expect(second.code, second.stderr).toBe(0);
    expect(second.stdout).toContain(`Revoked the previous route token on ${local.server.url}.`);
    expect(claudeToken(await home.read('.claude/settings.json'))).toBe(replacement);
    expect(await tokenStatus(created)).toBe(401);
    expect(await tokenStatus(replacement)).toBe(200);
  });

  it('keeps the old token while a tool uses it', async () => {
    await home.write('.claude/settings.json', '{}\n');
    await home.write('.gemini/settings.json', '{}\n');
    const env = { TOKENWISE_API_TOKEN: local.server.apiToken };
    const first = await home.tokenwise(['connect', '--server', local.server.url, '--only', 'claude-code,gemini-cli', '--yes'], {
      env,
      dataDir: remoteDataDir,
    });
    expect(first.code, first.stderr).toBe(0);
    const created = claudeToken(await home.read('.claude/settings.json'));
    const replacement = await createRouteToken('replacement');

    // Yes to Claude Code's settings, no to the shell profile that carries Gemini CLI's variables.
    const second = await home.tokenwise(['connect', '--server', local.server.url, '--token', replacement, '--only', 'claude-code'], {
      dataDir: remoteDataDir,
      answers: ['y', 'n', 'y'],
    });

    expect(second.stdout).toContain('The previous route token stays valid, because these tools still use it: gemini-cli.');
    expect(await tokenStatus(created)).toBe(200);
  });

  it("keeps the local server's token", async () => {
    expect((await home.tokenwise(['connect', '--only', 'claude-code', '--yes'])).code).toBe(0);
    const replacement = await createRouteToken('replacement');

    const second = await home.tokenwise(['connect', '--token', replacement, '--only', 'claude-code', '--yes']);

    expect(second.code, second.stderr).toBe(0);
    expect(second.stdout).not.toContain('Revoked the previous route token');
    expect(await tokenStatus(local.server.routeToken)).toBe(200);
  });
});
