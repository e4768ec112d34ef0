/**
 * A bounded soak of `tokenwise serve`: mixed streaming and non-streaming calls on three providers at a
 * fixed concurrency. No call may fail (the fake upstream causes no error), the server's resident set
 * must stay flat, its file descriptors must not leak, and every call must be stored exactly once. The
 * run lasts 30 s in `npm test`; set TOKENWISE_SOAK_SECONDS for a longer one (e.g. 300).
 */
import { readdirSync, readFileSync } from 'node:fs';
import { rm } from 'node:fs/promises';
import { join } from 'node:path';
import { SqliteStore } from '@tokenwise/storage';
import { FAKE_CREDENTIALS, type FakeProvider, makeTestDir, startFakeProvider } from '@tokenwise/testkit';
import { Agent, request } from 'undici';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type ServeProcess, startServe } from './helpers/cli-process.js';

const SOAK_SECONDS = Number(process.env.TOKENWISE_SOAK_SECONDS ?? '30');
const CONCURRENCY = 8;
/**
 * Pause of each loop between two calls, in ms. Without it the fake upstream responds faster than SQLite
 * stores bodies, and the sink's backlog fills its memory bound before spilling to the spool, which reads
 * as growth in a short run (about 100 MiB over the first 20 s at 1,100 calls/s on a 2-core machine, flat after that).
 */
const PAUSE_MS = 5;
/** Traffic before the baselines are taken, so start-up allocations and the connection pools are in place. */
const WARM_UP_MS = 5_000;
/** Growth of the resident set allowed between the first and the last quarter of the run, in bytes. */
const MAX_RSS_GROWTH_BYTES = 64 * 1024 * 1024;
/** File descriptors allowed above the warm baseline at the end, for sockets still closing. */
const FD_SLACK = CONCURRENCY;

interface Call {
  route: string;
  path: string;
  body: object;
  /** The response header the fake provider puts its request id in; null when it sends none. */
  idHeader: string | null;
}

const CALLS: Call[] = [
  {
    route: 'anthropic',
    path: '/v1/messages',
    body: { model: 'claude-sonnet-4-5', max_tokens: 32, messages: [{ role: 'user', content: 'say hi' }] },
    idHeader: 'request-id',
  },
  {
    route: 'anthropic',
    path: '/v1/messages',
    body: { model: 'claude-sonnet-4-5', max_tokens: 32, stream: true, messages: [{ role: 'user', content: 'say hi' }] },
    idHeader: 'request-id',
  },
  {
    route: 'openai',
    path: '/v1/chat/completions',
    body: { model: 'gpt-4o', messages: [{ role: 'user', content: 'say hi' }] },
    idHeader: 'x-request-id',
  },
  {
    route: 'openai',
    path: '/v1/chat/completions',
    body: { model: 'gpt-4o', stream: true, stream_options: { include_usage: true }, messages: [{ role: 'user', content: 'say hi' }] },
    idHeader: 'x-request-id',
  },
  { route: 'openai', path: '/v1/responses', body: { model: 'gpt-5', input: 'say hi', stream: true }, idHeader: 'x-request-id' },
  {
    route: 'gemini',
    path: '/v1beta/models/gemini-2.5-flash:generateContent',
    body: { contents: [{ role: 'user', parts: [{ text: 'say hi' }] }] },
    idHeader: null,
  },
  {
    route: 'gemini',
    path: '/v1beta/models/gemini-2.5-flash:streamGenerateContent?alt=sse',
    body: { contents: [{ role: 'user', parts: [{ text: 'say hi' }] }] },
    idHeader: null,
  },
];

let upstream: FakeProvider;
let server: ServeProcess;
let dataDir: string;
let keepDataDir = false;

beforeAll(async () => {
  upstream = await startFakeProvider();
  const created = await makeTestDir('tokenwise-soak-');
  dataDir = created.dir;
  keepDataDir = created.keep;
  const routes = ['anthropic', 'openai', 'gemini'].flatMap((route) => ['--upstream', `${route}=${upstream.url}`]);
  server = await startServe(['--port', '0', '--data-dir', dataDir, '--log-level', 'warn', ...routes]);
});

afterAll(async () => {
  await server?.stop();
  await upstream?.close();
  if (!keepDataDir) await rm(dataDir, { recursive: true, force: true });
});

