import { randomUUID } from 'node:crypto';
import type { CallBodies, CallRecord } from '@tokenwise/core';
import type { RunningServer } from '@tokenwise/server';
import { SqliteStore } from '@tokenwise/storage';
import { FAKE_CREDENTIALS, type FakeProvider, startFakeProvider } from '@tokenwise/testkit';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { invitePerson, type PairedDevice, type Person, pairDevice, setUpOwner } from './helpers/accounts.js';
import { type SmtpSink, startSmtpSink } from './helpers/smtp-sink.js';
import { startTestServer, type TestServer } from './helpers/test-server.js';

/**
 * The weekly insights email end to end. A real `serve` stores a week of calls (and the weeks before)
 * through its ingest API, and Claude Code's system prompt changes on Thursday. The insights job derives
 * the prompt versions. The LLM judge scores calls through the server's own proxy against the fake
 * provider. The email job mails everyone through a local SMTP server. Each figure of the received
 * email is checked against the dashboard's API.
 */

const DAY = 86_400_000;
const INGEST_SECRET = 'insights-email-test-ingest-secret-0123456789';
const JUDGE_VERDICT_LOW = JSON.stringify({ score: 3, reason: 'The answer ignored the failing test.' });
const JUDGE_VERDICT_HIGH = JSON.stringify({ score: 9, reason: 'The answer did what was asked.' });

/** The test's "now": the email covers the last full week before it, Monday to Monday in UTC. */
const NOW = new Date();
const todayMs = Math.floor(NOW.getTime() / DAY) * DAY;
const WEEK_TO = todayMs - ((new Date(todayMs).getUTCDay() + 6) % 7) * DAY;
const WEEK_FROM = WEEK_TO - 7 * DAY;
const PREVIOUS_FROM = WEEK_FROM - 7 * DAY;

let provider: FakeProvider;
let smtp: SmtpSink;
let running: TestServer;
let ada: Person;
let bob: Person;
let adaLaptop: PairedDevice;
let bobLaptop: PairedDevice;

const IDENTITY = "You are Claude Code, Anthropic's official CLI for Claude.";
const V1 = {
  toolVersion: '2.1.197',
  instructions: 'You are an interactive CLI tool that helps users with software engineering tasks.\n\n# Tone\nBe concise.',
};
const V2 = {
  toolVersion: '2.1.198',
  instructions:
    'You are an interactive CLI tool that helps users with software engineering tasks.\n\n# Tone\nBe concise and direct.\nRun the tests after each change.',
};

function claudeCodeRequest(version: typeof V1, prompt: string, day: number): string {
  return JSON.stringify({
    model: 'claude-sonnet-4-5',
    max_tokens: 32_000,
    system: [
      { type: 'text', text: `x-anthropic-billing-header: cc_version=${version.toolVersion}.2b1; cc_entrypoint=cli;` },
      { type: 'text', text: IDENTITY },
      {
        type: 'text',
        text: `${version.instructions}\n\n<env>\nWorking directory: /home/ada/src/payments\nPlatform: linux\nToday's date: ${new Date(day).toISOString().slice(0, 10)}\n</env>`,
      },
    ],
    tools: [{ name: 'Bash', description: 'Run a shell command.', input_schema: { type: 'object', properties: {} } }],
    messages: [{ role: 'user', content: [{ type: 'text', text: prompt }] }],
  });
}

function body(text: string, contentType = 'application/json') {
  return { text, bytes: Buffer.byteLength(text), truncated: false, content_type: contentType, encoding_error: null };
}

interface Seed {
  at: number;
  device: PairedDevice;
  usd: number;
  tool?: 'claude-code' | 'codex';
  version?: typeof V1;
  session?: string;
  status?: CallRecord['status'];
  refusal?: boolean;
}

