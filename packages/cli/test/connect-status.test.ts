import { once } from 'node:events';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { type ConnectHome, createConnectHome } from './helpers/connect-home.js';

/** Text a hostile or broken server could send: colours, a window title, a forged line, a bidi override. */
const EVIL = 'x\u001b[31mRED\u001b]0;TITLE\u0007\r\nFAKE\u202e';
// biome-ignore lint/suspicious/noControlCharactersInRegex: the tests look for exactly these characters.
const TERMINAL_CONTROLS = /[\u0000-\u0009\u000b-\u001f\u007f-\u009f\u202a-\u202e\u2066-\u2069]/;
const TOKEN = 'twr_statusTestToken0123456789';

/** The fake server's response to `GET /api/v1/route-tokens/self`. */
let reply: { status: number; body: unknown };
let server: Server;
let serverUrl: string;
let dataDir: string;
let home: ConnectHome;

beforeAll(async () => {
  server = createServer((req, res) => {
    req.resume();
    res.writeHead(reply.status, { 'content-type': 'application/json' });
    res.end(JSON.stringify(reply.body));
  });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  serverUrl = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
});
afterAll(() => {
  server.close();
});
beforeEach(async () => {
  dataDir = await mkdtemp(join(tmpdir(), 'tokenwise-status-'));
  home = await createConnectHome(dataDir);
  // A state as connect leaves it after connecting Claude Code to the fake server.
  const state = {
    version: 1,
    serverUrl,
    token: { value: TOKEN, id: null, source: 'flag' },
    targets: { 'claude-code': { connectedAt: '2026-01-01T00:00:00.000Z', profileVars: {} } },
    files: {},
  };
  await writeFile(join(dataDir, 'connect-state.json'), JSON.stringify(state));
});
afterEach(async () => {
  await home.remove();
  await rm(dataDir, { recursive: true, force: true });
});

describe('status output', () => {
  it('escapes the last call times the server sends', async () => {
    reply = { status: 200, body: { id: 'rt_1', name: 'n', last_used_at: null, last_calls: { 'claude-code': EVIL } } };

    const result = await home.tokenwise(['status']);

    expect(result.code).toBe(0);
    expect(result.stdout).not.toMatch(TERMINAL_CONTROLS);
    expect(result.stdout).toContain('last call seen: x\\x1b[31mRED\\x1b]0;TITLE\\x07\\r\\nFAKE\\u202e');
  });

  it('escapes the error message the server sends', async () => {
    reply = { status: 401, body: { error: { code: 'unauthorized', message: EVIL } } };

    const result = await home.tokenwise(['status']);

    expect(result.stdout).not.toMatch(TERMINAL_CONTROLS);
    expect(result.stdout).toContain('rejected the route token: x\\x1b[31mRED');
  });

  it('escapes a base URL read from a tool config', async () => {
    reply = { status: 200, body: { id: 'rt_1', name: 'n', last_used_at: null, last_calls: {} } };
    await home.write('.claude/settings.json', JSON.stringify({ env: { ANTHROPIC_BASE_URL: `https://gateway.example/${EVIL}` } }));

    const result = await home.tokenwise(['status']);

    expect(result.stdout).not.toMatch(TERMINAL_CONTROLS);
    expect(result.stdout).toContain('traffic goes to https://gateway.example/x\\x1b[31mRED');
    expect(result.stdout).toContain('connected, but its config no longer points at Tokenwise');
  });

  it('counts a tool on a public URL of the server as connected', async () => {
    reply = { status: 200, body: { id: 'rt_1', name: 'n', last_used_at: null, last_calls: {} } };
    const publicRoute = `https://tokenwise.example.com/r/${TOKEN}/anthropic`;
    await home.write('.claude/settings.json', JSON.stringify({ env: { ANTHROPIC_BASE_URL: publicRoute } }));

    const report = JSON.parse((await home.tokenwise(['status', '--json'])).stdout);
    const claude = report.tools.find((tool: { id: string }) => tool.id === 'claude-code');

    expect(claude.connected).toBe(true);
  });
});