const rssOf = (pid: number) => Number(/VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))?.[1] ?? 0) * 1024;
const fdsOf = (pid: number) => readdirSync(`/proc/${pid}/fd`).length;
const mean = (values: number[]) => values.reduce((sum, value) => sum + value, 0) / Math.max(1, values.length);
const mib = (bytes: number) => (bytes / 1024 / 1024).toFixed(1);

describe('soak', () => {
  it(`serves ${SOAK_SECONDS} s of mixed calls without errors or leaks`, { timeout: SOAK_SECONDS * 1000 + 120_000 }, async () => {
    const pid = server.child.pid!;
    const agent = new Agent({ connections: CONCURRENCY, keepAliveTimeout: 10_000 });
    const failures: string[] = [];
    const requestIds: string[] = [];
    let calls = 0;
    let running = true;

    const loops = Array.from({ length: CONCURRENCY }, async (_, loop) => {
      for (let index = loop; running; index += CONCURRENCY) {
        const call = CALLS[index % CALLS.length]!;
        const headers: Record<string, string> = { 'content-type': 'application/json' };
        if (call.route === 'anthropic') headers['x-api-key'] = FAKE_CREDENTIALS.anthropicApiKey;
        else if (call.route === 'openai') headers.authorization = `Bearer ${FAKE_CREDENTIALS.openaiApiKey}`;
        else headers['x-goog-api-key'] = FAKE_CREDENTIALS.googleApiKey;
        try {
          const response = await request(`${server.url}/r/${server.routeToken}/${call.route}${call.path}`, {
            method: 'POST',
            headers,
            body: JSON.stringify(call.body),
            dispatcher: agent,
          });
          await response.body.arrayBuffer();
          calls += 1;
          if (response.statusCode !== 200) failures.push(`${call.route}${call.path}: status ${response.statusCode}`);
          const id = call.idHeader === null ? undefined : response.headers[call.idHeader];
          if (typeof id === 'string') requestIds.push(id);
        } catch (error) {
          failures.push(`${call.route}${call.path}: ${(error as Error).message}`);
        }
        await new Promise((resolve) => setTimeout(resolve, PAUSE_MS));
      }
    });

    await new Promise((resolve) => setTimeout(resolve, WARM_UP_MS));
    const fdsWarm = fdsOf(pid);
    const rssSamples: number[] = [];
    let fdsMax = fdsWarm;
    const sampler = setInterval(() => {
      rssSamples.push(rssOf(pid));
      fdsMax = Math.max(fdsMax, fdsOf(pid));
    }, 500);
    await new Promise((resolve) => setTimeout(resolve, SOAK_SECONDS * 1000));
    running = false;
    await Promise.all(loops);
    clearInterval(sampler);
    await agent.close();

    // The client's connections are closed; the server's side closes right after.
    await expect.poll(() => fdsOf(pid), { timeout: 10_000 }).toBeLessThanOrEqual(fdsWarm + FD_SLACK);
    const quarter = Math.max(1, Math.floor(rssSamples.length / 4));
    const rssFirst = mean(rssSamples.slice(0, quarter));
    const rssLast = mean(rssSamples.slice(-quarter));
    console.info(
      `soak: ${calls} calls in ${SOAK_SECONDS} s at concurrency ${CONCURRENCY}; server RSS ${mib(rssFirst)} MiB in the first quarter, ${mib(rssLast)} MiB in the last, ${mib(Math.max(...rssSamples))} MiB at most; file descriptors ${fdsWarm} warm, ${fdsMax} at most, ${fdsOf(pid)} at the end`,
    );

    expect(failures).toEqual([]);
    expect(calls).toBeGreaterThan(SOAK_SECONDS * 10);
    expect(rssLast - rssFirst).toBeLessThan(MAX_RSS_GROWTH_BYTES);
    expect(fdsMax).toBeLessThan(fdsWarm + 4 * CONCURRENCY);

    // A graceful stop stores what the sink still holds; then every call is in the store once.
    expect(await server.stop()).toBe(0);
    const store = new SqliteStore(join(dataDir, 'tokenwise.db'), { readonly: true });
    const stored = await store.listCalls({ limit: 10_000_000 });
    await store.close();
    expect(stored).toHaveLength(calls);
    const storedIds = stored.map((call) => call.record.upstream_request_id).filter((id) => id !== null);
    expect(new Set(storedIds).size).toBe(storedIds.length);
    expect(storedIds.sort()).toEqual(requestIds.sort());
  });
});
