import { type AddressInfo, createServer, type Socket } from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { sendRequest, startTestProxy, type TestProxy } from './proxy-harness.js';

/** What the raw upstream does with one request, given its number on the connection (1 for the first). */
type RequestAction = { respond: string } | { close: 'now' | 'after-body' | { afterMs: number } };

interface RawUpstream {
  url: string;
  /** TCP connections accepted so far. */
  connections(): number;
  /** Request bodies that got a response, in order. */
  answeredBodies: Buffer[];
  close(): Promise<void>;
}

/**
 * Start an upstream on raw sockets that reads HTTP/1.1 requests with a `content-length` body, so a test
 * can send bytes no HTTP server library would send, and close a kept-alive connection at a chosen request.
 */
async function startRawUpstream(act: (requestNumber: number) => RequestAction): Promise<RawUpstream> {
  const sockets = new Set<Socket>();
  const answeredBodies: Buffer[] = [];
  let connectionCount = 0;

  const server = createServer((socket) => {
    connectionCount += 1;
    sockets.add(socket);
    socket.once('close', () => sockets.delete(socket));
    socket.on('error', () => {});

    let buffered = Buffer.alloc(0);
    let requestNumber = 0;
    let closing = false;
    socket.on('data', (data: Buffer) => {
      if (closing) return;
      buffered = Buffer.concat([buffered, data]);
      const headEnd = buffered.indexOf('\r\n\r\n');
      if (headEnd === -1) return;

      // Act on the first bytes of a request, as an upstream closing an idle connection does.
      const action = act(requestNumber + 1);
      if ('close' in action && action.close !== 'after-body') {
        closing = true;
        if (action.close === 'now') socket.destroy();
        else setTimeout(() => socket.destroy(), action.close.afterMs);
        return;
      }

      const head = buffered.subarray(0, headEnd).toString('latin1');
      const length = Number(/\r\ncontent-length: *(\d+)/i.exec(head)?.[1] ?? '0');
      if (buffered.length < headEnd + 4 + length) return;
      if (!('respond' in action)) {
        closing = true;
        socket.destroy();
        return;
      }
      requestNumber += 1;
      answeredBodies.push(buffered.subarray(headEnd + 4, headEnd + 4 + length));
      buffered = buffered.subarray(headEnd + 4 + length);
      socket.write(action.respond);
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', () => resolve()));
  const { port } = server.address() as AddressInfo;

  return {
    url: `http://127.0.0.1:${port}`,
    connections: () => connectionCount,
    answeredBodies,
    close: () =>
      new Promise<void>((resolve) => {
        for (const socket of sockets) socket.destroy();
        server.close(() => resolve());
      }),
  };
}

const MESSAGE = JSON.stringify({
  id: 'msg_retry',
  type: 'message',
  role: 'assistant',
  model: 'claude-sonnet-4-5-20250929',
  content: [{ type: 'text', text: 'hello' }],
  stop_reason: 'end_turn',
  usage: { input_tokens: 10, output_tokens: 2 },
});
const OK_RESPONSE = `HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: ${MESSAGE.length}\r\nconnection: keep-alive\r\n\r\n${MESSAGE}`;

const cleanup: (() => Promise<void>)[] = [];
afterEach(async () => {
  while (cleanup.length > 0) await cleanup.pop()!();
});

async function setUp(act: (requestNumber: number) => RequestAction): Promise<{ upstream: RawUpstream; proxy: TestProxy }> {
  const upstream = await startRawUpstream(act);
  const proxy = await startTestProxy({ upstreams: { anthropic: upstream.url } });
  cleanup.push(
    () => upstream.close(),
    () => proxy.close(),
  );
  return { upstream, proxy };
}

function postMessage(proxy: TestProxy, body = '{"model":"claude-sonnet-4-5","max_tokens":10,"messages":[]}') {
  return sendRequest(proxy.port, {
    method: 'POST',
    path: proxy.pathFor('anthropic', '/v1/messages'),
    headers: { 'content-type': 'application/json' },
    body,
  });
}

describe('upstream sending an invalid HTTP response', () => {
  it.each([
    ['a garbage status line', 'garbage\r\n\r\n', 'expected http/'],
    ['a control character in a header', 'HTTP/1.1 200 OK\r\nx-bad: a\u0001b\r\ncontent-length: 2\r\n\r\n{}', 'invalid header value char'],
    ['a non-numeric status', 'HTTP/1.1 abc OK\r\n\r\n', 'invalid status code'],
  ])('reports %s as invalid, not unreachable', async (_name, answer, reason) => {
    const { upstream, proxy } = await setUp(() => ({ respond: answer }));

    const response = await postMessage(proxy);
    expect(response.status).toBe(502);
    const message: string = JSON.parse(response.body.toString()).error.message;
    expect(message).toContain(`upstream ${upstream.url} sent an invalid HTTP response: ${reason}`);
    expect(message).not.toContain('unreachable');
    expect(message).not.toContain('check the network');

    const { record } = await proxy.sink.next();
    expect(record.status).toBe('error');
    expect(record.http_status).toBeNull();
    expect(record.error?.type).toBe('upstream_invalid_response');
    expect(record.error?.message).toBe(message);
    expect(record.billable).toBe(false);
  });

  it('never quotes the bytes the upstream sent', async () => {
    const { proxy } = await setUp(() => ({ respond: 'SECRET-MARKER-51d2 garbage\r\n\r\n' }));
    const response = await postMessage(proxy);
    expect(response.body.toString()).not.toContain('SECRET-MARKER-51d2');
    const { record } = await proxy.sink.next();
    expect(JSON.stringify(record)).not.toContain('SECRET-MARKER-51d2');
    expect(proxy.log.text()).not.toContain('SECRET-MARKER-51d2');
  });
});

describe('stale pooled connection', () => {
  it('sends the request again when a reused connection closes unread (regression: 502 UND_ERR_SOCKET)', async () => {
    // The upstream responds to the first request of each connection and drops the connection at the
    // second, as a server does whose idle timeout fires just as the proxy reuses the connection.
    const { upstream, proxy } = await setUp((requestNumber) => (requestNumber === 1 ? { respond: OK_RESPONSE } : { close: 'now' }));

    expect((await postMessage(proxy)).status).toBe(200);
    await proxy.sink.next();
    const body = JSON.stringify({ model: 'claude-sonnet-4-5', max_tokens: 10, messages: [{ role: 'user', content: 'x'.repeat(200_000) }] });
    const response = await postMessage(proxy, body);

    expect(response.status).toBe(200);
    expect(response.body.toString()).toBe(MESSAGE);
    expect(upstream.connections()).toBe(2);
    expect(upstream.answeredBodies).toHaveLength(2);
    expect(upstream.answeredBodies[1]!.equals(Buffer.from(body))).toBe(true);

    const { record } = await proxy.sink.next();
    expect(record.status).toBe('success');
    expect(record.request_bytes).toBe(Buffer.byteLength(body));
    expect(record.usage.output_tokens).toBe(2);
    const retries = proxy.log.lines.filter(
      (line) => line.msg === 'upstream closed a reused connection before responding; request sent again on a new connection',
    );
    expect(retries).toHaveLength(1);
  });

  it('sends a request without a body again too', async () => {
    const { upstream, proxy } = await setUp((requestNumber) => (requestNumber === 1 ? { respond: OK_RESPONSE } : { close: 'now' }));
    const get = () => sendRequest(proxy.port, { method: 'GET', path: proxy.pathFor('anthropic', '/v1/models') });

    expect((await get()).status).toBe(200);
    expect((await get()).status).toBe(200);
    expect(upstream.connections()).toBe(2);
  });

  it('does not retry when a new connection closes', async () => {
    const { upstream, proxy } = await setUp(() => ({ close: 'now' }));

    const response = await postMessage(proxy);
    expect(response.status).toBe(502);
    const message: string = JSON.parse(response.body.toString()).error.message;
    expect(message).toMatch(
      new RegExp(`^upstream ${upstream.url} (closed|reset) the connection before responding \\((UND_ERR_SOCKET|ECONNRESET)\\)`),
    );
    expect(message).not.toContain('unreachable');
    expect(upstream.connections()).toBe(1);
    const { record } = await proxy.sink.next();
    expect(record.status).toBe('error');
  });

  it('does not retry once more body was sent than is kept', async () => {
    const { upstream, proxy } = await setUp((requestNumber) => (requestNumber === 1 ? { respond: OK_RESPONSE } : { close: 'after-body' }));

    expect((await postMessage(proxy)).status).toBe(200);
    const response = await postMessage(proxy, 'x'.repeat(9 * 1024 * 1024));
    expect(response.status).toBe(502);
    expect(upstream.connections()).toBe(1);
  });

  it('does not retry a close that comes long after the request', async () => {
    // A close after the window may follow a request the upstream read and worked on.
    const { upstream, proxy } = await setUp((requestNumber) =>
      requestNumber === 1 ? { respond: OK_RESPONSE } : { close: { afterMs: 1_500 } },
    );

    expect((await postMessage(proxy)).status).toBe(200);
    const response = await postMessage(proxy);
    expect(response.status).toBe(502);
    expect(upstream.connections()).toBe(1);
  });
});
