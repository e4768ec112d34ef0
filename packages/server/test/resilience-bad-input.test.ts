/**
 * Bad input against the whole server: route tricks, HTTP smuggling shapes, malformed and oversized
 * headers, invalid JSON bodies and bad route tokens. Each must get a clear error (or be forwarded
 * untouched where that is the right answer), must not crash the server, and must never reach any host
 * but the route's upstream. A bystander server listens where a trick would send the request.
 * The proxy-level cases of dot segments, encoded slashes and absolute-form targets are in
 * proxy-forwarding.test.ts ("path tricks") and proxy-errors.test.ts ("malformed path").
 */
import { createHash } from 'node:crypto';
import { once } from 'node:events';
import { connect } from 'node:net';
import { join } from 'node:path';
import type { CallRecord } from '@tokenwise/core';
import { SqliteStore } from '@tokenwise/storage';
import { FAKE_CREDENTIALS, type FakeProvider, makeTestDir, startFakeProvider } from '@tokenwise/testkit';
import { afterAll, afterEach, beforeAll, describe, expect, it, vi } from 'vitest';
import { startTestServer, type TestServer } from './helpers/test-server.js';
import { startUpstream, type TestUpstream } from './proxy-harness.js';

/** A real SQLite store that remembers every value route tokens were looked up by. */
class LookupRecordingStore extends SqliteStore {
  readonly lookups: string[] = [];

  override findRouteTokenByHash(tokenSha256: string) {
    this.lookups.push(tokenSha256);
    return super.findRouteTokenByHash(tokenSha256);
  }
}

let upstream: FakeProvider;
let bystander: TestUpstream;
let store: LookupRecordingStore;
let server: TestServer;
let host: string;

beforeAll(async () => {
  upstream = await startFakeProvider();
  bystander = await startUpstream((_req, res) => res.end('bystander'));
  const { dir } = await makeTestDir('tokenwise-bad-input-');
  store = new LookupRecordingStore(join(dir, 'tokenwise.db'));
  // No token cache, so every call looks its token up.
  server = await startTestServer({ dataDir: dir, store, upstreams: { anthropic: upstream.url }, tokenCacheMs: 0 });
  host = new URL(server.server.url).host;
});

afterAll(async () => {
  await server.dispose();
  await bystander.close();
  await upstream.close();
});

afterEach(() => {
  // No request, however crafted, may reach another host.
  expect(bystander.connections()).toBe(0);
});

const token = () => server.server.routeToken;

function post(path: string, init: { headers?: Record<string, string>; body?: string } = {}): Promise<Response> {
  return fetch(`${server.server.url}${path}`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', 'x-api-key': FAKE_CREDENTIALS.anthropicApiKey, ...init.headers },
    body: init.body ?? '{"model":"claude-sonnet-4-5","max_tokens":8,"messages":[{"role":"user","content":"hi"}]}',
  });
}

/** Write raw bytes to the server and read until it closes the connection. */
async function sendRaw(bytes: string): Promise<string> {
  const socket = connect(Number(new URL(server.server.url).port), '127.0.0.1');
  await once(socket, 'connect');
  const chunks: Buffer[] = [];
  socket.on('data', (chunk: Buffer) => chunks.push(chunk));
  socket.on('error', () => {});
  socket.write(bytes);
  await once(socket, 'close');
  return Buffer.concat(chunks).toString('latin1');
}

async function expectServerHealthy(): Promise<void> {
  expect((await fetch(`${server.server.url}/healthz`)).status).toBe(200);
}

