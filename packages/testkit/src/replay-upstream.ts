import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo, Socket } from 'node:net';
import { setTimeout as sleep } from 'node:timers/promises';
import type { WireFixture } from './fixtures.js';

/** One request as the replay upstream received it. */
export interface ReplayedRequest {
  method: string;
  /** Path and query exactly as received. */
  target: string;
  /** Header names and values exactly as received, in order: name, value, name, value, ... */
  rawHeaders: string[];
  /** Lowercase names; repeated headers joined with `, `. */
  headers: Record<string, string>;
  /** Body bytes exactly as received. */
  body: Uint8Array;
  /**
   * How the response ended: `pending` while it plays, `complete` or `connection_closed` as the case
   * prescribes, `client_closed` when the other side closed the connection first, `not_found` for a 404.
   */
  outcome: 'pending' | 'complete' | 'connection_closed' | 'client_closed' | 'not_found';
}

export interface ReplayUpstreamOptions {
  /** The case to replay for every request, or a function that picks one per request (undefined: 404). */
  fixture: WireFixture | ((request: ReplayedRequest) => WireFixture | undefined);
  /**
   * Factor applied to every recorded time (`headers_ms`, `chunk_times_ms`); 0.1 replays ten times
   * faster. Default 1.
   */
  timeScale?: number;
}

export interface ReplayUpstream {
  /** Origin, e.g. `http://127.0.0.1:41234`, without a trailing slash. */
  readonly url: string;
  /** Every request received so far, in order of arrival (copies). */
  requests(): ReplayedRequest[];
  /** Resolves once every response started so far has ended, however it ended. */
  settled(): Promise<void>;
  close(): Promise<void>;
}

/**
 * Start a fake upstream on 127.0.0.1 (port 0) that replays a recorded llm-wire case. The status and
 * headers go out at `headers_ms` and each read of the body at its `chunk_times_ms` as a separate flushed
 * write. For `ends: connection_closed` the connection is dropped instead of ended properly, and a case
 * with `client_aborts_after_chunk` keeps its response open after the last read until the client closes.
 * Times count from the moment the request body was fully received, as in the corpus.
 */
export async function startReplayUpstream(options: ReplayUpstreamOptions): Promise<ReplayUpstream> {
  const timeScale = options.timeScale ?? 1;
  if (!(timeScale > 0)) throw new Error(`invalid timeScale ${timeScale}: expected a number above 0, e.g. 0.1`);

  const received: ReplayedRequest[] = [];
  const sockets = new Set<Socket>();
  const inFlight = new Set<Promise<void>>();

  const server = createServer((req, res) => {
    const handling = readRequest(req)
      .then(async (request) => {
        received.push(request);
        const fixture = typeof options.fixture === 'function' ? options.fixture(request) : options.fixture;
        if (!fixture) {
          const body = JSON.stringify({ error: { message: `no fixture for ${request.method} ${request.target}` } });
          res.writeHead(404, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body) }).end(body);
          request.outcome = 'not_found';
          return;
        }
        request.outcome = await replay(res, fixture, timeScale);
      })
      .catch(() => {
        res.destroy();
      });
    inFlight.add(handling);
    handling.finally(() => inFlight.delete(handling));
  });
  server.on('connection', (socket) => {
    // Each recorded read must leave as its own segment, not merged with the next one by Nagle's algorithm.
    socket.setNoDelay(true);
    sockets.add(socket);
    socket.once('close', () => sockets.delete(socket));
  });

  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => resolve());
  });
  const { port } = server.address() as AddressInfo;

  return {
    url: `http://127.0.0.1:${port}`,
    requests: () => received.map((request) => ({ ...request, rawHeaders: [...request.rawHeaders], headers: { ...request.headers } })),
    settled: async () => {
      await Promise.allSettled([...inFlight]);
    },
    close: () =>
      new Promise<void>((resolve) => {
        for (const socket of sockets) socket.destroy();
        server.close(() => resolve());
      }),
  };
}

async function readRequest(req: IncomingMessage): Promise<ReplayedRequest> {
  const chunks: Buffer[] = [];
  for await (const chunk of req) chunks.push(chunk as Buffer);

  const headers: Record<string, string> = {};
  for (const [name, value] of Object.entries(req.headers)) {
    if (value !== undefined) headers[name] = Array.isArray(value) ? value.join(', ') : value;
  }
  return {
    method: req.method ?? 'GET',
    target: req.url ?? '/',
    rawHeaders: [...req.rawHeaders],
    headers,
    body: Buffer.concat(chunks),
    outcome: 'pending',
  };
}

async function replay(res: ServerResponse, fixture: WireFixture, timeScale: number): Promise<ReplayedRequest['outcome']> {
  const meta = fixture.responseMeta;
  const startMs = performance.now();
  const waitUntil = async (recordedMs: number) => {
    const delayMs = startMs + recordedMs * timeScale - performance.now();
    await sleep(Math.max(0, delayMs));
  };

  const closedByClient = new Promise<void>((resolve) => res.once('close', () => resolve()));

  await waitUntil(meta.headers_ms);
  if (res.destroyed) return 'client_closed';
  res.sendDate = false;
  res.writeHead(meta.status, meta.status_text, meta.headers);
  res.flushHeaders();

  let offset = 0;
  for (const [index, length] of meta.chunks.entries()) {
    await waitUntil(meta.chunk_times_ms[index] ?? meta.headers_ms);
    if (res.destroyed) return 'client_closed';
    const chunk = fixture.responseBody.subarray(offset, offset + length);
    offset += length;
    await new Promise<void>((resolve) => res.write(chunk, () => resolve()));
  }

  if (meta.client_aborts_after_chunk !== undefined) {
    await closedByClient;
    return 'client_closed';
  }
  if (meta.ends === 'connection_closed') {
    // Every write above has been flushed, so destroying the socket drops the connection without losing bytes.
    res.socket?.destroy();
    return 'connection_closed';
  }
  res.end();
  return 'complete';
}
