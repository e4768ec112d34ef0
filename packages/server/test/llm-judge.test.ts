import { createHash } from 'node:crypto';
import type { CallRecord } from '@tokenwise/core';
import { FAKE_CREDENTIALS, type FakeProvider, startFakeProvider } from '@tokenwise/testkit';
import { afterAll, afterEach, beforeAll, describe, expect, it, vi } from 'vitest';
import { invitePerson, type PairedDevice, type Person, pairDevice, sendPrompt, setUpOwner } from './helpers/accounts.js';
import { startTestServer, type TestServer } from './helpers/test-server.js';

/**
 * The optional LLM judge against the fake provider: calls sent through `serve`'s proxy are sampled, sent
 * to the judge model through the same proxy with the operator's key, and scored. The test's clock is
 * moved forward before each run, because the judge only looks at calls a few minutes old.
 */

const VERDICT = JSON.stringify({ score: 4, reason: 'It answered a different question.' });
const JUDGE_KEY = FAKE_CREDENTIALS.openaiApiKey;
const MINUTE = 60_000;

let provider: FakeProvider;
let clockMs = Date.now();

beforeAll(async () => {
  provider = await startFakeProvider({ answerText: VERDICT });
});

afterAll(async () => {
  await provider.close();
});

interface Setup {
  running: TestServer;
  ada: Person;
  laptop: PairedDevice;
}

async function start(options: { judgeApiKey?: string } = {}): Promise<Setup> {
  const running = await startTestServer({
    upstreams: { anthropic: provider.url, openai: provider.url },
    reportClock: () => new Date(clockMs),
    judgeIntervalMs: 3_600_000,
    insightsEmailIntervalMs: 3_600_000,
    ...options,
  });
  const ada = await setUpOwner(running.server);
  const laptop = await pairDevice(running.server, ada, 'ada-laptop');
  return { running, ada, laptop };
}

interface SettingsJson {
  judge: { enabled: boolean; route: string; sample_rate: number; pass_score: number; device_id: string | null };
  key_configured: boolean;
  warnings: string[];
  last_30_days: { judge_calls: number; judge_cost_usd: number; scored: number; failing: number; average_score: number | null };
  error: { message: string };
}

interface ScoreJson {
  call_id: string;
  status: string;
  score: number | null;
  reason: string | null;
  route: string;
  model: string;
  judge_response_id: string | null;
  error: string | null;
}

async function judgeSettings(person: Person, changes: Record<string, unknown>) {
  const response = await person.browser.api('PATCH', '/api/v1/judge/settings', changes);
  return { status: response.status, body: (await response.json()) as SettingsJson };
}

async function sendCalls(setup: Setup, count: number): Promise<void> {
  for (let index = 0; index < count; index += 1) {
    expect((await sendPrompt(setup.running.server.url, setup.laptop.token, `question ${index}`, 'session-judge')).status).toBe(200);
  }
  await vi.waitFor(async () => {
    const listed = (await (await setup.running.api('/api/v1/calls?tool=claude-code&limit=200')).json()) as { calls: CallRecord[] };
    expect(listed.calls.length).toBeGreaterThanOrEqual(count);
  });
}

/** Let the judge see every call made so far: they must be older than its settle time. */
async function runJudgeLater(setup: Setup): Promise<void> {
  clockMs = Date.now() + 10 * MINUTE;
  await setup.running.server.runJudge();
}

function judgeRequests() {
  return provider.requests().filter((request) => request.headers['user-agent']?.startsWith('tokenwise-judge/'));
}

const opened: TestServer[] = [];

afterEach(async () => {
  for (const running of opened.splice(0)) await running.dispose();
  provider.clear();
  provider.configure({ answerText: VERDICT });
  clockMs = Date.now();
});

