/**
 * Property-based tests of the capture's stream parsers (SSE, JSON arrays, WebSocket messages) over the
 * recorded wire fixtures. Any split of a valid body into chunks gives the record that one chunk gives.
 * Arbitrary bytes never make a capture method throw.
 */
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import zlib from 'node:zlib';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { builtinRoutes } from '../routes/registry.js';
import type { RouteDescriptor } from '../routes/route-descriptor.js';
import type { CaptureEnd, CaptureResult } from './capture-types.js';
import { createHttpCapture } from './http-capture.js';
import { createWebSocketCapture } from './websocket-capture.js';

const fixturesRoot = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../../testkit/fixtures');
/** Generated cases per fixture; each replays the fixture once more. */
const RUNS_PER_FIXTURE = 30;

interface Fixture {
  name: string;
  route: RouteDescriptor;
  request: { method: string; target: string; headers: Record<string, string>; body: Uint8Array };
  status: number;
  headers: Record<string, string>;
  /** Response bytes fed to the capture: the whole body, or the part before the client hung up. */
  body: Uint8Array;
  end: CaptureEnd;
}

function loadFixtures(): Fixture[] {
  return ['llm-wire', 'llm-wire-extra'].flatMap((corpus) => {
    const dir = path.join(fixturesRoot, corpus);
    if (!fs.existsSync(dir)) return [];
    return fs
      .readdirSync(dir, { withFileTypes: true })
      .filter((entry) => entry.isDirectory())
      .map((entry) => loadFixture(path.join(dir, entry.name), entry.name));
  });
}

function loadFixture(dir: string, name: string): Fixture {
  const readJson = (file: string) => JSON.parse(fs.readFileSync(path.join(dir, file), 'utf8'));
  const request = readJson('request.json');
  const meta = readJson('response-meta.json');
  const route = request.route
    ? builtinRoutes.find((candidate) => candidate.name === request.route)!
    : builtinRoutes.find((candidate) => new URL(candidate.baseUrl).origin === request.upstream)!;
  const basePath = new URL(route.baseUrl).pathname.replace(/\/+$/, '');
  const target = basePath && request.path.startsWith(basePath) ? request.path.slice(basePath.length) : request.path;
  let requestBody = new Uint8Array(0);
  if (request.request_body_base64 !== undefined) requestBody = new Uint8Array(Buffer.from(request.request_body_base64, 'base64'));
  else if (request.body !== null) requestBody = new TextEncoder().encode(JSON.stringify(request.body));

  let body = new Uint8Array(fs.readFileSync(path.join(dir, meta.body_file)));
  let end: CaptureEnd = meta.ends === 'connection_closed' ? { kind: 'upstream_closed' } : { kind: 'complete' };
  if (meta.client_aborts_after_chunk !== undefined) {
    const seen = (meta.chunks as number[]).slice(0, meta.client_aborts_after_chunk + 1).reduce((sum, length) => sum + length, 0);
    body = body.subarray(0, seen);
    end = { kind: 'client_aborted' };
  }
  return {
    name,
    route,
    request: { method: request.method, target, headers: request.headers, body: requestBody },
    status: meta.status,
    headers: meta.headers,
    body,
    end,
  };
}

/** Replay a fixture on a frozen clock, feeding the request and response bodies cut at the given offsets. */
function replay(fixture: Fixture, requestCuts: number[], responseCuts: number[]): CaptureResult {
  const capture = createHttpCapture(
    { route: fixture.route, ...fixture.request, workspaceId: null, deviceId: null },
    {
      clock: () => 0,
      wallClock: () => Date.parse('2026-11-03T14:05:09Z'),
      keepBodies: true,
      collectOutputText: true,
      decoders: { br: (bytes) => new Uint8Array(zlib.brotliDecompressSync(bytes)) },
    },
  );
  for (const chunk of split(fixture.request.body, requestCuts)) capture.requestChunk(chunk);
  capture.requestEnd();
  capture.responseHead(fixture.status, fixture.headers);
  for (const chunk of split(fixture.body, responseCuts)) capture.responseChunk(chunk);
  return capture.finish(fixture.end);
}

function split(bytes: Uint8Array, cuts: number[]): Uint8Array[] {
  const chunks: Uint8Array[] = [];
  let start = 0;
  for (const cut of [...cuts, bytes.length]) {
    // A copy, so no parser can lean on the chunks being views of one buffer.
    chunks.push(bytes.slice(start, cut));
    start = cut;
  }
  return chunks;
}

