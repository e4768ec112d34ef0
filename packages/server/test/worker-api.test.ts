import type { CallBodies, CallRecord } from '@tokenwise/core';
import { hashToken, resolveServeConfig } from '@tokenwise/server';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { sampleRecord } from './helpers/sample-record.js';
import { startTestServer, type TestServer } from './helpers/test-server.js';

/**
 * The two endpoints the Cloudflare Worker calls, against a real `serve()` on port 0: every way a request
 * is rejected, and what ingest stores. The Worker's own suite covers the accepted path end to end.
 */
const SECRET = 'worker-api-test-secret-0123456789abcdefABCDEF';
/** Thirty-two MiB, the largest ingest request the server reads. */
const MAX_INGEST_BODY_BYTES = 32 * 1024 * 1024;

let running: TestServer;
let workspaceId: string;
let deviceId: string;

const BODIES: CallBodies = {
  request: { text: '{"model":"claude-sonnet-4-5"}', bytes: 29, truncated: false, content_type: 'application/json', encoding_error: null },
  response: { text: '{"id":"msg_FAKE"}', bytes: 17, truncated: false, content_type: 'application/json', encoding_error: null },
  request_headers: { 'content-type': 'application/json', 'x-api-key': 'sk-ant-api03-FAKE-worker-api-test' },
  response_headers: { 'content-type': 'application/json' },
};

function record(overrides: Partial<CallRecord> = {}): CallRecord {
  return sampleRecord({ workspace_id: workspaceId, device_id: deviceId, ...overrides });
}

function post(path: string, body: unknown, secret: string | null = SECRET, server: TestServer = running): Promise<Response> {
  return fetch(`${server.server.url}${path}`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', ...(secret === null ? {} : { authorization: `Bearer ${secret}` }) },
    body: encodeBody(body),
  });
}

function encodeBody(body: unknown): string {
  return typeof body === 'string' ? body : JSON.stringify(body);
}

async function errorOf(response: Response): Promise<{ code: string; message: string }> {
  return ((await response.json()) as { error: { code: string; message: string } }).error;
}

/** Change a setting through the API, as the dashboard does. */
async function patch(path: string, fields: Record<string, unknown>): Promise<number> {
  const response = await running.api(path, {
    method: 'PATCH',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify(fields),
  });
  await response.arrayBuffer();
  return response.status;
}

async function storedCall(id: string): Promise<{ call: CallRecord; bodies: CallBodies | null } | null> {
  const response = await running.api(`/api/v1/calls/${id}`);
  if (response.status === 404) return null;
  return (await response.json()) as { call: CallRecord; bodies: CallBodies | null };
}

beforeAll(async () => {
  running = await startTestServer({ ingestSecret: SECRET });
  const self = await fetch(`${running.server.url}/api/v1/route-tokens/self`, {
    headers: { authorization: `Bearer ${running.server.routeToken}` },
  });
  ({ workspace_id: workspaceId, device_id: deviceId } = (await self.json()) as { workspace_id: string; device_id: string });
});

afterAll(async () => {
  await running?.dispose();
});

describe('worker endpoints without a secret', () => {
  it('answer 404 and name the setting', async () => {
    const off = await startTestServer();
    try {
      for (const path of ['/api/v1/ingest', '/api/v1/routes/verify']) {
        const response = await post(path, { calls: [] }, SECRET, off);

        expect(response.status).toBe(404);
        expect((await errorOf(response)).message).toContain('start tokenwise serve with TOKENWISE_INGEST_SECRET');
      }
    } finally {
      await off.dispose();
    }
  });
});

describe('worker endpoint authentication', () => {
  const wrongSecrets: [string, string | null][] = [
    ['missing', null],
    ['last character changed', `${SECRET.slice(0, -1)}X`],
    ['shorter', SECRET.slice(0, -1)],
    ['longer', `${SECRET}0`],
    ['the secret hashed', hashToken(SECRET)],
  ];

  it.each(wrongSecrets)('rejects a %s secret', async (_case, secret) => {
    for (const path of ['/api/v1/ingest', '/api/v1/routes/verify']) {
      const response = await post(path, { calls: [record()] }, secret);

      expect(response.status).toBe(401);
      expect(response.headers.get('www-authenticate')).toBe('Bearer');
      expect((await errorOf(response)).code).toBe('unauthorized');
    }
  });

  it('stores nothing from a rejected secret', async () => {
    const call = record();

    await post('/api/v1/ingest', { calls: [{ record: call, bodies: null }] }, 'not-the-secret-but-long-enough-0123456789');

    expect(await storedCall(call.id)).toBeNull();
  });

  it('rejects other methods after authentication', async () => {
    const response = await fetch(`${running.server.url}/api/v1/ingest`, { headers: { authorization: `Bearer ${SECRET}` } });

    expect(response.status).toBe(405);
  });
});

