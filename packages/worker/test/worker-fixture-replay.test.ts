import { brotliDecompressSync, gunzipSync } from 'node:zlib';
import { type CallBodies, type CallRecord, createRouteRegistry } from '@tokenwise/core';
import {
  clientAbortBytes,
  expectRecordBodies,
  expectRecordCaller,
  expectRecordFields,
  expectRecordTimings,
  loadAllWireFixtures,
  REPLAY_TIME_SCALE,
  type ReplayedRequest,
  type ReplayUpstream,
  startReplayUpstream,
  type WireFixture,
} from '@tokenwise/testkit';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { replayAll, replayInvariantRecord, replayThroughMemorySink } from '../../server/test/helpers/fixture-replay-checks.js';
import { DEFAULT_WORKER_BODY_CAP_BYTES } from '../src/worker-config.js';
import { type ClientResponse, sendRequest, sortedHeaderPairs } from './helpers/http-client.js';
import { INGEST_SECRET, type IngestServer, startIngestServer } from './helpers/ingest-server.js';
import { describeWithWorkerd, type RunningWorker, startWorker } from './helpers/workerd.js';

/**
 * Every llm-wire case of both corpora, replayed from the fake upstream through the Worker in workerd,
 * with a real `tokenwise serve` receiving the records through `/api/v1/ingest`. The cases run one after
 * another through one Worker, and each record and its kept bodies are read back from the server's API
 * (`GET /api/v1/calls/{id}`), so the whole path (capture in workerd, batch, ingest, store) is under test.
 * The checks are those of the Node proxy's replay, except where the Workers runtime itself differs, as
 * noted at each check.
 */

/** Fields each hop sets for itself. */
const HOP_FIELDS = new Set(['host', 'connection', 'keep-alive', 'transfer-encoding', 'content-length']);
/**
 * Request fields the Workers runtime sets on every subrequest: `cf-worker` names the Worker's zone, and
 * `accept-encoding` is replaced with the encodings Cloudflare supports (`br, gzip`).
 */
const RUNTIME_REQUEST_FIELDS = new Set([...HOP_FIELDS, 'cf-worker', 'accept-encoding']);
/** The runtime adds `date` to every response it sends. */
const RUNTIME_RESPONSE_FIELDS = new Set([...HOP_FIELDS, 'date']);

interface Exchange {
  response: ClientResponse;
  upstreamRequest: ReplayedRequest;
  record: CallRecord;
  bodies: CallBodies | null;
}

/** The route token every case is sent with, as `POST /api/v1/route-tokens` returned it. */
interface CaseToken {
  token: string;
  workspace_id: string;
  device_id: string;
}

/**
 * NOTE: a client that hangs up while the upstream sends nothing is not noticed by the Worker under
 * workerd 1.20260426 through Miniflare, not even with the `enable_request_signal` compatibility flag: the
 * upstream request stays open until the upstream ends it, and the call's record is not sent. The Node
 * proxy records such a call as `aborted`. Those cases are left out here.
 */
function isClientAbort(fixture: WireFixture): boolean {
  return clientAbortBytes(fixture) !== undefined;
}

const fixtures = loadAllWireFixtures().filter((fixture) => !isClientAbort(fixture));
const exchanges = new Map<WireFixture, Exchange | Error>();

