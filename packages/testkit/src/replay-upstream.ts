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
}

export interface ReplayUpstreamOptions {
  /** The case every request is answered with, or a function that picks one per request (undefined: 404). */
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
  close(): Promise<void>;
}

/**
 * Start a fake upstream on 127.0.0.1 (port 0) that answers with a recorded llm-wire case: the status
 * and headers at `headers_ms`, each read of the body at its `chunk_times_ms` as a separate flushed
 * write, and for `ends: connection_closed` a dropped connection instead of a proper end. Times count
 * from the moment the request body was fully received, as in the corpus.
 */
export async function startReplayUpstream(options: ReplayUpstreamOptions): Promise<ReplayUpstream> {
  const timeScale = options.timeScale ?? 1;
  if (!(timeScale > 0)) throw new Error(`invalid timeScale ${timeScale}: expected a number above 0, e.g. 0.1`);

  const received: ReplayedRequest[] = [];
  const sockets = new Set<Socket>();

  const server = createServer((req, res) => {
    readRequest(req)
      .then((request) => {
        received.push(request);
        const fixture = typeof options.fixture === 'function' ? options.fixture(request) : options.fixture;
        if (!fixture) {
          const body = JSON.stringify({ error: { message: `no fixture for ${request.method} ${request.target}` } });
          res.writeHead(404, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body) }).end(body);
          return;
        }
        return replay(res, fixture, timeScale);
      })
      .catch(() => res.destroy());
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
  return { method: req.method ?? 'GET', target: req.url ?? '/', rawHeaders: [...req.rawHeaders], headers, body: Buffer.concat(chunks) };
}

async function replay(res: ServerResponse, fixture: WireFixture, timeScale: number): Promise<void> {
  const meta = fixture.responseMeta;
  const startMs = performance.now();
  const waitUntil = async (recordedMs: number) => {
    const delayMs = startMs + recordedMs * timeScale - performance.now();
    await sleep(Math.max(0, delayMs));
  };

  await waitUntil(meta.headers_ms);
  if (res.destroyed) return;
  res.sendDate = false;
  res.writeHead(meta.status, meta.status_text, meta.headers);
  res.flushHeaders();

  let offset = 0;
  for (const [index, length] of meta.chunks.entries()) {
    await waitUntil(meta.chunk_times_ms[index] ?? meta.headers_ms);
    if (res.destroyed) return;
    const chunk = fixture.responseBody.subarray(offset, offset + length);
    offset += length;
    await new Promise<void>((resolve) => res.write(chunk, () => resolve()));
  }

  if (meta.ends === 'connection_closed') {
    // Every write above has been flushed, so destroying the socket drops the connection without losing bytes.
    res.socket?.destroy();
    return;
  }
  res.end();
}
