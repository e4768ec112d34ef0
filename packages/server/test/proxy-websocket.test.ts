import { once } from 'node:events';
import { createServer, type IncomingMessage, type Server } from 'node:http';
import { type AddressInfo, connect, type Socket } from 'node:net';
import type { CaptureEnd } from '@tokenwise/core';
import { afterEach, describe, expect, it, vi } from 'vitest';
import WebSocket, { WebSocketServer } from 'ws';
import { closedPort, headerPairs, startTestProxy, TEST_TOKEN, type TestProxy } from './proxy-harness.js';

/** What the WebSocket captures were fed, in order; the real capture runs unchanged underneath. */
const fed: { side: 'client' | 'server' | 'close'; data: string | Uint8Array | CaptureEnd }[] = [];

vi.mock('@tokenwise/core', async (importOriginal) => {
  const core = await importOriginal<typeof import('@tokenwise/core')>();
  return {
    ...core,
    createWebSocketCapture: (...args: Parameters<typeof core.createWebSocketCapture>) => {
      const capture = core.createWebSocketCapture(...args);
      return {
        clientMessage(data: string | Uint8Array) {
          fed.push({ side: 'client', data });
          capture.clientMessage(data);
        },
        serverMessage(data: string | Uint8Array) {
          fed.push({ side: 'server', data });
          capture.serverMessage(data);
        },
        close(end: CaptureEnd) {
          fed.push({ side: 'close', data: end });
          capture.close(end);
        },
      };
    },
  };
});

const CODEX_HEADERS = {
  authorization: 'Bearer sk-proj-FAKE-TEST-KEY-0000',
  'openai-beta': 'responses_websockets=2026-02-06',
  'chatgpt-account-id': 'acct-FAKE-0000',
  'session-id': '0199a000-0000-7000-8000-000000000001',
};

interface WsUpstream {
  url: string;
  server: Server;
  /** Upgrade requests that reached the upstream. */
  upgrades: IncomingMessage[];
  connections: WebSocket[];
  nextConnection(): Promise<WebSocket>;
  close(): Promise<void>;
}