describeWithWorkerd('llm-wire replay through the Worker', () => {
  const capturedOf = replayAll(fixtures, replayThroughMemorySink);
  let server: IngestServer;
  let upstream: ReplayUpstream;
  let worker: RunningWorker;
  let current: WireFixture | undefined;
  let caseToken: CaseToken;

  beforeAll(async () => {
    server = await startIngestServer();
    const created = await server.api('/api/v1/route-tokens', { method: 'POST', body: JSON.stringify({ name: 'llm-wire replay' }) });
    caseToken = (await created.json()) as CaseToken;
    upstream = await startReplayUpstream({ fixture: () => current, timeScale: REPLAY_TIME_SCALE });
    // Every route the corpus uses goes to the replay upstream, keeping the route's base path.
    const bindings: Record<string, string> = { TOKENWISE_SERVER_URL: server.server.url, TOKENWISE_INGEST_SECRET: INGEST_SECRET };
    for (const route of new Set(fixtures.map((fixture) => fixture.route))) {
      const basePath = new URL(createRouteRegistry().get(route)!.baseUrl).pathname.replace(/\/+$/, '');
      bindings[`TOKENWISE_UPSTREAM_${route.toUpperCase().replaceAll('-', '_')}`] = `${upstream.url}${basePath}`;
    }
    worker = await startWorker(bindings);

    for (const fixture of fixtures) {
      current = fixture;
      try {
        exchanges.set(fixture, await runExchange(fixture));
      } catch (error) {
        exchanges.set(fixture, error instanceof Error ? error : new Error(String(error)));
      }
    }
  }, 180_000);

  afterAll(async () => {
    await worker?.dispose();
    await upstream?.close();
    await server?.dispose();
  });

  async function runExchange(fixture: WireFixture): Promise<Exchange> {
    const before = (await server.calls()).length;
    const requestsBefore = upstream.requests().length;
    const response = await sendRequest(worker.url, {
      method: fixture.request.method,
      path: `/r/${caseToken.token}/${fixture.route}${fixture.routeRest}`,
      headers: fixture.request.headers,
      body: fixture.requestBody,
    });
    const stored = await server.waitForCalls(before + 1);
    await upstream.settled();
    const upstreamRequest = upstream.requests()[requestsBefore];
    if (!upstreamRequest) throw new Error(`the request for ${fixture.name} never reached the upstream`);
    const { call, bodies } = await server.call(stored[before]!.id);
    return { response, upstreamRequest, record: call, bodies };
  }

  function exchangeOf(fixture: WireFixture): Exchange {
    const exchange = exchanges.get(fixture);
    if (exchange instanceof Error) throw exchange;
    if (!exchange) throw new Error(`no exchange ran for ${fixture.name}`);
    return exchange;
  }

  it('finds the fixture corpus', () => {
    expect(fixtures.length).toBeGreaterThan(0);
  });

  for (const fixture of fixtures) {
    const name = `${fixture.corpus}/${fixture.name}`;

    it(`${name}: forwards method, path, headers and body`, () => {
      const { upstreamRequest } = exchangeOf(fixture);
      expect(upstreamRequest.method).toBe(fixture.request.method);
      expect(upstreamRequest.target).toBe(fixture.request.path);
      const sent = sortedHeaderPairs(Object.entries(fixture.request.headers).flat(), RUNTIME_REQUEST_FIELDS);
      expect(sortedHeaderPairs(upstreamRequest.rawHeaders, RUNTIME_REQUEST_FIELDS)).toEqual(sent);
      expect(Buffer.from(upstreamRequest.body).equals(Buffer.from(fixture.requestBody ?? new Uint8Array()))).toBe(true);
    });

    it(`${name}: returns the upstream status, headers and body`, () => {
      const { response } = exchangeOf(fixture);
      expect(response.status).toBe(fixture.responseMeta.status);

      // NOTE: workerd's HTTP front end sent the Brotli case to this client as gzip, although the Worker
      // returned the upstream's bytes with `encodeBody: "manual"`. Cloudflare's edge may likewise
      // re-compress between itself and the client, so a re-encoded body is compared after decoding.
      const sentEncoding = fixture.responseMeta.headers['content-encoding'];
      const reencoded = sentEncoding !== undefined && response.headers['content-encoding'] !== sentEncoding;
      const ignored = reencoded ? new Set([...RUNTIME_RESPONSE_FIELDS, 'content-encoding']) : RUNTIME_RESPONSE_FIELDS;
      const sent = sortedHeaderPairs(Object.entries(fixture.responseMeta.headers).flat(), ignored);
      expect(sortedHeaderPairs(response.rawHeaders, ignored)).toEqual(sent);
      if (reencoded) {
        expect(decode(response.body, String(response.headers['content-encoding']))).toEqual(
          decode(Buffer.from(fixture.responseBody), sentEncoding),
        );
        return;
      }

      if (fixture.responseMeta.headers['content-length'] !== undefined) {
        expect(response.headers['content-length']).toBe(fixture.responseMeta.headers['content-length']);
      }
      expect(response.body.length).toBe(fixture.responseBody.length);
      expect(response.body.equals(Buffer.from(fixture.responseBody))).toBe(true);
    });

    it(`${name}: ends the response as the upstream did`, () => {
      const { response, upstreamRequest } = exchangeOf(fixture);
      expect(upstreamRequest.outcome).toBe(fixture.responseMeta.ends);
      if (fixture.responseMeta.ends === 'complete') expect(response.complete).toBe(true);
      // A body of declared length that breaks off reaches the client short. A chunked one may reach it as a
      // clean end, because workerd ends the chunked encoding when the stream fails; the record says truncated.
      if (fixture.responseMeta.ends !== 'complete' && fixture.responseMeta.headers['content-length'] !== undefined) {
        expect(response.complete).toBe(false);
      }
    });

    it(`${name}: records the call under the route token`, () => {
      expectRecordCaller(exchangeOf(fixture).record, fixture, { workspaceId: caseToken.workspace_id, deviceId: caseToken.device_id });
    });

    it(`${name}: records every field of expected.json`, () => {
      expectRecordFields(exchangeOf(fixture).record, fixture);
    });

    it(`${name}: records timings on the replay clock`, () => {
      expectRecordTimings(exchangeOf(fixture).record, fixture);
    });

    it(`${name}: records what the Node proxy records`, async () => {
      // Only the Node proxy measures its own time before and after the upstream exchange.
      const { proxy_before_ms: _before, proxy_after_ms: _after, ...nodeTiming } = (await capturedOf(fixture)).record.timing;
      const node = replayInvariantRecord({ ...(await capturedOf(fixture)).record, timing: nodeTiming });
      expect(replayInvariantRecord(exchangeOf(fixture).record)).toEqual(node);
    });

    it(`${name}: keeps the bodies and headers without secrets`, () => {
      // The capture gets the request as the runtime passes it to the Worker, with `accept-encoding` replaced.
      expectRecordBodies(exchangeOf(fixture).bodies, fixture, {
        bodyCapBytes: DEFAULT_WORKER_BODY_CAP_BYTES,
        hopHeaders: RUNTIME_REQUEST_FIELDS,
      });
    });
  }
});

function decode(body: Buffer, encoding: string): Buffer {
  if (encoding === 'br') return brotliDecompressSync(body);
  if (encoding === 'gzip') return gunzipSync(body);
  throw new Error(`no decoder for content-encoding "${encoding}" in this test`);
}
