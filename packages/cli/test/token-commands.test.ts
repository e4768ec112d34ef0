import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { type FakeProvider, startFakeProvider } from '@tokenwise/testkit';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { runCli, type ServeProcess, startServe } from './helpers/cli-process.js';

let upstream: FakeProvider;
let dataDir: string;
const servers: ServeProcess[] = [];

beforeAll(async () => {
  upstream = await startFakeProvider();
});

afterAll(async () => {
  await upstream.close();
});

beforeEach(async () => {
  dataDir = await mkdtemp(join(tmpdir(), 'tokenwise-token-'));
});

afterEach(async () => {
  for (const server of servers.splice(0)) await server.stop();
  await rm(dataDir, { recursive: true, force: true });
});

async function serveOnDataDir(): Promise<ServeProcess> {
  const server = await startServe(['--port', '0', '--data-dir', dataDir, '--upstream', `anthropic=${upstream.url}`]);
  servers.push(server);
  return server;
}

async function stopServer(server: ServeProcess): Promise<void> {
  servers.splice(servers.indexOf(server), 1);
  expect(await server.stop()).toBe(0);
}

async function callStatus(server: ServeProcess, token: string): Promise<number> {
  const response = await fetch(`${server.url}/r/${token}/anthropic/v1/messages`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', 'x-api-key': 'sk-ant-api03-FAKE-token-test', 'anthropic-version': '2023-06-01' },
    body: JSON.stringify({ model: 'claude-sonnet-4-5', max_tokens: 16, messages: [{ role: 'user', content: 'say hi' }] }),
  });
  await response.arrayBuffer();
  return response.status;
}

interface ListedToken {
  id: string;
  name: string;
  created_at: string;
  last_used_at: string | null;
  revoked_at: string | null;
}

async function listJson(): Promise<ListedToken[]> {
  const result = await runCli(['token', 'list', '--json', '--data-dir', dataDir]);
  expect(result.code).toBe(0);
  return result.stdout
    .trim()
    .split('\n')
    .map((line) => JSON.parse(line) as ListedToken);
}

/** Run `token create` and return the token from stdout and the id from stderr. */
async function createToken(name: string): Promise<{ token: string; id: string }> {
  const created = await runCli(['token', 'create', '--name', name, '--data-dir', dataDir]);
  expect(created.code).toBe(0);
  expect(created.stdout).toMatch(/^twr_[A-Za-z0-9_-]{43}\n$/);
  const id = /Created route token (\S+) /.exec(created.stderr)?.[1];
  expect(id).toBeDefined();
  return { token: created.stdout.trim(), id: id! };
}

