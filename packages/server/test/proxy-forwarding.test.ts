import { once } from 'node:events';
import { request as httpRequest } from 'node:http';
import { connect } from 'node:net';
import { gzipSync } from 'node:zlib';
import { FAKE_CREDENTIALS } from '@tokenwise/testkit';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import {
  closedPort,
  headerPairs,
  sendRequest,
  startTestProxy,
  startUpstream,
  TEST_TOKEN,
  type TestProxy,
  type TestUpstream,
} from './proxy-harness.js';

const CREDENTIAL_HEADERS = {
  authorization: `Bearer ${FAKE_CREDENTIALS.anthropicOauth}`,
  'x-api-key': FAKE_CREDENTIALS.anthropicApiKey,
  'anthropic-beta': 'oauth-2025-04-20,extended-cache-ttl-2025-04-11',
  'chatgpt-account-id': FAKE_CREDENTIALS.chatgptAccountId,
  'x-goog-api-key': FAKE_CREDENTIALS.googleApiKey,
};

let upstream: TestUpstream;
let proxy: TestProxy;

beforeAll(async () => {
  upstream = await startUpstream((req, res, request) => {
    res.setHeader('content-type', 'application/json');
    res.end(JSON.stringify({ target: request.target, bytes: request.body.length, method: req.method }));
  });
  proxy = await startTestProxy({ upstreams: { anthropic: upstream.url, chatgpt: `${upstream.url}/backend-api/codex` } });
});

afterAll(async () => {
  await proxy.close();
  await upstream.close();
});

function lastRequest() {
  const request = upstream.requests.at(-1);
  if (!request) throw new Error('the upstream received no request');
  return request;
}

describe('request line', () => {
  it('keeps path and query', async () => {
    await sendRequest(proxy.port, { method: 'POST', path: proxy.pathFor('anthropic', '/v1/messages?beta=true'), body: '{}' });
    expect(lastRequest().target).toBe('/v1/messages?beta=true');
    expect(lastRequest().method).toBe('POST');
  });

  it('prefixes the route base path', async () => {
    await sendRequest(proxy.port, { method: 'POST', path: proxy.pathFor('chatgpt', '/responses'), body: '{}' });
    expect(lastRequest().target).toBe('/backend-api/codex/responses');
  });

  it('keeps a path with a colon', async () => {
    await sendRequest(proxy.port, {
      method: 'POST',
      path: proxy.pathFor('anthropic', '/v1beta/models/gemini-2.5-pro:streamGenerateContent?alt=sse'),
      body: '{}',
    });
    expect(lastRequest().target).toBe('/v1beta/models/gemini-2.5-pro:streamGenerateContent?alt=sse');
  });

  it('forwards a GET without a body', async () => {
    await sendRequest(proxy.port, { method: 'GET', path: proxy.pathFor('anthropic', '/v1/models') });
    const pairs = headerPairs(lastRequest().rawHeaders).map(([name]) => name);
    expect(lastRequest().method).toBe('GET');
    expect(pairs).not.toContain('content-length');
    expect(pairs).not.toContain('transfer-encoding');
  });
});