describe('LLM judge', () => {
  it('stays off until an owner turns it on', async () => {
    const setup = await start({ judgeApiKey: JUDGE_KEY });
    opened.push(setup.running);

    const settings = (await (await setup.ada.browser.api('GET', '/api/v1/judge/settings')).json()) as SettingsJson;
    expect(settings.judge).toMatchObject({ enabled: false, route: 'anthropic', sample_rate: 0.05 });
    expect(settings.key_configured).toBe(true);
    expect(JSON.stringify(settings)).not.toContain(JUDGE_KEY);

    await sendCalls(setup, 2);
    await runJudgeLater(setup);
    expect(judgeRequests()).toEqual([]);
  });

  it('scores calls through the proxy and records its own calls', async () => {
    const setup = await start({ judgeApiKey: JUDGE_KEY });
    opened.push(setup.running);
    const enabled = await judgeSettings(setup.ada, { enabled: true, route: 'anthropic', model: 'claude-haiku-4-5', sample_rate: 1 });
    expect(enabled.status).toBe(200);
    expect(enabled.body.judge).toMatchObject({ enabled: true, sample_rate: 1, pass_score: 6 });
    const devices = (await (await setup.running.api('/api/v1/devices')).json()) as { devices: { id: string; name: string }[] };
    expect(devices.devices.find((device) => device.id === enabled.body.judge.device_id)?.name).toBe('LLM judge');

    await sendCalls(setup, 3);
    await runJudgeLater(setup);

    const requests = judgeRequests();
    expect(requests).toHaveLength(3);
    for (const request of requests) {
      expect(request.path).toBe('/v1/messages');
      expect(request.headers['x-api-key']).toBe(JUDGE_KEY);
      const sent = JSON.parse(request.bodyText ?? '{}') as { model: string; system: string; messages: { content: string }[] };
      expect(sent.model).toBe('claude-haiku-4-5');
      expect(sent.system).toContain('The answer is correct');
      expect(sent.messages[0]?.content).toMatch(/^<request>\nquestion \d+\n<\/request>\n<answer>\n/);
      // The fake provider gives every call the same answer, so the judged call answered with a verdict too.
      expect(sent.messages[0]?.content).toContain(`<answer>\n${VERDICT}\n</answer>`);
    }

    const scores = (await (await setup.running.api('/api/v1/judge/scores')).json()) as { scores: ScoreJson[] };
    expect(scores.scores).toHaveLength(3);
    for (const score of scores.scores) {
      expect(score).toMatchObject({ status: 'scored', score: 4, reason: 'It answered a different question.', model: 'claude-haiku-4-5' });
    }

    // Its own calls are recorded like any other, on its device, with their cost.
    await vi.waitFor(async () => {
      const listed = (await (await setup.running.api('/api/v1/calls?tool=tokenwise-judge')).json()) as { calls: CallRecord[] };
      expect(listed.calls).toHaveLength(3);
    });
    const judged = (await (await setup.running.api('/api/v1/calls?tool=tokenwise-judge')).json()) as { calls: CallRecord[] };
    expect(new Set(judged.calls.map((call) => call.device_id))).toEqual(new Set([enabled.body.judge.device_id]));
    expect(judged.calls.map((call) => call.response_id).sort()).toEqual(scores.scores.map((score) => score.judge_response_id).sort());
    const cost = judged.calls.reduce((sum, call) => sum + (call.cost.usd ?? 0), 0);
    expect(cost).toBeGreaterThan(0);
    const after = (await (await setup.ada.browser.api('GET', '/api/v1/judge/settings')).json()) as SettingsJson;
    expect(after.last_30_days).toMatchObject({ judge_calls: 3, scored: 3, failing: 3, average_score: 4 });
    expect(after.last_30_days.judge_cost_usd).toBeCloseTo(cost, 9);

    // A second run judges nothing again, and never its own calls.
    await runJudgeLater(setup);
    expect(judgeRequests()).toHaveLength(3);
  });

  it('samples calls by their id', async () => {
    const setup = await start({ judgeApiKey: JUDGE_KEY });
    opened.push(setup.running);
    await judgeSettings(setup.ada, { enabled: true, sample_rate: 0.5 });

    await sendCalls(setup, 12);
    await runJudgeLater(setup);

    const calls = (await (await setup.running.api('/api/v1/calls?tool=claude-code&limit=50')).json()) as { calls: CallRecord[] };
    const sampled = calls.calls.filter((call) => createHash('sha256').update(call.id).digest().readUInt32BE(0) / 2 ** 32 < 0.5);
    const scores = (await (await setup.running.api('/api/v1/judge/scores?limit=50')).json()) as { scores: { call_id: string }[] };
    expect(scores.scores.map((score) => score.call_id).sort()).toEqual(sampled.map((call) => call.id).sort());
    expect(judgeRequests()).toHaveLength(sampled.length);
  });

  it('speaks Chat Completions on the openai route', async () => {
    const setup = await start({ judgeApiKey: JUDGE_KEY });
    opened.push(setup.running);
    await judgeSettings(setup.ada, { enabled: true, route: 'openai', model: 'gpt-5-mini', sample_rate: 1 });

    await sendCalls(setup, 1);
    await runJudgeLater(setup);

    const [request] = judgeRequests();
    expect(request?.path).toBe('/v1/chat/completions');
    expect(request?.headers.authorization).toBe(`Bearer ${JUDGE_KEY}`);
    const scores = (await (await setup.running.api('/api/v1/judge/scores')).json()) as { scores: ScoreJson[] };
    expect(scores.scores[0]).toMatchObject({ status: 'scored', score: 4, route: 'openai', model: 'gpt-5-mini' });
  });

  it('stores a failure when the answer has no score', async () => {
    const setup = await start({ judgeApiKey: JUDGE_KEY });
    opened.push(setup.running);
    await judgeSettings(setup.ada, { enabled: true, sample_rate: 1 });
    provider.configure({ answerText: 'Looks fine to me.' });

    await sendCalls(setup, 1);
    await runJudgeLater(setup);

    const scores = (await (await setup.running.api('/api/v1/judge/scores')).json()) as { scores: ScoreJson[] };
    expect(scores.scores).toEqual([
      expect.objectContaining({ status: 'failed', score: null, error: 'the judge answered without a JSON score from 0 to 10' }),
    ]);
  });

  it('sends nothing without a key or in privacy mode', async () => {
    const keyless = await start();
    opened.push(keyless.running);
    const saved = await judgeSettings(keyless.ada, { enabled: true, sample_rate: 1 });
    expect(saved.body.key_configured).toBe(false);
    expect(saved.body.warnings).toEqual([
      'the server has no judge API key, so nothing is judged: its operator sets TOKENWISE_JUDGE_API_KEY or --judge-api-key-file',
    ]);
    await sendCalls(keyless, 1);
    await runJudgeLater(keyless);
    await runJudgeLater(keyless);
    expect(judgeRequests()).toEqual([]);
    const noKeyLines = keyless.running.logs
      .lines()
      .filter((line) => String(line.msg).startsWith('the LLM judge is on but the server has no key'));
    expect(noKeyLines).toHaveLength(1);

    const private_ = await start({ judgeApiKey: JUDGE_KEY });
    opened.push(private_.running);
    await judgeSettings(private_.ada, { enabled: true, sample_rate: 1 });
    await sendCalls(private_, 2);
    const workspaceId = private_.laptop.workspaceId;
    expect((await private_.ada.browser.api('PATCH', `/api/v1/workspaces/${workspaceId}`, { privacy_mode: true })).status).toBe(200);
    await runJudgeLater(private_);
    expect(judgeRequests()).toEqual([]);
  });

  it('lets only owners change it, in their own workspace', async () => {
    const setup = await start({ judgeApiKey: JUDGE_KEY });
    opened.push(setup.running);
    const member = await invitePerson(setup.ada, 'bob@example.com', 'Bob', { role: 'member' });
    const stranger = await invitePerson(setup.ada, 'eve@example.com', 'Eve');

    const denied = await judgeSettings(member, { enabled: true });
    expect(denied.status).toBe(403);
    expect(denied.body.error.message).toBe('only owners of the workspace change the LLM judge');
    expect((await member.browser.api('GET', '/api/v1/judge/settings')).status).toBe(200);

    const elsewhere = await stranger.browser.api('GET', `/api/v1/judge/scores?workspace=${setup.laptop.workspaceId}`);
    expect(elsewhere.status).toBe(404);
    const invalid = await judgeSettings(setup.ada, { route: 'chatgpt' });
    expect(invalid.status).toBe(400);
    expect(invalid.body.error.message).toMatch(/^invalid route "chatgpt": expected one of anthropic, openai/);
    const rate = await judgeSettings(setup.ada, { sample_rate: 2 });
    expect(rate.body.error.message).toBe('invalid sample_rate 2: expected a number from 0 to 1');
  });
});
