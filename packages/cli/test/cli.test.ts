import { mkdtemp, readFile, rm, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { CallRecord } from '@tokenwise/core';
import { type FakeProvider, startFakeProvider } from '@tokenwise/testkit';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it, vi } from 'vitest';
import { runCli, type ServeProcess, startServe, startTail } from './helpers/cli-process.js';

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
  dataDir = await mkdtemp(join(tmpdir(), 'tokenwise-cli-'));
});

afterEach(async () => {
  for (const server of servers.splice(0)) await server.stop();
  await rm(dataDir, { recursive: true, force: true });
});

async function serveOnDataDir(extraArgs: string[] = [], env: NodeJS.ProcessEnv = {}): Promise<ServeProcess> {
  const server = await startServe(['--port', '0', '--data-dir', dataDir, '--upstream', `anthropic=${upstream.url}`, ...extraArgs], env);
  servers.push(server);
  return server;
}

async function callAnthropic(server: { url: string; routeToken: string }, token = server.routeToken): Promise<Response> {
  const response = await fetch(`${server.url}/r/${token}/anthropic/v1/messages`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', 'x-api-key': 'sk-ant-api03-FAKE-cli-test', 'anthropic-version': '2023-06-01' },
    body: JSON.stringify({ model: 'claude-sonnet-4-5', max_tokens: 16, messages: [{ role: 'user', content: 'say hi' }] }),
  });
  await response.arrayBuffer();
  return response;
}

function parseJsonLines(text: string): CallRecord[] {
  return text
    .split('\n')
    .filter((line) => line.trim() !== '')
    .map((line) => JSON.parse(line) as CallRecord);
}

/** Wait until `calls --json` lists `count` stored calls. */
async function waitForStoredCalls(count: number): Promise<CallRecord[]> {
  let records: CallRecord[] = [];
  await vi.waitFor(
    async () => {
      const result = await runCli(['calls', '--json', '--data-dir', dataDir]);
      records = parseJsonLines(result.stdout);
      expect(records).toHaveLength(count);
    },
    { timeout: 15_000, interval: 200 },
  );
  return records;
}

describe('tokenwise serve', () => {
  it('prints the base URL of every tool on first start', async () => {
    const server = await serveOnDataDir();
    const printed = server.stderr();
    const root = `${server.url}/r/${server.routeToken}`;

    expect(server.url).toMatch(/^http:\/\/127\.0\.0\.1:\d+$/);
    expect(printed).toContain('First start');
    expect(printed).toContain(`export ANTHROPIC_BASE_URL=${root}/anthropic\n`);
    expect(printed).toContain(`base_url = "${root}/openai/v1"`);
    expect(printed).toContain('env_key = "OPENAI_API_KEY"');
    expect(printed).toContain('wire_api = "responses"');
    expect(printed).toContain('model_provider = "tokenwise"');
    expect(printed).toContain(`base_url = "${root}/chatgpt"`);
    expect(printed).toContain('requires_openai_auth = true');
    expect(printed).toContain('supports_websockets = false');
    expect(printed).toContain(`export GOOGLE_GEMINI_BASE_URL=${root}/gemini\n`);
    expect(printed).toContain(`export CODE_ASSIST_ENDPOINT=${root}/codeassist\n`);
  });

  it('writes the bound URL to server.json', async () => {
    const server = await serveOnDataDir();

    const info = JSON.parse(await readFile(join(dataDir, 'server.json'), 'utf8'));
    expect(info.url).toBe(server.url);
    expect(info.pid).toBe(server.child.pid);
    expect((await stat(join(dataDir, 'server.json'))).mode & 0o777).toBe(0o600);
  });

  it('reuses the route token on a second start', async () => {
    const first = await serveOnDataDir();
    expect(await first.stop()).toBe(0);

    const second = await serveOnDataDir();

    expect(second.routeToken).toBe(first.routeToken);
    expect(second.stderr()).not.toContain('First start');
    expect((await callAnthropic(second)).status).toBe(200);
  });

  it('stops on SIGTERM, storing its records and removing server.json', async () => {
    const server = await serveOnDataDir();
    await callAnthropic(server);

    expect(await server.stop()).toBe(0);

    await expect(stat(join(dataDir, 'server.json'))).rejects.toMatchObject({ code: 'ENOENT' });
    const listed = await runCli(['calls', '--json', '--data-dir', dataDir]);
    expect(parseJsonLines(listed.stdout)).toHaveLength(1);
  });

  it('logs one JSON line per call without the key', async () => {
    const server = await serveOnDataDir();
    await callAnthropic(server);
    const [record] = await waitForStoredCalls(1);

    const callLines = server
      .stdout()
      .split('\n')
      .filter((line) => line.startsWith('{') && line.includes('"msg":"call"'));
    expect(callLines).toHaveLength(1);
    expect(JSON.parse(callLines[0]!)).toMatchObject({ call_id: record!.id, route: 'anthropic' });
    expect(server.stdout()).not.toContain('sk-ant-api03-FAKE');
  });

  it('reads its settings from TOKENWISE_* variables', async () => {
    const server = await startServe([], {
      TOKENWISE_PORT: '0',
      TOKENWISE_DATA_DIR: dataDir,
      TOKENWISE_UPSTREAM_ANTHROPIC: upstream.url,
    });
    servers.push(server);

    expect(server.stderr()).toContain(`Data directory: ${dataDir}`);
    expect((await callAnthropic(server)).status).toBe(200);
    const requests = upstream.requests();
    expect(requests.at(-1)?.path).toBe('/v1/messages');
  });
});

