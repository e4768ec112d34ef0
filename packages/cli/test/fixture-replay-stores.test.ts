import { createHash } from 'node:crypto';
import { type CallBodies, type CallRecord, createRouteRegistry } from '@tokenwise/core';
import {
  clientAbortBytes,
  loadAllWireFixtures,
  REPLAY_TIME_SCALE,
  type ReplayedRequest,
  type ReplayUpstream,
  startReplayUpstream,
  type WireFixture,
} from '@tokenwise/testkit';
import { afterAll, beforeAll, describe, expect, vi } from 'vitest';
import {
  describeReplayChecks,
  type ReplayExchange,
  replayAll,
  replayThroughMemorySink,
} from '../../server/test/helpers/fixture-replay-checks.js';
import { sendRequest } from '../../server/test/proxy-harness.js';
import { createTestSchema, describeWithPostgres, type TestSchema } from '../../storage/test/postgres-test-database.js';
import { type ServeRoleProcess, startServeRole } from './helpers/cli-process.js';

/**
 * Every llm-wire case of both corpora, replayed end to end through `tokenwise serve` processes, with each
 * record and its kept bodies read back from the store through `GET /api/v1/calls/{id}`. The checks are
 * those of the in-memory replay (packages/server/test/fixture-replay.test.ts), run once per setup: one
 * server on SQLite, one on PostgreSQL, and three `--role proxy` processes with one `--role app` on one
 * PostgreSQL schema, the cases spread round-robin over the proxies. Each setup starts once and replays
 * all cases at once on the scaled replay clock.
 */

const fixtures = loadAllWireFixtures();
/** What the capture itself produces for each case, to compare each store's copy with. */
const capturedOf = replayAll(fixtures, replayThroughMemorySink);

/** How long a record may take to reach the store and show in the API, in ms. */
const RECORD_WAIT_MS = 20_000;
/**
 * Request bodies above this size replay after all other cases, on their own: parsing and packing
 * megabytes of body keeps the 2 cores of a CI machine busy, which would delay every other case's clock.
 */
const HEAVY_REQUEST_BYTES = 1024 * 1024;

/** The servers of one setup: the one that serves the API, and the ones the calls go through. */
interface Deployment {
  app: ServeRoleProcess;
  proxies: ServeRoleProcess[];
}

/** A route token created for one case, so the case's record can be found by its device. */
interface CaseToken {
  token: string;
  workspace_id: string;
  device_id: string;
}

/**
 * One replay upstream for every case and route. It responds to each request with the case whose recorded
 * method, target and body it has. Cases whose requests are identical cannot be told apart that way, so
 * `claim` lets only one of them be in flight at a time.
 */
interface CorpusUpstream {
  upstream: ReplayUpstream;
  /** `--upstream` flags sending every route of the corpus here, each keeping its base path. */
  upstreamArgs: string[];
  /** Run `replay` while the case owns its request key; returns what the upstream received for it. */
  claim<T>(fixture: WireFixture, replay: () => Promise<T>): Promise<{ result: T; received: ReplayedRequest[] }>;
}

function requestKey(method: string, target: string, body: Uint8Array | null): string {
  return createHash('sha256')
    .update(`${method}\n${target}\n`)
    .update(body ?? new Uint8Array())
    .digest('hex');
}

async function startCorpusUpstream(): Promise<CorpusUpstream> {
  const owners = new Map<string, { fixture: WireFixture; received: ReplayedRequest[] }>();
  const queues = new Map<string, Promise<unknown>>();
  const upstream = await startReplayUpstream({
    timeScale: REPLAY_TIME_SCALE,
    fixture: (request) => {
      const owner = owners.get(requestKey(request.method, request.target, request.body));
      // The upstream updates `outcome` on this object when the response ends, so the case reads the final value.
      owner?.received.push(request);
      return owner?.fixture;
    },
  });

  const upstreamArgs: string[] = [];
  for (const route of new Set(fixtures.map((fixture) => fixture.route))) {
    const basePath = new URL(createRouteRegistry().get(route)!.baseUrl).pathname.replace(/\/+$/, '');
    upstreamArgs.push('--upstream', `${route}=${upstream.url}${basePath}`);
  }

  return {
    upstream,
    upstreamArgs,
    async claim(fixture, replay) {
      const key = requestKey(fixture.request.method, fixture.request.path, fixture.requestBody);
      const previous = queues.get(key) ?? Promise.resolve();
      const turn = previous.then(async () => {
        const owner = { fixture, received: [] as ReplayedRequest[] };
        owners.set(key, owner);
        try {
          const result = await replay();
          // The response has ended for the client; wait until the upstream has seen it end too.
          await vi.waitFor(() => expect(owner.received.every((request) => request.outcome !== 'pending')).toBe(true), {
            timeout: RECORD_WAIT_MS,
          });
          return { result, received: owner.received };
        } finally {
          owners.delete(key);
        }
      });
      queues.set(
        key,
        turn.catch(() => {}),
      );
      return turn;
    },
  };
}