/** Everything a capture produces, minus the record's random id. */
function comparable(result: CaptureResult): unknown {
  const { id, ...record } = result.record;
  return { record, bodies: result.bodies, outputText: result.outputText, warnings: result.warnings };
}

/** Sorted distinct offsets strictly inside `length` bytes: where a body is cut into chunks. */
function cutsWithin(length: number): fc.Arbitrary<number[]> {
  if (length < 2) return fc.constant([]);
  return fc
    .uniqueArray(fc.integer({ min: 1, max: length - 1 }), { maxLength: Math.min(200, length - 1) })
    .map((cuts) => cuts.sort((a, b) => a - b));
}

const fixtures = loadFixtures();

describe('HTTP capture chunking', () => {
  it('has fixtures of every stream format', () => {
    const formats = new Set(fixtures.map((fixture) => replay(fixture, [], []).record.stream_format));
    expect(formats).toEqual(new Set([null, 'sse', 'json-array']));
  });

  it.each(fixtures.map((fixture) => [fixture.name, fixture] as const))('%s gives one record for any chunking', (_name, fixture) => {
    const whole = comparable(replay(fixture, [], []));
    fc.assert(
      fc.property(cutsWithin(fixture.request.body.length), cutsWithin(fixture.body.length), (requestCuts, responseCuts) => {
        expect(comparable(replay(fixture, requestCuts, responseCuts))).toStrictEqual(whole);
      }),
      { numRuns: RUNS_PER_FIXTURE },
    );
  });

  it.each(fixtures.filter((fixture) => fixture.body.length <= 64 * 1024).map((fixture) => [fixture.name, fixture] as const))(
    '%s gives one record byte by byte',
    (_name, fixture) => {
      const everyByte = Array.from({ length: Math.max(0, fixture.body.length - 1) }, (_, index) => index + 1);
      expect(comparable(replay(fixture, [], everyByte))).toStrictEqual(comparable(replay(fixture, [], [])));
    },
  );
});

describe('HTTP capture on arbitrary bytes', () => {
  const contentTypes = [
    'text/event-stream',
    'application/json',
    'application/json; charset=utf-8',
    'text/html',
    'application/octet-stream',
  ];
  const encodings = [undefined, 'gzip', 'deflate', 'br', 'zstd', 'identity'];
  const targets = [
    ['anthropic', '/v1/messages'],
    ['openai', '/v1/chat/completions'],
    ['openai', '/v1/responses'],
    ['gemini', '/v1beta/models/gemini-2.5-flash:streamGenerateContent'],
    ['gemini', '/v1beta/models/gemini-2.5-flash:streamGenerateContent?alt=sse'],
    ['chatgpt', '/responses'],
  ] as const;
  const ends: CaptureEnd[] = [{ kind: 'complete' }, { kind: 'client_aborted' }, { kind: 'upstream_closed' }];

  it('never throws and always builds a record', () => {
    fc.assert(
      fc.property(
        fc.constantFrom(...targets),
        fc.constantFrom(...contentTypes),
        fc.constantFrom(...encodings),
        fc.integer({ min: 100, max: 599 }),
        fc.array(fc.uint8Array({ maxLength: 512 }), { maxLength: 8 }),
        fc.array(fc.uint8Array({ maxLength: 2048 }), { maxLength: 16 }),
        fc.constantFrom(...ends),
        ([routeName, target], contentType, encoding, status, requestChunks, responseChunks, end) => {
          const route = builtinRoutes.find((candidate) => candidate.name === routeName)!;
          const headers: Record<string, string> = { 'content-type': contentType };
          if (encoding) headers['content-encoding'] = encoding;
          const capture = createHttpCapture(
            { route, method: 'POST', target, headers, workspaceId: null, deviceId: null },
            { keepBodies: true, collectOutputText: true, bodyCapBytes: 1024 },
          );
          for (const chunk of requestChunks) capture.requestChunk(chunk);
          capture.requestEnd();
          capture.responseHead(status, headers);
          for (const chunk of responseChunks) capture.responseChunk(chunk);
          const result = capture.finish(end);
          expect(result.record.http_status).toBe(status);
          expect(result.record.response_bytes).toBe(responseChunks.reduce((sum, chunk) => sum + chunk.length, 0));
        },
      ),
      { numRuns: 500 },
    );
  });

  it('keeps valid events readable around random bytes in an SSE stream', () => {
    const fixture = fixtures.find((candidate) => candidate.name === 'anthropic-stream-cache-usage')!;
    fc.assert(
      fc.property(fc.uint8Array({ minLength: 1, maxLength: 256 }), (noise) => {
        // Noise as an event of its own, between a blank line and the next event, must not cost the usage.
        const text = new TextDecoder().decode(fixture.body);
        const cut = text.indexOf('event: message_delta');
        const encoder = new TextEncoder();
        const noisy = new Uint8Array([
          ...encoder.encode(text.slice(0, cut)),
          ...noise.filter((byte) => byte !== 0x0a && byte !== 0x0d),
          0x0a,
          0x0a,
          ...encoder.encode(text.slice(cut)),
        ]);
        const result = replay({ ...fixture, body: noisy }, [], []);
        expect(result.record.usage).toStrictEqual(replay(fixture, [], []).record.usage);
      }),
      { numRuns: 200 },
    );
  });
});

