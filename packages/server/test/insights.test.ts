import type { CallRecord } from '@tokenwise/core';
import { FAKE_CREDENTIALS, type FakeProvider, startFakeProvider } from '@tokenwise/testkit';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { createTestSchema, describeWithPostgres, type TestSchema } from '../../storage/test/postgres-test-database.js';
import { invitePerson, type PairedDevice, type Person, pairDevice, setUpOwner } from './helpers/accounts.js';
import { startTestServer, type TestServer } from './helpers/test-server.js';

/**
 * Prompt groups, versions and scores from real calls. Claude Code-shaped requests go through `serve`'s
 * proxy to the fake provider. The first use one system prompt (Claude Code 2.1.197, from two folders on
 * two dates), the later ones an edited prompt and a new tool (2.1.198). Among them are a retried request, a tool call
 * whose result failed, and requests the provider rejects. A second device in privacy mode sends calls
 * without bodies. Everything runs once on SQLite and once on PostgreSQL.
 */

let provider: FakeProvider;
let running: TestServer;
let ada: Person;
let bob: Person;
let laptop: PairedDevice;
let privateDevice: PairedDevice;

const IDENTITY = "You are Claude Code, Anthropic's official CLI for Claude.";
const OLD_INSTRUCTIONS = [
  'You are an interactive CLI tool that helps users with software engineering tasks.',
  '',
  '# Tone',
  'Be concise.',
  '',
  '# Tools',
  'Prefer the dedicated tools over shell commands.',
].join('\n');
const NEW_INSTRUCTIONS = [
  'You are an interactive CLI tool that helps users with software engineering tasks.',
  '',
  '# Tone',
  'Be concise and direct.',
  '',
  '# Tools',
  'Prefer the dedicated tools over shell commands.',
  'Run the tests after each change.',
].join('\n');

const MACHINES = [
  { cwd: '/home/ada/src/payments', date: '2026-12-01', branch: 'main', billing: '2b1' },
  { cwd: '/home/ada/src/website', date: '2026-12-03', branch: 'feature/login', billing: 'd9c' },
] as const;

interface PromptVersionSpec {
  toolVersion: string;
  instructions: string;
  bashDescription: string;
  extraTools: string[];
}

const V1: PromptVersionSpec = {
  toolVersion: '2.1.197',
  instructions: OLD_INSTRUCTIONS,
  bashDescription: 'Run a shell command.',
  extraTools: [],
};
const V2: PromptVersionSpec = {
  toolVersion: '2.1.198',
  instructions: NEW_INSTRUCTIONS,
  bashDescription: 'Run a shell command in the sandbox.',
  extraTools: ['WebFetch'],
};

/** Build a Messages body as Claude Code 2.1 does: billing line, identity, instructions with the per-call environment. */
function claudeCodeBody(version: PromptVersionSpec, machine: (typeof MACHINES)[number], messages: unknown[] | undefined) {
  const tool = (name: string, description: string) => ({
    name,
    description,
    input_schema: { type: 'object', properties: { value: { type: 'string' } }, required: ['value'] },
  });
  return {
    model: 'claude-sonnet-4-5',
    max_tokens: 32_000,
    stream: true,
    system: [
      { type: 'text', text: `x-anthropic-billing-header: cc_version=${version.toolVersion}.${machine.billing}; cc_entrypoint=cli;` },
      { type: 'text', text: IDENTITY, cache_control: { type: 'ephemeral', ttl: '1h' } },
      {
        type: 'text',
        text: [
          version.instructions,
          '',
          '<env>',
          `Working directory: ${machine.cwd}`,
          'Is directory a git repo: Yes',
          'Platform: linux',
          `Today's date: ${machine.date}`,
          '</env>',
          '',
          'gitStatus: This is the git status at the start of the conversation.',
          `Current branch: ${machine.branch}`,
          '',
          'Status:',
          ' M src/index.ts',
        ].join('\n'),
        cache_control: { type: 'ephemeral', ttl: '1h' },
      },
    ],
    tools: [
      tool('Bash', version.bashDescription),
      tool('Read', 'Read a file.'),
      ...version.extraTools.map((name) => tool(name, `Use ${name}.`)),
    ],
    ...(messages === undefined ? {} : { messages }),
  };
}

