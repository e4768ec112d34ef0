import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { hostname, tmpdir } from 'node:os';
import { join } from 'node:path';
import { PassThrough } from 'node:stream';
import { findLocalWorkspace, type RunningServer, resolveServeConfig, serve } from '@tokenwise/server';
import { SqliteStore } from '@tokenwise/storage';
import { run } from 'tokenwise';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';

/**
 * `tokenwise connect --server URL` against a server it has no token for: it pairs the machine through the
 * device authorization grant. The person's approval in the browser is stood in for by the store call the
 * /device page makes, so the test exercises the CLI's side: the printed code, the polling and the result.
 */
let root: string;
let server: RunningServer;
let store: SqliteStore;
let home: string;
let connectDataDir: string;

beforeEach(async () => {
  root = await mkdtemp(join(tmpdir(), 'tokenwise-pairing-'));
  const serverDir = join(root, 'server');
  await mkdir(serverDir);
  store = new SqliteStore(join(serverDir, 'tokenwise.db'));
  server = await serve({ ...resolveServeConfig({ host: '127.0.0.1', port: '0', dataDir: serverDir, logLevel: 'silent' }, {}), store });
  home = join(root, 'home');
  connectDataDir = join(root, 'connect-data');
  await mkdir(join(home, '.claude'), { recursive: true });
  await writeFile(join(home, '.claude', 'settings.json'), '{}\n');
});

afterEach(async () => {
  await server.close();
  await rm(root, { recursive: true, force: true });
});

type Decision = 'approve' | 'deny';

/** Run `tokenwise` in-process; when it prints a pairing code, decide it the way the /device page does. */
async function tokenwise(args: string[], decision: Decision | null = null) {
  let stdout = '';
  let stderr = '';
  let decided: Promise<void> = Promise.resolve();
  const io = {
    stdout: {
      write: (text: string) => {
        stdout += text;
        const code = /enter the code ([A-Z]{4}-[A-Z]{4})/.exec(text)?.[1];
        if (code && decision) decided = decide(code.replace('-', ''), decision);
      },
    },
    stderr: { write: (text: string) => (stderr += text) },
    env: { HOME: home, PATH: join(root, 'bin'), SHELL: '/bin/bash', NO_COLOR: '1', TOKENWISE_NO_BROWSER: '1' },
    stdin: Object.assign(new PassThrough(), { isTTY: false }),
  };
  io.stdin.end();
  const code = await run([...args, '--data-dir', connectDataDir], io);
  await decided;
  return { code, stdout, stderr };
}

async function decide(userCode: string, decision: Decision): Promise<void> {
  const workspace = (await findLocalWorkspace(store))!;
  const user =
    (await store.findUserByEmail('ada@example.com')) ??
    (await store.createUser({ email: 'ada@example.com', name: 'Ada', passwordHash: 'scrypt$x' }));
  const code = await store.findDeviceCodeByUserCode(userCode);
  expect(code?.status).toBe('pending');
  expect(code?.deviceName).toBe(hostname().slice(0, 100));
  await store.decideDeviceCode(
    code!.id,
    decision === 'approve'
      ? { status: 'approved', workspaceId: workspace.id, userId: user.id }
      : { status: 'denied', workspaceId: null, userId: user.id },
    new Date(),
  );
}

describe('connect by pairing', () => {
  it('pairs, points the tool at the new token, reuses it, and revokes it on disconnect', async () => {
    const result = await tokenwise(['connect', '--server', server.url, '--only', 'claude-code', '--yes'], 'approve');

    expect(result.code, result.stdout + result.stderr).toBe(0);
    expect(result.stdout).toMatch(new RegExp(`To pair this machine, open ${server.url}/device and enter the code [A-Z]{4}-[A-Z]{4}`));
    expect(result.stdout).toContain(`\nOr open ${server.url}/device?user_code=`);
    expect(result.stdout).toMatch(/user_code=[A-Z]{4}-[A-Z]{4}\nWaiting for approval…\n/);
    expect(result.stdout).toContain('Paired: this machine is device');
    const settings = JSON.parse(await readFile(join(home, '.claude', 'settings.json'), 'utf8')) as { env: { ANTHROPIC_BASE_URL: string } };
    const token = new RegExp(`^${server.url}/r/(twr_[\\w-]+)/anthropic$`).exec(settings.env.ANTHROPIC_BASE_URL)?.[1];
    expect(token).toBeDefined();
    expect(token).not.toBe(server.routeToken);

    const self = (await (
      await fetch(`${server.url}/api/v1/route-tokens/self`, { headers: { authorization: `Bearer ${token}` } })
    ).json()) as {
      device_id: string;
    };
    const device = await store.getDevice(self.device_id);
    expect(device).toMatchObject({ name: hostname().slice(0, 100), os: process.platform, revokedAt: null });
    expect(device?.userId).toEqual(expect.any(String));

    const again = await tokenwise(['connect', '--server', server.url, '--only', 'claude-code', '--yes']);
    expect(again.code, again.stdout + again.stderr).toBe(0);
    expect(again.stdout).not.toContain('To pair this machine');

    const disconnected = await tokenwise(['disconnect', '--yes']);
    expect(disconnected.code, disconnected.stdout).toBe(0);
    expect((await store.getDevice(device!.id))?.revokedAt).toEqual(expect.any(String));
  }, 60_000);

  it('stops and changes nothing when the pairing is denied', async () => {
    const result = await tokenwise(['connect', '--server', server.url, '--only', 'claude-code', '--yes'], 'deny');

    expect(result.code).toBe(1);
    expect(result.stderr).toContain('the pairing was denied in the browser, so nothing was changed');
    expect(await readFile(join(home, '.claude', 'settings.json'), 'utf8')).toBe('{}\n');
  }, 60_000);

  it('plans a dry run without pairing', async () => {
    const result = await tokenwise(['connect', '--server', server.url, '--only', 'claude-code', '--dry-run']);

    expect(result.code, result.stderr).toBe(0);
    expect(result.stdout).toContain('paired in the browser when applying');
    expect(result.stdout).not.toContain('To pair this machine');
  });
});