describe('WebSocket capture', () => {
  const headers = { 'user-agent': 'codex_exec/0.171.0 (Debian 12.0.0; x86_64)', originator: 'codex_exec', upgrade: 'websocket' };
  const chatgpt = builtinRoutes.find((candidate) => candidate.name === 'chatgpt')!;

  /** The server messages of a Responses WebSocket turn: the data of each event of the SSE fixture. */
  function responsesEvents(): string[] {
    const fixture = fixtures.find((candidate) => candidate.name === 'openai-responses-stream')!;
    return new TextDecoder()
      .decode(fixture.body)
      .split('\n')
      .filter((line) => line.startsWith('data: ') && line !== 'data: [DONE]')
      .map((line) => line.slice('data: '.length));
  }

  function session(messages: { from: 'client' | 'server'; data: string | Uint8Array }[]): CaptureResult[] {
    const results: CaptureResult[] = [];
    const capture = createWebSocketCapture(
      { route: chatgpt, method: 'GET', target: '/responses', headers, workspaceId: null, deviceId: null },
      { clock: () => 0, wallClock: () => Date.parse('2026-11-03T14:05:09Z'), keepBodies: true, collectOutputText: true },
      (result) => results.push(result),
    );
    for (const message of messages) {
      if (message.from === 'client') capture.clientMessage(message.data);
      else capture.serverMessage(message.data);
    }
    capture.close({ kind: 'complete' });
    return results;
  }

  const create = JSON.stringify({ type: 'response.create', model: 'gpt-5-codex', input: [{ role: 'user', content: 'say hi' }] });

  it('gives one record whether messages arrive as text or as bytes', () => {
    const events = responsesEvents();
    const asText = session([{ from: 'client', data: create }, ...events.map((data) => ({ from: 'server' as const, data }))]);
    expect(asText).toHaveLength(1);
    expect(asText[0]!.record.usage.output_tokens).not.toBeNull();

    fc.assert(
      fc.property(fc.array(fc.boolean(), { minLength: events.length + 1, maxLength: events.length + 1 }), (asBytes) => {
        const encode = (text: string, index: number) => (asBytes[index] ? new TextEncoder().encode(text) : text);
        const results = session([
          { from: 'client', data: encode(create, 0) },
          ...events.map((data, index) => ({ from: 'server' as const, data: encode(data, index + 1) })),
        ]);
        expect(results.map(comparable)).toStrictEqual(asText.map(comparable));
      }),
      { numRuns: 100 },
    );
  });

  it('never throws on arbitrary messages', () => {
    const message = fc.oneof(
      fc.string({ maxLength: 300 }),
      fc.uint8Array({ maxLength: 300 }),
      fc.constantFrom(create, ...responsesEvents()),
      fc.json().map((text) => text),
    );
    fc.assert(
      fc.property(
        fc.array(fc.record({ from: fc.constantFrom('client' as const, 'server' as const), data: message }), { maxLength: 40 }),
        (messages) => {
          for (const result of session(messages)) expect(result.record.route).toBe('chatgpt');
        },
      ),
      { numRuns: 300 },
    );
  });
});
