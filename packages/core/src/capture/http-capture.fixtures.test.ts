import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import zlib from 'node:zlib';
import { describe, expect, it } from 'vitest';
import { PRICE_DATA_VERSION } from '../cost/price-data-version.js';
import { builtinRoutes } from '../routes/registry.js';
import type { RouteDescriptor } from '../routes/route-descriptor.js';
import type { CaptureEnd, CaptureOptions, CaptureResult } from './capture-types.js';
import { decodeCallBodies } from './captured-body.js';
import { createHttpCapture } from './http-capture.js';

// Replays every case folder of the wire corpora read by read on a scripted clock and compares the
// record with expected.json field by field. A new folder is a new test; no code change is needed.
const fixturesRoot = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../../testkit/fixtures');
const corpora = ['llm-wire', 'llm-wire-extra'];

interface FixtureCase {
  corpus: string;
  name: string;
  dir: string;
}

function listCases(): FixtureCase[] {
  return corpora.flatMap((corpus) => {
    const dir = path.join(fixturesRoot, corpus);
    if (!fs.existsSync(dir)) return [];
    return fs
      .readdirSync(dir, { withFileTypes: true })
      .filter((entry) => entry.isDirectory() && !entry.name.startsWith('.'))
      .map((entry) => ({ corpus, name: entry.name, dir: path.join(dir, entry.name) }))
      .sort((a, b) => a.name.localeCompare(b.name));
  });
}

const readJson = (dir: string, file: string) => JSON.parse(fs.readFileSync(path.join(dir, file), 'utf8'));

/** Find the route named by request.json `route`, else the built-in route whose base URL has the case's origin. */
function routeOf(request: { route?: string; upstream: string }): RouteDescriptor {
  const route = request.route
    ? builtinRoutes.find((candidate) => candidate.name === request.route)
    : builtinRoutes.find((candidate) => new URL(candidate.baseUrl).origin === request.upstream);
  if (!route) throw new Error(`no built-in route for route=${request.route} upstream=${request.upstream}`);
  return route;
}

/** Strip the route's base path from the upstream path, giving the rest forwarded after `/r/{token}/{route}`. */
function targetOf(route: RouteDescriptor, upstreamPath: string): string {
  const basePath = new URL(route.baseUrl).pathname.replace(/\/+$/, '');
  return basePath && upstreamPath.startsWith(basePath) ? upstreamPath.slice(basePath.length) : upstreamPath;
}

function requestBodyBytes(request: { body: unknown; request_body_base64?: string }): Uint8Array {
  if (request.request_body_base64 !== undefined) return new Uint8Array(Buffer.from(request.request_body_base64, 'base64'));
  if (request.body === null) return new Uint8Array(0);
  return new TextEncoder().encode(JSON.stringify(request.body));
}

function replay(
  fixture: FixtureCase,
  options: CaptureOptions = {},
): { result: CaptureResult; request: { headers: Record<string, string> } } {
  const request = readJson(fixture.dir, 'request.json');
  const meta = readJson(fixture.dir, 'response-meta.json');
  const body = new Uint8Array(fs.readFileSync(path.join(fixture.dir, meta.body_file)));
  const route = routeOf(request);

  let now = 0;
  const capture = createHttpCapture(
    { route, method: request.method, target: targetOf(route, request.path), headers: request.headers, workspaceId: null, deviceId: null },
    {
      clock: () => now,
      wallClock: () => Date.parse('2026-11-03T14:05:09Z'),
      keepBodies: true,
      collectOutputText: true,
      decoders: { br: (bytes) => new Uint8Array(zlib.brotliDecompressSync(bytes)) },
      ...options,
    },
  );

  const requestBytes = requestBodyBytes(request);
  for (let offset = 0; offset < requestBytes.length; offset += 64 * 1024)
    capture.requestChunk(requestBytes.subarray(offset, offset + 64 * 1024));
  capture.requestEnd();

  now = meta.headers_ms;
  capture.responseHead(meta.status, meta.headers);
  let end: CaptureEnd = meta.ends === 'connection_closed' ? { kind: 'upstream_closed' } : { kind: 'complete' };
  let offset = 0;
  for (const [index, length] of (meta.chunks as number[]).entries()) {
    now = meta.chunk_times_ms[index];
    capture.responseChunk(body.subarray(offset, offset + length));
    offset += length;
    if (meta.client_aborts_after_chunk === index) {
      end = { kind: 'client_aborted' };
      break;
    }
  }
  return { result: capture.finish(end), request };
}

