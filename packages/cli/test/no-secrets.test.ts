import { readdir, readFile, rm } from 'node:fs/promises';
import { join } from 'node:path';
import type { CallRecord } from '@tokenwise/core';
import { SqliteStore } from '@tokenwise/storage';
import { FAKE_CREDENTIALS, type FakeProvider, makeTestDir, startFakeProvider } from '@tokenwise/testkit';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { runCli, type ServeProcess, startServe } from './helpers/cli-process.js';

/** Fake credentials in every form the AI tools send them; each is unique so a hit names its source. */
const SECRETS = {
  anthropicApiKey: FAKE_CREDENTIALS.noSecretsAnthropicApiKey,
  anthropicOauth: FAKE_CREDENTIALS.noSecretsAnthropicOauth,
  googleApiKey: FAKE_CREDENTIALS.noSecretsGoogleApiKey,
  googleQueryKey: FAKE_CREDENTIALS.noSecretsGoogleQueryKey,
  chatgptBearer: FAKE_CREDENTIALS.chatgptBearer,
  chatgptAccountId: FAKE_CREDENTIALS.noSecretsChatgptAccountId,
  openaiApiKey: FAKE_CREDENTIALS.noSecretsOpenaiApiKey,
  cookie: FAKE_CREDENTIALS.noSecretsCookie,
  keyInPrompt: FAKE_CREDENTIALS.keyInPrompt,
} as const;

const CALLS = 5;

let upstream: FakeProvider;
let dataDir: string;
/** True when the suite's closing secret scan reads and deletes the data directory. */
let keepDataDir = false;
let server: ServeProcess;

beforeAll(async () => {
  upstream = await startFakeProvider();
  const created = await makeTestDir('tokenwise-nosecrets-');
  dataDir = created.dir;
  keepDataDir = created.keep;
  server = await startServe([
    '--port',
    '0',
    '--data-dir',
    dataDir,
    '--upstream',
    `anthropic=${upstream.url}`,
    '--upstream',
    `openai=${upstream.url}`,
    '--upstream',
    `chatgpt=${upstream.url}/backend-api/codex`,
    '--upstream',
    `gemini=${upstream.url}`,
  ]);
});

afterAll(async () => {
  await server?.stop();
  await upstream?.close();
  if (!keepDataDir) await rm(dataDir, { recursive: true, force: true });
});

function proxied(route: string, rest: string): string {
  return `${server.url}/r/${server.routeToken}/${route}${rest}`;
}

async function send(url: string, headers: Record<string, string>, body: unknown): Promise<number> {
  const response = await fetch(url, {
    method: 'POST',
    headers: { 'content-type': 'application/json', ...headers },
    body: JSON.stringify(body),
  });
  await response.arrayBuffer();
  return response.status;
}

/** Drive one call per credential form through the proxy. */
async function sendCallsWithCredentials(): Promise<void> {
  const anthropicBody = {
    model: 'claude-sonnet-4-5',
    max_tokens: 16,
    messages: [{ role: 'user', content: `why is ${SECRETS.keyInPrompt} rejected?` }],
  };
  const responsesBody = { model: 'gpt-5', input: 'say hi', stream: true };

  const statuses = [
    await send(
      proxied('anthropic', '/v1/messages?beta=true'),
      { 'x-api-key': SECRETS.anthropicApiKey, 'anthropic-version': '2023-06-01', cookie: `session=${SECRETS.cookie}` },
      anthropicBody,
    ),
    await send(
      proxied('anthropic', '/v1/messages?beta=true'),
      { authorization: `Bearer ${SECRETS.anthropicOauth}`, 'anthropic-beta': 'oauth-2025-04-20', 'anthropic-version': '2023-06-01' },
      { ...anthropicBody, stream: true },
    ),
    await send(
      proxied('gemini', `/v1beta/models/gemini-2.5-flash:generateContent?key=${SECRETS.googleQueryKey}`),
      { 'x-goog-api-key': SECRETS.googleApiKey },
      { contents: [{ role: 'user', parts: [{ text: 'say hi' }] }] },
    ),
    await send(
      proxied('chatgpt', '/responses'),
      { authorization: `Bearer ${SECRETS.chatgptBearer}`, 'chatgpt-account-id': SECRETS.chatgptAccountId, originator: 'codex_exec' },
      responsesBody,
    ),
    await send(proxied('openai', '/v1/responses'), { authorization: `Bearer ${SECRETS.openaiApiKey}` }, responsesBody),
  ];
  expect(statuses).toEqual([200, 200, 200, 200, 200]);
}

