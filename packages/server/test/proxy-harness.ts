import { createServer, request as httpRequest, type IncomingHttpHeaders, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { type CallBodies, type CallRecord, createRouteRegistry, type RecordSink } from '@tokenwise/core';
import { type Logger, pino } from 'pino';
import { createProxyHandler, type ProxyHandler, type ProxyOptions, type RouteAuthorization } from '../src/proxy/index.js';

/** A route token in the format `parseProxyPath` accepts; the harness authorizes only this one. */
export const TEST_TOKEN = 'tw_test_route_token_0001';
export const TEST_AUTHORIZATION: RouteAuthorization = { workspaceId: 'ws_test', deviceId: 'dev_test', keepBodies: true };

export interface SinkEntry {
  record: CallRecord;
  bodies: CallBodies | null;
}

/** Keeps every written record; `next()` resolves with the next record written (or one already waiting). */
export interface MemorySink extends RecordSink {
  readonly entries: SinkEntry[];
  next(): Promise<SinkEntry>;
}

export function createMemorySink(): MemorySink {
  const entries: SinkEntry[] = [];
  const waiting: ((entry: SinkEntry) => void)[] = [];
  let delivered = 0;
  return {
    entries,
    write(record, bodies) {
      const entry = { record, bodies };
      entries.push(entry);
      const resolve = waiting.shift();
      if (resolve) {
        delivered += 1;
        resolve(entry);
      }
    },
    next() {
      if (delivered < entries.length) return Promise.resolve(entries[delivered++]!);
      return new Promise((resolve) => waiting.push(resolve));
    },
  };
}

/** A pino logger whose lines are kept as parsed objects, so tests can check what the proxy logged. */
export function createCapturingLogger(): { logger: Logger; lines: Record<string, unknown>[]; text(): string } {
  const raw: string[] = [];
  const logger = pino({ level: 'debug' }, { write: (line: string) => raw.push(line) });
  return {
    logger,
    get lines() {
      return raw.map((line) => JSON.parse(line) as Record<string, unknown>);
    },
    text: () => raw.join(''),
  };
}

export interface TestProxy {
  /** Origin of the proxy, e.g. `http://127.0.0.1:41234`. */
  url: string;
  port: number;
  handler: ProxyHandler;
  sink: MemorySink;
  log: ReturnType<typeof createCapturingLogger>;
  /** `/r/{TEST_TOKEN}/{route}{rest}` */
  pathFor(route: string, rest: string): string;
  close(): Promise<void>;
}

export interface TestProxyOptions extends Partial<Omit<ProxyOptions, 'registry' | 'sink' | 'logger'>> {
  /** Route name to upstream base URL, e.g. `{ anthropic: upstream.url }`. */
  upstreams?: Record<string, string>;
  sink?: MemorySink;
}

/** Start the proxy handler on a real socket (127.0.0.1, port 0), mounted for every target as the app mounts it for `/r/`. */
export async function startTestProxy(options: TestProxyOptions = {}): Promise<TestProxy> {
  const sink = options.sink ?? createMemorySink();
  const log = createCapturingLogger();
  const handler = createProxyHandler({
    ...options,
    registry: createRouteRegistry(options.upstreams ?? {}),
    authorize: options.authorize ?? ((token) => (token === TEST_TOKEN ? TEST_AUTHORIZATION : null)),
    sink,
    logger: log.logger,
  });

  const server: Server = createServer((req, res) => handler.handleRequest(req, res));
  server.on('upgrade', (req, socket, head) => handler.handleUpgrade(req, socket, head));
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', () => resolve()));
  const { port } = server.address() as AddressInfo;

  return {
    url: `http://127.0.0.1:${port}`,
    port,
    handler,
    sink,
    log,
    pathFor: (route, rest) => `/r/${TEST_TOKEN}/${route}${rest}`,
    async close() {
      await handler.close();
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}

export interface ClientResponse {
  status: number;
  statusMessage: string;
  headers: IncomingHttpHeaders;
  rawHeaders: string[];
  /** Body bytes as received (no content decoding). */
  body: Buffer;
  /** False when the connection ended before the response's proper end. */
  complete: boolean;
}

export interface ClientRequestSpec {
  method?: string;
  path: string;
  headers?: Record<string, string | string[]>;
  body?: Uint8Array | string | null;
}

/** Send one request with node:http on a fresh connection and read the whole response, however it ends. */
export function sendRequest(port: number, spec: ClientRequestSpec): Promise<ClientResponse> {
  return new Promise((resolve, reject) => {
    const req = httpRequest({
      host: '127.0.0.1',
      port,
      method: spec.method ?? 'GET',
      path: spec.path,
      headers: spec.headers,
      agent: false,
    });
    req.once('error', reject);
    req.once('response', (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (chunk: Buffer) => chunks.push(chunk));
      // A broken stream surfaces as an `aborted` error on the response; `close` still follows.
      res.on('error', () => {});
      res.once('close', () =>
        resolve({
          status: res.statusCode ?? 0,
          statusMessage: res.statusMessage ?? '',
          headers: res.headers,
          rawHeaders: res.rawHeaders,
          body: Buffer.concat(chunks),
          complete: res.complete,
        }),
      );
    });
    req.end(spec.body ?? undefined);
  });
}

/** Header pairs of a raw header list, names lowercased, in order. */
export function headerPairs(rawHeaders: readonly string[]): [string, string][] {
  const pairs: [string, string][] = [];
  for (let i = 0; i + 1 < rawHeaders.length; i += 2) pairs.push([rawHeaders[i]!.toLowerCase(), rawHeaders[i + 1]!]);
  return pairs;
}
