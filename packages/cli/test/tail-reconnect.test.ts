import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { CallRecord } from '@tokenwise/core';
import { type FakeProvider, startFakeProvider } from '@tokenwise/testkit';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it, vi } from 'vitest';
import { type ServeProcess, startServe, startTail } from './helpers/cli-process.js';

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
  dataDir = await mkdtemp(join(tmpdir(), 'tokenwise-tail-'));
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

async function callAnthropic(server: ServeProcess, model: string): Promise<void> {
  const response = await fetch(`${server.url}/r/${server.routeToken}/anthropic/v1/messages`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', 'x-api-key': 'sk-ant-api03-FAKE-tail-test', 'anthropic-version': '2023-06-01' },
    body: JSON.stringify({ model, max_tokens: 16, messages: [{ role: 'user', content: 'say hi' }] }),
  });
  await response.arrayBuffer();
  expect(response.status).toBe(200);
}

function requestedModels(jsonLines: string): string[] {
  return jsonLines
    .split('\n')
    .filter((line) => line.trim() !== '')
    .map((line) => (JSON.parse(line) as CallRecord).model_requested ?? '');
}

describe('tokenwise tail on the local server', () => {
  // Regression: tail exited at once ("the Tokenwise server ... stopped") when the local server stopped,
  // although its help and the README promise 30 s of reconnecting.
  it('follows the server through a restart', async () => {
    const first = await serveOnDataDir();
    const tail = await startTail(['--json', '--data-dir', dataDir]);
    await callAnthropic(first, 'claude-before-restart');
    await tail.waitForStdout(/claude-before-restart/);

    expect(await first.stop()).toBe(0);
    servers.splice(servers.indexOf(first), 1);
    await vi.waitFor(() => expect(tail.stderr()).toContain('lost the connection'), { timeout: 10_000 });
    // Longer than the gap after which tail used to give up, well inside its 30 s window.
    await new Promise((resolve) => setTimeout(resolve, 2500));

    const second = await serveOnDataDir();
    await callAnthropic(second, 'claude-after-restart');
    await tail.waitForStdout(/claude-after-restart/);

    expect(tail.stderr()).toContain('reconnected');
    expect(requestedModels(tail.stdout())).toEqual(['claude-before-restart', 'claude-after-restart']);
    expect(await tail.stop()).toBe(0);
  });

  // Regression: a tail that had seen no call yet reconnected without a position, so calls stored by the
  // restarted server before the reconnect were never shown.
  it('shows calls stored before it reconnected', async () => {
    const first = await serveOnDataDir();
    const tail = await startTail(['--json', '--data-dir', dataDir]);

    expect(await first.stop()).toBe(0);
    servers.splice(servers.indexOf(first), 1);
    const second = await serveOnDataDir();
    await callAnthropic(second, 'claude-while-away');

    await tail.waitForStdout(/claude-while-away/);
    expect(requestedModels(tail.stdout())).toEqual(['claude-while-away']);
    expect(await tail.stop()).toBe(0);
  });
});
