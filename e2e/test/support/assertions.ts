/**
 * Checks shared by the scenarios: the client printed the fake answer, the proxy forwarded what the client
 * sent unchanged, and the stored record says what the exchange was, field by field.
 */
import type { ApiShape, CallRecord, CostBasis, ProviderId, ToolId } from '@tokenwise/core';
import { FAKE_ANSWER_TEXT, type RecordedRequest, type TappedRequest } from '@tokenwise/testkit';
import { expect } from 'vitest';
import { ANSWER_MODELS, type ApiFamily, expectedCost, expectedUsage } from './expected.js';
import { ROUTE_BASE_PATHS, routeRelativePath, type ScenarioRun } from './scenario.js';

/** Headers that belong to one connection (RFC 9110 section 7.6.1), which a proxy must not forward as they are. */
const CONNECTION_HEADERS = new Set([
  'connection',
  'keep-alive',
  'proxy-connection',
  'transfer-encoding',
  'te',
  'trailer',
  'upgrade',
  'proxy-authorization',
  'proxy-authenticate',
]);
/** Headers a proxy sets for its own connection upstream. */
const PER_HOP_HEADERS = new Set([...CONNECTION_HEADERS, 'host', 'content-length']);
/** WebSocket handshake headers, negotiated again on the proxy's own connection upstream. */
const WEBSOCKET_HANDSHAKE_HEADERS = new Set([
  'sec-websocket-key',
  'sec-websocket-version',
  'sec-websocket-extensions',
  'sec-websocket-protocol',
]);

export function expectClientPrintedAnswer(run: ScenarioRun): void {
  const context = `client stderr:\n${run.client.stderr.slice(-4000)}`;
  expect(run.client.timedOut, context).toBe(false);
  expect(run.client.exitCode, context).toBe(0);
  expect(run.client.stdout, context).toContain(FAKE_ANSWER_TEXT);
}

/**
 * Check that every HTTP request the client sent reached the fake provider unchanged. Only the route prefix
 * is replaced, by the route's base path. The query, the end-to-end header values (byte for byte) and the
 * body bytes stay the same, no header is added, and the route token appears nowhere upstream.
 */