describe('tokenwise token create', () => {
  it('prints one token the proxy accepts, through the server', async () => {
    const server = await serveOnDataDir();

    const created = await runCli(['token', 'create', '--name', 'laptop', '--data-dir', dataDir]);

    expect(created.code).toBe(0);
    expect(created.stdout).toMatch(/^twr_[A-Za-z0-9_-]{43}\n$/);
    expect((await callAnthropic(server, created.stdout.trim())).status).toBe(200);
  });

  it('writes to the store when no server runs', async () => {
    const first = await serveOnDataDir();
    await first.stop();

    const created = await runCli(['token', 'create', '--data-dir', dataDir]);
    expect(created.code).toBe(0);
    const server = await serveOnDataDir();

    expect((await callAnthropic(server, created.stdout.trim())).status).toBe(200);
  });

  it('fails without a database to write to', async () => {
    const result = await runCli(['token', 'create', '--data-dir', join(dataDir, 'missing')]);

    expect(result.code).toBe(1);
    expect(result.stderr).toContain('no Tokenwise database in');
    expect(result.stderr).toContain('tokenwise serve --data-dir');
  });
});

describe('tokenwise calls', () => {
  it('lists calls as a table and as JSON lines through the API', async () => {
    const server = await serveOnDataDir();
    await callAnthropic(server);
    await callAnthropic(server);
    const records = await waitForStoredCalls(2);

    expect(records[0]).toMatchObject({ route: 'anthropic', provider: 'anthropic', method: 'POST', path: '/v1/messages', http_status: 200 });
    expect(Date.parse(records[0]!.started_at)).toBeGreaterThanOrEqual(Date.parse(records[1]!.started_at));

    const table = await runCli(['calls', '--data-dir', dataDir]);
    expect(table.code).toBe(0);
    const lines = table.stdout.trimEnd().split('\n');
    expect(lines[0]).toMatch(/^TIME\s+TOOL\s+MODEL\s+STATUS\s+INPUT\s+CACHED\s+OUTPUT\s+COST\s+LATENCY$/);
    expect(lines).toHaveLength(3);
    expect(table.stdout).not.toContain('\u001b[');
  });

  it('reads the store directly once the server stopped', async () => {
    const server = await serveOnDataDir();
    await callAnthropic(server);
    const throughApi = await waitForStoredCalls(1);
    await server.stop();

    const fromStore = await runCli(['calls', '--json', '--data-dir', dataDir]);

    expect(fromStore.code).toBe(0);
    expect(parseJsonLines(fromStore.stdout)).toEqual(throughApi);
  });

  it('ignores a server.json left by a killed server', async () => {
    const server = await serveOnDataDir();
    await callAnthropic(server);
    const stored = await waitForStoredCalls(1);
    server.child.kill('SIGKILL');
    await server.stop();
    expect((await stat(join(dataDir, 'server.json'))).isFile()).toBe(true);

    const fromStore = await runCli(['calls', '--json', '--data-dir', dataDir]);

    expect(fromStore.code).toBe(0);
    expect(parseJsonLines(fromStore.stdout)).toEqual(stored);
  });

  it('honours --limit and --since', async () => {
    const server = await serveOnDataDir();
    await callAnthropic(server);
    await callAnthropic(server);
    await waitForStoredCalls(2);

    const limited = await runCli(['calls', '--json', '--limit', '1', '--data-dir', dataDir]);
    expect(parseJsonLines(limited.stdout)).toHaveLength(1);
    const recent = await runCli(['calls', '--json', '--since', '1h', '--data-dir', dataDir]);
    expect(parseJsonLines(recent.stdout)).toHaveLength(2);
    const future = await runCli(['calls', '--json', '--since', new Date(Date.now() + 3_600_000).toISOString(), '--data-dir', dataDir]);
    expect(future.stdout).toBe('');
  });

  it('reads its options from TOKENWISE_* variables', async () => {
    const server = await serveOnDataDir();
    await callAnthropic(server);
    await callAnthropic(server);
    await waitForStoredCalls(2);

    const result = await runCli(['calls'], { TOKENWISE_DATA_DIR: dataDir, TOKENWISE_JSON: '1', TOKENWISE_LIMIT: '1' });

    expect(result.code).toBe(0);
    expect(parseJsonLines(result.stdout)).toHaveLength(1);
  });

  it('reads a server given by --server and TOKENWISE_API_TOKEN', async () => {
    const server = await serveOnDataDir();
    await callAnthropic(server);
    await waitForStoredCalls(1);
    const { api_token: apiToken } = JSON.parse(await readFile(join(dataDir, 'local-tokens.json'), 'utf8'));
    const elsewhere = join(dataDir, 'unused');

    const remote = await runCli(['calls', '--json', '--server', server.url, '--data-dir', elsewhere], { TOKENWISE_API_TOKEN: apiToken });
    expect(remote.code).toBe(0);
    expect(parseJsonLines(remote.stdout)).toHaveLength(1);

    const viaEnv = await runCli(['calls', '--json'], {
      TOKENWISE_SERVER: server.url,
      TOKENWISE_API_TOKEN: apiToken,
      TOKENWISE_DATA_DIR: elsewhere,
    });
    expect(parseJsonLines(viaEnv.stdout)).toHaveLength(1);

    const wrongToken = await runCli(['calls', '--server', server.url], { TOKENWISE_API_TOKEN: 'twa_wrong' });
    expect(wrongToken.code).toBe(1);
    expect(wrongToken.stderr).toContain('rejected the API token: check TOKENWISE_API_TOKEN');

    const noToken = await runCli(['calls', '--server', server.url]);
    expect(noToken.code).toBe(2);
    expect(noToken.stderr).toContain('missing TOKENWISE_API_TOKEN');
  });
});