/**
 * Declare one setup: start it once with the corpus upstream's flags, replay every case through it and
 * run the shared checks on the records read back from its store. The store is read only once every case
 * has been replayed, so polling the API takes no time from the replays, whose timings are checked.
 */
function describeStoreReplay(
  start: (upstreamArgs: string[], launch: (args: string[]) => Promise<ServeRoleProcess>) => Promise<Deployment>,
  stop: () => Promise<void> = async () => {},
): void {
  let corpus: CorpusUpstream;
  let deployment: Deployment;
  // Every server `start` launched, so those of a setup that failed halfway are stopped too.
  const launched: ServeRoleProcess[] = [];
  const launch = async (args: string[]) => {
    const server = await startServeRole(args);
    launched.push(server);
    return server;
  };
  let apiToken: string;
  const caseTokens = new Map<WireFixture, CaseToken>();

  beforeAll(async () => {
    // The reference replays run in this process, so they finish first instead of slowing the timed replays.
    await Promise.allSettled(fixtures.map((fixture) => capturedOf(fixture)));
    corpus = await startCorpusUpstream();
    deployment = await start(corpus.upstreamArgs, launch);
    apiToken = await deployment.app.apiToken();
    // One route token, and so one device, per case: the case's record is the only call of its device.
    for (const fixture of fixtures) {
      const name = `${fixture.corpus}/${fixture.name}`;
      caseTokens.set(fixture, await api<CaseToken>('/api/v1/route-tokens', { method: 'POST', body: JSON.stringify({ name }) }));
    }
    await warmUp();
  });

  /**
   * Send one short streamed case through each proxy before the timed replays, so that no proxy compiles
   * and loads its capture, pricing and store code while timing a case, as a server that has run a while would.
   */
  async function warmUp(): Promise<void> {
    const fixture = fixtures
      .filter(
        (candidate) => candidate.expected.status === 'success' && candidate.expected.streaming && clientAbortBytes(candidate) === undefined,
      )
      .sort((a, b) => a.expected.timing.total_ms - b.expected.timing.total_ms)[0];
    if (!fixture) return;
    const { token } = await api<CaseToken>('/api/v1/route-tokens', { method: 'POST', body: JSON.stringify({ name: 'warm-up' }) });
    for (const proxy of deployment.proxies) {
      const { result: response } = await corpus.claim(fixture, () =>
        sendRequest(Number(new URL(proxy.url).port), {
          method: fixture.request.method,
          path: `/r/${token}/${fixture.route}${fixture.routeRest}`,
          headers: fixture.request.headers,
          body: fixture.requestBody,
        }),
      );
      expect(response.status, `warm-up call through ${proxy.url}`).toBe(fixture.responseMeta.status);
    }
  }

  // Registered before `replayAll`'s hooks, so it runs after every replay has settled.
  afterAll(async () => {
    const codes = await Promise.all(launched.map((server) => server.stop()));
    await corpus?.upstream.close();
    await stop();
    // A server that failed to stop cleanly is reported with the end of what it printed.
    const exits = launched.map((server, index) =>
      codes[index] === 0 ? 'exit 0' : `exit ${codes[index]}:\n${server.output().slice(-4000)}`,
    );
    expect(exits, 'exit codes of the servers').toEqual(launched.map(() => 'exit 0'));
  });

  async function api<T>(path: string, init: RequestInit = {}): Promise<T> {
    const response = await fetch(`${deployment.app.url}${path}`, {
      ...init,
      headers: { authorization: `Bearer ${apiToken}`, ...init.headers },
    });
    if (!response.ok) throw new Error(`${init.method ?? 'GET'} ${path} returned ${response.status}: ${await response.text()}`);
    return (await response.json()) as T;
  }

  const replays: Promise<unknown>[] = [];
  const lightReplays: Promise<unknown>[] = [];
  let everyRecordStored: Promise<void> | undefined;

  /** Wait until the store contains a record of every case that was replayed. */
  function waitForEveryRecord(): Promise<void> {
    everyRecordStored ??= vi.waitFor(
      async () => {
        // The warm-up calls are stored too, one per proxy.
        const expected = fixtures.length + deployment.proxies.length;
        const { calls } = await api<{ calls: CallRecord[] }>(`/api/v1/calls?limit=${expected}`);
        expect(calls.length, 'stored calls').toBeGreaterThanOrEqual(expected);
      },
      { timeout: RECORD_WAIT_MS, interval: 200 },
    );
    return everyRecordStored;
  }

  async function storedCall(deviceId: string): Promise<{ call: CallRecord; bodies: CallBodies | null }> {
    const { calls } = await api<{ calls: CallRecord[] }>(`/api/v1/calls?device_id=${encodeURIComponent(deviceId)}`);
    expect(calls, "calls of the case's device").toHaveLength(1);
    const found = await api<{ call: CallRecord; bodies: CallBodies | null }>(`/api/v1/calls/${encodeURIComponent(calls[0]!.id)}`);
    // The list and the detail read the same row, so they must agree on every field.
    expect(found.call, 'the listed record').toStrictEqual(calls[0]);
    return found;
  }

  async function runExchange(fixture: WireFixture): Promise<ReplayExchange> {
    const caseToken = caseTokens.get(fixture)!;
    const proxy = deployment.proxies[fixtures.indexOf(fixture) % deployment.proxies.length]!;
    const heavy = (fixture.requestBody?.length ?? 0) > HEAVY_REQUEST_BYTES;
    const replay = (async () => {
      if (heavy) {
        // Every case has started by the time this continues, so `lightReplays` is complete.
        await null;
        await Promise.allSettled(lightReplays);
      }
      return corpus.claim(fixture, () =>
        sendRequest(Number(new URL(proxy.url).port), {
          method: fixture.request.method,
          path: `/r/${caseToken.token}/${fixture.route}${fixture.routeRest}`,
          headers: fixture.request.headers,
          body: fixture.requestBody,
          abortAfterBytes: clientAbortBytes(fixture),
        }),
      );
    })();
    replays.push(replay);
    if (!heavy) lightReplays.push(replay);
    const { result: response, received } = await replay;

    // Every case starts its replay before any of them gets here, so `replays` is complete.
    await Promise.allSettled(replays);
    await waitForEveryRecord();
    const { call, bodies } = await storedCall(caseToken.device_id);
    return {
      response,
      upstreamRequests: received,
      record: call,
      bodies,
      caller: { workspaceId: caseToken.workspace_id, deviceId: caseToken.device_id },
    };
  }

  describeReplayChecks(fixtures, replayAll(fixtures, runExchange), capturedOf);
}

describe('one server on SQLite', () => {
  describeStoreReplay(async (upstreamArgs, launch) => {
    const server = await launch(upstreamArgs);
    return { app: server, proxies: [server] };
  });
});

describeWithPostgres('one server on PostgreSQL', () => {
  let schema: TestSchema;
  describeStoreReplay(
    async (upstreamArgs, launch) => {
      schema = await createTestSchema();
      const server = await launch(['--database-url', schema.url, ...upstreamArgs]);
      return { app: server, proxies: [server] };
    },
    async () => schema?.drop(),
  );
});

describeWithPostgres('three proxies and one app on PostgreSQL', () => {
  let schema: TestSchema;
  describeStoreReplay(
    async (upstreamArgs, launch) => {
      schema = await createTestSchema();
      const common = ['--database-url', schema.url, ...upstreamArgs];
      // The app migrates the empty schema first, so the proxies start on a ready one.
      const app = await launch([...common, '--role', 'app']);
      const proxies = await Promise.all([1, 2, 3].map(() => launch([...common, '--role', 'proxy'])));
      return { app, proxies };
    },
    async () => schema?.drop(),
  );
});
