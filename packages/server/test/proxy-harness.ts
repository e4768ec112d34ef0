import {
  createServer,
  request as httpRequest,
  type IncomingHttpHeaders,
  type IncomingMessage,
  type Server,
  type ServerResponse,
} from 'node:http';
import type { AddressInfo, Socket } from 'node:net';
import { type CallBodies, type CallRecord, createRouteRegistry, decodeCallBodies } from '@tokenwise/core';
import { collectForSecretScan } from '@tokenwise/testkit';
import { type Logger, pino } from 'pino';
import {
  createProxyHandler,
  type ProxyHandler,
  type ProxyOptions,
  type ProxyRecordSink,
  type RouteAuthorization,
} from '../src/proxy/index.js';

/** A route token in the format `parseProxyPath` accepts; the harness authorizes only this one. */
export const TEST_TOKEN = 'tw_test_route_token_0001';
export const TEST_AUTHORIZATION: RouteAuthorization = { workspaceId: 'ws_test', deviceId: 'dev_test', keepBodies: true };

export interface SinkEntry {
  record: CallRecord;
  /** Bodies as captured, decoded to text here: the real sink decodes them and masks secrets in them later. */
  bodies: CallBodies | null;
  /** Bodies exactly as the proxy wrote them (raw bytes in `CapturedBody.raw`). */
  written: CallBodies | null;
  redactBodies: boolean;
}

/** Keeps every written record; `next()` resolves with the next record written (or one already waiting). */
export interface MemorySink extends ProxyRecordSink {
  readonly entries: SinkEntry[];
  next(): Promise<SinkEntry>;
}

export function createMemorySink(): MemorySink {
  const entries: SinkEntry[] = [];
  const waiting: ((entry: SinkEntry) => void)[] = [];
  let delivered = 0;
  return {
    entries,
    write(record, bodies, { redactBodies }) {
      const entry = { record, bodies: bodies === null ? null : decodeCallBodies(bodies, false), written: bodies, redactBodies };
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

/** Create a pino logger whose lines are kept, so tests can check what the proxy logged. */
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
  /** Hang up as soon as this many response body bytes have arrived. */
  abortAfterBytes?: number;
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
    let responded = false;
    // Once the response has begun, its own `close` reports the outcome, including our own hang-up.
    req.on('error', (error) => {
      if (!responded) reject(error);
    });
    req.once('response', (res) => {
      responded = true;
      const chunks: Buffer[] = [];
      let receivedBytes = 0;
      res.on('data', (chunk: Buffer) => {
        chunks.push(chunk);
        receivedBytes += chunk.length;
        if (spec.abortAfterBytes !== undefined && receivedBytes >= spec.abortAfterBytes) req.destroy();
      });
      // A broken stream surfaces as an `aborted` error on the response; `close` still follows.
      res.on('error', () => {});
      res.once('close', () => {
        const body = Buffer.concat(chunks);
        // Error bodies, the proxy's own among them, go to the suite's closing secret scan.
        if ((res.statusCode ?? 0) >= 400) collectForSecretScan('proxy-error', body);
        resolve({
          status: res.statusCode ?? 0,
          statusMessage: res.statusMessage ?? '',
          headers: res.headers,
          rawHeaders: res.rawHeaders,
          body,
          complete: res.complete,
        });
      });
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

/** One request a test upstream received, with its body once fully read. */
export interface UpstreamRequest {
  method: string;
  target: string;
  rawHeaders: string[];
  body: Buffer;
}

export interface TestUpstream {
  url: string;
  port: number;
  /** Requests whose body has been fully read, in order. */
  requests: UpstreamRequest[];
  /** TCP connections accepted so far. */
  connections(): number;
  close(): Promise<void>;
}

/**
 * Start a plain HTTP upstream on 127.0.0.1 whose `respond` writes each response. With `readBody` false
 * the request body is left unread, for tests that need the upstream to stall.
 */
export async function startUpstream(
  respond: (req: IncomingMessage, res: ServerResponse, request: UpstreamRequest) => void,
  options: { readBody?: boolean } = {},
): Promise<TestUpstream> {
  const requests: UpstreamRequest[] = [];
  const sockets = new Set<Socket>();
  let connectionCount = 0;

  const server = createServer((req, res) => {
    const request: UpstreamRequest = {
      method: req.method ?? '',
      target: req.url ?? '',
      rawHeaders: [...req.rawHeaders],
      body: Buffer.alloc(0),
    };
    if (options.readBody === false) {
      respond(req, res, request);
      return;
    }
    const chunks: Buffer[] = [];
    req.on('data', (chunk: Buffer) => chunks.push(chunk));
    req.once('end', () => {
      request.body = Buffer.concat(chunks);
      requests.push(request);
      respond(req, res, request);
    });
  });
  server.on('connection', (socket) => {
    connectionCount += 1;
    sockets.add(socket);
    socket.once('close', () => sockets.delete(socket));
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', () => resolve()));
  const { port } = server.address() as AddressInfo;

  return {
    url: `http://127.0.0.1:${port}`,
    port,
    requests,
    connections: () => connectionCount,
    close: () =>
      new Promise<void>((resolve) => {
        for (const socket of sockets) socket.destroy();
        server.close(() => resolve());
      }),
  };
}

/** Find a port on 127.0.0.1 that nothing listens on (bound, then released). */
export async function closedPort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', () => resolve()));
  const { port } = server.address() as AddressInfo;
  await new Promise<void>((resolve) => server.close(() => resolve()));
  return port;
}