describe('ingest validation', () => {
  it('names the invalid field and stores nothing', async () => {
    const valid = record();
    const invalid = record({ usage: { ...record().usage, input_tokens: -1 } });

    const response = await post('/api/v1/ingest', {
      calls: [
        { record: valid, bodies: null },
        { record: invalid, bodies: null },
      ],
    });

    expect(response.status).toBe(400);
    expect((await errorOf(response)).message).toBe('invalid calls[1].record.usage.input_tokens: expected a whole number >= 0, got -1');
    expect(await storedCall(valid.id)).toBeNull();
  });

  it.each([
    ['not JSON', '{"calls": [', 'request body is not valid JSON'],
    ['no calls array', { records: [] }, 'invalid ingest body: expected {"calls": [{"record": {...}, "bodies": {...} | null}, ...]}'],
    ['an unknown top-level field', { calls: [], extra: 1 }, 'invalid ingest body: unknown field "extra"'],
  ])('rejects a body that is %s', async (_case, body, message) => {
    const response = await post('/api/v1/ingest', body);

    expect(response.status).toBe(400);
    expect((await errorOf(response)).message).toBe(message);
  });

  it('rejects an unknown field of a record', async () => {
    const response = await post('/api/v1/ingest', { calls: [{ record: { ...record(), surprise: true }, bodies: null }] });

    expect(response.status).toBe(400);
    expect((await errorOf(response)).message).toContain('invalid calls[0].record: unknown field "surprise"');
  });

  it('rejects an unknown workspace and stores nothing', async () => {
    const known = record();
    const unknown = record({ workspace_id: 'ws_does_not_exist' });

    const response = await post('/api/v1/ingest', {
      calls: [
        { record: known, bodies: null },
        { record: unknown, bodies: null },
      ],
    });

    expect(response.status).toBe(400);
    expect((await errorOf(response)).message).toBe('invalid calls[1].record.workspace_id: no workspace "ws_does_not_exist" on this server');
    expect(await storedCall(known.id)).toBeNull();
  });

  it('rejects more than 500 calls in one batch', async () => {
    const calls = Array.from({ length: 501 }, () => ({ record: record(), bodies: null }));

    const response = await post('/api/v1/ingest', { calls });

    expect(response.status).toBe(400);
    expect((await errorOf(response)).message).toContain('501 calls in one request, at most 500');
    expect(await storedCall(calls[0]!.record.id)).toBeNull();
  });

  it('rejects a declared body over 32 MiB with 413', async () => {
    const response = await post('/api/v1/ingest', ' '.repeat(MAX_INGEST_BODY_BYTES + 1));

    expect(response.status).toBe(413);
    expect((await errorOf(response)).code).toBe('payload_too_large');
  });

  it('rejects a streamed body over 32 MiB with 413', async () => {
    const chunk = new Uint8Array(1024 * 1024).fill(0x20);
    let sent = 0;
    const body = new ReadableStream<Uint8Array>({
      pull(controller) {
        if (sent > MAX_INGEST_BODY_BYTES) {
          controller.close();
          return;
        }
        sent += chunk.length;
        controller.enqueue(chunk);
      },
    });

    // No content-length: the server counts the bytes as they arrive.
    const response = await fetch(`${running.server.url}/api/v1/ingest`, {
      method: 'POST',
      headers: { authorization: `Bearer ${SECRET}`, 'content-type': 'application/json' },
      body,
      duplex: 'half',
    } as RequestInit);

    expect(response.status).toBe(413);
  });
});