describe('tokenwise tail', () => {
  it('prints a call made after it started, as JSON', async () => {
    const server = await serveOnDataDir();
    const tail = await startTail(['--json', '--data-dir', dataDir]);

    await callAnthropic(server);
    const printed = await tail.waitForStdout(/\n/);

    const [record] = parseJsonLines(printed);
    expect(record).toMatchObject({ route: 'anthropic', method: 'POST' });
    expect(await tail.stop()).toBe(0);
  });

  it('prints table rows in human mode', async () => {
    const server = await serveOnDataDir();
    const tail = await startTail(['--data-dir', dataDir]);

    await callAnthropic(server);
    const printed = await tail.waitForStdout(/\n.*\n/);

    expect(printed.split('\n')[0]).toMatch(/^TIME\s+TOOL/);
    expect(printed.split('\n')[1]).toMatch(/^\d{4}-\d{2}-\d{2} \d{2}:\d{2}:\d{2}/);
    await tail.stop();
  });

  it('says no server runs', async () => {
    const result = await runCli(['tail', '--data-dir', dataDir]);

    expect(result.code).toBe(1);
    expect(result.stderr).toContain(`no Tokenwise server runs with the data directory ${dataDir}`);
  });
});

describe('command line errors', () => {
  it.each([
    [['serve', '--port', 'abc'], {}, 'invalid --port "abc": expected a port number from 0 to 65535'],
    [['serve', '--port', '0', '--upstream', 'nowhere=http://127.0.0.1:1'], {}, 'unknown route "nowhere"'],
    [['serve', '--upstream', 'anthropic'], {}, 'invalid --upstream "anthropic": expected NAME=URL'],
    [['serve'], { TOKENWISE_PORT: 'x' }, 'invalid TOKENWISE_PORT "x"'],
    [['calls', '--limit', '0'], {}, 'invalid --limit "0": expected a whole number from 1 to 1000'],
    [['calls', '--since', 'yesterday'], {}, 'invalid --since "yesterday"'],
    [['calls', '--bogus'], {}, 'unknown option --bogus for tokenwise calls: run "tokenwise calls --help" for the options'],
    [['calls', '--limit'], {}, 'missing or invalid value for --limit'],
    [['calls'], { TOKENWISE_JSON: 'maybe' }, 'invalid TOKENWISE_JSON "maybe"'],
    [['calls', '--server', 'ftp://example.org'], { TOKENWISE_API_TOKEN: 'x' }, 'invalid --server "ftp://example.org"'],
    [['token', 'delete'], {}, 'unknown subcommand "token delete"'],
    [['launch'], {}, 'unknown command "launch"'],
    // Regression: a negative value was reported as "missing or invalid value for --port" without the value.
    [['serve', '--port', '-1'], {}, 'invalid --port "-1": expected a port number from 0 to 65535'],
    [['serve', '--body-cap-bytes', '-5'], {}, 'invalid --body-cap-bytes "-5"'],
    [['calls', '--limit', '-3'], {}, 'invalid --limit "-3": expected a whole number from 1 to 1000'],
    [['calls', '--since', '-1h'], {}, 'invalid --since "-1h": expected a duration like 30m'],
    // Regression: the CLI sent a date in the year -271764 and blamed the server for rejecting it.
    [['calls', '--since', '100000000d'], {}, 'invalid --since "100000000d": that reaches back before 1970'],
    // Regression: a bad variable was reported as an --upstream flag, and an empty one was ignored.
    [['serve', '--port', '0'], { TOKENWISE_UPSTREAM_FOO: 'http://127.0.0.1:1' }, 'unknown route "foo" in TOKENWISE_UPSTREAM_FOO'],
    [['serve', '--port', '0'], { TOKENWISE_UPSTREAM_ANTHROPIC: '' }, 'TOKENWISE_UPSTREAM_ANTHROPIC is set but empty'],
  ])('%j fails naming the value', async (args, env, message) => {
    const result = await runCli([...args, '--data-dir', dataDir], env as NodeJS.ProcessEnv);

    expect(result.code).toBe(2);
    expect(result.stderr).toContain(message);
    expect(result.stdout).toBe('');
  });

  it.each([['serve'], ['calls'], ['tail'], ['token', 'create']])('%j --help prints its usage', async (...command) => {
    const result = await runCli([...command, '--help']);

    expect(result.code).toBe(0);
    expect(result.stdout).toContain(`Usage: tokenwise ${command.join(' ')}`);
    expect(result.stdout).toMatch(/TOKENWISE_/);
  });

  it('prints the overview for --help and fails without a command', async () => {
    expect((await runCli(['--help'])).stdout).toContain('Usage: tokenwise <command>');
    const bare = await runCli([]);
    expect(bare.code).toBe(2);
    expect(bare.stderr).toContain('Usage: tokenwise <command>');
  });
});
