import { type CallBodies, type CallRecord, createRouteRegistry } from '@tokenwise/core';
import {
  clientAbortBytes,
  expectRecordBodies,
  expectRecordCaller,
  expectRecordFields,
  expectRecordTimings,
  REPLAY_TIME_SCALE,
  type ReplayedRequest,
  startReplayUpstream,
  type WireFixture,
} from '@tokenwise/testkit';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type ClientResponse, headerPairs, sendRequest, startTestProxy, TEST_AUTHORIZATION } from '../proxy-harness.js';

/**
 * The checks every replay of the llm-wire corpora through the Node proxy must pass, whatever stores the
 * record: an in-memory sink, or a store read back through the API. The client must receive the upstream's
 * bytes and the upstream the client's, and the record and its kept bodies must match `expected.json`.
 */

/** Header fields each hop sets for itself, left out where headers are compared. */
export const HOP_FIELDS: ReadonlySet<string> = new Set(['host', 'connection', 'keep-alive', 'transfer-encoding', 'content-length']);

/** One replayed case as the client, the upstream and the record holder saw it. */
export interface ReplayExchange {
  response: ClientResponse;
  /** Requests the upstream received for this case. */
  upstreamRequests: ReplayedRequest[];
  record: CallRecord;
  bodies: CallBodies | null;
  /** The workspace and device of the route token the case was sent with. */
  caller: { workspaceId: string; deviceId: string | null };
}

/**
 * Start `run` for every case at once before the tests and give each test its case's result. A case that
 * failed fails only its own tests, with the error of the run.
 */
export function replayAll(
  fixtures: readonly WireFixture[],
  run: (fixture: WireFixture) => Promise<ReplayExchange>,
): (fixture: WireFixture) => Promise<ReplayExchange> {
  const exchanges = new Map<WireFixture, Promise<ReplayExchange>>();

  beforeAll(() => {
    for (const fixture of fixtures) {
      const exchange = run(fixture);
      // Each test awaits its own exchange. This handler only keeps a failed one from being reported as unhandled.
      exchange.catch(() => {});
      exchanges.set(fixture, exchange);
    }
  });

  afterAll(async () => {
    await Promise.allSettled(exchanges.values());
  });

  return (fixture) => {
    const exchange = exchanges.get(fixture);
    if (!exchange) throw new Error(`no replay ran for ${fixture.corpus}/${fixture.name}`);
    return exchange;
  };
}

/**
 * Replay one case through its own upstream and an in-process proxy into an in-memory sink, so cases can
 * run side by side. The result is the record as the capture produced it, and its bodies decoded from the
 * raw bytes the proxy hands to its sink.
 */
export async function replayThroughMemorySink(fixture: WireFixture): Promise<ReplayExchange> {
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
    const { record, bodies } = await proxy.sink.next();
    await upstream.settled();
    return {
      response,
      upstreamRequests: upstream.requests(),
      record,
      bodies,
      caller: { workspaceId: TEST_AUTHORIZATION.workspaceId, deviceId: TEST_AUTHORIZATION.deviceId },
    };
  } finally {
    await proxy.close();
    await upstream.close();
  }
}

/**
 * Copy a record with the values that differ between two replays of the same case replaced by their kind:
 * ids, the start time and each timing. What remains must survive a store round trip unchanged, including
 * which optional fields are present.
 */
export function replayInvariantRecord(record: CallRecord): Record<string, unknown> {
  const kind = (value: unknown) => (value === null ? null : typeof value);
  return {
    ...record,
    id: kind(record.id),
    started_at: kind(record.started_at),
    workspace_id: kind(record.workspace_id),
    device_id: kind(record.device_id),
    timing: Object.fromEntries(Object.entries(record.timing).map(([name, value]) => [name, kind(value)])),
  };
}

/**
 * Declare the checks of every case, one `describe` per case named `corpus/case`. With `capturedOf`, the
 * record and bodies must also equal those the capture produced for the same case (from
 * `replayThroughMemorySink`), so nothing is lost or changed on the way through a store.
 */
export function describeReplayChecks(
  fixtures: readonly WireFixture[],
  exchangeOf: (fixture: WireFixture) => Promise<ReplayExchange>,
  capturedOf?: (fixture: WireFixture) => Promise<ReplayExchange>,
): void {
  it('finds the fixture corpus', () => {
    expect(fixtures.length).toBeGreaterThan(0);
  });

  describe.each(fixtures.map((fixture) => [`${fixture.corpus}/${fixture.name}`, fixture] as const))('%s', (_name, fixture) => {
    const exchange = () => exchangeOf(fixture);

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
      const { record, caller } = await exchange();
      expectRecordCaller(record, fixture, caller);
    });

    it('records every field of expected.json', async () => {
      const { record } = await exchange();
      expectRecordFields(record, fixture);
    });

    it('records timings on the replay clock', async () => {
      const { record } = await exchange();
      expectRecordTimings(record, fixture);
    });

    it('keeps the bodies and headers without secrets', async () => {
      const { bodies } = await exchange();
      expectRecordBodies(bodies, fixture, { hopHeaders: HOP_FIELDS });
    });

    if (capturedOf) {
      it('stores the record as captured', async () => {
        const [{ record }, captured] = await Promise.all([exchange(), capturedOf(fixture)]);
        expect(replayInvariantRecord(record)).toEqual(replayInvariantRecord(captured.record));
      });

      it('stores the bodies as captured', async () => {
        const [{ bodies }, captured] = await Promise.all([exchange(), capturedOf(fixture)]);
        const withoutHops = (headers: Record<string, string>) => Object.entries(headers).filter(([name]) => !HOP_FIELDS.has(name));
        expect(bodies?.request).toEqual(captured.bodies?.request);
        expect(bodies?.response).toEqual(captured.bodies?.response);
        expect(withoutHops(bodies?.request_headers ?? {})).toEqual(withoutHops(captured.bodies?.request_headers ?? {}));
        expect(withoutHops(bodies?.response_headers ?? {})).toEqual(withoutHops(captured.bodies?.response_headers ?? {}));
      });
    }
  });
}
