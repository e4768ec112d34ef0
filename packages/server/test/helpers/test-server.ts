import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { type RunningServer, type ServeOptions, serve } from '@tokenwise/server';
import { createLogCapture, type LogCapture } from './log-capture.js';

export interface TestServer {
  server: RunningServer;
  dataDir: string;
  logs: LogCapture;
  /** Fetch an API path with the owner API token. */
  api(path: string, init?: RequestInit): Promise<Response>;
  /** Stop the server and delete its data directory. */
  dispose(): Promise<void>;
}

/** Start `serve` in this process on 127.0.0.1, port 0, with a fresh data directory and captured logs. */
export async function startTestServer(options: Partial<ServeOptions> = {}): Promise<TestServer> {
  const dataDir = options.dataDir ?? (await mkdtemp(join(tmpdir(), 'tokenwise-serve-')));
  const logs = createLogCapture();
  const server = await serve({
    host: '127.0.0.1',
    port: 0,
    dataDir,
    upstreams: {},
    logLevel: 'info',
    bodyCapBytes: undefined,
    logDestination: logs.stream,
    sink: { flushIntervalMs: 20 },
    ...options,
  });

  return {
    server,
    dataDir,
    logs,
    api: (path, init = {}) =>
      fetch(`${server.url}${path}`, { ...init, headers: { authorization: `Bearer ${server.apiToken}`, ...init.headers } }),
    async dispose() {
      await server.close();
      if (!options.dataDir) await rm(dataDir, { recursive: true, force: true });
    },
  };
}

/** Send one Anthropic Messages call through the proxy with a fake API key. */
export function anthropicCall(serverUrl: string, routeToken: string, init: { apiKey?: string; stream?: boolean } = {}): Promise<Response> {
  return fetch(`${serverUrl}/r/${routeToken}/anthropic/v1/messages?beta=true`, {
    method: 'POST',
    headers: {
      'content-type': 'application/json',
      'x-api-key': init.apiKey ?? 'sk-ant-api03-FAKE-test-key',
      'anthropic-version': '2023-06-01',
      'user-agent': 'claude-cli/2.1.197 (external, sdk-cli)',
    },
    body: JSON.stringify({
      model: 'claude-sonnet-4-5',
      max_tokens: 64,
      stream: init.stream ?? false,
      messages: [{ role: 'user', content: 'say hi' }],
    }),
  });
}