describe('request headers', () => {
  it('passes credentials untouched', async () => {
    await sendRequest(proxy.port, {
      method: 'POST',
      path: proxy.pathFor('anthropic', '/v1/messages'),
      headers: CREDENTIAL_HEADERS,
      body: '{}',
    });
    const received = Object.fromEntries(headerPairs(lastRequest().rawHeaders));
    for (const [name, value] of Object.entries(CREDENTIAL_HEADERS)) expect(received[name], name).toBe(value);
  });

  it('never forwards the route token', async () => {
    await sendRequest(proxy.port, { method: 'POST', path: proxy.pathFor('anthropic', '/v1/messages'), body: '{}' });
    expect(lastRequest().target).not.toContain(TEST_TOKEN);
    expect(lastRequest().rawHeaders.join('\n')).not.toContain(TEST_TOKEN);
  });

  it('strips hop-by-hop fields', async () => {
    await sendRequest(proxy.port, {
      method: 'POST',
      path: proxy.pathFor('anthropic', '/v1/messages'),
      headers: {
        connection: 'keep-alive, x-connection-scoped',
        'x-connection-scoped': 'dropped',
        'keep-alive': 'timeout=5',
        te: 'trailers',
        trailer: 'x-checksum',
        'proxy-authorization': 'Basic RkFLRTpGQUtF',
        'proxy-connection': 'keep-alive',
        'x-end-to-end': 'kept',
      },
      body: '{}',
    });
    const names = headerPairs(lastRequest().rawHeaders).map(([name]) => name);
    for (const dropped of ['x-connection-scoped', 'keep-alive', 'te', 'trailer', 'proxy-authorization', 'proxy-connection']) {
      expect(names, dropped).not.toContain(dropped);
    }
    expect(names).toContain('x-end-to-end');
  });

  it('strips only Tokenwise cookies', async () => {
    await sendRequest(proxy.port, {
      method: 'POST',
      path: proxy.pathFor('anthropic', '/v1/messages'),
      headers: { cookie: ['tokenwise_session=tws_FAKE; __cf_bm=kept; __Host-tokenwise_csrf=x', 'tokenwise_csrf=y'] },
      body: '{}',
    });
    const cookies = headerPairs(lastRequest().rawHeaders).filter(([name]) => name === 'cookie');
    expect(cookies).toEqual([['cookie', '__cf_bm=kept']]);
  });

  it('forwards a cookie field unchanged without Tokenwise cookies', async () => {
    await sendRequest(proxy.port, {
      method: 'POST',
      path: proxy.pathFor('anthropic', '/v1/messages'),
      headers: { cookie: 'a=1;b=2' },
      body: '{}',
    });
    expect(headerPairs(lastRequest().rawHeaders).filter(([name]) => name === 'cookie')).toEqual([['cookie', 'a=1;b=2']]);
  });

  it('replaces host with the upstream', async () => {
    await sendRequest(proxy.port, {
      method: 'POST',
      path: proxy.pathFor('anthropic', '/v1/messages'),
      headers: { host: 'evil.example' },
      body: '{}',
    });
    const hosts = headerPairs(lastRequest().rawHeaders).filter(([name]) => name === 'host');
    expect(hosts).toEqual([['host', `127.0.0.1:${upstream.port}`]]);
  });

  it('keeps repeated fields in order', async () => {
    await sendRequest(proxy.port, {
      method: 'POST',
      path: proxy.pathFor('anthropic', '/v1/messages'),
      headers: { 'x-repeated': ['first', 'second'] },
      body: '{}',
    });
    const repeated = headerPairs(lastRequest().rawHeaders).filter(([name]) => name === 'x-repeated');
    expect(repeated).toEqual([
      ['x-repeated', 'first'],
      ['x-repeated', 'second'],
    ]);
  });

  it('handles expect: 100-continue itself', async () => {
    const body = Buffer.from('{"expect":"continue"}');
    const status = await new Promise<number>((resolve, reject) => {
      const req = httpRequest({
        host: '127.0.0.1',
        port: proxy.port,
        method: 'POST',
        path: proxy.pathFor('anthropic', '/v1/messages'),
        headers: { expect: '100-continue', 'content-length': String(body.length) },
        agent: false,
      });
      req.once('continue', () => req.end(body));
      req.once('response', (res) => {
        res.resume();
        resolve(res.statusCode ?? 0);
      });
      req.once('error', reject);
    });
    expect(status).toBe(200);
    expect(lastRequest().body.equals(body)).toBe(true);
    expect(headerPairs(lastRequest().rawHeaders).map(([name]) => name)).not.toContain('expect');
  });
});

describe('request body', () => {
  it('forwards compressed bytes as they are', async () => {
    const body = gzipSync(Buffer.from('{"model":"claude-haiku-4-5","messages":[]}'));
    await sendRequest(proxy.port, {
      method: 'POST',
      path: proxy.pathFor('anthropic', '/v1/messages'),
      headers: { 'content-encoding': 'gzip', 'content-type': 'application/json' },
      body,
    });
    expect(lastRequest().body.equals(body)).toBe(true);
    expect(Object.fromEntries(headerPairs(lastRequest().rawHeaders))['content-encoding']).toBe('gzip');
  });

  it('forwards a chunked body whole', async () => {
    const parts = ['{"model":', '"claude-haiku-4-5",', '"messages":[]}'];
    const status = await new Promise<number>((resolve, reject) => {
      const req = httpRequest({
        host: '127.0.0.1',
        port: proxy.port,
        method: 'POST',
        path: proxy.pathFor('anthropic', '/v1/messages'),
        agent: false,
      });
      req.once('response', (res) => {
        res.resume();
        resolve(res.statusCode ?? 0);
      });
      req.once('error', reject);
      for (const part of parts) req.write(part);
      req.end();
    });
    expect(status).toBe(200);
    expect(lastRequest().body.toString()).toBe(parts.join(''));
  });
});