/** Build a finished call as the proxy records it, with bodies for Claude Code calls (the insights job and the judge read them). */
function seedCall(seed: Seed): { record: CallRecord; bodies: CallBodies | null } {
  const tool = seed.tool ?? 'claude-code';
  const status = seed.status ?? 'success';
  const version = seed.version ?? V1;
  let stopReason: { raw: string; normalized: CallRecord['stop_reason_normalized'] } | null = { raw: 'end_turn', normalized: 'end' };
  if (seed.refusal) stopReason = { raw: 'refusal', normalized: 'refusal' };
  else if (status === 'error') stopReason = null;
  const record: CallRecord = {
    id: randomUUID(),
    started_at: new Date(seed.at).toISOString(),
    workspace_id: adaLaptop.workspaceId,
    device_id: seed.device.deviceId,
    route: tool === 'codex' ? 'openai' : 'anthropic',
    provider: tool === 'codex' ? 'openai' : 'anthropic',
    api_shape: tool === 'codex' ? 'openai.responses' : 'anthropic.messages',
    method: 'POST',
    path: tool === 'codex' ? '/v1/responses' : '/v1/messages',
    tool,
    tool_version: tool === 'codex' ? '0.171.0' : version.toolVersion,
    user_agent: tool === 'codex' ? 'codex_exec/0.171.0' : `claude-cli/${version.toolVersion} (external, cli)`,
    session_id: seed.session ?? `session-${Math.floor(seed.at / DAY)}`,
    stream_requested: false,
    streaming: false,
    stream_format: null,
    model_requested: tool === 'codex' ? 'gpt-5' : 'claude-sonnet-4-5',
    model_answered: tool === 'codex' ? 'gpt-5-2025-08-07' : 'claude-sonnet-4-5-20250929',
    http_status: status === 'error' ? 529 : 200,
    status,
    error: status === 'error' ? { type: 'overloaded_error', message: 'Overloaded', source: 'http', retry_after_s: null } : null,
    billable: status !== 'error',
    usage: {
      input_tokens: 1000,
      uncached_input_tokens: 400,
      cache_read_tokens: 600,
      cache_write_tokens: 0,
      cache_write_5m_tokens: null,
      cache_write_1h_tokens: null,
      output_tokens: 200,
      reasoning_tokens: null,
      web_search_requests: null,
    },
    stop_reason: stopReason?.raw ?? null,
    stop_reason_normalized: stopReason?.normalized ?? null,
    tool_calls: 0,
    server_tool_calls: {},
    timing: { ttft_ms: null, total_ms: 2000, headers_ms: 500 },
    upstream_request_id: null,
    response_id: null,
    cost: {
      usd: seed.usd,
      basis: 'exact',
      price_key: tool === 'codex' ? 'gpt-5' : 'claude-sonnet-4-5',
      breakdown: { input: seed.usd / 2, output: seed.usd / 2 },
      price_data_version: null,
    },
    request_bytes: 2000,
    response_bytes: 500,
  };
  if (tool === 'codex') return { record, bodies: null };
  const answer =
    status === 'error'
      ? JSON.stringify({ type: 'error', error: { type: 'overloaded_error', message: 'Overloaded' } })
      : JSON.stringify({
          type: 'message',
          role: 'assistant',
          content: [{ type: 'text', text: seed.refusal ? 'I cannot help with that.' : 'Done: the tests pass.' }],
        });
  return {
    record,
    bodies: {
      request: body(claudeCodeRequest(version, `task at ${record.started_at}`, seed.at)),
      response: body(answer),
      request_headers: { 'content-type': 'application/json' },
      response_headers: { 'content-type': 'application/json' },
    },
  };
}

async function ingest(calls: { record: CallRecord; bodies: CallBodies | null }[]): Promise<void> {
  for (let start = 0; start < calls.length; start += 50) {
    const response = await fetch(`${running.server.url}/api/v1/ingest`, {
      method: 'POST',
      headers: { authorization: `Bearer ${INGEST_SECRET}`, 'content-type': 'application/json' },
      body: JSON.stringify({ calls: calls.slice(start, start + 50) }),
    });
    expect(response.status).toBe(200);
  }
}