// Regression: `token create` printed no id, there was no way to list tokens (GET /api/v1/route-tokens
// answered 405), and no command to revoke a leaked token.
describe('tokenwise token', () => {
  it('create prints the id on stderr and the token alone on stdout', async () => {
    await serveOnDataDir();

    const created = await runCli(['token', 'create', '--name', 'laptop', '--data-dir', dataDir]);

    expect(created.code).toBe(0);
    expect(created.stdout).toMatch(/^twr_[A-Za-z0-9_-]{43}\n$/);
    expect(created.stderr).toMatch(
      /^Created route token [0-9a-f-]{36} \("laptop"\); revoke it with: tokenwise token revoke [0-9a-f-]{36}\n$/,
    );
  });

  it('lists tokens through the server without their secrets', async () => {
    const server = await serveOnDataDir();
    const { token, id } = await createToken('laptop');
    const localToken = (JSON.parse(await readFile(join(dataDir, 'local-tokens.json'), 'utf8')) as { route_token: string }).route_token;
    expect(await callStatus(server, token)).toBe(200);

    const table = await runCli(['token', 'list', '--data-dir', dataDir]);
    const listed = await listJson();

    expect(table.code).toBe(0);
    expect(table.stdout.split('\n')[0]).toMatch(/^ID\s+NAME\s+CREATED\s+LAST USED\s+STATUS$/);
    expect(table.stdout).toMatch(
      new RegExp(`^${id}\\s+laptop\\s+\\d{4}-\\d{2}-\\d{2} [\\d:]+\\s+\\d{4}-\\d{2}-\\d{2} [\\d:]+\\s+active$`, 'm'),
    );
    expect(listed.map((row) => row.name).sort()).toEqual(['laptop', 'local']);
    expect(listed.find((row) => row.id === id)).toMatchObject({ revoked_at: null, last_used_at: expect.any(String) });
    for (const output of [table.stdout, table.stderr, JSON.stringify(listed)]) {
      expect(output).not.toContain(token);
      expect(output).not.toContain(localToken);
    }
  });

  it('revokes through the server, and the proxy rejects the token at once', async () => {
    const server = await serveOnDataDir();
    const { token, id } = await createToken('leaked');
    expect(await callStatus(server, token)).toBe(200);

    const revoked = await runCli(['token', 'revoke', id.slice(0, 8), '--data-dir', dataDir]);

    expect(revoked.code).toBe(0);
    expect(revoked.stderr).toContain(`Revoked route token ${id} ("leaked")`);
    expect(await callStatus(server, token)).toBe(401);
    expect((await listJson()).find((row) => row.id === id)?.revoked_at).toEqual(expect.any(String));
    expect(await callStatus(server, server.routeToken)).toBe(200);
  });

  it('lists and revokes on the store when no server runs', async () => {
    const first = await serveOnDataDir();
    await stopServer(first);
    const { token, id } = await createToken('offline');

    const listed = await listJson();
    const revoked = await runCli(['token', 'revoke', id, '--data-dir', dataDir]);

    expect(listed.map((row) => row.name).sort()).toEqual(['local', 'offline']);
    expect(revoked.code).toBe(0);
    const second = await serveOnDataDir();
    expect(await callStatus(second, token)).toBe(401);
    expect(await callStatus(second, second.routeToken)).toBe(200);
  });

  it.each([
    [['no-such-id'], 1, 'no route token with the id "no-such-id"'],
    [['abc'], 1, 'no route token with the id "abc"'],
    [[], 2, 'expected one route token id'],
    [['one', 'two'], 2, 'expected one route token id'],
  ])('revoke %j fails naming the id', async (args, code, message) => {
    await serveOnDataDir();

    const result = await runCli(['token', 'revoke', ...args, '--data-dir', dataDir]);

    expect(result.code).toBe(code);
    expect(result.stderr).toContain(message);
  });

  it('revoke names a token already revoked', async () => {
    await serveOnDataDir();
    const { id } = await createToken('twice');
    expect((await runCli(['token', 'revoke', id, '--data-dir', dataDir])).code).toBe(0);

    const again = await runCli(['token', 'revoke', id, '--data-dir', dataDir]);

    expect(again.code).toBe(1);
    expect(again.stderr).toContain(`the route token ${id} ("twice") was already revoked at`);
  });
});

describe('lists longer than one page', () => {
  /** One more than the API's default page size of 100, so the list needs a second page. */
  const CREATED = 101;

  it('token and devices commands follow the cursor', async () => {
    const server = await serveOnDataDir();
    const { api_token: apiToken } = JSON.parse(await readFile(join(dataDir, 'server.json'), 'utf8')) as { api_token: string };
    const created: { id: string; device_id: string }[] = [];
    for (let index = 0; index < CREATED; index += 1) {
      const response = await fetch(`${server.url}/api/v1/route-tokens`, {
        method: 'POST',
        headers: { authorization: `Bearer ${apiToken}`, 'content-type': 'application/json' },
        body: JSON.stringify({ name: `runner ${index}` }),
      });
      expect(response.status).toBe(201);
      created.push((await response.json()) as { id: string; device_id: string });
    }
    const last = created.at(-1)!;

    const tokens = await listJson();
    const devices = await runCli(['devices', 'list', '--json', '--data-dir', dataDir]);
    const revokedToken = await runCli(['token', 'revoke', last.id, '--data-dir', dataDir]);
    const revokedDevice = await runCli(['devices', 'revoke', created.at(-2)!.device_id, '--data-dir', dataDir]);

    expect(tokens).toHaveLength(CREATED + 1);
    expect(new Set(tokens.map((token) => token.id)).size).toBe(CREATED + 1);
    expect(tokens.at(-1)!.id).toBe(last.id);
    expect(devices.code).toBe(0);
    const deviceIds = devices.stdout
      .trim()
      .split('\n')
      .map((line) => (JSON.parse(line) as { id: string }).id);
    expect(deviceIds).toHaveLength(CREATED + 1);
    expect(deviceIds).toContain(last.device_id);
    expect(revokedToken.code).toBe(0);
    expect(revokedDevice.code).toBe(0);
    expect(revokedDevice.stderr).toContain(`Revoked device ${created.at(-2)!.device_id}`);
  });
});
