/**
 * One end-to-end scenario: a fresh `tokenwise serve` in front of the fake provider, a recording tap in
 * front of the proxy, one client run, then everything each hop saw.
 *
 *   client ──► tap (records what the client sent) ──► tokenwise serve ──► fake provider (records what arrived)
 */
import { join } from 'node:path';
import type { CallRecord } from '@tokenwise/core';
import type { ProcessResult, ProxyAttempt, RecordedRequest, Sandbox, SandboxFakeProvider, TappedRequest } from '@tokenwise/testkit';
import { startTokenwise, type TokenwiseServer } from './tokenwise.js';

export interface ScenarioRun {
  client: ProcessResult;
  /** Requests as the client sent them, before the proxy. */
  sent: TappedRequest[];
  /** Requests as they reached the fake provider, with what it answered. */
  upstream: RecordedRequest[];
  /** Every stored call, from `tokenwise calls --json`. */
  records: CallRecord[];
  /** Connections the client tried to open around its base URL during this scenario. */
  proxyAttempts: ProxyAttempt[];
  /** The route token the client's base URL carried; it must never reach the upstream. */
  token: string;
  /** What `tokenwise serve` printed. */
  serveOutput: string;
}

/** Upstream base path of each route when it points at the fake provider (see `startTokenwise`). */
export const ROUTE_BASE_PATHS: Record<string, string> = { chatgpt: '/backend-api/codex' };

/**
 * Strip the route's base path from an upstream path: records keep the path the client sent after
 * `/r/{token}/{route}`, which differs from the upstream path only on routes whose base URL has a path.
 */
export function routeRelativePath(route: string, upstreamPath: string): string {
  const base = ROUTE_BASE_PATHS[route] ?? '';
  return upstreamPath.startsWith(base) ? upstreamPath.slice(base.length) : upstreamPath;
}

/** Builds `…/r/{token}/{route}` base URLs on the tap in front of the proxy. */
export type BaseUrlFor = (route: string) => string;

let scenarioCount = 0;

export async function runThroughProxy(
  sandbox: Sandbox,
  fake: SandboxFakeProvider,
  runClient: (baseUrlFor: BaseUrlFor, server: TokenwiseServer) => Promise<ProcessResult>,
): Promise<ScenarioRun> {
  await fake.clear();
  const attemptsBefore = (await sandbox.proxyAttempts()).length;
  const dataDir = join(sandbox.scratchDir, `data-${++scenarioCount}`);

  const server = await startTokenwise(sandbox, fake, dataDir);
  const tap = await sandbox.startTap(server.url);
  try {
    const client = await runClient((route) => `${tap.url}/r/${server.token}/${route}`, server);
    const upstream = await fake.requests();
    const sent = await tap.requests();
    // One record per HTTP exchange and per WebSocket response.create; the upgrade itself is not a call.
    const expectedRecords = upstream.filter((request) => request.transport !== 'websocket-upgrade').length;
    const records = await server.waitForCalls(expectedRecords);
    const proxyAttempts = (await sandbox.proxyAttempts()).slice(attemptsBefore);
    const run = { client, sent, upstream, records, proxyAttempts, token: server.token, serveOutput: await server.output() };
    if (process.env.TOKENWISE_E2E_DEBUG === '1') printRun(run);
    return run;
  } finally {
    await tap.close();
    await server.stop();
  }
}

/** Upstream exchanges that were model calls (text, tool-call or prewarm answers), in order. */
export function modelExchanges(run: ScenarioRun): RecordedRequest[] {
  return run.upstream.filter(
    (request) => request.answer.kind === 'text' || request.answer.kind === 'tool_call' || request.answer.kind === 'prewarm',
  );
}

/**
 * Find the record of one upstream exchange by the answer's response id. Without a match, take the record
 * at the same position among the records with the same upstream path, so that a missing response id
 * fails on that field instead of hiding every other field.
 */
export function recordFor(run: ScenarioRun, exchange: RecordedRequest): CallRecord | undefined {
  const responseId = exchange.answer.responseId;
  if (responseId !== null) {
    const byId = run.records.find((record) => record.response_id === responseId);
    if (byId) return byId;
  }
  const samePath = run.upstream.filter((request) => request.transport !== 'websocket-upgrade' && request.path === exchange.path);
  const position = samePath.indexOf(exchange);
  const recordPaths = new Set([exchange.path, ...Object.keys(ROUTE_BASE_PATHS).map((route) => routeRelativePath(route, exchange.path))]);
  const recordsOnPath = run.records
    .filter((record) => recordPaths.has(record.path))
    .sort((a, b) => a.started_at.localeCompare(b.started_at));
  return recordsOnPath[position];
}

/** Parse the request body as JSON (for a WebSocket message, the message). */
export function bodyJson(request: RecordedRequest): Record<string, unknown> {
  if (request.bodyText === null) throw new Error(`the body of ${request.method} ${request.target} could not be decoded`);
  return JSON.parse(request.bodyText) as Record<string, unknown>;
}

/** Value of a header as the client sent it to the tap (case-insensitive name), or undefined. */
export function sentHeader(request: TappedRequest, name: string): string | undefined {
  for (let index = 0; index < request.rawHeaders.length; index += 2) {
    if (request.rawHeaders[index]?.toLowerCase() === name) return request.rawHeaders[index + 1];
  }
  return undefined;
}

/** Print what each hop saw, for `TOKENWISE_E2E_DEBUG=1` runs. */
function printRun(run: ScenarioRun): void {
  const lines = [
    `client exit ${run.client.exitCode} in ${run.client.durationMs} ms; stdout: ${JSON.stringify(run.client.stdout.slice(0, 500))}`,
    ...run.upstream.map(
      (request) => `upstream ${request.transport} ${request.method} ${request.target} -> ${JSON.stringify(request.answer)}`,
    ),
    ...run.records.map((record) => `record ${JSON.stringify(record)}`),
    ...run.proxyAttempts.map((attempt) => `bypass attempt ${attempt.method} ${attempt.target}`),
    `client stderr: ${run.client.stderr.slice(-2000)}`,
  ];
  console.log(lines.join('\n'));
}