describe('ingest storage', () => {
  it('stores a call once when a batch is sent twice', async () => {
    const call = record();
    const batch = { calls: [{ record: call, bodies: BODIES }] };

    const first = await post('/api/v1/ingest', batch);
    const again = await post('/api/v1/ingest', batch);

    expect(await first.json()).toEqual({ received: 1, stored: 1, duplicates: 0 });
    expect(await again.json()).toEqual({ received: 1, stored: 0, duplicates: 1 });
    const stored = await storedCall(call.id);
    expect(stored?.bodies?.request?.text).toBe(BODIES.request!.text);
    expect(stored?.bodies?.request_headers['x-api-key']).not.toBe(BODIES.request_headers['x-api-key']);
  });

  it("keeps a model server's timings", async () => {
    const call = record();
    call.timing = { ...call.timing, model_load_ms: 41, prompt_eval_ms: 130.5, eval_ms: 0.001 };

    const response = await post('/api/v1/ingest', { calls: [{ record: call, bodies: null }] });

    expect(response.status).toBe(200);
    const timing = (await storedCall(call.id))?.call.timing;
    expect(timing?.model_load_ms).toBe(41);
    expect(timing?.prompt_eval_ms).toBe(130.5);
    expect(timing?.eval_ms).toBe(0.001);
  });

  it('drops bodies in privacy mode', async () => {
    expect(await patch(`/api/v1/workspaces/${workspaceId}`, { privacy_mode: true })).toBe(200);
    try {
      const call = record();

      const response = await post('/api/v1/ingest', { calls: [{ record: call, bodies: BODIES }] });

      expect(response.status).toBe(200);
      const stored = await storedCall(call.id);
      expect(stored?.call.id).toBe(call.id);
      expect(stored?.bodies).toBeNull();
    } finally {
      await patch(`/api/v1/workspaces/${workspaceId}`, { privacy_mode: false });
    }
  });

  it('drops bodies of a device in privacy mode', async () => {
    expect(await patch(`/api/v1/devices/${deviceId}`, { privacy_mode: true })).toBe(200);
    try {
      const call = record();

      await post('/api/v1/ingest', { calls: [{ record: call, bodies: BODIES }] });

      expect((await storedCall(call.id))?.bodies).toBeNull();
    } finally {
      await patch(`/api/v1/devices/${deviceId}`, { privacy_mode: false });
    }
  });
});

describe('route verification', () => {
  it('returns the grant of a known token', async () => {
    const response = await post('/api/v1/routes/verify', { token_sha256: hashToken(running.server.routeToken) });

    expect(await response.json()).toEqual({
      valid: true,
      workspace_id: workspaceId,
      device_id: deviceId,
      keep_bodies: true,
      redact_bodies: true,
    });
  });

  it('answers invalid for an unknown token', async () => {
    const response = await post('/api/v1/routes/verify', { token_sha256: hashToken('twr_unknown') });

    expect(await response.json()).toEqual({ valid: false });
  });

  it.each([
    ['the token itself', { token_sha256: 'twr_not-a-hash' }],
    ['uppercase hex', { token_sha256: hashToken('x').toUpperCase() }],
    ['no hash', {}],
  ])('rejects %s with 400', async (_case, body) => {
    const response = await post('/api/v1/routes/verify', body);

    expect(response.status).toBe(400);
    expect((await errorOf(response)).message).toContain('expected {"token_sha256": "<64 lowercase hex digits>"}');
  });
});

describe('ingest secret setting', () => {
  it.each([
    ['too short', 'short-secret', 'invalid TOKENWISE_INGEST_SECRET (12 characters): expected at least 32 characters without spaces'],
    [
      'containing a space',
      'a secret with spaces that is long enough 0123',
      'invalid TOKENWISE_INGEST_SECRET (45 characters): expected at least 32 characters without spaces',
    ],
  ])('rejects a secret %s', (_case, secret, message) => {
    expect(() => resolveServeConfig({}, { TOKENWISE_INGEST_SECRET: secret })).toThrow(message);
  });

  it('keeps the secret out of its error', () => {
    const secret = 'tooshort-SECRETVALUE';

    expect(() => resolveServeConfig({ ingestSecret: secret }, {})).toThrow(/^(?!.*SECRETVALUE).*invalid --ingest-secret \(20 characters\)/);
  });

  it('accepts a secret of 32 characters', () => {
    const secret = 'a'.repeat(32);

    expect(resolveServeConfig({ ingestSecret: secret }, {}).ingestSecret).toBe(secret);
  });
});