describe('route tricks', () => {
  it.each([
    ['a host as the route', () => `/r/${token()}/api.anthropic.com/v1/messages`, 400],
    ['a host and port as the route', () => `/r/${token()}/127.0.0.1:${bystander.port}/v1/messages`, 400],
    ['a URL as the route', () => `/r/${token()}/http:%2F%2F127.0.0.1:${bystander.port}/v1/messages`, 400],
    ['user info after the route', () => `/r/${token()}/anthropic@127.0.0.1:${bystander.port}/v1/messages`, 400],
    ['user info after the token', () => `/r/${token()}@127.0.0.1:${bystander.port}/anthropic/v1/messages`, 401],
    ['dot segments', () => `/r/${token()}/anthropic/v1/../../../admin`, 400],
    ['encoded dot segments', () => `/r/${token()}/anthropic/%2e%2e/%2E%2E/admin`, 400],
    ['an encoded slash', () => `/r/${token()}/anthropic/v1%2F..%2Fadmin`, 400],
  ])('rejects %s', async (_name, path, status) => {
    const before = upstream.requests().length;
    const response = await post(path());
    const body = await response.text();

    expect(response.status).toBe(status);
    expect(JSON.parse(body).error.message).toBeTypeOf('string');
    expect(body).not.toContain(token());
    expect(upstream.requests().length).toBe(before);
  });

  it('keeps @ inside the path on the route upstream', async () => {
    const response = await post(`/r/${token()}/anthropic/@127.0.0.1:${bystander.port}/v1/messages`);
    await response.arrayBuffer();

    expect(upstream.requests().at(-1)?.target).toBe(`/@127.0.0.1:${bystander.port}/v1/messages`);
  });

  it('keeps a double slash on the route upstream', async () => {
    const response = await post(`/r/${token()}/anthropic//127.0.0.1:${bystander.port}/v1/messages`);
    await response.arrayBuffer();

    expect(upstream.requests().at(-1)?.target).toBe(`//127.0.0.1:${bystander.port}/v1/messages`);
  });

  it('ignores Host and X-Forwarded-Host naming another host', async () => {
    const bystanderHost = `127.0.0.1:${bystander.port}`;
    const response = await post(`/r/${token()}/anthropic/v1/messages`, {
      headers: { host: bystanderHost, 'x-forwarded-host': bystanderHost, forwarded: `host=${bystanderHost}` },
    });
    await response.arrayBuffer();

    expect(response.status).toBe(200);
    const received = upstream.requests().at(-1)!;
    expect(received.headers.host).toBe(new URL(upstream.url).host);
  });

  it('forwards a long path to the route upstream', async () => {
    const rest = `/v1/${'a'.repeat(8 * 1024)}`;
    const response = await post(`/r/${token()}/anthropic${rest}`);
    await response.arrayBuffer();

    expect(upstream.requests().at(-1)?.target).toBe(rest);
  });

  it('rejects an overlong path with 431', async () => {
    const before = upstream.requests().length;
    const answer = await sendRaw(`GET /r/${token()}/anthropic/v1/${'a'.repeat(64 * 1024)} HTTP/1.1\r\nhost: ${host}\r\n\r\n`);

    expect(answer).toMatch(/^HTTP\/1\.1 431 Request Header Fields Too Large\r\n/);
    expect(answer).toContain('"message":"the request line and headers exceed 16384 bytes');
    expect(answer).not.toContain(token());
    expect(upstream.requests().length).toBe(before);
    await expectServerHealthy();
  });
});

describe('HTTP smuggling shapes', () => {
  const smuggled = () => `GET /r/${token()}/anthropic/v1/smuggled HTTP/1.1\r\nhost: ${host}\r\n\r\n`;
  const head = () => `POST /r/${token()}/anthropic/v1/messages HTTP/1.1\r\nhost: ${host}\r\ncontent-type: application/json\r\n`;

  it.each([
    [
      'content-length with transfer-encoding',
      () => `${head()}content-length: 5\r\ntransfer-encoding: chunked\r\n\r\n0\r\n\r\n${smuggled()}`,
    ],
    ['two different content-lengths', () => `${head()}content-length: 2\r\ncontent-length: 60\r\n\r\n{}${smuggled()}`],
    ['an obfuscated transfer-encoding', () => `${head()}transfer-encoding: chunked\r\ntransfer-encoding: x\r\n\r\n0\r\n\r\n${smuggled()}`],
    ['a bare CR in a header value', () => `${head()}x-note: a\rb\r\ncontent-length: 2\r\n\r\n{}${smuggled()}`],
    ['a bare LF in a header value', () => `${head()}x-note: a\nx-injected: b\r\ncontent-length: 2\r\n\r\n{}${smuggled()}`],
    ['a folded header line', () => `${head()}x-note: a\r\n folded\r\ncontent-length: 2\r\n\r\n{}${smuggled()}`],
    ['a header larger than the limit', () => `${head()}x-big: ${'b'.repeat(20 * 1024)}\r\ncontent-length: 2\r\n\r\n{}${smuggled()}`],
  ])('rejects %s and forwards nothing smuggled', async (_name, request) => {
    const answer = await sendRaw(request());

    expect(answer).toMatch(/^HTTP\/1\.1 (400 Bad Request|431 Request Header Fields Too Large)\r\n/);
    expect(answer).toContain('"code":"invalid_request"');
    expect(upstream.requests().filter((received) => received.path.includes('smuggled'))).toEqual([]);
    await expectServerHealthy();
  });
});