/** Start a WebSocket upstream. With `refuse`, every upgrade gets that raw HTTP response instead. */
async function startWsUpstream(options: { refuse?: string; protocol?: string } = {}): Promise<WsUpstream> {
  const upgrades: IncomingMessage[] = [];
  const connections: WebSocket[] = [];
  const waiting: ((ws: WebSocket) => void)[] = [];
  const sockets = new Set<Socket>();
  const wss = new WebSocketServer({
    noServer: true,
    handleProtocols: (offered) => (options.protocol && offered.has(options.protocol) ? options.protocol : false),
  });
  wss.on('headers', (headers) => headers.push('x-request-id: req_FAKE_WS'));
  const server = createServer((_req, res) => res.writeHead(404).end());
  server.on('connection', (socket) => {
    sockets.add(socket);
    socket.once('close', () => sockets.delete(socket));
  });
  server.on('upgrade', (req, socket, head) => {
    upgrades.push(req);
    if (options.refuse) {
      socket.end(options.refuse);
      return;
    }
    wss.handleUpgrade(req, socket, head, (ws) => {
      connections.push(ws);
      waiting.shift()?.(ws);
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', () => resolve()));
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}`,
    server,
    upgrades,
    connections,
    nextConnection: () => new Promise((resolve) => waiting.push(resolve)),
    close: () =>
      new Promise<void>((resolve) => {
        for (const ws of wss.clients) ws.terminate();
        for (const socket of sockets) socket.destroy();
        server.close(() => resolve());
      }),
  };
}

const cleanup: (() => Promise<void> | void)[] = [];
afterEach(async () => {
  while (cleanup.length > 0) await cleanup.pop()!();
  fed.length = 0;
});

async function setUp(options: Parameters<typeof startWsUpstream>[0] = {}): Promise<{ upstream: WsUpstream; proxy: TestProxy }> {
  const upstream = await startWsUpstream(options);
  const proxy = await startTestProxy({ upstreams: { openai: upstream.url } });
  cleanup.push(
    () => upstream.close(),
    () => proxy.close(),
  );
  return { upstream, proxy };
}

function connectClient(proxy: TestProxy, options: { token?: string; protocols?: string[] } = {}): WebSocket {
  const url = `ws://127.0.0.1:${proxy.port}/r/${options.token ?? TEST_TOKEN}/openai/v1/responses`;
  const client = new WebSocket(url, options.protocols ?? [], { headers: CODEX_HEADERS });
  // Terminating a client whose upgrade was refused emits an error that these tests do not care about.
  client.on('error', () => {});
  cleanup.push(() => client.terminate());
  return client;
}

/** Read the refusal a client receives: status, headers and body of the `unexpected-response`. */
async function refusalOf(client: WebSocket): Promise<{ status: number; headers: IncomingMessage['headers']; body: string }> {
  const [, response] = (await once(client, 'unexpected-response')) as [unknown, IncomingMessage];
  const chunks: Buffer[] = [];
  for await (const chunk of response) chunks.push(chunk as Buffer);
  return { status: response.statusCode ?? 0, headers: response.headers, body: Buffer.concat(chunks).toString() };
}

describe('WebSocket relay', () => {
  it('opens the upstream with client headers', async () => {
    const { upstream, proxy } = await setUp();
    const client = connectClient(proxy);
    // `ws` emits `upgrade` and `open` in the same tick, so both are awaited from the start.
    const upgraded = once(client, 'upgrade') as Promise<[IncomingMessage]>;
    const opened = once(client, 'open');
    const [accepted] = await upgraded;
    await opened;

    expect(accepted.headers['x-request-id']).toBe('req_FAKE_WS');
    expect(upstream.upgrades).toHaveLength(1);
    const upgrade = upstream.upgrades[0]!;
    expect(upgrade.url).toBe('/v1/responses');
    const received = Object.fromEntries(headerPairs(upgrade.rawHeaders));
    for (const [name, value] of Object.entries(CODEX_HEADERS)) expect(received[name], name).toBe(value);
    expect(received.host).toBe(new URL(upstream.url).host);
    expect(upgrade.rawHeaders.join('\n')).not.toContain(TEST_TOKEN);
  });

  it('relays messages both ways', async () => {
    const { upstream, proxy } = await setUp();
    const upstreamSide = upstream.nextConnection();
    const client = connectClient(proxy);
    await once(client, 'open');
    const server = await upstreamSide;

    const request = JSON.stringify({ type: 'response.create', model: 'gpt-5-codex', input: [] });
    client.send(request);
    const [fromClient, clientBinary] = (await once(server, 'message')) as [Buffer, boolean];
    expect(fromClient.toString()).toBe(request);
    expect(clientBinary).toBe(false);

    const event = JSON.stringify({ type: 'response.completed', response: { id: 'resp_FAKE' } });
    server.send(event);
    const [fromServer, serverBinary] = (await once(client, 'message')) as [Buffer, boolean];
    expect(fromServer.toString()).toBe(event);
    expect(serverBinary).toBe(false);

    server.send(Buffer.from([0, 1, 2, 255]));
    const [binary, isBinary] = (await once(client, 'message')) as [Buffer, boolean];
    expect(isBinary).toBe(true);
    expect([...binary]).toEqual([0, 1, 2, 255]);
  });

  it('feeds the capture every message', async () => {
    const { upstream, proxy } = await setUp();
    const upstreamSide = upstream.nextConnection();
    const client = connectClient(proxy);
    await once(client, 'open');
    const server = await upstreamSide;

    client.send('{"type":"response.create"}');
    await once(server, 'message');
    server.send('{"type":"response.created"}');
    await once(client, 'message');
    server.close(1000);
    await once(client, 'close');

    expect(fed).toEqual([
      { side: 'client', data: '{"type":"response.create"}' },
      { side: 'server', data: '{"type":"response.created"}' },
      { side: 'close', data: { kind: 'complete' } },
    ]);
  });

  it('passes the client close code upstream', async () => {
    const { upstream, proxy } = await setUp();
    const upstreamSide = upstream.nextConnection();
    const client = connectClient(proxy);
    await once(client, 'open');
    const server = await upstreamSide;

    client.close(4001, 'done here');
    const [code, reason] = (await once(server, 'close')) as [number, Buffer];
    expect(code).toBe(4001);
    expect(reason.toString()).toBe('done here');
    expect(fed.at(-1)).toEqual({ side: 'close', data: { kind: 'client_aborted' } });
  });

  it('passes the upstream close code to the client', async () => {
    const { upstream, proxy } = await setUp();
    const upstreamSide = upstream.nextConnection();
    const client = connectClient(proxy);
    await once(client, 'open');
    const server = await upstreamSide;

    server.close(1011, 'internal error');
    const [code, reason] = (await once(client, 'close')) as [number, Buffer];
    expect(code).toBe(1011);
    expect(reason.toString()).toBe('internal error');
    expect(fed.at(-1)).toEqual({
      side: 'close',
      data: { kind: 'upstream_closed', message: 'upstream closed the WebSocket with code 1011' },
    });
  });

  it('drops the client when the upstream drops', async () => {
    const { upstream, proxy } = await setUp();
    const upstreamSide = upstream.nextConnection();
    const client = connectClient(proxy);
    await once(client, 'open');
    const server = await upstreamSide;

    server.terminate();
    const [code] = (await once(client, 'close')) as [number];
    expect(code).toBe(1006);
  });

  it('passes the selected subprotocol', async () => {
    const { proxy } = await setUp({ protocol: 'codex.v2' });
    const client = connectClient(proxy, { protocols: ['codex.v1', 'codex.v2'] });
    await once(client, 'open');
    expect(client.protocol).toBe('codex.v2');
  });

  it('counts and closes live relays', async () => {
    const { upstream, proxy } = await setUp();
    const upstreamSide = upstream.nextConnection();
    const client = connectClient(proxy);
    await once(client, 'open');
    const server = await upstreamSide;
    expect(proxy.handler.stats().liveRelays).toBe(1);

    const clientClosed = once(client, 'close');
    const serverClosed = once(server, 'close');
    await proxy.handler.close();
    await clientClosed;
    await serverClosed;
    expect(proxy.handler.stats().liveRelays).toBe(0);
  });
});

describe('WebSocket refusal', () => {
  it('passes the upstream 426 and body', async () => {
    const body = '{"error":{"message":"Upgrade Required","type":"invalid_request_error"}}';
    const refusal = `HTTP/1.1 426 Upgrade Required\r\ncontent-type: application/json\r\ncontent-length: ${Buffer.byteLength(body)}\r\nx-request-id: req_FAKE\r\nconnection: close\r\n\r\n${body}`;
    const { upstream, proxy } = await setUp({ refuse: refusal });
    const client = connectClient(proxy);

    const response = await refusalOf(client);
    expect(response.status).toBe(426);
    expect(response.headers['content-type']).toBe('application/json');
    expect(response.headers['x-request-id']).toBe('req_FAKE');
    expect(response.body).toBe(body);
    expect(upstream.upgrades).toHaveLength(1);
    expect(fed).toEqual([]);
  });

  it('returns 502 for unreachable upstream', async () => {
    const port = await closedPort();
    const proxy = await startTestProxy({ upstreams: { openai: `http://127.0.0.1:${port}` } });
    cleanup.push(() => proxy.close());
    const client = connectClient(proxy);

    const response = await refusalOf(client);
    expect(response.status).toBe(502);
    const error = JSON.parse(response.body).error;
    expect(error.type).toBe('server_error');
    expect(error.message).toContain(`http://127.0.0.1:${port}`);
    expect(error.message).toContain('connection refused');
  });

  it('returns 401 for unknown token', async () => {
    const { upstream, proxy } = await setUp();
    const client = connectClient(proxy, { token: 'tw_unknown_token_9999' });

    const response = await refusalOf(client);
    expect(response.status).toBe(401);
    expect(JSON.parse(response.body).error.message).toMatch(/^invalid route: .+, run tokenwise connect to pair again$/);
    expect(upstream.upgrades).toHaveLength(0);
  });
});

describe('WebSocket refusal records', () => {
  const CODEX_CLIENT = { ...CODEX_HEADERS, originator: 'codex_cli_rs', 'user-agent': 'codex_cli_rs/0.46.0 (Linux 6.8; x86_64) xterm' };

  function connectCodex(proxy: TestProxy): WebSocket {
    const client = new WebSocket(`ws://127.0.0.1:${proxy.port}/r/${TEST_TOKEN}/openai/v1/responses`, [], { headers: CODEX_CLIENT });
    client.on('error', () => {});
    cleanup.push(() => client.terminate());
    return client;
  }

  it('records an unreachable upstream like HTTP (regression: no record)', async () => {
    const port = await closedPort();
    const proxy = await startTestProxy({ upstreams: { openai: `http://127.0.0.1:${port}` } });
    cleanup.push(() => proxy.close());

    const response = await refusalOf(connectCodex(proxy));
    const { record } = await proxy.sink.next();
    expect(record.status).toBe('error');
    expect(record.http_status).toBeNull();
    expect(record.error?.type).toBe('upstream_unreachable');
    expect(record.error?.message).toBe(JSON.parse(response.body).error.message);
    expect(record.route).toBe('openai');
    expect(record.api_shape).toBe('openai.responses');
    expect(record.method).toBe('GET');
    expect(record.tool).toBe('codex');
    expect(record.tool_version).toBe('0.46.0');
    expect(record.session_id).toBe(CODEX_HEADERS['session-id']);
    expect(record.billable).toBe(false);
    expect(record.cost.basis).toBe('none');
  });

  it('records a refusal with its status and provider error', async () => {
    const body = '{"error":{"message":"Upgrade Required","type":"invalid_request_error","code":null}}';
    const refusal = `HTTP/1.1 426 Upgrade Required\r\ncontent-type: application/json\r\ncontent-length: ${Buffer.byteLength(body)}\r\nx-request-id: req_FAKE\r\nconnection: close\r\n\r\n${body}`;
    const { proxy } = await setUp({ refuse: refusal });

    await refusalOf(connectCodex(proxy));
    const { record } = await proxy.sink.next();
    expect(record.status).toBe('error');
    expect(record.http_status).toBe(426);
    expect(record.error).toEqual({ type: 'invalid_request_error', message: 'Upgrade Required', source: 'http', retry_after_s: null });
    expect(record.upstream_request_id).toBe('req_FAKE');
    expect(record.stream_requested).toBe(true);
    expect(record.streaming).toBe(false);
    expect(record.tool).toBe('codex');
    expect(record.billable).toBe(false);
  });

  it('records a plain 200 in place of the upgrade as an error', async () => {
    const refusal = 'HTTP/1.1 200 OK\r\ncontent-type: text/plain\r\ncontent-length: 2\r\nconnection: close\r\n\r\nok';
    const { proxy } = await setUp({ refuse: refusal });

    const response = await refusalOf(connectCodex(proxy));
    expect(response.status).toBe(200);
    expect(response.body).toBe('ok');
    const { record } = await proxy.sink.next();
    expect(record.status).toBe('error');
    expect(record.http_status).toBe(200);
    expect(record.error).toMatchObject({ type: 'http_200', source: 'http' });
    expect(record.billable).toBe(false);
  });

  it('records an invalid HTTP response to the upgrade', async () => {
    const { proxy } = await setUp({ refuse: 'garbage\r\n\r\n' });

    const response = await refusalOf(connectCodex(proxy));
    expect(response.status).toBe(502);
    expect(JSON.parse(response.body).error.message).toContain('sent an invalid HTTP response');
    const { record } = await proxy.sink.next();
    expect(record.status).toBe('error');
    expect(record.error?.type).toBe('upstream_invalid_response');
  });

  it('writes no record for an accepted upgrade without messages', async () => {
    const { upstream, proxy } = await setUp();
    const client = connectCodex(proxy);
    await once(client, 'open');
    const serverSide = upstream.connections[0] ?? (await upstream.nextConnection());
    serverSide.close(1000);
    await once(client, 'close');
    expect(proxy.sink.entries).toHaveLength(0);
  });
});

describe('WebSocket handshake', () => {
  it('rejects an invalid client handshake locally', async () => {
    const { upstream, proxy } = await setUp();
    const socket = connect(proxy.port, '127.0.0.1');
    await once(socket, 'connect');
    socket.end(
      `GET /r/${TEST_TOKEN}/openai/v1/responses HTTP/1.1\r\nhost: 127.0.0.1\r\nconnection: upgrade\r\nupgrade: websocket\r\nsec-websocket-key: not-a-key\r\nsec-websocket-version: 13\r\n\r\n`,
    );
    const chunks: Buffer[] = [];
    socket.on('data', (chunk: Buffer) => chunks.push(chunk));
    await once(socket, 'close');
    const response = Buffer.concat(chunks).toString();
    expect(response).toMatch(/^HTTP\/1\.1 400 /);
    expect(response).toContain('sec-websocket-key');
    expect(upstream.upgrades).toHaveLength(0);
  });

  it('rejects an absolute-form target without echoing the token', async () => {
    const { upstream, proxy } = await setUp();
    const socket = connect(proxy.port, '127.0.0.1');
    await once(socket, 'connect');
    socket.end(
      `GET http://127.0.0.1:${proxy.port}/r/${TEST_TOKEN}/openai/v1/responses HTTP/1.1\r\nhost: 127.0.0.1\r\nconnection: upgrade\r\nupgrade: websocket\r\nsec-websocket-key: dGhlIHNhbXBsZSBub25jZQ==\r\nsec-websocket-version: 13\r\n\r\n`,
    );
    const chunks: Buffer[] = [];
    socket.on('data', (chunk: Buffer) => chunks.push(chunk));
    await once(socket, 'close');
    const response = Buffer.concat(chunks).toString();
    expect(response).toMatch(/^HTTP\/1\.1 400 /);
    expect(response).toContain('absolute-form request targets');
    expect(response).not.toContain(TEST_TOKEN);
    expect(upstream.upgrades).toHaveLength(0);
  });

  it('returns 504 on handshake timeout', async () => {
    const silent = createServer();
    const held: Socket[] = [];
    silent.on('upgrade', (_req, socket: Socket) => held.push(socket));
    await new Promise<void>((resolve) => silent.listen(0, '127.0.0.1', () => resolve()));
    const { port } = silent.address() as AddressInfo;
    cleanup.push(
      () =>
        new Promise<void>((resolve) => {
          for (const socket of held) socket.destroy();
          silent.close(() => resolve());
        }),
    );
    const proxy = await startTestProxy({ upstreams: { openai: `http://127.0.0.1:${port}` }, upstreamHeadersTimeoutMs: 200 });
    cleanup.push(() => proxy.close());

    const response = await refusalOf(connectClient(proxy));
    expect(response.status).toBe(504);
    expect(JSON.parse(response.body).error.message).toContain('no response headers in time');
  });

  it('abandons the upstream when the client leaves first', async () => {
    const slow = createServer();
    const held: Socket[] = [];
    let upstreamSocketClosed: Promise<unknown> = new Promise(() => {});
    const arrived = new Promise<void>((resolve) => {
      slow.on('upgrade', (_req, socket: Socket) => {
        held.push(socket);
        // Read the socket so the proxy's FIN shows as `end` (server sockets allow half-open connections).
        upstreamSocketClosed = Promise.race([once(socket, 'end'), once(socket, 'close')]);
        socket.resume();
        resolve();
      });
    });
    await new Promise<void>((resolve) => slow.listen(0, '127.0.0.1', () => resolve()));
    const { port } = slow.address() as AddressInfo;
    cleanup.push(
      () =>
        new Promise<void>((resolve) => {
          for (const socket of held) socket.destroy();
          slow.close(() => resolve());
        }),
    );
    const proxy = await startTestProxy({ upstreams: { openai: `http://127.0.0.1:${port}` } });
    cleanup.push(() => proxy.close());

    const client = connectClient(proxy);
    await arrived;
    client.terminate();
    await upstreamSocketClosed;
    expect(proxy.handler.stats().liveRelays).toBe(0);
  });
});

describe('WebSocket backpressure', () => {
  /** Same reasoning as the HTTP backpressure test: socket buffers hold tens of MiB at most. */
  const STREAM_BYTES = 256 * 1024 * 1024;
  const STALLED_BOUND_BYTES = 128 * 1024 * 1024;
  const MESSAGE = Buffer.alloc(256 * 1024, 0x62);
  const STALL_MS = 500;

  it('stalls the upstream when the client stops reading', async () => {
    const { upstream, proxy } = await setUp();
    const upstreamSide = upstream.nextConnection();
    const client = connectClient(proxy);
    await once(client, 'open');
    client.pause();
    const server = await upstreamSide;

    let sent = 0;
    while (sent < STREAM_BYTES) {
      const flushed = new Promise<boolean>((resolve) => server.send(MESSAGE, { binary: true }, () => resolve(true)));
      sent += MESSAGE.length;
      if (server.bufferedAmount > 4 * MESSAGE.length) {
        const drained = await Promise.race([flushed, new Promise<boolean>((resolve) => setTimeout(() => resolve(false), STALL_MS))]);
        if (!drained) break;
      }
    }
    expect(sent).toBeLessThan(STALLED_BOUND_BYTES);
  });
});