const COMPARED_FIELDS = [
  'provider',
  'api_shape',
  'stream_requested',
  'streaming',
  'stream_format',
  'model_requested',
  'model_answered',
  'http_status',
  'status',
  'error',
  'billable',
  'usage',
  'stop_reason',
  'stop_reasons',
  'stop_reason_normalized',
  'tool_calls',
  'server_tool_calls',
  'upstream_request_id',
  'response_id',
  'route',
  'tool',
  'tool_version',
  'user_agent',
  'session_id',
] as const;

describe.each(corpora)('%s fixtures', (corpus) => {
  const cases = listCases().filter((fixture) => fixture.corpus === corpus);

  it.each(cases.map((fixture) => [fixture.name, fixture] as const))('%s', (_name, fixture) => {
    const base = readJson(fixture.dir, 'expected.json');
    // llm-wire-extra states Tokenwise-only values (status "aborted", basis "unpriced", tool, session) in `record`.
    const expected = { ...base, ...(base.record ?? {}) };
    const { result, request } = replay(fixture);
    const record = result.record as unknown as Record<string, unknown>;

    for (const field of COMPARED_FIELDS) {
      if (field in expected) expect(record[field], `${fixture.name}: ${field}`).toEqual(expected[field]);
    }
    if (!('stop_reasons' in expected)) expect(record.stop_reasons, `${fixture.name}: stop_reasons`).toBeUndefined();

    expect(result.record.timing.ttft_ms, `${fixture.name}: timing.ttft_ms`).toBe(expected.timing.ttft_ms);
    expect(result.record.timing.total_ms, `${fixture.name}: timing.total_ms`).toBe(expected.timing.total_ms);

    const { price_data_version: version, ...cost } = result.record.cost;
    expect(cost, `${fixture.name}: cost`).toEqual(expected.cost);
    const priced = ['exact', 'partial', 'api_equivalent', 'unpriced'].includes(cost.basis);
    expect(version, `${fixture.name}: cost.price_data_version`).toBe(priced ? PRICE_DATA_VERSION : null);

    if (expected.checks?.output_text !== undefined)
      expect(result.outputText, `${fixture.name}: output text`).toBe(expected.checks.output_text);
    if (expected.extra?.session_id !== undefined)
      expect(result.record.session_id, `${fixture.name}: session id`).toBe(expected.extra.session_id);
    expect(result.warnings ?? [], `${fixture.name}: capture warnings`).toEqual([]);

    // No credential from the request headers may appear in the record or in the stored bodies.
    const stored = JSON.stringify({ record: result.record, bodies: result.bodies });
    for (const name of ['authorization', 'x-api-key', 'x-goog-api-key', 'api-key', 'chatgpt-account-id', 'cookie']) {
      const value: string | undefined = request.headers[name];
      const secret = value?.replace(/^Bearer\s+/i, '');
      if (secret) expect(stored.includes(secret), `${fixture.name}: ${name} value stored`).toBe(false);
    }
  });
});

describe.each(corpora)('%s fixtures with raw bodies', (corpus) => {
  const cases = listCases().filter((fixture) => fixture.corpus === corpus);

  it.each(cases.map((fixture) => [fixture.name, fixture] as const))('%s', (_name, fixture) => {
    for (const redact of [true, false]) {
      const decoded = replay(fixture, { redactBodies: redact }).result;
      const raw = replay(fixture, { redactBodies: redact, decodeBodies: false }).result;
      expect({ ...raw.record, id: null }, `${fixture.name}: record`).toEqual({ ...decoded.record, id: null });
      expect(raw.bodies, `${fixture.name}: bodies`).not.toBeNull();

      for (const side of ['request', 'response'] as const) {
        const body = raw.bodies![side];
        if (body === null || (body.encoding_error !== null && body.bytes === 0)) continue;
        expect(body.text, `${fixture.name}: ${side} text before decoding`).toBeNull();
        expect(body.raw, `${fixture.name}: ${side} raw`).toBeInstanceOf(Uint8Array);
        expect(body.raw!.byteOffset, `${fixture.name}: ${side} raw offset`).toBe(0);
        expect(body.raw!.buffer.byteLength, `${fixture.name}: ${side} raw buffer length`).toBe(body.raw!.byteLength);
      }
      expect(decodeCallBodies(raw.bodies!, redact), `${fixture.name}: decoded bodies, redact ${redact}`).toEqual(decoded.bodies);
    }
  });
});