describe('invalid JSON body', () => {
  it('is forwarded untouched and recorded as unparsable', async () => {
    const body = '{"model": "claude-sonnet-4-5", "messages": [oops';
    const response = await post(`/r/${token()}/anthropic/v1/messages`, { body });
    const answer = await response.text();

    const received = upstream.requests().at(-1)!;
    expect(Buffer.from(received.body).toString()).toBe(body);
    expect(received.headers['content-length']).toBe(String(Buffer.byteLength(body)));

    let record: CallRecord | undefined;
    await vi.waitFor(async () => {
      const calls = ((await (await server.api('/api/v1/calls?limit=1')).json()) as { calls: CallRecord[] }).calls;
      expect(calls[0]?.request_bytes).toBe(Buffer.byteLength(body));
      record = calls[0];
    });
    expect(record!.http_status).toBe(response.status);
    const stored = (await (await server.api(`/api/v1/calls/${record!.id}`)).json()) as { bodies: { request: { text: string } } };
    expect(stored.bodies.request.text).toBe(body);
    expect(answer.length).toBeGreaterThan(0);
    const warning = server.logs.lines().find((line) => line.call_id === record!.id && line.fault === 'capture_degraded');
    expect(warning?.warnings).toEqual(['request body is not valid JSON; the record may lack its request fields (model, stream)']);
  });
});

describe('route tokens', () => {
  const sha256 = (value: string) => createHash('sha256').update(value).digest('hex');

  it.each([
    ['a wrong token', () => `twr_${'x'.repeat(40)}`],
    ['a truncated token', () => token().slice(0, -4)],
    ['a token with one character changed', () => `${token().slice(0, -1)}${token().endsWith('A') ? 'B' : 'A'}`],
  ])('rejects %s with 401 and looks it up by hash', async (_name, presented) => {
    const before = upstream.requests().length;
    store.lookups.length = 0;
    const response = await post(`/r/${presented()}/anthropic/v1/messages`);
    const body = await response.text();

    expect(response.status).toBe(401);
    expect(JSON.parse(body).error.message).toMatch(/^invalid route: .+, run tokenwise connect to pair again$/);
    expect(body).not.toContain(presented());
    expect(upstream.requests().length).toBe(before);
    expect(store.lookups).toEqual([sha256(presented())]);
  });

  it('rejects a revoked token at once', async () => {
    const created = (await (await server.api('/api/v1/route-tokens', { method: 'POST', body: '{"name":"revoked-test"}' })).json()) as {
      id: string;
      token: string;
    };
    const first = await post(`/r/${created.token}/anthropic/v1/messages`);
    await first.arrayBuffer();
    expect(first.status).toBe(200);

    expect((await server.api(`/api/v1/route-tokens/${created.id}`, { method: 'DELETE' })).status).toBe(200);
    const after = await post(`/r/${created.token}/anthropic/v1/messages`);
    await after.arrayBuffer();

    expect(after.status).toBe(401);
  });

  it('never looks a token up by its plaintext', async () => {
    store.lookups.length = 0;
    await (await post(`/r/${token()}/anthropic/v1/messages`)).arrayBuffer();

    expect(store.lookups).toEqual([sha256(token())]);
    expect(store.lookups.join()).not.toContain(token());
  });
});