/**
 * Build the seeded weeks. History: two Codex calls a day for the 28 days before the week ($0.80 a day). The week
 * before: Claude Code 2.1.197 calls of Ada and Bob. The week: 2.1.197 from Monday to Wednesday, 2.1.198
 * from Thursday. Thursday has an expensive session (far above the usual day), an error and a refusal.
 */
function seedWeeks(): { record: CallRecord; bodies: CallBodies | null }[] {
  const calls: Seed[] = [];
  for (let day = WEEK_FROM - 28 * DAY; day < WEEK_TO; day += DAY) {
    calls.push(
      { at: day + 9 * 3_600_000, device: bobLaptop, usd: 0.4, tool: 'codex' },
      { at: day + 15 * 3_600_000, device: bobLaptop, usd: 0.4, tool: 'codex' },
    );
  }
  for (let index = 0; index < 6; index += 1) calls.push({ at: PREVIOUS_FROM + index * DAY + 10 * 3_600_000, device: adaLaptop, usd: 0.1 });
  for (let index = 0; index < 2; index += 1) calls.push({ at: PREVIOUS_FROM + index * DAY + 11 * 3_600_000, device: bobLaptop, usd: 0.1 });

  for (let index = 0; index < 6; index += 1) {
    calls.push({
      at: WEEK_FROM + Math.floor(index / 2) * DAY + (10 + index) * 3_600_000,
      device: index < 4 ? adaLaptop : bobLaptop,
      usd: 0.1,
    });
  }
  calls.push({ at: WEEK_FROM + DAY + 16 * 3_600_000, device: adaLaptop, usd: 0, status: 'error' });
  for (let index = 0; index < 8; index += 1) {
    calls.push({
      at: WEEK_FROM + 3 * DAY + (9 + index) * 3_600_000,
      device: adaLaptop,
      usd: 1.5,
      version: V2,
      session: 'session-big-refactor',
    });
  }
  for (let index = 0; index < 4; index += 1) {
    calls.push({ at: WEEK_FROM + (4 + Math.floor(index / 2)) * DAY + (10 + index) * 3_600_000, device: bobLaptop, usd: 0.3, version: V2 });
  }
  calls.push({ at: WEEK_FROM + 6 * DAY + 12 * 3_600_000, device: bobLaptop, usd: 0.05, version: V2, refusal: true });
  return calls.map(seedCall);
}

async function api<T>(path: string, init: RequestInit = {}): Promise<{ status: number; body: T }> {
  const response = await running.api(path, init);
  return { status: response.status, body: (await response.json()) as T };
}

const range = `from=${encodeURIComponent(new Date(WEEK_FROM).toISOString())}&to=${encodeURIComponent(new Date(WEEK_TO).toISOString())}`;

/** `$1,234.56` as a number. */
function dollars(text: string): number {
  return Number(text.replace(/[$,]/g, ''));
}

/** Cost per call as the insights API's summaries print it. */
function costPerCall(usd: number): string {
  return `$${usd < 0.01 ? usd.toFixed(4) : usd.toFixed(3)}`;
}

function round2(value: number): number {
  return Math.round(value * 100) / 100;
}

/** Extract the lines of one section of the text email, from its heading to the next blank line. */
function sectionOf(text: string, heading: string): string[] {
  const lines = text.split('\n');
  const start = lines.indexOf(heading);
  expect(start, `section "${heading}" in the email`).toBeGreaterThan(-1);
  const end = lines.indexOf('', start);
  return lines.slice(start + 2, end === -1 ? undefined : end);
}

interface OverviewJson {
  totals: { calls: number; errors: number; sessions: number; cost: { cost_usd: number } };
  series: { key: string; label: string; calls: number[]; cost_usd: number[] }[];
  top_sessions: { session_id: string; cost_usd: number; calls: number }[];
}

