import { rm } from 'node:fs/promises';
import { type RunningServer, type ServeOptions, serve } from '@tokenwise/server';
import { collectForSecretScan, FAKE_CREDENTIALS, makeTestDir } from '@tokenwise/testkit';
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

/**
 * Start `serve` in this process on 127.0.0.1, port 0, with a fresh data directory and captured logs.
 * The data directory, the logs and every API response are left to the suite's closing secret scan.
 */
export async function startTestServer(options: Partial<ServeOptions> = {}): Promise<TestServer> {
  const created = options.dataDir === undefined ? await makeTestDir('tokenwise-serve-') : null;
  const dataDir = options.dataDir ?? created!.dir;
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
    async api(path, init = {}) {
      const response = await fetch(`${server.url}${path}`, {
        ...init,
        headers: { authorization: `Bearer ${server.apiToken}`, ...init.headers },
      });
      collectResponse('api-response', response);
      return response;
    },
    async dispose() {
      await server.close();
      collectForSecretScan('server-log', logs.text());
      if (created && !created.keep) await rm(dataDir, { recursive: true, force: true });
    },
  };
}

/**
 * Keep a copy of a response body for the closing secret scan, unless it is an event stream, which may
 * never end. The copy is read from a clone, so the caller reads the response as usual.
 */
function collectResponse(kind: string, response: Response): void {
  if (response.headers.get('content-type')?.includes('text/event-stream')) return;
  response
    .clone()
    .arrayBuffer()
    .then((body) => collectForSecretScan(kind, new Uint8Array(body)))
    .catch(() => undefined);
}

/** Send one Anthropic Messages call through the proxy with a fake API key. */
export async function anthropicCall(
  serverUrl: string,
  routeToken: string,
  init: { apiKey?: string; stream?: boolean } = {},
): Promise<Response> {
  const response = await fetch(`${serverUrl}/r/${routeToken}/anthropic/v1/messages?beta=true`, {
    method: 'POST',
    headers: {
      'content-type': 'application/json',
      'x-api-key': init.apiKey ?? FAKE_CREDENTIALS.anthropicApiKey,
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
  if (!response.ok) collectResponse('proxy-error', response);
  return response;
}