export function expectForwardedUnchanged(run: ScenarioRun): void {
  const sentHttp = run.sent.filter((request) => request.transport === 'http');
  const upstreamHttp = run.upstream.filter((request) => request.transport === 'http');
  expect(upstreamHttp.map(describeRequest), 'HTTP requests that reached the fake provider').toHaveLength(sentHttp.length);

  // A client can send the same request twice (Codex asks for /models from two places), so each sent
  // request takes one unmatched upstream request, preferring one whose headers are identical.
  const unmatched = [...upstreamHttp];
  for (const sent of sentHttp) {
    const candidates = unmatched.filter((request) => request.target === upstreamTarget(sent.target) && sameBytes(request.body, sent.body));
    const sentHeaders = JSON.stringify(endToEndHeaders(sent.rawHeaders, PER_HOP_HEADERS));
    const forwarded =
      candidates.find((request) => JSON.stringify(endToEndHeaders(request.rawHeaders, PER_HOP_HEADERS)) === sentHeaders) ?? candidates[0];
    expect(forwarded, `${sent.method} ${sent.target} reached the fake provider with its path and body unchanged`).toBeDefined();
    if (!forwarded) continue;
    unmatched.splice(unmatched.indexOf(forwarded), 1);
    expect.soft(forwarded.method, `method of ${sent.target}`).toBe(sent.method);
    expect
      .soft(endToEndHeaders(forwarded.rawHeaders, PER_HOP_HEADERS), `end-to-end headers of ${sent.target}`)
      .toEqual(endToEndHeaders(sent.rawHeaders, PER_HOP_HEADERS));
  }

  for (const sent of run.sent.filter((request) => request.transport === 'upgrade')) {
    const forwarded = run.upstream.find(
      (request) => request.transport === 'websocket-upgrade' && request.target === upstreamTarget(sent.target),
    );
    expect(forwarded, `WebSocket upgrade ${sent.target} reached the fake provider`).toBeDefined();
    if (!forwarded) continue;
    const skipped = new Set([...PER_HOP_HEADERS, ...WEBSOCKET_HANDSHAKE_HEADERS]);
    expect
      .soft(endToEndHeaders(forwarded.rawHeaders, skipped), `end-to-end headers of the upgrade ${sent.target}`)
      .toEqual(endToEndHeaders(sent.rawHeaders, skipped));
  }

  for (const request of run.upstream) {
    expect.soft(request.target, 'the route prefix never reaches the upstream').not.toMatch(/^\/r\//);
    expect.soft(JSON.stringify(request.rawHeaders) + request.target, 'the route token never reaches the upstream').not.toContain(run.token);
  }
}

export interface ModelCallExpectation {
  family: ApiFamily;
  tool: ToolId;
  toolVersion: string;
  route: string;
  provider: ProviderId;
  apiShape: ApiShape;
  sessionId: string | null;
  /** The model the request named, as the client sent it. */
  modelRequested: string;
  basis: Extract<CostBasis, 'exact' | 'api_equivalent'>;
  streamRequested: boolean;
  /** The raw stop reason the answer carries (a tool-call answer has its own, e.g. `tool_use`). */
  stopReason: string;
}

/** Check the stored record of a model call with a fixed answer (text or tool call), field by field. */
export function expectModelCallRecord(record: CallRecord | undefined, exchange: RecordedRequest, expected: ModelCallExpectation): void {
  const label = `record of ${exchange.method} ${exchange.target} (${exchange.answer.endpoint})`;
  expect(record, `${label}: no record found`).toBeDefined();
  if (!record) return;
  const field = (name: string) => `${label}: ${name}`;

  expect.soft(record.tool, field('tool')).toBe(expected.tool);
  expect.soft(record.tool_version, field('tool_version')).toBe(expected.toolVersion);
  expect.soft(record.user_agent, field('user_agent')).toBe(exchange.headers['user-agent'] ?? null);
  expect.soft(record.session_id, field('session_id')).toBe(expected.sessionId);
  expect.soft(record.route, field('route')).toBe(expected.route);
  expect.soft(record.provider, field('provider')).toBe(expected.provider);
  expect.soft(record.api_shape, field('api_shape')).toBe(expected.apiShape);
  expect.soft(record.path, field('path')).toBe(routeRelativePath(expected.route, exchange.path));

  expect.soft(record.model_requested, field('model_requested')).toBe(expected.modelRequested);
  expect.soft(record.model_answered, field('model_answered')).toBe(ANSWER_MODELS[expected.family]);
  expect.soft(record.response_id, field('response_id')).toBe(exchange.answer.responseId);
  expect.soft(record.upstream_request_id, field('upstream_request_id')).toBe(exchange.answer.upstreamRequestId);

  expect.soft(record.stream_requested, field('stream_requested')).toBe(expected.streamRequested);
  expect.soft(record.streaming, field('streaming')).toBe(exchange.answer.stream !== null);
  expect.soft(record.stream_format, field('stream_format')).toBe(exchange.answer.stream);
  expect.soft(record.http_status, field('http_status')).toBe(exchange.transport === 'websocket-message' ? 101 : 200);
  expect.soft(record.status, field('status')).toBe('success');
  expect.soft(record.error, field('error')).toBeNull();
  expect.soft(record.billable, field('billable')).toBe(true);
  expect.soft(record.stop_reason, field('stop_reason')).toBe(expected.stopReason);
  const toolCall = exchange.answer.kind === 'tool_call';
  expect.soft(record.stop_reason_normalized, field('stop_reason_normalized')).toBe(toolCall ? 'tool_use' : 'end');
  expect.soft(record.tool_calls, field('tool_calls')).toBe(toolCall ? 1 : 0);

  expect.soft(record.usage, field('usage')).toEqual(expectedUsage(expected.family));
  const cost = expectedCost(expected.family);
  expect.soft(record.cost.basis, field('cost.basis')).toBe(expected.basis);
  expect.soft(record.cost.price_key, field('cost.price_key')).toBe(cost.price_key);
  expect.soft(record.cost.usd, field('cost.usd')).toBeCloseTo(cost.usd, 9);
  expect.soft(record.cost.breakdown, field('cost.breakdown')).toEqual(cost.breakdown);

  expect.soft(record.timing.total_ms, field('timing.total_ms')).toBeGreaterThanOrEqual(0);
  if (exchange.answer.stream !== null) {
    expect.soft(record.timing.ttft_ms, field('timing.ttft_ms of a stream')).not.toBeNull();
  } else {
    expect.soft(record.timing.ttft_ms, field('timing.ttft_ms without a stream')).toBeNull();
  }
  if (exchange.transport === 'http') {
    expect.soft(record.method, field('method')).toBe(exchange.method);
    expect.soft(record.request_bytes, field('request_bytes')).toBe(exchange.body.length);
    expect.soft(record.response_bytes, field('response_bytes')).toBe(exchange.answer.responseBytes);
  }
}

/**
 * Check that every connection the client tried to open around its base URL went to one of `allowedHosts`
 * (`host:port`, the side traffic a client sends by design), so no model call bypassed the proxy.
 */
export function expectBypassOnlyTo(run: ScenarioRun, allowedHosts: string[]): void {
  const targets = run.proxyAttempts.map((attempt) => attempt.target);
  expect(
    targets.filter((target) => !allowedHosts.includes(target)),
    'connections around the base URL',
  ).toEqual([]);
}

/** The target the fake provider should see for a target the client sent to `/r/{token}/{route}/…`. */
function upstreamTarget(sentTarget: string): string {
  const match = /^\/r\/[^/]+\/([^/?]+)(.*)$/.exec(sentTarget);
  if (!match) return sentTarget;
  const [, route = '', rest = ''] = match;
  return `${ROUTE_BASE_PATHS[route] ?? ''}${rest}`;
}

/** Header name (lowercase) and value pairs in arrival order, without the skipped names. */
function endToEndHeaders(rawHeaders: string[], skipped: Set<string>): [string, string][] {
  const pairs: [string, string][] = [];
  for (let index = 0; index < rawHeaders.length; index += 2) {
    const name = (rawHeaders[index] as string).toLowerCase();
    if (!skipped.has(name)) pairs.push([name, rawHeaders[index + 1] as string]);
  }
  return pairs.sort(([a], [b]) => a.localeCompare(b));
}

function sameBytes(a: Uint8Array, b: Uint8Array): boolean {
  return a.length === b.length && Buffer.from(a).equals(Buffer.from(b));
}

function describeRequest(request: RecordedRequest | TappedRequest): string {
  return `${request.method} ${request.target}`;
}