beforeAll(async () => {
  provider = await startFakeProvider({ answerText: JUDGE_VERDICT_LOW });
  smtp = await startSmtpSink();
  running = await startTestServer({
    upstreams: { anthropic: provider.url },
    ingestSecret: INGEST_SECRET,
    mail: { smtpUrl: smtp.url, from: 'Tokenwise <tokenwise@example.com>' },
    judgeApiKey: FAKE_CREDENTIALS.anthropicApiKey,
    reportClock: () => NOW,
    // Every job runs only when a test requests it, so each check reads a known state.
    insightsIntervalMs: 3_600_000,
    insightsEmailIntervalMs: 3_600_000,
    judgeIntervalMs: 3_600_000,
  });
  // Without --public-url the email's links use the server's own address.
  ada = await setUpOwner(running.server);
  bob = await invitePerson(ada, 'bob@example.com', 'Bob', { role: 'member' });
  adaLaptop = await pairDevice(running.server, ada, 'ada-laptop');
  bobLaptop = await pairDevice(running.server, bob, 'bob-laptop');
  await ingest(seedWeeks());
  await running.server.runInsights();
});

afterAll(async () => {
  await running?.dispose();
  await smtp?.close();
  await provider?.close();
});

describe('insights email', () => {
  let mail: { text: string; html: string; subject: string };

  it('judge scores calls via proxy', async () => {
    const enabled = await ada.browser.api('PATCH', '/api/v1/judge/settings', {
      enabled: true,
      route: 'anthropic',
      model: 'claude-haiku-4-5',
      rubric: 'The answer does what the request asks.',
      sample_rate: 1,
      pass_score: 6,
    });
    expect(enabled.status).toBe(200);
    // The judge starts with the calls made after it was turned on. This workspace turned it on two weeks ago.
    await backdateJudge(running.server, adaLaptop.workspaceId, PREVIOUS_FROM);

    await running.server.runJudge();
    provider.configure({ answerText: JUDGE_VERDICT_HIGH });
    await running.server.runJudge();
    await running.server.runJudge();

    const judgeRequests = provider.requests().filter((request) => request.headers['user-agent']?.startsWith('tokenwise-judge/'));
    // 6 + 2 calls the week before, 6 + 8 + 4 + 1 this week. The error is not judged.
    expect(judgeRequests).toHaveLength(27);
    for (const request of judgeRequests) {
      expect(request.path).toBe('/v1/messages');
      expect(request.headers['x-api-key']).toBe(FAKE_CREDENTIALS.anthropicApiKey);
    }
    // The proxy stores its records in batches, so the judge's calls show up shortly after its requests.
    await vi.waitFor(async () => {
      const { body: calls } = await api<{ calls: CallRecord[] }>('/api/v1/calls?tool=tokenwise-judge&limit=100');
      expect(calls.calls).toHaveLength(27);
    });
    const { body: calls } = await api<{ calls: CallRecord[] }>('/api/v1/calls?tool=tokenwise-judge&limit=100');
    expect(calls.calls.every((call) => call.cost.usd !== null && call.cost.usd > 0)).toBe(true);
    expect(new Set(calls.calls.map((call) => call.device_id)).size).toBe(1);
  });

  it('mails each member once', async () => {
    await running.server.runInsightsEmails();

    expect(smtp.messages.map((message) => message.to).sort()).toEqual([['ada@example.com'], ['bob@example.com']]);
    const received = smtp.messages.find((message) => message.to[0] === 'ada@example.com')!;
    mail = { text: received.parsed.text ?? '', html: String(received.parsed.html), subject: received.parsed.subject ?? '' };
    expect(received.parsed.from?.value).toEqual([{ name: 'Tokenwise', address: 'tokenwise@example.com' }]);

    const { body: overview } = await api<OverviewJson>(`/api/v1/overview?${range}&group_by=tool&bucket=1w`);
    expect(mail.subject).toContain(`$${round2(overview.totals.cost.cost_usd).toFixed(2)}`);
    const spend = /^Spend: (\$[\d,.]+) /m.exec(mail.text)?.[1];
    expect(dollars(spend!)).toBe(round2(overview.totals.cost.cost_usd));
    expect(mail.text).toContain(`Calls: ${overview.totals.calls.toLocaleString('en-US')} (`);
    expect(mail.text).toContain(`Errors: ${overview.totals.errors} (`);
    expect(mail.text).toContain(`Sessions: ${overview.totals.sessions}`);
  });

  it('cost by tool, model, person', async () => {
    for (const [heading, groupBy] of [
      ['Cost by tool', 'tool'],
      ['Cost by model', 'model'],
      ['Cost by person', 'person'],
    ] as const) {
      const { body: overview } = await api<OverviewJson>(`/api/v1/overview?${range}&group_by=${groupBy}&bucket=1w`);
      const rows = sectionOf(mail.text, heading);
      expect(rows.length - 1).toBe(overview.series.length);
      for (const series of overview.series) {
        const row = rows.find((line) => line.trim().startsWith(series.label));
        expect(row, `${heading}: ${series.label}`).toBeDefined();
        const cells = row!.trim().split(/\s{2,}/);
        expect(dollars(cells[1]!)).toBe(round2(series.cost_usd[0]!));
        expect(Number(cells[3]!.replace(/,/g, ''))).toBe(series.calls[0]);
      }
    }
    expect(sectionOf(mail.text, 'Cost by person').join('\n')).toMatch(/Ada .*\n.*Bob|Bob .*\n.*Ada/);
  });

  it('lists the top sessions with links', async () => {
    const { body: overview } = await api<OverviewJson>(`/api/v1/overview?${range}&group_by=tool&bucket=1w&top=5`);
    const top = overview.top_sessions[0]!;
    expect(top.session_id).toBe('session-big-refactor');

    const lines = sectionOf(mail.text, 'Top sessions by cost');
    const row = lines.find((line) => line.trim().startsWith(top.session_id))!;
    expect(dollars(row.trim().split(/\s{2,}/)[2]!)).toBe(round2(top.cost_usd));
    expect(mail.text).toContain(`${running.server.url}/sessions/session-big-refactor`);
    expect(mail.html).toContain(`href="${running.server.url}/sessions/session-big-refactor"`);
  });

  it('new prompt version and cost', async () => {
    interface InsightJson {
      kind: string;
      group_id: string;
      details: { tool_version: string; before: { cost_per_call_usd: number }; after: { cost_per_call_usd: number; calls: number } };
    }
    const { body } = await api<{ insights: InsightJson[] }>(
      `/api/v1/insights?from=${encodeURIComponent(new Date(WEEK_FROM).toISOString())}`,
    );
    const change = body.insights.find((insight) => insight.kind === 'version_change');
    expect(change, 'the insights job found the new version').toBeDefined();
    expect(change!.details.tool_version).toBe('2.1.198');

    const lines = sectionOf(mail.text, 'New prompt versions and drifts');
    const index = lines.findIndex((entry) => entry.startsWith('New prompt version of'));
    const line = lines[index];
    expect(line).toContain('(2.1.197 to 2.1.198)');
    const before = change!.details.before.cost_per_call_usd;
    const after = change!.details.after.cost_per_call_usd;
    expect(line).toContain(`cost per call ${costPerCall(before)} to ${costPerCall(after)}`);
    expect(line).toContain(`${change!.details.after.calls} calls since`);
    expect(lines[index + 1]?.trim()).toBe(`${running.server.url}/prompts/${change!.group_id}`);
  });

  it('error and refusal rates', async () => {
    const { body: scores } = await api<{ totals: { calls: number; failed: Record<string, number> } }>(
      `/api/v1/insights/scores?${range}&group_by=tool&bucket=1w`,
    );
    const checks = sectionOf(mail.text, 'Failed checks');
    expect(checks[0]).toContain(`${scores.totals.calls} calls checked`);
    const errors = checks.find((line) => line.trim().startsWith('Provider errors'))!;
    expect(Number(errors.trim().split(/\s{2,}/)[1])).toBe(scores.totals.failed.provider_error);
    const refusals = checks.find((line) => line.trim().startsWith('Refusals'))!;
    expect(Number(refusals.trim().split(/\s{2,}/)[1])).toBe(scores.totals.failed.refusal);

    const outcomes = sectionOf(mail.text, 'Errors and refusals by tool');
    const claude = outcomes
      .find((line) => line.trim().startsWith('claude-code'))!
      .trim()
      .split(/\s{2,}/);
    expect(claude.slice(1, 3)).toEqual(['20', '1']);
    expect(claude[5]).toBe('1');
  });

  it('reports the unusual day', () => {
    const day = new Date(WEEK_FROM + 3 * DAY).toLocaleDateString('en-US', {
      timeZone: 'UTC',
      weekday: 'short',
      day: 'numeric',
      month: 'short',
      year: 'numeric',
    });
    // Thursday: the big session ($12.00) and two Codex calls, against a median day of $0.80.
    expect(sectionOf(mail.text, 'Unusual days')).toEqual([`${day}: $12.80, 16× the usual $0.80 a day`]);
  });

  it('judge scores of failing calls', async () => {
    const { body } = await api<{ scores: { call_id: string; score: number; reason: string | null }[] }>(
      `/api/v1/judge/scores?${range}&below=6&limit=500`,
    );
    const { body: all } = await api<{ scores: { status: string }[] }>(`/api/v1/judge/scores?${range}&limit=500`);
    const section = sectionOf(mail.text, 'LLM judge');
    expect(section[0]).toContain(`${all.scores.filter((score) => score.status === 'scored').length} calls scored by claude-haiku-4-5`);
    expect(section[0]).toContain(`${body.scores.length} below the pass score of 6`);
    for (const failing of body.scores.slice(0, 5)) {
      expect(mail.text).toContain(`${running.server.url}/calls/${failing.call_id}`);
      expect(failing.reason).toBe('The answer ignored the failing test.');
    }
    expect(section.join('\n')).toContain('3 of 10  The answer ignored the failing test.');
  });

  it('matches the preview the dashboard shows', async () => {
    const { status, body } = await api<{ subject: string; text: string; html: string }>('/api/v1/insights/email-preview?period=week');

    expect(status).toBe(200);
    expect(body.subject).toBe(mail.subject);
    expect(body.text.trim()).toBe(mail.text.trim());
  });

  it('one email per period, across restarts', async () => {
    await running.server.runInsightsEmails();
    expect(smtp.messages).toHaveLength(2);

    const dataDir = running.dataDir;
    await running.server.close();
    running = await startTestServer({
      dataDir,
      upstreams: { anthropic: provider.url },
      ingestSecret: INGEST_SECRET,
      mail: { smtpUrl: smtp.url, from: 'Tokenwise <tokenwise@example.com>' },
      reportClock: () => NOW,
      insightsIntervalMs: 3_600_000,
      insightsEmailIntervalMs: 3_600_000,
      judgeIntervalMs: 3_600_000,
    });
    await running.server.runInsightsEmails();

    expect(smtp.messages).toHaveLength(2);
    const { body } = await api<{ sends: { status: string; period_start: string }[] }>('/api/v1/insights/email-settings');
    expect(body.sends.map((send) => [send.status, send.period_start])).toEqual([
      ['sent', new Date(WEEK_FROM).toISOString()],
      ['sent', new Date(WEEK_FROM).toISOString()],
    ]);
  });
});

/** Move the judge's scan position back, as if the workspace had turned it on at `fromMs`. */
async function backdateJudge(server: RunningServer, workspaceId: string, fromMs: number): Promise<void> {
  const store = new SqliteStore(server.paths.database);
  try {
    const settings = await store.getJudgeSettings(workspaceId);
    await store.saveJudgeSettings({ ...settings!, scanFromMs: fromMs });
  } finally {
    await store.close();
  }
}
