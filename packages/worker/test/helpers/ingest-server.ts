import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import type { CallBodies, CallRecord } from '@tokenwise/core';
import { type RunningServer, type ServeOptions, serve } from '@tokenwise/server';

/** A real `tokenwise serve` in this process, with the Worker endpoints on. */
export const INGEST_SECRET = 'test-ingest-secret-0123456789abcdefABCDEF';

export interface IngestServer {
  server: RunningServer;
  /** Fetch an API path with the owner API token. */
  api(path: string, init?: RequestInit): Promise<Response>;
  /** The stored calls, oldest first (at most 1000). */
  calls(): Promise<CallRecord[]>;
  /** Wait until `count` calls are stored in all, then return them oldest first. */
  waitForCalls(count: number): Promise<CallRecord[]>;
  /** One stored call with its bodies. */
  call(id: string): Promise<{ call: CallRecord; bodies: CallBodies | null }>;
  /** Log lines the server wrote, parsed. */
  logLines(): Record<string, unknown>[];
  dispose(): Promise<void>;
}

/** How long `waitForCalls` waits, in ms; the Worker sends a record within a second of the call's end. */
const WAIT_FOR_CALLS_MS = 15_000;

export async function startIngestServer(options: Partial<ServeOptions> = {}): Promise<IngestServer> {
  const dataDir = await mkdtemp(join(tmpdir(), 'tokenwise-ingest-'));
  const lines: string[] = [];
  const logDestination = new Writable({
    write(chunk, _encoding, callback) {
      lines.push(String(chunk));
      callback();
    },
  });
  const server = await serve({
    host: '127.0.0.1',
    port: 0,
    dataDir,
    upstreams: {},
    logLevel: 'info',
    bodyCapBytes: undefined,
    ingestSecret: INGEST_SECRET,
    logDestination,
    sink: { flushIntervalMs: 20 },
    ...options,
  });

  const api = (path: string, init: RequestInit = {}) =>
    fetch(`${server.url}${path}`, { ...init, headers: { authorization: `Bearer ${server.apiToken}`, ...init.headers } });
  const calls = async (): Promise<CallRecord[]> => {
    // Without a cursor the API lists newest first.
    const response = await api('/api/v1/calls?limit=1000');
    return ((await response.json()) as { calls: CallRecord[] }).calls.reverse();
  };

  return {
    server,
    api,
    calls,
    async waitForCalls(count) {
      const deadline = Date.now() + WAIT_FOR_CALLS_MS;
      for (;;) {
        const stored = await calls();
        if (stored.length >= count) return stored;
        if (Date.now() > deadline) throw new Error(`expected ${count} stored calls within ${WAIT_FOR_CALLS_MS} ms, found ${stored.length}`);
        await new Promise((resolve) => setTimeout(resolve, 25));
      }
    },
    async call(id) {
      return (await (await api(`/api/v1/calls/${id}`)).json()) as { call: CallRecord; bodies: CallBodies | null };
    },
    logLines: () =>
      lines
        .flatMap((chunk) => chunk.split('\n'))
        .filter((line) => line !== '')
        .map((line) => JSON.parse(line)),
    async dispose() {
      await server.close();
      await rm(dataDir, { recursive: true, force: true });
    },
  };
}