describe('path tricks', () => {
  let bystander: TestUpstream;

  beforeAll(async () => {
    bystander = await startUpstream((_req, res) => res.end('bystander'));
  });

  afterAll(() => bystander.close());

  const rejected = [
    ['dot segments', '/v1/../../admin'],
    ['encoded dot segments', '/v1/%2e%2e/%2E%2E/admin'],
    ['encoded slash', '/v1%2F..%2Fadmin'],
    ['encoded backslash', '/v1/%5c..%5cadmin'],
  ] as const;

  it.each(rejected)('rejects %s', async (_name, rest) => {
    const before = upstream.requests.length;
    const response = await sendRequest(proxy.port, { method: 'GET', path: `/r/${TEST_TOKEN}/anthropic${rest}` });
    expect(response.status).toBe(400);
    expect(upstream.requests.length).toBe(before);
    expect(bystander.connections()).toBe(0);
  });

  it('keeps a double slash on the route upstream', async () => {
    const response = await sendRequest(proxy.port, { method: 'GET', path: `/r/${TEST_TOKEN}/anthropic//127.0.0.1:${bystander.port}/x` });
    expect(response.status).toBe(200);
    expect(lastRequest().target).toBe(`//127.0.0.1:${bystander.port}/x`);
    expect(bystander.connections()).toBe(0);
  });

  it('rejects an absolute-form target', async () => {
    const socket = connect(proxy.port, '127.0.0.1');
    await once(socket, 'connect');
    socket.end(
      `GET http://127.0.0.1:${bystander.port}/r/${TEST_TOKEN}/anthropic/v1/models HTTP/1.1\r\nhost: 127.0.0.1:${bystander.port}\r\nconnection: close\r\n\r\n`,
    );
    const chunks: Buffer[] = [];
    socket.on('data', (chunk: Buffer) => chunks.push(chunk));
    await once(socket, 'close');
    expect(Buffer.concat(chunks).toString()).toMatch(/^HTTP\/1\.1 400 /);
    expect(bystander.connections()).toBe(0);
  });
});

describe('response', () => {
  let special: TestUpstream;
  let specialProxy: TestProxy;
  const gzipped = gzipSync(Buffer.from(JSON.stringify({ id: 'chatcmpl-FAKE', choices: [] })));

  beforeAll(async () => {
    special = await startUpstream((req, res) => {
      if (req.url === '/gzip') {
        res.writeHead(200, { 'content-type': 'application/json', 'content-encoding': 'gzip', 'content-length': gzipped.length });
        res.end(gzipped);
      } else if (req.url === '/cookies') {
        res.setHeader('set-cookie', ['a=1; Path=/', 'tokenwise_session=forged; Path=/', 'b=2; Path=/']);
        res.end('ok');
      } else if (req.url === '/overloaded') {
        res.writeHead(529, 'Overloaded', { 'content-type': 'application/json', 'retry-after': '7', 'x-should-retry': 'true' });
        res.end('{"type":"error","error":{"type":"overloaded_error","message":"Overloaded"}}');
      } else {
        res.writeHead(404).end();
      }
    });
    specialProxy = await startTestProxy({ upstreams: { openai: special.url } });
  });

  afterAll(async () => {
    await specialProxy.close();
    await special.close();
  });

  it('passes a gzip body compressed', async () => {
    const response = await sendRequest(specialProxy.port, {
      method: 'GET',
      path: specialProxy.pathFor('openai', '/gzip'),
      headers: { 'accept-encoding': 'gzip' },
    });
    expect(response.headers['content-encoding']).toBe('gzip');
    expect(response.headers['content-length']).toBe(String(gzipped.length));
    expect(response.body.equals(gzipped)).toBe(true);
  });

  it("keeps every set-cookie but Tokenwise's own", async () => {
    const response = await sendRequest(specialProxy.port, { method: 'GET', path: specialProxy.pathFor('openai', '/cookies') });
    expect(response.headers['set-cookie']).toEqual(['a=1; Path=/', 'b=2; Path=/']);
  });

  it('passes an upstream error untouched', async () => {
    const response = await sendRequest(specialProxy.port, { method: 'GET', path: specialProxy.pathFor('openai', '/overloaded') });
    expect(response.status).toBe(529);
    expect(response.statusMessage).toBe('Overloaded');
    expect(response.headers['retry-after']).toBe('7');
    expect(response.headers['x-should-retry']).toBe('true');
    expect(response.body.toString()).toBe('{"type":"error","error":{"type":"overloaded_error","message":"Overloaded"}}');
  });
});

