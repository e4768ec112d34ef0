import zlib from 'node:zlib';
import { describe, expect, it } from 'vitest';
import type { CapturedBody } from '../call-record.js';
import { createRouteRegistry } from '../routes/registry.js';
import { BodyCopy } from './body-copy.js';
import type { CaptureOptions, CaptureResult } from './capture-types.js';
import { capturedBodySize, decodeCallBodies, decodeCapturedBody } from './captured-body.js';
import { createHttpCapture } from './http-capture.js';
import { createWebSocketCapture } from './websocket-capture.js';

const encode = (text: string) => new TextEncoder().encode(text);
const API_KEY = 'sk-ant-api03-FAKE-TEST-KEY-DO-NOT-USE-0000000000000000000000000000';
const routes = createRouteRegistry();

/** Text with 1-, 2-, 3- and 4-byte UTF-8 characters and a secret, so every cap lands on some character's inside. */
const MIXED = `{"content":"key ${API_KEY} é€😀 ab é€😀 déjà vu 😀😀 €€ end"}`;

/** Feed `bytes` to a BodyCopy in pieces of `chunk` bytes. */
function copyOf(bytes: Uint8Array, cap: number, redact: boolean, decode: boolean, chunk: number): BodyCopy {
  const copy = new BodyCopy(cap, redact, decode);
  for (let offset = 0; offset < bytes.length; offset += chunk) copy.append(bytes.subarray(offset, offset + chunk));
  return copy;
}

function expectOwnsBuffer(raw: Uint8Array | undefined): void {
  expect(raw).toBeInstanceOf(Uint8Array);
  expect(raw!.byteOffset).toBe(0);
  expect(raw!.buffer.byteLength).toBe(raw!.byteLength);
}

describe('BodyCopy with decoding off', () => {
  it('decodes to the same body at every cap and chunking', () => {
    const bytes = encode(MIXED);
    for (const redact of [true, false]) {
      for (const chunk of [1, 3, 7, bytes.length]) {
        for (let cap = 0; cap <= bytes.length + 1; cap++) {
          const expected = copyOf(bytes, cap, redact, true, chunk).toCapturedBody('application/json', null);
          const raw = copyOf(bytes, cap, redact, false, chunk).toCapturedBody('application/json', null);
          const label = `cap ${cap}, chunk ${chunk}, redact ${redact}`;

          expect(raw.text, label).toBeNull();
          expectOwnsBuffer(raw.raw);
          expect(raw.bytes, label).toBe(bytes.length);
          expect(capturedBodySize(raw), label).toBe(raw.raw!.byteLength);
          expect(decodeCapturedBody(raw, redact), label).toEqual(expected);
        }
      }
    }
  });

  it('cuts a truncated body at a character boundary', () => {
    // "😀" is four bytes: a cap of 2 lands inside it, so nothing of it is kept.
    const raw = copyOf(encode('a😀b'), 3, true, false, 1).toCapturedBody(null, null);
    expect(raw.truncated).toBe(true);
    expect([...raw.raw!]).toEqual([0x61]);
    expect(decodeCapturedBody(raw, true).text).toBe('a');
  });

  it('keeps an encoding error and the text decoded before it', () => {
    const partial = copyOf(encode('{"a":"é'), 100, true, false, 4).toCapturedBody('application/json', 'gzip decoding failed: bad');
    expect(decodeCapturedBody(partial, true)).toEqual(
      copyOf(encode('{"a":"é'), 100, true, true, 4).toCapturedBody('application/json', 'gzip decoding failed: bad'),
    );
    expect(decodeCapturedBody(partial, true).encoding_error).toBe('gzip decoding failed: bad');

    const nothing = new BodyCopy(100, true, false).toCapturedBody(null, 'gzip decoding failed: bad');
    expect(nothing).toEqual({ text: null, bytes: 0, truncated: false, content_type: null, encoding_error: 'gzip decoding failed: bad' });
    expect(nothing.raw).toBeUndefined();
    expect(decodeCapturedBody(nothing, true)).toBe(nothing);
  });

  it('copies a view into a pooled Buffer', () => {
    // Buffer.from of a short string is a view into Node's shared 8 KiB pool.
    const pooled = Buffer.from('{"pooled":true}');
    expect(pooled.buffer.byteLength).toBeGreaterThan(pooled.byteLength);

    const raw = copyOf(pooled, 1024, true, false, pooled.length).toCapturedBody(null, null);
    expectOwnsBuffer(raw.raw);
    expect(raw.raw!.buffer).not.toBe(pooled.buffer);
    expect(Buffer.isBuffer(raw.raw)).toBe(false);
    expect(decodeCapturedBody(raw, false).text).toBe('{"pooled":true}');
  });
});

describe('decodeCapturedBody', () => {
  it('returns a body that is already decoded unchanged', () => {
    const body: CapturedBody = { text: `key ${API_KEY}`, bytes: 10, truncated: false, content_type: null, encoding_error: null };
    expect(decodeCapturedBody(body, true)).toBe(body);
    expect(decodeCallBodies({ request: body, response: null, request_headers: {}, response_headers: {} }, true).request).toBe(body);
  });

  it('masks secrets only when asked', () => {
    const raw = copyOf(encode(MIXED), 4096, true, false, 16).toCapturedBody(null, null);
    expect(decodeCapturedBody(raw, true).text).toContain('[REDACTED:anthropic-key]');
    expect(decodeCapturedBody(raw, false).text).toBe(MIXED);
    expect('raw' in decodeCapturedBody(raw, false)).toBe(false);
  });
});

