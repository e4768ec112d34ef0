import { createRouteRegistry } from '@tokenwise/core';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import {
  sendRequest,
  startTestProxy,
  startUpstream,
  TEST_AUTHORIZATION,
  TEST_TOKEN,
  type TestProxy,
  type TestUpstream,
} from './proxy-harness.js';

/** A token in the accepted format that the harness's authorizer does not know. */
const UNKNOWN_TOKEN = 'tw_unknown_token_9999';

let upstream: TestUpstream;
let proxy: TestProxy;

beforeAll(async () => {
  upstream = await startUpstream((_req, res) => res.end('{}'));
  proxy = await startTestProxy({ upstreams: { anthropic: upstream.url, openai: upstream.url, gemini: upstream.url } });
});

afterAll(async () => {
  await proxy.close();
  await upstream.close();
});

afterEach(() => {
  // Every request in this file is rejected by the proxy itself.
  expect(upstream.requests).toHaveLength(0);
  expect(upstream.connections()).toBe(0);
});

function post(path: string) {
  return sendRequest(proxy.port, { method: 'POST', path, headers: { 'content-type': 'application/json' }, body: '{"model":"x"}' });
}

describe('unknown route token', () => {
  it('returns 401 in the Anthropic shape', async () => {
    const response = await post(`/r/${UNKNOWN_TOKEN}/anthropic/v1/messages`);
    expect(response.status).toBe(401);
    expect(response.headers['content-type']).toBe('application/json');
    const body = JSON.parse(response.body.toString());
    expect(body.type).toBe('error');
    expect(body.error.type).toBe('authentication_error');
    expect(body.error.message).toMatch(/^invalid route: .+, run tokenwise connect to pair again$/);
  });

  it('returns 401 in the OpenAI shape', async () => {
    const response = await post(`/r/${UNKNOWN_TOKEN}/openai/v1/chat/completions`);
    expect(response.status).toBe(401);
    const body = JSON.parse(response.body.toString());
    expect(body.error.type).toBe('invalid_request_error');
    expect(body.error.code).toBe('invalid_route');
    expect(body.error.message).toMatch(/^invalid route: .+, run tokenwise connect to pair again$/);
  });

  it('returns 401 in the Google shape', async () => {
    const response = await post(`/r/${UNKNOWN_TOKEN}/gemini/v1beta/models/gemini-2.5-flash:generateContent`);
    expect(response.status).toBe(401);
    const body = JSON.parse(response.body.toString());
    expect(body.error.code).toBe(401);
    expect(body.error.status).toBe('UNAUTHENTICATED');
    expect(body.error.message).toMatch(/^invalid route: .+, run tokenwise connect to pair again$/);
  });

  it('never echoes the token', async () => {
    const response = await post(`/r/${UNKNOWN_TOKEN}/anthropic/v1/messages`);
    expect(response.body.toString()).not.toContain(UNKNOWN_TOKEN);
    expect(proxy.log.text()).not.toContain(UNKNOWN_TOKEN);
  });

  it('writes no record', async () => {
    const before = proxy.sink.entries.length;
    await post(`/r/${UNKNOWN_TOKEN}/anthropic/v1/messages`);
    expect(proxy.sink.entries.length).toBe(before);
  });
});

describe('revoked route token', () => {
  const revocable = new Set(['tw_revocable_token_0002']);
  let revocableProxy: TestProxy;

  beforeAll(async () => {
    revocableProxy = await startTestProxy({
      upstreams: { anthropic: upstream.url },
      authorize: async (token) => (revocable.has(token) ? TEST_AUTHORIZATION : null),
    });
  });

  afterAll(() => revocableProxy.close());

  it('returns 401 after revocation', async () => {
    revocable.delete('tw_revocable_token_0002');
    const response = await sendRequest(revocableProxy.port, {
      method: 'POST',
      path: '/r/tw_revocable_token_0002/anthropic/v1/messages',
      body: '{}',
    });
    expect(response.status).toBe(401);
    expect(JSON.parse(response.body.toString()).error.type).toBe('authentication_error');
  });
});