async function send(device: PairedDevice, version: PromptVersionSpec, body: unknown, sessionId: string): Promise<number> {
  const response = await fetch(`${running.server.url}/r/${device.token}/anthropic/v1/messages?beta=true`, {
    method: 'POST',
    headers: {
      'content-type': 'application/json',
      'x-api-key': FAKE_CREDENTIALS.anthropicApiKey,
      'anthropic-version': '2023-06-01',
      'user-agent': `claude-cli/${version.toolVersion} (external, cli)`,
      'x-claude-code-session-id': sessionId,
    },
    body: JSON.stringify(body),
  });
  await response.arrayBuffer();
  return response.status;
}

const userMessage = (text: string) => [{ role: 'user', content: [{ type: 'text', text }] }];

async function api<T>(person: Person, path: string, init: { method?: string; body?: unknown } = {}): Promise<{ status: number; body: T }> {
  const response = await person.browser.api(init.method ?? 'GET', path, init.body);
  return { status: response.status, body: (await response.json()) as T };
}

interface GroupJson {
  id: string;
  kind: string;
  name: string;
  calls: number;
  errors: number;
  versions: number;
  device_ids: string[];
  people: { name: string }[];
  note: string | null;
  metrics: Record<string, number | null>;
}

interface VersionJson {
  id: string;
  number: number;
  tool_version: string | null;
  calls: number;
  errors: number;
  cost_usd: number;
  metrics: Record<string, number | null>;
  changes_from_previous: {
    instruction_lines_added: number;
    instruction_lines_removed: number;
    tools_added: string[];
    tools_removed: string[];
    tools_changed: string[];
  } | null;
}

type ScoredCall = CallRecord & { prompt_version_id: string | null; scores: { scorer: string; detail: Record<string, unknown> }[] };

let group: GroupJson;

/** Start the server on SQLite, or on PostgreSQL with `databaseUrl`, and send the calls every test reads. */
async function setUp(databaseUrl: string | undefined): Promise<void> {
  provider = await startFakeProvider();
  // The job runs only when a test requests it, so every check reads a known state.
  running = await startTestServer({ upstreams: { anthropic: provider.url }, insightsIntervalMs: 3_600_000, databaseUrl });
  ada = await setUpOwner(running.server);
  bob = await invitePerson(ada, 'bob@example.com', 'Bob');
  laptop = await pairDevice(running.server, ada, 'ada-laptop');
  privateDevice = await pairDevice(running.server, ada, 'ada-private');
  expect((await ada.browser.api('PATCH', `/api/v1/devices/${privateDevice.deviceId}`, { privacy_mode: true })).status).toBe(200);

  // Version 1: four plain calls from two folders, one request sent twice, and a tool call whose result failed.
  for (const [index, machine] of [MACHINES[0], MACHINES[1], MACHINES[0], MACHINES[1]].entries()) {
    expect(await send(laptop, V1, claudeCodeBody(V1, machine, userMessage(`task ${index}`)), `session-${index % 2}`)).toBe(200);
  }
  const repeated = claudeCodeBody(V1, MACHINES[0], userMessage('fix the build'));
  expect(await send(laptop, V1, repeated, 'session-retry')).toBe(200);
  expect(await send(laptop, V1, repeated, 'session-retry')).toBe(200);

  provider.configure({ toolCallFirst: true });
  expect(await send(laptop, V1, claudeCodeBody({ ...V1, extraTools: [] }, MACHINES[1], userMessage('run the tests')), 'session-tool')).toBe(
    200,
  );
  provider.configure({ toolCallFirst: false });
  await waitForCalls(7);
  const followUp = [
    ...userMessage('run the tests'),
    { role: 'assistant', content: [{ type: 'tool_use', id: 'toolu_01', name: 'Bash', input: { command: 'npm test' } }] },
    { role: 'user', content: [{ type: 'tool_result', tool_use_id: 'toolu_01', content: 'npm ERR! Test failed.', is_error: true }] },
  ];
  expect(await send(laptop, V1, claudeCodeBody(V1, MACHINES[1], followUp), 'session-tool')).toBe(200);

  // Version 2: five plain calls and two that the provider rejects.
  for (const [index, machine] of [MACHINES[1], MACHINES[0], MACHINES[1], MACHINES[0], MACHINES[1]].entries()) {
    expect(await send(laptop, V2, claudeCodeBody(V2, machine, userMessage(`task ${index}`)), `session-new-${index % 2}`)).toBe(200);
  }
  for (const machine of MACHINES) expect(await send(laptop, V2, claudeCodeBody(V2, machine, undefined), 'session-bad')).toBe(400);

  // The device in privacy mode keeps no bodies.
  for (const machine of MACHINES) {
    expect(await send(privateDevice, V2, claudeCodeBody(V2, machine, userMessage('private work')), 'session-private')).toBe(200);
  }
  await waitForCalls(17);
  await running.server.runInsights();

  const groups = (await api<{ groups: GroupJson[] }>(ada, '/api/v1/prompts')).body.groups;
  group = groups.find((entry) => entry.kind === 'template')!;
}