function findSecrets(text: string): string[] {
  return Object.entries(SECRETS)
    .filter(([, secret]) => text.includes(secret))
    .map(([name]) => name);
}

async function readDatabaseFiles(): Promise<Record<string, string>> {
  const files: Record<string, string> = {};
  for (const name of await readdir(dataDir)) {
    if (name.startsWith('tokenwise.db')) files[name] = (await readFile(join(dataDir, name))).toString('latin1');
  }
  return files;
}

async function api(path: string, headers: Record<string, string> = {}): Promise<Response> {
  const { api_token: apiToken } = JSON.parse(await readFile(join(dataDir, 'server.json'), 'utf8'));
  return fetch(`${server.url}${path}`, { headers: { authorization: `Bearer ${apiToken}`, ...headers } });
}

describe('no secrets at rest or in output', () => {
  it('passes credentials upstream but stores, logs and returns none', async () => {
    await sendCallsWithCredentials();

    // The credentials reached the upstream unchanged, so the calls below really carried them.
    const upstreamSaw = JSON.stringify(upstream.requests().map((request) => [request.target, request.headers, request.bodyText]));
    expect(findSecrets(upstreamSaw).sort()).toEqual(Object.keys(SECRETS).sort());

    let records: CallRecord[] = [];
    await vi.waitFor(
      async () => {
        const listed = await api(`/api/v1/calls?limit=100`);
        records = ((await listed.json()) as { calls: CallRecord[] }).calls;
        expect(records).toHaveLength(CALLS);
      },
      { timeout: 15_000, interval: 200 },
    );

    const responses: string[] = [];
    let callsWithBodies = 0;
    responses.push(await (await api('/api/v1/calls?limit=100')).text());
    for (const record of records) {
      const single = await (await api(`/api/v1/calls/${record.id}`)).text();
      responses.push(single);

      const { bodies } = JSON.parse(single) as { bodies: { request_headers: Record<string, string> } | null };
      // A call's bodies, when kept, must carry no credential header.
      if (bodies) {
        callsWithBodies += 1;
        for (const name of ['authorization', 'x-api-key', 'x-goog-api-key', 'cookie', 'chatgpt-account-id']) {
          expect(bodies.request_headers).not.toHaveProperty(name);
        }
      }
    }
    // The capture keeps bodies by default, so the checks above ran on real bodies.
    expect(callsWithBodies).toBe(CALLS);
    responses.push(await readStreamBacklog());
    responses.push((await runCli(['calls', '--json', '--data-dir', dataDir])).stdout);
    responses.push((await runCli(['calls', '--data-dir', dataDir])).stdout);

    expect(findSecrets(responses.join('\n'))).toEqual([]);
    for (const [name, content] of Object.entries(await readDatabaseFiles())) {
      expect({ file: name, secrets: findSecrets(content) }).toEqual({ file: name, secrets: [] });
    }

    expect(await server.stop()).toBe(0);

    const logs = server.stdout() + server.stderr();
    expect(logs).toContain('"msg":"call"');
    expect(findSecrets(logs)).toEqual([]);
    const logLines = logs.split('\n').filter((line) => line.startsWith('{'));
    expect(logLines.join('\n')).not.toContain(server.routeToken);

    const databaseFiles = await readDatabaseFiles();
    expect(Object.keys(databaseFiles)).toContain('tokenwise.db');
    for (const [name, content] of Object.entries(databaseFiles)) {
      expect({ file: name, secrets: findSecrets(content), routeToken: content.includes(server.routeToken) }).toEqual({
        file: name,
        secrets: [],
        routeToken: false,
      });
    }

    // Bodies are stored gzip-compressed, which a byte search of the file cannot see into.
    const store = new SqliteStore(join(dataDir, 'tokenwise.db'));
    for (const record of records) {
      expect(findSecrets(JSON.stringify(await store.getCall(record.id)))).toEqual([]);
    }
    await store.close();
  });
});

/** Read every stored call as the live stream replays it from the first cursor. */
async function readStreamBacklog(): Promise<string> {
  const response = await api('/api/v1/calls/stream', { 'last-event-id': '0' });
  const reader = response.body!.pipeThrough(new TextDecoderStream()).getReader();
  let text = '';
  while ((text.match(/^event: call$/gm) ?? []).length < CALLS) {
    const { value, done } = await reader.read();
    if (done) break;
    text += value;
  }
  await reader.cancel();
  return text;
}