describe('unknown route', () => {
  it('returns 404 listing known routes', async () => {
    const response = await post(`/r/${TEST_TOKEN}/nosuchroute/v1/messages`);
    expect(response.status).toBe(404);
    const body = JSON.parse(response.body.toString());
    expect(body.error.type).toBe('invalid_request_error');
    expect(body.error.code).toBe('not_found');
    expect(body.error.message).toContain('"nosuchroute"');
    for (const name of createRouteRegistry().names()) expect(body.error.message).toContain(name);
  });
});

describe('malformed path', () => {
  it('returns 400 for a dot segment', async () => {
    const response = await post(`/r/${TEST_TOKEN}/anthropic/v1/../admin`);
    expect(response.status).toBe(400);
    expect(JSON.parse(response.body.toString()).error.type).toBe('invalid_request_error');
  });

  it('returns 401 invalid route for a malformed token', async () => {
    const response = await post('/r/short.x/openai/v1/chat/completions');
    expect(response.status).toBe(401);
    expect(JSON.parse(response.body.toString()).error.message).toMatch(/^invalid route: /);
  });

  it('returns 400 for a path outside /r/', async () => {
    const response = await post('/v1/messages');
    expect(response.status).toBe(400);
    expect(JSON.parse(response.body.toString()).error.message).toContain('/r/{token}/{route}');
  });

  it('returns 400 for an absolute-form target without echoing the token', async () => {
    const response = await post(`http://127.0.0.1:${proxy.port}/r/${TEST_TOKEN}/anthropic/v1/messages`);
    expect(response.status).toBe(400);
    const body = JSON.parse(response.body.toString());
    expect(body.error.type).toBe('invalid_request_error');
    expect(body.error.message).toMatch(/^absolute-form request targets .* are not supported: send the path only/);
    expect(response.body.toString()).not.toContain(TEST_TOKEN);
    expect(proxy.log.text()).not.toContain(TEST_TOKEN);
  });

  it('never echoes a token placed where the route belongs', async () => {
    const response = await post(`/r/openai/${TEST_TOKEN}/v1/chat/completions`);
    expect(response.status).toBe(400);
    expect(response.body.toString()).not.toContain(TEST_TOKEN);
  });

  it('never echoes a token in a rejected rest path', async () => {
    const response = await post(`/r/${TEST_TOKEN}/openai/r/${TEST_TOKEN}/openai/v1/../models`);
    expect(response.status).toBe(400);
    expect(JSON.parse(response.body.toString()).error.message).toContain('"/r/{token}/openai/v1/../models"');
    expect(response.body.toString()).not.toContain(TEST_TOKEN);
  });

  it('uses the Google shape on a gemini route', async () => {
    const response = await post(`/r/${TEST_TOKEN}/gemini/v1beta/%2e%2e/models`);
    expect(response.status).toBe(400);
    expect(JSON.parse(response.body.toString()).error.status).toBe('INVALID_ARGUMENT');
  });
});

describe('failing authorizer', () => {
  let failingProxy: TestProxy;

  beforeAll(async () => {
    failingProxy = await startTestProxy({
      upstreams: { anthropic: upstream.url },
      authorize: () => {
        throw new Error('token store offline');
      },
    });
  });

  afterAll(() => failingProxy.close());

  it('returns 500 without internals', async () => {
    const response = await sendRequest(failingProxy.port, { method: 'POST', path: `/r/${TEST_TOKEN}/anthropic/v1/messages`, body: '{}' });
    expect(response.status).toBe(500);
    const body = JSON.parse(response.body.toString());
    expect(body.error.type).toBe('api_error');
    expect(body.error.message).not.toContain('token store offline');
  });

  it('logs the fault at error level', async () => {
    await sendRequest(failingProxy.port, { method: 'POST', path: `/r/${TEST_TOKEN}/anthropic/v1/messages`, body: '{}' });
    const errors = failingProxy.log.lines.filter((line) => line.level === 50);
    expect(errors.length).toBeGreaterThan(0);
    expect(JSON.stringify(errors)).toContain('token store offline');
    expect(failingProxy.log.text()).not.toContain(TEST_TOKEN);
  });
});
