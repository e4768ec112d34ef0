import { createRouteRegistry } from '@tokenwise/core';
import {
  clientAbortBytes,
  expectRecordFields,
  expectRecordTimings,
  loadAllWireFixtures,
  REPLAY_TIME_SCALE,
  type ReplayedRequest,
  startReplayUpstream,
  type WireFixture,
} from '@tokenwise/testkit';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type ClientResponse, headerPairs, type SinkEntry, sendRequest, startTestProxy, TEST_AUTHORIZATION } from './proxy-harness.js';

/**
 * Every llm-wire case of both corpora, replayed from the fake upstream through the real proxy on real
 * sockets. New folders are picked up without code changes. The client must receive the upstream's bytes
 * and the upstream the client's, and the record must hold every field of `expected.json`.
 */

/** Request fields the proxy itself is expected to set or leave out on the upstream hop. */
const HOP_FIELDS = new Set(['host', 'connection', 'keep-alive', 'transfer-encoding', 'content-length']);

interface Exchange {
  response: ClientResponse;
  upstreamRequests: ReplayedRequest[];
  entry: SinkEntry;
}

const fixtures = loadAllWireFixtures();
const exchanges = new Map<WireFixture, Promise<Exchange>>();

/** Replay one case through its own upstream and proxy, so cases can run side by side. */
async function runExchange(fixture: WireFixture): Promise<Exchange> {
  const upstream = await startReplayUpstream({ fixture, timeScale: REPLAY_TIME_SCALE });
  // The override keeps the route's base path (the ChatGPT backend's `/backend-api/codex`), only the origin changes.
  const basePath = new URL(createRouteRegistry().get(fixture.route)!.baseUrl).pathname.replace(/\/+$/, '');
  const proxy = await startTestProxy({ upstreams: { [fixture.route]: `${upstream.url}${basePath}` } });
  try {
    const response = await sendRequest(proxy.port, {
      method: fixture.request.method,
      path: proxy.pathFor(fixture.route, fixture.routeRest),
      headers: fixture.request.headers,
      body: fixture.requestBody,
      abortAfterBytes: clientAbortBytes(fixture),
    });
    const entry = await proxy.sink.next();
    await upstream.settled();
    return { response, upstreamRequests: upstream.requests(), entry };
  } finally {
    await proxy.close();
    await upstream.close();
  }
}

beforeAll(() => {
  for (const fixture of fixtures) {
    const exchange = runExchange(fixture);
    // Each test awaits its own exchange; this only keeps a failed one from being reported as unhandled.
    exchange.catch(() => {});
    exchanges.set(fixture, exchange);
  }
});

afterAll(async () => {
  await Promise.allSettled(exchanges.values());
});

it('finds the fixture corpus', () => {
  expect(fixtures.length).toBeGreaterThan(0);
});

describe.each(fixtures.map((fixture) => [`${fixture.corpus}/${fixture.name}`, fixture] as const))('%s', (_name, fixture) => {
  const exchange = () => exchanges.get(fixture)!;

  it('forwards method, path and query unchanged', async () => {
    const { upstreamRequests } = await exchange();
    expect(upstreamRequests).toHaveLength(1);
    expect(upstreamRequests[0]!.method).toBe(fixture.request.method);
    expect(upstreamRequests[0]!.target).toBe(fixture.request.path);
  });

  it('forwards request headers unchanged', async () => {
    const { upstreamRequests } = await exchange();
    const received = headerPairs(upstreamRequests[0]!.rawHeaders);
    const endToEnd = received.filter(([name]) => !HOP_FIELDS.has(name));
    const sent = Object.entries(fixture.request.headers).filter(([name]) => !HOP_FIELDS.has(name));
    expect(endToEnd).toEqual(sent);
  });

  it('forwards the request body byte for byte', async () => {
    const { upstreamRequests } = await exchange();
    expect(Buffer.from(upstreamRequests[0]!.body).equals(Buffer.from(fixture.requestBody ?? new Uint8Array()))).toBe(true);
  });

  it('returns the upstream status and headers', async () => {
    const { response } = await exchange();
    expect(response.status).toBe(fixture.responseMeta.status);
    const received = headerPairs(response.rawHeaders).filter(([name]) => !HOP_FIELDS.has(name));
    const sent = Object.entries(fixture.responseMeta.headers).filter(([name]) => !HOP_FIELDS.has(name));
    expect(received).toEqual(sent);
    if (fixture.responseMeta.headers['content-length'] !== undefined) {
      expect(response.headers['content-length']).toBe(fixture.responseMeta.headers['content-length']);
    }
  });

  it('returns the upstream body byte for byte', async () => {
    const { response } = await exchange();
    expect(response.body.length).toBe(fixture.responseBody.length);
    expect(response.body.equals(Buffer.from(fixture.responseBody))).toBe(true);
  });

  it(fixture.responseMeta.ends === 'complete' ? 'ends the response cleanly' : 'ends without a clean end', async () => {
    const { response } = await exchange();
    expect(response.complete).toBe(fixture.responseMeta.ends === 'complete');
  });

  it(
    clientAbortBytes(fixture) === undefined ? 'plays the upstream answer to its end' : 'cancels the upstream on client hang-up',
    async () => {
      const { upstreamRequests } = await exchange();
      const expected = clientAbortBytes(fixture) === undefined ? fixture.responseMeta.ends : 'client_closed';
      expect(upstreamRequests[0]!.outcome).toBe(expected);
    },
  );

  it('records the call under its route and token', async () => {
    const { entry } = await exchange();
    expect(entry.record.route).toBe(fixture.route);
    expect(entry.record.workspace_id).toBe(TEST_AUTHORIZATION.workspaceId);
    expect(entry.record.device_id).toBe(TEST_AUTHORIZATION.deviceId);
    expect(entry.record.method).toBe(fixture.request.method);
    expect(entry.record.request_bytes).toBe(fixture.requestBody?.length ?? 0);
    expect(entry.record.response_bytes).toBe(fixture.responseBody.length);
  });

  it('records every field of expected.json', async () => {
    const { record } = (await exchange()).entry;
    expectRecordFields(record, fixture);
  });

  it('records timings on the replay clock', async () => {
    const { record } = (await exchange()).entry;
    expectRecordTimings(record, fixture);
  });
});
