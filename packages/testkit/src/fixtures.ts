import { readdirSync, readFileSync, statSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { brotliDecompressSync, gunzipSync, inflateSync } from 'node:zlib';
import { builtinRoutes } from '@tokenwise/core';
import { decompress as zstdDecompress } from 'fzstd';

/**
 * Loading of the llm-wire fixture corpora kept in this package. `llm-wire` is a byte-exact copy of the
 * shared corpus and must never be edited. `llm-wire-extra` holds cases added for this project in the same
 * format. Each case folder holds `request.json`, `response-meta.json`, the response body and
 * `expected.json`, and each corpus README describes every field.
 */

/** The corpora, in load order; a missing one is skipped. */
export const FIXTURE_CORPORA = ['llm-wire', 'llm-wire-extra'] as const;

export interface WireFixtureRequest {
  method: string;
  /** Scheme and host of the real provider, e.g. `https://api.anthropic.com`. */
  upstream: string;
  /** Path and query exactly as sent upstream. */
  path: string;
  /** Lowercase names; credentials are fake. */
  headers: Record<string, string>;
  /** The JSON request body as an object, or null when there is none. */
  body: unknown;
  /** Route name to send the request through, when the upstream host alone does not decide it. */
  route?: string;
  /** The request body's content coding (`zstd`), also present in `headers`. */
  request_content_encoding?: string;
  /** The exact request body bytes, base64, sent instead of `body` (which keeps the decoded JSON). */
  request_body_base64?: string;
}

export interface WireFixtureResponseMeta {
  status: number;
  status_text: string;
  http_version: string;
  /** Lowercase names, in arrival order; `transfer-encoding` omitted. */
  headers: Record<string, string>;
  body_file: string;
  body_bytes: number;
  body_sha256: string;
  content_encoding: string;
  decoded_body_bytes?: number;
  /** When the status line and headers arrived, in ms after the request was fully sent. */
  headers_ms: number;
  /** Byte lengths of the successive reads; they sum to `body_bytes`. */
  chunks: number[];
  /** Arrival time of each read, same clock as `headers_ms`. */
  chunk_times_ms: number[];
  ends: 'complete' | 'connection_closed';
  /**
   * Index of the read after which the client hangs up (always the last read). A replay that honours it
   * keeps the response open after that read and lets the client close the connection instead.
   */
  client_aborts_after_chunk?: number;
  notes?: string;
}

/** What a correct capture records for the exchange; field meanings as in the corpus README. */
export interface WireFixtureExpected {
  case: string;
  provider: string;
  api_shape: string | null;
  stream_requested: boolean;
  streaming: boolean;
  stream_format: string | null;
  model_requested: string | null;
  model_answered: string | null;
  http_status: number;
  status: string;
  error: { type: string; message: string | null; source: string; retry_after_s: number | null } | null;
  billable: boolean;
  usage: Record<string, number | null>;
  stop_reason: string | null;
  stop_reasons?: (string | null)[];
  stop_reason_normalized: string | null;
  tool_calls: number;
  server_tool_calls: Record<string, number>;
  timing: { ttft_ms: number | null; total_ms: number };
  upstream_request_id: string | null;
  response_id: string | null;
  cost: { usd: number | null; basis: string; price_key: string | null; breakdown: Record<string, number> };
  why: string;
  extra?: unknown;
  checks?: Record<string, unknown>;
  /**
   * Record values the shared format cannot state: each key replaces the top-level key of the same name
   * (`status: "aborted"`) or adds a record field (`route`, `tool`, `tool_version`, `user_agent`, `session_id`).
   */
  record?: Record<string, unknown>;
}

export interface WireFixture {
  /** Case folder name. */
  name: string;
  /** Corpus folder name, e.g. `llm-wire`. */
  corpus: string;
  dir: string;
  request: WireFixtureRequest;
  /** The request body bytes to send: `request_body_base64` decoded, else `body` as compact JSON, else null. */
  requestBody: Uint8Array | null;
  responseMeta: WireFixtureResponseMeta;
  /** The response body exactly as the upstream sent it (still content-encoded). */
  responseBody: Uint8Array;
  expected: WireFixtureExpected;
  /**
   * What the call record must hold when the case is replayed through the proxy honouring every optional
   * field: `expected` with `record` applied and the keys that are not record fields (`case`, `why`,
   * `extra`, `checks`) removed.
   */
  expectedRecord: Record<string, unknown>;
  /** Route the request goes through: `request.route`, else the built-in route whose base URL matches. */
  route: string;
  /** Path and query relative to the route's base URL, i.e. what follows `/r/{token}/{route}`. */
  routeRest: string;
}

/** This package's `fixtures` folder (the compiled module lives in `dist/`). */
export function fixturesRoot(): string {
  return fileURLToPath(new URL('../fixtures/', import.meta.url));
}

/** Absolute paths of the corpus folders that exist, in `FIXTURE_CORPORA` order. */
export function fixtureCorpusDirs(): string[] {
  return FIXTURE_CORPORA.map((corpus) => path.join(fixturesRoot(), corpus)).filter((dir) => isDirectory(dir));
}

/** Load every case of every corpus, sorted by name within each corpus. */
export function loadAllWireFixtures(): WireFixture[] {
  return fixtureCorpusDirs().flatMap((dir) => loadWireFixtures(dir));
}

/** Load every case folder of one corpus, skipping folders that start with `.`. */
export function loadWireFixtures(corpusDir: string): WireFixture[] {
  return readdirSync(corpusDir)
    .filter((entry) => !entry.startsWith('.') && isDirectory(path.join(corpusDir, entry)))
    .sort()
    .map((entry) => loadWireFixture(path.join(corpusDir, entry)));
}

export function loadWireFixture(dir: string): WireFixture {
  const request = readJson<WireFixtureRequest>(dir, 'request.json');
  const responseMeta = readJson<WireFixtureResponseMeta>(dir, 'response-meta.json');
  const expected = readJson<WireFixtureExpected>(dir, 'expected.json');
  const { route, routeRest } = routeFor(request, dir);

  return {
    name: path.basename(dir),
    corpus: path.basename(path.dirname(dir)),
    dir,
    request,
    requestBody: requestBodyOf(request),
    responseMeta,
    responseBody: new Uint8Array(readFileSync(path.join(dir, responseMeta.body_file))),
    expected,
    expectedRecord: expectedRecordOf(expected),
    route,
    routeRest,
  };
}

/** Decode the request body's content coding, as a proxy that keeps bodies does; null when there is no body. */
export function decodedRequestBody(fixture: WireFixture): Uint8Array | null {
  if (fixture.requestBody === null) return null;
  return decodeContent(fixture.requestBody, fixture.request.request_content_encoding, fixture.dir);
}

/** Decode the response body's content coding. */
export function decodedResponseBody(fixture: WireFixture): Uint8Array {
  return decodeContent(fixture.responseBody, fixture.responseMeta.content_encoding, fixture.dir);
}

function decodeContent(bytes: Uint8Array, coding: string | undefined, dir: string): Uint8Array {
  switch (coding ?? 'identity') {
    case 'identity':
      return bytes;
    case 'gzip':
      return new Uint8Array(gunzipSync(bytes));
    case 'deflate':
      return new Uint8Array(inflateSync(bytes));
    case 'br':
      return new Uint8Array(brotliDecompressSync(bytes));
    case 'zstd':
      return zstdDecompress(bytes);
    default:
      throw new Error(`fixture ${dir} uses content coding "${coding}", which the testkit cannot decode: add it to decodeContent`);
  }
}

function requestBodyOf(request: WireFixtureRequest): Uint8Array | null {
  if (request.request_body_base64 !== undefined) return new Uint8Array(Buffer.from(request.request_body_base64, 'base64'));
  if (request.body === null || request.body === undefined) return null;
  return new TextEncoder().encode(JSON.stringify(request.body));
}

function expectedRecordOf(expected: WireFixtureExpected): Record<string, unknown> {
  const { case: _case, why: _why, extra: _extra, checks: _checks, record, ...fields } = expected;
  return { ...fields, ...record };
}

/**
 * Pick the built-in route for a case: the explicit `route`, else the one whose base URL has the origin
 * of `upstream` and whose base path prefixes the request path. Only the ChatGPT backend's base URL has a path.
 */
function routeFor(request: WireFixtureRequest, dir: string): { route: string; routeRest: string } {
  const origin = new URL(request.upstream).origin;
  const candidates = builtinRoutes.filter((route) =>
    request.route === undefined ? new URL(route.baseUrl).origin === origin : route.name === request.route,
  );
  for (const route of candidates) {
    const basePath = new URL(route.baseUrl).pathname.replace(/\/+$/, '');
    if (request.path.startsWith(`${basePath}/`) || request.path.startsWith(`${basePath}?`)) {
      return { route: route.name, routeRest: request.path.slice(basePath.length) };
    }
  }
  throw new Error(
    `no built-in route serves ${request.upstream}${request.path} (fixture ${dir}); add a "route" field to request.json or a route to core`,
  );
}

function readJson<T>(dir: string, file: string): T {
  const fullPath = path.join(dir, file);
  try {
    return JSON.parse(readFileSync(fullPath, 'utf8')) as T;
  } catch (error) {
    throw new Error(`cannot read fixture file ${fullPath}: ${error instanceof Error ? error.message : String(error)}`, { cause: error });
  }
}

function isDirectory(dir: string): boolean {
  try {
    return statSync(dir).isDirectory();
  } catch {
    return false;
  }
}
