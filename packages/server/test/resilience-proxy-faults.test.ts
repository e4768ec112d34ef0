/**
 * Upstream faults seen through the proxy: for each, the client gets what it would get from the upstream
 * directly (the same status, headers, bytes and the same kind of end), and the record states what happened.
 * Faults covered elsewhere: a reset before headers and a garbage response (proxy-upstream-failures), a
 * reset mid-stream and a client hanging up (proxy-stream-ends), a headers timeout (proxy-forwarding),
 * a client that stops reading (proxy-backpressure).
 */
import { request as httpRequest } from 'node:http';
import { type AddressInfo, createServer, type Server, type Socket } from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { type ClientResponse, sendRequest, startTestProxy, startUpstream, type TestProxy } from './proxy-harness.js';

/** The promise: the cancellation reaches the upstream within 1 s of the client hanging up. */
const CANCEL_PROMISE_MS = 1_000;
/** Margin on top of the promise for a loaded machine. */
const CANCEL_MARGIN_MS = 2_000;

const cleanup: (() => Promise<void>)[] = [];
afterEach(async () => {
  while (cleanup.length > 0) await cleanup.pop()!();
});

/** Start a TCP upstream whose `answer` writes raw bytes once a request head has arrived. */
async function startRawUpstream(answer: (socket: Socket) => void): Promise<{ url: string; sockets: Set<Socket> }> {
  const sockets = new Set<Socket>();
  const server: Server = createServer((socket) => {
    sockets.add(socket);
    socket.on('error', () => {});
    socket.once('close', () => sockets.delete(socket));
    let head = '';
    const onData = (data: Buffer) => {
      head += data.toString('latin1');
      if (!head.includes('\r\n\r\n')) return;
      socket.off('data', onData);
      socket.resume();
      answer(socket);
    };
    socket.on('data', onData);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', () => resolve()));
  cleanup.push(
    () =>
      new Promise<void>((resolve) => {
        for (const socket of sockets) socket.destroy();
        server.close(() => resolve());
      }),
  );
  return { url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`, sockets };
}

async function proxyTo(upstreamUrl: string, options: Parameters<typeof startTestProxy>[0] = {}): Promise<TestProxy> {
  const proxy = await startTestProxy({ upstreams: { anthropic: upstreamUrl }, ...options });
  cleanup.push(() => proxy.close());
  return proxy;
}

const MESSAGE_BODY = '{"model":"claude-sonnet-4-5","max_tokens":16,"stream":true,"messages":[{"role":"user","content":"hi"}]}';

/** Send the same request to the upstream directly and through the proxy. */
async function directAndProxied(upstreamUrl: string, proxy: TestProxy): Promise<{ direct: ClientResponse; proxied: ClientResponse }> {
  const spec = { method: 'POST', headers: { 'content-type': 'application/json' }, body: MESSAGE_BODY };
  const direct = await sendRequest(Number(new URL(upstreamUrl).port), { ...spec, path: '/v1/messages' });
  const proxied = await sendRequest(proxy.port, { ...spec, path: proxy.pathFor('anthropic', '/v1/messages') });
  return { direct, proxied };
}

/** Build an Anthropic event stream with usage at the start and the end, as the Messages API sends it. */
function anthropicStream(text: string): string {
  const event = (type: string, data: object) => `event: ${type}\ndata: ${JSON.stringify({ type, ...data })}\n\n`;
  return [
    event('message_start', {
      message: {
        id: 'msg_fault',
        type: 'message',
        role: 'assistant',
        model: 'claude-sonnet-4-5-20250929',
        content: [],
        usage: { input_tokens: 25, output_tokens: 1 },
      },
    }),
    event('content_block_start', { index: 0, content_block: { type: 'text', text: '' } }),
    ...[...text].map((letter) => event('content_block_delta', { index: 0, delta: { type: 'text_delta', text: letter } })),
    event('content_block_stop', { index: 0 }),
    event('message_delta', { delta: { stop_reason: 'end_turn' }, usage: { output_tokens: 12 } }),
    event('message_stop', {}),
  ].join('');
}

describe('upstream reset after headers', () => {
  it('breaks the client response as a direct call breaks', async () => {
    const upstream = await startRawUpstream((socket) => {
      socket.write('HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\ncontent-length: 5000\r\n\r\n', () => socket.resetAndDestroy());
    });
    const proxy = await proxyTo(upstream.url);

    const { direct, proxied } = await directAndProxied(upstream.url, proxy);

    expect(proxied.status).toBe(direct.status);
    expect(proxied.headers['content-type']).toBe('text/event-stream');
    expect(proxied.body.length).toBe(0);
    expect(direct.complete).toBe(false);
    expect(proxied.complete).toBe(false);
    const { record } = await proxy.sink.next();
    expect(record.http_status).toBe(200);
    // A stream cut short is `truncated`: it ended without its terminal event and without an error event.
    expect(record.status).toBe('truncated');
    expect(record.error).toBeNull();
  });
});

describe('upstream stalling mid-stream', () => {
  it('ends the stream after the body idle timeout', async () => {
    const stream = anthropicStream('stall');
    const firstEvents = stream.slice(0, stream.indexOf('event: content_block_delta'));
    const upstream = await startRawUpstream((socket) => {
      socket.write(`HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\ntransfer-encoding: chunked\r\n\r\n`);
      socket.write(`${firstEvents.length.toString(16)}\r\n${firstEvents}\r\n`);
      // Then nothing: no further byte, no close.
    });
    const proxy = await proxyTo(upstream.url, { upstreamBodyIdleTimeoutMs: 300 });

    const proxied = await sendRequest(proxy.port, {
      method: 'POST',
      path: proxy.pathFor('anthropic', '/v1/messages'),
      headers: { 'content-type': 'application/json' },
      body: MESSAGE_BODY,
    });

    expect(proxied.status).toBe(200);
    expect(proxied.body.toString()).toBe(firstEvents);
    expect(proxied.complete).toBe(false);
    const { record } = await proxy.sink.next();
    expect(record.status).toBe('truncated');
    expect(record.timing.total_ms).toBeLessThan(10_000);
    // Usage seen before the stall is kept: unknown is not zero, and known is not dropped.
    expect(record.usage.input_tokens).toBe(25);
    expect(upstream.sockets.size).toBe(0);
  });
});

describe('upstream answering byte by byte', () => {
  it('passes every byte and records the same call as one chunk', async () => {
    const stream = anthropicStream('slow answer');
    const head = `HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\ncontent-length: ${Buffer.byteLength(stream)}\r\n\r\n`;
    const oneChunk = await startRawUpstream((socket) => socket.end(head + stream));
    const byteByByte = await startRawUpstream((socket) => {
      socket.write(head);
      const bytes = Buffer.from(stream);
      let index = 0;
      const timer = setInterval(() => {
        // Several writes per tick: slow, yet every byte goes out in a write of its own.
        for (let step = 0; step < 8 && index < bytes.length; step += 1, index += 1) socket.write(bytes.subarray(index, index + 1));
        if (index >= bytes.length) {
          clearInterval(timer);
          socket.end();
        }
      }, 1);
      socket.once('close', () => clearInterval(timer));
    });
    const fastProxy = await proxyTo(oneChunk.url);
    const slowProxy = await proxyTo(byteByByte.url);

    const { direct, proxied } = await directAndProxied(byteByByte.url, slowProxy);
    const fast = await sendRequest(fastProxy.port, {
      method: 'POST',
      path: fastProxy.pathFor('anthropic', '/v1/messages'),
      headers: { 'content-type': 'application/json' },
      body: MESSAGE_BODY,
    });

    expect(proxied.body.toString()).toBe(stream);
    expect(proxied.body.equals(direct.body)).toBe(true);
    expect(proxied.complete).toBe(true);
    const slowRecord = (await slowProxy.sink.next()).record;
    const fastRecord = (await fastProxy.sink.next()).record;
    expect(fast.body.equals(proxied.body)).toBe(true);
    const comparable = ({ id, started_at, timing, ...rest }: typeof slowRecord) => rest;
    expect(comparable(slowRecord)).toStrictEqual(comparable(fastRecord));
    expect(slowRecord).toMatchObject({ status: 'success', usage: { input_tokens: 25, output_tokens: 12 }, stop_reason: 'end_turn' });
  });
});

describe('upstream error pages', () => {
  it('passes an HTML error page as it is and records its status', async () => {
    const page = '<html><head><title>502 Bad Gateway</title></head><body><center><h1>502 Bad Gateway</h1></center></body></html>\n';
    const upstream = await startUpstream((_req, res) => {
      res.writeHead(502, 'Bad Gateway', { 'content-type': 'text/html', server: 'cloudflare' });
      res.end(page);
    });
    cleanup.push(() => upstream.close());
    const proxy = await proxyTo(upstream.url);

    const { direct, proxied } = await directAndProxied(upstream.url, proxy);

    expect(proxied.status).toBe(502);
    expect(proxied.statusMessage).toBe(direct.statusMessage);
    expect(proxied.headers['content-type']).toBe('text/html');
    expect(proxied.headers.server).toBe('cloudflare');
    expect(proxied.body.toString()).toBe(page);
    const { record } = await proxy.sink.next();
    expect(record).toMatchObject({ status: 'error', http_status: 502, billable: false });
    expect(record.error).toMatchObject({ type: 'http_502', source: 'non_json' });
  });

  it('passes a 503 with retry-after and records the wait', async () => {
    const error = '{"type":"error","error":{"type":"overloaded_error","message":"Overloaded"}}';
    const upstream = await startUpstream((_req, res) => {
      res.writeHead(503, { 'content-type': 'application/json', 'retry-after': '7' });
      res.end(error);
    });
    cleanup.push(() => upstream.close());
    const proxy = await proxyTo(upstream.url);

    const { direct, proxied } = await directAndProxied(upstream.url, proxy);

    expect(proxied.status).toBe(direct.status);
    expect(proxied.headers['retry-after']).toBe('7');
    expect(proxied.body.toString()).toBe(error);
    const { record } = await proxy.sink.next();
    expect(record.status).toBe('error');
    expect(record.error).toMatchObject({ type: 'overloaded_error', message: 'Overloaded', source: 'http', retry_after_s: 7 });
  });
});

describe('client hanging up mid-stream', () => {
  it('cancels the upstream in time and keeps the usage seen', async () => {
    let upstreamClosedAtMs = 0;
    const stream = anthropicStream('never finished');
    const upstream = await startUpstream((_req, res) => {
      res.writeHead(200, { 'content-type': 'text/event-stream' });
      res.write(stream.slice(0, stream.indexOf('event: content_block_stop')));
      // The rest never comes; only the cancellation ends this response.
      res.once('close', () => {
        upstreamClosedAtMs = performance.now();
      });
    });
    cleanup.push(() => upstream.close());
    const proxy = await proxyTo(upstream.url);

    const hungUpAtMs = await new Promise<number>((resolve, reject) => {
      const req = httpRequest({ host: '127.0.0.1', port: proxy.port, method: 'POST', path: proxy.pathFor('anthropic', '/v1/messages') });
      req.once('error', () => {});
      req.once('response', (res) => {
        res.once('data', () => {
          req.destroy();
          resolve(performance.now());
        });
      });
      req.once('error', reject);
      req.end(MESSAGE_BODY);
    });

    const { record } = await proxy.sink.next();
    await expect.poll(() => upstreamClosedAtMs, { timeout: CANCEL_PROMISE_MS + CANCEL_MARGIN_MS }).toBeGreaterThan(0);
    expect(upstreamClosedAtMs - hungUpAtMs).toBeLessThan(CANCEL_PROMISE_MS + CANCEL_MARGIN_MS);
    expect(record.status).toBe('aborted');
    expect(record.usage.input_tokens).toBe(25);
    expect(record.model_answered).toBe('claude-sonnet-4-5-20250929');
  });
});
