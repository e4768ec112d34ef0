import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { mkdtemp, readFile, rm, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { CallRecord } from '@tokenwise/core';
import { type FakeProvider, startFakeProvider } from '@tokenwise/testkit';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it, vi } from 'vitest';
import { cliEnv, runCli, startServe, TOKENWISE_BIN } from './helpers/cli-process.js';

let upstream: FakeProvider;
let dataDir: string;

beforeAll(async () => {
  upstream = await startFakeProvider();
});

afterAll(async () => {
  await upstream.close();
});

beforeEach(async () => {
  dataDir = await mkdtemp(join(tmpdir(), 'tokenwise-output-'));
});

afterEach(async () => {
  await rm(dataDir, { recursive: true, force: true });
});

async function callAnthropic(url: string, routeToken: string): Promise<number> {
  const response = await fetch(`${url}/r/${routeToken}/anthropic/v1/messages`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', 'x-api-key': 'sk-ant-api03-FAKE-output', 'anthropic-version': '2023-06-01' },
    body: JSON.stringify({ model: 'claude-sonnet-4-5', max_tokens: 16, messages: [{ role: 'user', content: 'say hi' }] }),
  });
  await response.arrayBuffer();
  return response.status;
}

async function storedCalls(): Promise<CallRecord[]> {
  const listed = await runCli(['calls', '--json', '--data-dir', dataDir]);
  return listed.stdout
    .split('\n')
    .filter((line) => line.trim() !== '')
    .map((line) => JSON.parse(line) as CallRecord);
}

async function healthStatus(url: string): Promise<number> {
  return (await fetch(`${url}/healthz`)).status;
}

describe('tokenwise serve output', () => {
  // Regression: `tokenwise serve | head -1` (or `| true`) crashed the server with an unhandled EPIPE
  // from its banner write and left a stale server.json behind.
  it('keeps serving after stdout and stderr close', async () => {
    const child = spawn(
      process.execPath,
      [TOKENWISE_BIN, 'serve', '--port', '0', '--data-dir', dataDir, '--upstream', `anthropic=${upstream.url}`],
      {
        env: cliEnv(),
        stdio: ['ignore', 'pipe', 'pipe'],
      },
    );
    const exited = once(child, 'exit');
    // Close both pipes before the server writes anything, as `| true` does.
    child.stdout!.destroy();
    child.stderr!.destroy();

    let info: { url: string } | null = null;
    await vi.waitFor(
      async () => {
        info = JSON.parse(await readFile(join(dataDir, 'server.json'), 'utf8')) as { url: string };
        expect(await healthStatus(info.url)).toBe(200);
      },
      { timeout: 15_000, interval: 100 },
    );
    const { url } = info!;
    const { route_token: routeToken } = JSON.parse(await readFile(join(dataDir, 'local-tokens.json'), 'utf8')) as { route_token: string };

    // The banner and the per-call log line both hit the closed pipes by now.
    await new Promise((resolve) => setTimeout(resolve, 500));
    expect(await callAnthropic(url, routeToken)).toBe(200);
    expect(await healthStatus(url)).toBe(200);

    child.kill('SIGTERM');
    const [code] = (await exited) as [number | null];
    expect(code).toBe(0);
    await expect(stat(join(dataDir, 'server.json'))).rejects.toMatchObject({ code: 'ENOENT' });
    expect(await storedCalls()).toHaveLength(1);
  });

  // Regression: the banner with the route token shared stdout with the JSON log lines, so
  // `serve > tokenwise.log` was not JSON lines and kept the token five times per start.
  it('keeps stdout to JSON log lines without the route token', async () => {
    const server = await startServe(['--port', '0', '--data-dir', dataDir, '--upstream', `anthropic=${upstream.url}`]);
    expect(await callAnthropic(server.url, server.routeToken)).toBe(200);
    await vi.waitFor(async () => expect(await storedCalls()).toHaveLength(1), { timeout: 15_000 });
    expect(await server.stop()).toBe(0);

    const lines = server
      .stdout()
      .split('\n')
      .filter((line) => line !== '');
    expect(lines.map((line) => (JSON.parse(line) as { msg: string }).msg)).toEqual([
      // Said at start so that a person who expects the weekly email sees why none will come.
      'insights email off: no --smtp-url, so only the preview works',
      'server started',
      'call',
      'server stopping',
      'server stopped',
    ]);
    expect(server.stdout()).not.toContain(server.routeToken);
    expect(server.stdout()).not.toContain('twr_');
    expect(server.stderr()).toContain(`export ANTHROPIC_BASE_URL=${server.url}/r/${server.routeToken}/anthropic`);
  });

  // Regression: the banner told users to run "npx tokenwise", which outside the clone fetches whatever the
  // public registry serves under that name, and never said which routes were sent elsewhere.
  it('prints the overridden routes and how to run the command', async () => {
    const server = await startServe(['--port', '0', '--data-dir', dataDir, '--upstream', `anthropic=${upstream.url}`], {
      TOKENWISE_UPSTREAM_OPENAI: upstream.url,
    });
    expect(await server.stop()).toBe(0);
    const banner = server.stderr();

    expect(banner).toContain('Upstreams replaced by --upstream or TOKENWISE_UPSTREAM_*:');
    expect(banner).toMatch(new RegExp(`^  anthropic +-> ${upstream.url}$`, 'm'));
    expect(banner).toMatch(new RegExp(`^  openai +-> ${upstream.url}$`, 'm'));
    expect(banner).toMatch(/^Every other route goes to its provider: chatgpt, gemini, codeassist, /m);
    expect(banner).toContain(`tokenwise is: node ${TOKENWISE_BIN}`);
    expect(banner).not.toContain('npx');
  });

  // Regression: closing the terminal (SIGHUP) ended the server without its clean stop: the records still
  // waiting for the next batch were lost and server.json was left behind.
  it('stops cleanly on SIGHUP', async () => {
    const server = await startServe(['--port', '0', '--data-dir', dataDir, '--upstream', `anthropic=${upstream.url}`]);
    for (let index = 0; index < 3; index += 1) expect(await callAnthropic(server.url, server.routeToken)).toBe(200);

    const exited = once(server.child, 'exit');
    server.child.kill('SIGHUP');
    const [code] = (await exited) as [number | null];
    await server.stop();

    expect(code).toBe(0);
    expect(server.stderr()).toContain('SIGHUP received, stopping');
    await expect(stat(join(dataDir, 'server.json'))).rejects.toMatchObject({ code: 'ENOENT' });
    expect(await storedCalls()).toHaveLength(3);
  });
});