describe('createHttpCapture with decodeBodies false', () => {
  function capture(options: CaptureOptions, requestChunks: Uint8Array[], contentEncoding?: string): CaptureResult {
    const headers: Record<string, string> = { 'content-type': 'application/json', 'x-api-key': API_KEY };
    if (contentEncoding) headers['content-encoding'] = contentEncoding;
    const http = createHttpCapture(
      { route: routes.get('anthropic')!, method: 'POST', target: '/v1/messages', headers, workspaceId: 'ws1', deviceId: 'dev1' },
      { clock: () => 0, wallClock: () => 0, keepBodies: true, ...options },
    );
    for (const chunk of requestChunks) http.requestChunk(chunk);
    http.requestEnd();
    http.responseHead(200, { 'content-type': 'application/json' });
    http.responseChunk(
      encode('{"id":"msg_1","type":"message","model":"claude-haiku-4-5","content":[],"usage":{"input_tokens":1,"output_tokens":1}}'),
    );
    return http.finish({ kind: 'complete' });
  }

  const compare = (chunks: Uint8Array[], options: CaptureOptions, contentEncoding?: string) => {
    const decoded = capture(options, chunks, contentEncoding);
    const raw = capture({ ...options, decodeBodies: false }, chunks, contentEncoding);
    expect(decodeCallBodies(raw.bodies!, options.redactBodies ?? true)).toEqual(decoded.bodies);
    return { decoded, raw };
  };

  it('decodes a body cut inside a multi-byte character like the default', () => {
    const body = encode(
      JSON.stringify({ model: 'claude-haiku-4-5', messages: [{ role: 'user', content: `${API_KEY} ${'é😀'.repeat(50)}` }] }),
    );
    for (const cap of [150, 151, 152, 153]) {
      const { decoded, raw } = compare([body.subarray(0, 100), body.subarray(100)], { bodyCapBytes: cap });
      expect(raw.bodies!.request!.truncated).toBe(true);
      expect(decoded.bodies!.request!.text).toContain('[REDACTED:anthropic-key]');
      expect(decoded.bodies!.request!.text).not.toContain('\uFFFD');
    }
  });

  it('keeps the encoding error of a body that failed to decode', () => {
    const { decoded } = compare([encode('not gzip at all')], {}, 'gzip');
    expect(decoded.bodies!.request!.encoding_error).toMatch(/^gzip decoding failed/);
    expect(decoded.bodies!.request!.text).toBeNull();

    // Half a valid gzip stream, then garbage: part of the body decodes before the decoder fails.
    let seed = 1;
    const letter = () => {
      seed = (seed * 1103515245 + 12345) & 0x7fffffff;
      return String.fromCharCode(97 + (seed % 26));
    };
    const text = `{"content":"é😀 ${Array.from({ length: 3000 }, letter).join('')}"}`;
    const gzipped = new Uint8Array(zlib.gzipSync(Buffer.from(text)));
    const half = Math.floor(gzipped.length / 2);
    const chunks = [gzipped.subarray(0, half), new Uint8Array(64).fill(0xff), gzipped.subarray(half)];
    for (const bodyCapBytes of [100, 4096]) {
      const { decoded, raw } = compare(chunks, { redactBodies: false, bodyCapBytes }, 'gzip');
      expect(decoded.bodies!.request!.encoding_error).toMatch(/^gzip decoding failed/);
      expect(decoded.bodies!.request!.bytes).toBeGreaterThan(0);
      expect(decoded.bodies!.request!.text!.startsWith('{"content":"é😀 ')).toBe(true);
      expect(raw.bodies!.request!.raw!.byteLength).toBeGreaterThan(0);
    }
  });
});

describe('createWebSocketCapture with decodeBodies false', () => {
  function relay(options: CaptureOptions): CaptureResult[] {
    const results: CaptureResult[] = [];
    const capture = createWebSocketCapture(
      { route: routes.get('chatgpt')!, method: 'GET', target: '/responses', headers: {}, workspaceId: 'ws1', deviceId: 'dev1' },
      { clock: () => 0, wallClock: () => 0, keepBodies: true, ...options },
      (result) => results.push(result),
    );
    capture.clientMessage(
      JSON.stringify({ type: 'response.create', model: 'gpt-5-codex', input: [{ role: 'user', content: `é😀 ${API_KEY}` }] }),
    );
    capture.serverMessage(JSON.stringify({ type: 'response.created', response: { id: 'resp_1', status: 'in_progress' } }));
    capture.serverMessage(encode(JSON.stringify({ type: 'response.completed', response: { id: 'resp_1', status: 'completed' } })));
    return results;
  }

  it('decodes each response to the default bodies', () => {
    for (const bodyCapBytes of [40, 41, 42, 43, 4096]) {
      const [decoded] = relay({ bodyCapBytes });
      const [raw] = relay({ bodyCapBytes, decodeBodies: false });
      expectOwnsBuffer(raw!.bodies!.request!.raw);
      expectOwnsBuffer(raw!.bodies!.response!.raw);
      expect(decodeCallBodies(raw!.bodies!, true), `cap ${bodyCapBytes}`).toEqual(decoded!.bodies);
    }
  });
});