describe('upstream pool', () => {
  it('reuses one connection for calls in sequence', async () => {
    const pooled = await startUpstream((_req, res) => res.end('ok'));
    const pooledProxy = await startTestProxy({ upstreams: { openai: pooled.url } });
    try {
      for (let i = 0; i < 3; i += 1)
        await sendRequest(pooledProxy.port, { method: 'GET', path: pooledProxy.pathFor('openai', '/v1/models') });
      expect(pooled.requests).toHaveLength(3);
      expect(pooled.connections()).toBe(1);
    } finally {
      await pooledProxy.close();
      await pooled.close();
    }
  });
});

describe('unreachable upstream', () => {
  it('returns 502 naming upstream and cause', async () => {
    const port = await closedPort();
    const unreachableProxy = await startTestProxy({ upstreams: { anthropic: `http://127.0.0.1:${port}` } });
    try {
      const response = await sendRequest(unreachableProxy.port, {
        method: 'POST',
        path: unreachableProxy.pathFor('anthropic', '/v1/messages'),
        body: '{}',
      });
      expect(response.status).toBe(502);
      const body = JSON.parse(response.body.toString());
      expect(body.type).toBe('error');
      expect(body.error.type).toBe('api_error');
      expect(body.error.message).toContain(`http://127.0.0.1:${port}`);
      expect(body.error.message).toContain('connection refused');
      expect(body.error.message).not.toMatch(/\bat .+\(.+:\d+:\d+\)/);

      const { record } = await unreachableProxy.sink.next();
      expect(record.http_status).toBeNull();
      expect(record.route).toBe('anthropic');
    } finally {
      await unreachableProxy.close();
    }
  });

  it('returns 504 on headers timeout', async () => {
    const silent = await startUpstream(() => {});
    const impatientProxy = await startTestProxy({ upstreams: { gemini: silent.url }, upstreamHeadersTimeoutMs: 200 });
    try {
      const response = await sendRequest(impatientProxy.port, {
        method: 'POST',
        path: impatientProxy.pathFor('gemini', '/v1beta/models/x:generateContent'),
        body: '{}',
      });
      expect(response.status).toBe(504);
      const body = JSON.parse(response.body.toString());
      expect(body.error.code).toBe(504);
      expect(body.error.status).toBe('DEADLINE_EXCEEDED');
      expect(body.error.message).toContain(silent.url);
      expect(body.error.message).toContain('no response headers in time');
    } finally {
      await impatientProxy.close();
      await silent.close();
    }
  });
});

describe('bodies handed to the sink', () => {
  it('are raw bytes that own their buffers', async () => {
    const before = proxy.sink.entries.length;
    const body = JSON.stringify({ model: 'claude-haiku-4-5', messages: [{ role: 'user', content: `déjà 😀 ${'x'.repeat(70_000)}` }] });
    await sendRequest(proxy.port, { method: 'POST', path: proxy.pathFor('anthropic', '/v1/messages'), body });
    await vi.waitFor(() => expect(proxy.sink.entries.length).toBeGreaterThan(before));

    const entry = proxy.sink.entries[before]!;
    const { request, response } = entry.written!;
    for (const written of [request, response]) {
      expect(written!.text).toBeNull();
      expect(written!.raw!.byteOffset).toBe(0);
      expect(written!.raw!.buffer.byteLength).toBe(written!.raw!.byteLength);
    }
    expect(request!.raw!.byteLength).toBe(Buffer.byteLength(body));
    expect(entry.bodies!.request!.text).toBe(body);
    expect(entry.bodies!.response!.text).toContain('"method":"POST"');
  });
});