async function tearDown(): Promise<void> {
  await running?.dispose();
  await provider?.close();
}

async function waitForCalls(count: number): Promise<void> {
  await vi.waitFor(async () => {
    const { calls } = (await (await running.api('/api/v1/calls?limit=1000')).json()) as { calls: unknown[] };
    expect(calls).toHaveLength(count);
  });
}

async function groupCalls(): Promise<ScoredCall[]> {
  return (await api<{ calls: ScoredCall[] }>(ada, `/api/v1/prompts/${group.id}/calls?limit=100`)).body.calls;
}

/** Define the checks, run once per store. */
function defineTests(): void {
  describe('prompt groups', () => {
    it('both versions share one template', async () => {
      const groups = (await api<{ groups: GroupJson[]; privacy: { private_devices: number; note: string } }>(ada, '/api/v1/prompts')).body;

      expect(group).toMatchObject({ name: `claude-code: ${IDENTITY}`, calls: 15, errors: 2, versions: 2 });
      expect(group.device_ids).toEqual([laptop.deviceId]);
      expect(group.people.map((person) => person.name)).toEqual(['Ada']);
      expect(groups.groups[0]!.id).toBe(group.id);
      expect(groups.privacy.private_devices).toBe(1);
      expect(groups.privacy.note).toContain('1 device is in privacy mode');
    });

    it('bodiless calls get metrics-only bucket', async () => {
      const groups = (await api<{ groups: GroupJson[] }>(ada, '/api/v1/prompts')).body.groups;
      const bucket = groups.find((entry) => entry.kind === 'not_kept');

      expect(bucket).toMatchObject({ name: 'claude-code: prompts not kept (privacy mode)', calls: 2, versions: 0 });
      expect(bucket!.device_ids).toEqual([privateDevice.deviceId]);
      expect(bucket!.metrics.tokens_per_call).toBeGreaterThan(0);
      expect(bucket!.note).toContain('not kept');
    });

    it('other workspace gets 404, empty lists', async () => {
      const { body: detail } = await api<{ versions: VersionJson[] }>(ada, `/api/v1/prompts/${group.id}`);
      const callId = (await groupCalls())[0]!.id;

      for (const path of [
        `/api/v1/prompts/${group.id}`,
        `/api/v1/prompts/${group.id}/calls`,
        `/api/v1/prompts/${group.id}/versions/${detail.versions[1]!.id}/diff`,
      ]) {
        expect((await bob.browser.api('GET', path)).status, path).toBe(404);
      }
      expect((await api<{ groups: unknown[] }>(bob, '/api/v1/prompts')).body.groups).toEqual([]);
      expect((await api<{ insights: unknown[] }>(bob, '/api/v1/insights')).body.insights).toEqual([]);
      expect(
        (await api<{ calls: { scored: boolean; scores: unknown[] }[] }>(bob, `/api/v1/insights/calls?ids=${callId}`)).body.calls,
      ).toEqual([{ call_id: callId, scored: false, prompt_group_id: null, prompt_version_id: null, scores: [] }]);
    });
  });

  describe('prompt versions', () => {
    it('versions split by tool version', async () => {
      const { body } = await api<{ versions: VersionJson[] }>(ada, `/api/v1/prompts/${group.id}`);

      expect(body.versions.map((version) => [version.number, version.tool_version, version.calls, version.errors])).toEqual([
        [1, '2.1.197', 8, 0],
        [2, '2.1.198', 7, 2],
      ]);
      expect(body.versions[1]!.changes_from_previous).toEqual({
        instruction_lines_added: 2,
        instruction_lines_removed: 1,
        tools_added: ['WebFetch'],
        tools_removed: [],
        tools_changed: ['Bash'],
      });
    });

    it('metrics before and after change', async () => {
      const { body } = await api<{ versions: VersionJson[] }>(ada, `/api/v1/prompts/${group.id}`);
      const [before, after] = body.versions;

      expect(before!.metrics.error_rate).toBe(0);
      expect(after!.metrics.error_rate).toBeCloseTo(2 / 7, 9);
      expect(before!.metrics.cost_per_call_usd).toBeGreaterThan(0);
      // The rejected calls report no usage, so the per-call cost counts only the five priced calls.
      expect(after!.metrics.cost_per_call_usd).toBeCloseTo(after!.cost_usd / 5, 9);
      expect(after!.metrics.tokens_per_call).toBe(before!.metrics.tokens_per_call);
    });

    it('diff omits per-call parts', async () => {
      const { body: detail } = await api<{ versions: VersionJson[] }>(ada, `/api/v1/prompts/${group.id}`);
      const { body } = await api<{
        diff: { instructions: { hunks: { lines: string[] }[] }; tools: { added: string[]; changed: Record<string, unknown>[] } };
        texts: { after: { system: string } };
        before: { number: number };
      }>(ada, `/api/v1/prompts/${group.id}/versions/${detail.versions[1]!.id}/diff`);
      const lines = body.diff.instructions.hunks.flatMap((hunk) => hunk.lines);

      expect(body.before.number).toBe(1);
      expect(lines).toContain('-Be concise.');
      expect(lines).toContain('+Be concise and direct.');
      expect(lines).toContain('+Run the tests after each change.');
      expect(body.diff.tools.added).toEqual(['WebFetch']);
      expect(body.diff.tools.changed).toMatchObject([{ name: 'Bash', description_changed: true, schema_changed: false }]);
      expect(body.texts.after.system).toContain('<env>…</env>');
      expect(body.texts.after.system).toContain('gitStatus: <git status>');
      expect(body.texts.after.system).not.toContain('/home/ada');
      expect(body.texts.after.system).not.toContain('cc_version');
    });

    it('version change and error-rate insights', async () => {
      const { body } = await api<{ insights: { kind: string; summary: string; details: Record<string, unknown> }[] }>(
        ada,
        '/api/v1/insights',
      );
      const kinds = body.insights.map((insight) => [insight.kind, insight.details.metric ?? null]);

      expect(kinds).toContainEqual(['version_change', null]);
      expect(kinds).toContainEqual(['metric_shift', 'error_rate']);
      expect(body.insights.find((insight) => insight.kind === 'version_change')!.summary).toContain('with version 2.1.198');
      expect(body.insights.find((insight) => insight.details.metric === 'error_rate')!.details).toMatchObject({
        metric: 'error_rate',
        metric_before: 0,
        change_pct: null,
        tool_version: '2.1.198',
        previous_tool_version: '2.1.197',
      });
    });
  });

  describe('call scores', () => {
    it('flags retries, tool failures, rejections', async () => {
      const calls = await groupCalls();
      const scorersOf = (sessionId: string) =>
        calls
          .filter((call) => call.session_id === sessionId)
          .reverse()
          .map((call) => call.scores.map((score) => score.scorer).filter((scorer) => scorer !== 'slow'));

      expect(scorersOf('session-retry')).toEqual([[], ['retry']]);
      expect(scorersOf('session-tool')).toEqual([['tool_error'], []]);
      expect(scorersOf('session-bad')).toEqual([['provider_error'], ['provider_error']]);
      expect(scorersOf('session-0')).toEqual([[], []]);
    });

    it('names retried call and failed tool', async () => {
      const calls = (await groupCalls()).reverse();
      const [first, retry] = calls.filter((call) => call.session_id === 'session-retry');
      const [toolCall, followUp] = calls.filter((call) => call.session_id === 'session-tool');

      expect(retry!.scores.find((score) => score.scorer === 'retry')!.detail).toEqual({ retry_of: first!.id });
      expect(toolCall!.tool_calls).toBe(1);
      expect(toolCall!.scores.find((score) => score.scorer === 'tool_error')!.detail).toEqual({
        next_call_id: followUp!.id,
        failed_tools: ['Bash'],
      });
    });

    it('sums the failures per prompt group', async () => {
      const { body } = await api<{
        totals: { calls: number; body_calls: number; failed: Record<string, number> };
        groups: { key: string; label: string }[];
      }>(ada, '/api/v1/insights/scores?group_by=group');

      expect(body.totals.calls).toBe(17);
      expect(body.totals.body_calls).toBe(15);
      expect(body.totals.failed).toMatchObject({ provider_error: 2, retry: 1, tool_error: 1, refusal: 0, max_tokens: 0, stream_cut: 0 });
      expect(body.groups.map((entry) => entry.label)).toContain(group.name);
    });

    it('reads the scores of listed calls', async () => {
      const bad = (await groupCalls()).filter((call) => call.session_id === 'session-bad');
      const { body } = await api<{ calls: { call_id: string; scored: boolean; scores: { scorer: string }[] }[] }>(
        ada,
        `/api/v1/insights/calls?ids=${bad.map((call) => call.id).join(',')}`,
      );

      expect(body.calls.map((call) => call.scored)).toEqual([true, true]);
      expect(body.calls.every((call) => call.scores.some((score) => score.scorer === 'provider_error'))).toBe(true);
    });
  });

  describe('insights job', () => {
    it('changes nothing when it runs again', async () => {
      const before = await api(ada, `/api/v1/prompts/${group.id}`);

      const result = await running.server.runInsights();

      expect(result.calls).toBe(0);
      expect(await api(ada, `/api/v1/prompts/${group.id}`)).toEqual(before);
    });

    it("reports each workspace's own progress", async () => {
      type Status = { status: Record<string, unknown> };
      expect((await api<Status>(ada, '/api/v1/insights')).body.status).toEqual({ up_to_date: true });
      expect((await api<Status>(bob, '/api/v1/insights')).body.status).toEqual({ up_to_date: true });

      // A new call of Ada's waits for the job. Bob's workspace, which has none, stays up to date.
      expect(await send(laptop, V2, claudeCodeBody(V2, MACHINES[0], userMessage('one more task')), 'session-late')).toBe(200);
      await waitForCalls(18);
      expect((await api<Status>(ada, '/api/v1/insights')).body.status).toEqual({ up_to_date: false });
      expect((await api<Status>(ada, '/api/v1/prompts')).body.status).toEqual({ up_to_date: false });
      expect((await api<Status>(bob, '/api/v1/insights')).body.status).toEqual({ up_to_date: true });

      await running.server.runInsights();
      expect((await api<Status>(ada, '/api/v1/insights')).body.status).toEqual({ up_to_date: true });
    });

    it('lets only owners change the thresholds', async () => {
      const changed = await api<{ settings: Record<string, unknown> }>(ada, '/api/v1/insights/settings', {
        method: 'PATCH',
        body: { latency_target_ms: 5000 },
      });
      const invalid = await api<{ error: { message: string } }>(ada, '/api/v1/insights/settings', {
        method: 'PATCH',
        body: { metric_shift_pct: -3 },
      });

      const carol = await invitePerson(ada, 'carol@example.com', 'Carol', { role: 'member' });
      const byMember = await carol.browser.api('PATCH', '/api/v1/insights/settings', { latency_target_ms: 1 });

      expect(changed.body.settings).toMatchObject({ latency_target_ms: 5000, metric_shift_pct: 25 });
      expect(byMember.status).toBe(403);
      expect(invalid.status).toBe(400);
      expect(invalid.body.error.message).toContain('invalid metric_shift_pct -3');
    });
  });
}

describe('insights on SQLite', () => {
  beforeAll(() => setUp(undefined));
  afterAll(tearDown);
  defineTests();
});

describeWithPostgres('insights on PostgreSQL', () => {
  let schema: TestSchema | undefined;

  beforeAll(async () => {
    schema = await createTestSchema();
    await setUp(schema.url);
  });

  afterAll(async () => {
    await tearDown();
    await schema?.drop();
  });

  defineTests();
});
