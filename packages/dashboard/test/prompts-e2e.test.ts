import { execFile } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { existsSync } from 'node:fs';
import { mkdir, mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import type { CallBodies, CallRecord } from '@tokenwise/core';
import type { BrowserContext, Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startTestServer, type TestServer } from '../../server/test/helpers/test-server.js';
import { CHROMIUM, createOwnerAccount, launchBrowser } from './helpers/browser.js';

/**
 * The Prompts pages in real Chromium against a real `tokenwise serve` seeded with a week of Claude Code
 * calls through its ingest endpoint (the one the Cloudflare Worker uses, which keeps each call's start
 * time). The system prompt changes midweek with Claude Code 2.1.198: an edited instruction, a changed
 * tool and a new one, and more input tokens per call. Some calls fail.
 */

const required = process.env.TOKENWISE_E2E === 'required';
const haveChromium = existsSync(CHROMIUM);
if (!haveChromium && !required) {
  console.warn(
    `Skipping the Prompts page browser tests: ${CHROMIUM} is missing (apt-get install chromium). TOKENWISE_E2E=required makes this a failure.`,
  );
}

const packageDir = fileURLToPath(new URL('..', import.meta.url));
const screenshotDir = join(packageDir, 'test-artifacts', 'screenshots');
const INGEST_SECRET = 'prompts-e2e-ingest-secret-0123456789abcdef';
const OWNER = { email: 'ada@example.com', name: 'Ada', password: 'correct horse battery' };
const DAY = 86_400_000;
const IDENTITY = "You are Claude Code, Anthropic's official CLI for Claude.";

let running: TestServer;
let buildDir: string;
let profileDir: string;
let context: BrowserContext;
let page: Page;
/** The seeded calls, oldest first. */
let seeded: { record: CallRecord; bodies: CallBodies }[];

interface Version {
  toolVersion: string;
  instructions: string[];
  tools: { name: string; description: string }[];
  inputTokens: number;
  usd: number;
}

const V1: Version = {
  toolVersion: '2.1.197',
  instructions: ['You are an interactive CLI tool that helps users with software engineering tasks.', '', '# Tone', 'Be concise.'],
  tools: [
    { name: 'Bash', description: 'Run a shell command.' },
    { name: 'Read', description: 'Read a file.' },
  ],
  inputTokens: 40_000,
  usd: 0.12,
};
const V2: Version = {
  toolVersion: '2.1.198',
  instructions: [
    'You are an interactive CLI tool that helps users with software engineering tasks.',
    '',
    '# Tone',
    'Be concise and direct.',
    'Run the tests after each change.',
  ],
  tools: [
    { name: 'Bash', description: 'Run a shell command in the sandbox.' },
    { name: 'Read', description: 'Read a file.' },
    { name: 'WebFetch', description: 'Fetch a web page.' },
  ],
  inputTokens: 60_000,
  usd: 0.18,
};

/** Build a Claude Code request body from one of two folders, dated like the call. */
function requestBody(version: Version, startedAt: Date, index: number): string {
  const folder = index % 2 === 0 ? '/home/ada/src/payments' : '/home/ada/src/website';
  return JSON.stringify({
    model: 'claude-sonnet-4-5',
    max_tokens: 32_000,
    stream: true,
    system: [
      {
        type: 'text',
        text: `x-anthropic-billing-header: cc_version=${version.toolVersion}.${(index % 16).toString(16)}a1; cc_entrypoint=cli;`,
      },
      { type: 'text', text: IDENTITY },
      {
        type: 'text',
        text: [
          ...version.instructions,
          '',
          '<env>',
          `Working directory: ${folder}`,
          `Today's date: ${startedAt.toISOString().slice(0, 10)}`,
          '</env>',
        ].join('\n'),
      },
    ],
    tools: version.tools.map((tool) => ({ ...tool, input_schema: { type: 'object', properties: { value: { type: 'string' } } } })),
    messages: [{ role: 'user', content: `task ${index}` }],
  });
}

type Outcome = 'ok' | 'error' | 'max_tokens' | 'truncated';

/** The status and stop reasons of each outcome, as the capture records them. */
const OUTCOMES: Record<
  Outcome,
  { status: CallRecord['status']; stopReason: string | null; normalized: CallRecord['stop_reason_normalized'] }
> = {
  ok: { status: 'success', stopReason: 'end_turn', normalized: 'end' },
  error: { status: 'error', stopReason: null, normalized: null },
  max_tokens: { status: 'success', stopReason: 'max_tokens', normalized: 'max_tokens' },
  truncated: { status: 'truncated', stopReason: null, normalized: null },
};

function call(workspaceId: string, deviceId: string, version: Version, startedAt: Date, index: number, outcome: Outcome) {
  const failed = outcome === 'error';
  const record: CallRecord = {
    id: randomUUID(),
    started_at: startedAt.toISOString(),
    workspace_id: workspaceId,
    device_id: deviceId,
    route: 'anthropic',
    provider: 'anthropic',
    api_shape: 'anthropic.messages',
    method: 'POST',
    path: '/v1/messages',
    tool: 'claude-code',
    tool_version: version.toolVersion,
    user_agent: `claude-cli/${version.toolVersion} (external, cli)`,
    session_id: `session-${Math.floor(index / 5)}`,
    stream_requested: true,
    streaming: !failed,
    stream_format: failed ? null : 'sse',
    model_requested: 'claude-sonnet-4-5',
    model_answered: failed ? null : 'claude-sonnet-4-5-20250929',
    http_status: failed ? 529 : 200,
    status: OUTCOMES[outcome].status,
    error: failed ? { type: 'overloaded_error', message: 'Overloaded', source: 'http', retry_after_s: null } : null,
    billable: !failed,
    usage: {
      input_tokens: failed ? 0 : version.inputTokens,
      uncached_input_tokens: failed ? 0 : version.inputTokens / 10,
      cache_read_tokens: failed ? 0 : (version.inputTokens * 9) / 10,
      cache_write_tokens: 0,
      cache_write_5m_tokens: null,
      cache_write_1h_tokens: null,
      output_tokens: failed ? 0 : 800,
      reasoning_tokens: null,
      web_search_requests: failed ? 0 : null,
    },
    stop_reason: OUTCOMES[outcome].stopReason,
    stop_reason_normalized: OUTCOMES[outcome].normalized,
    tool_calls: 0,
    server_tool_calls: {},
    timing: { ttft_ms: failed ? null : 900, total_ms: 4000, headers_ms: 300 },
    upstream_request_id: null,
    response_id: null,
    cost: failed
      ? { usd: 0, basis: 'none', price_key: null, breakdown: {}, price_data_version: null }
      : { usd: version.usd, basis: 'exact', price_key: 'claude-sonnet-4-5', breakdown: { input: version.usd }, price_data_version: null },
    request_bytes: 4000,
    response_bytes: 2000,
  };
  const text = requestBody(version, startedAt, index);
  const bodies: CallBodies = {
    request: { text, bytes: text.length, truncated: false, content_type: 'application/json', encoding_error: null },
    response: null,
    request_headers: { 'content-type': 'application/json' },
    response_headers: {},
  };
  return { record, bodies };
}

/** Ten calls a day for a week. The prompt changes after three and a half days. */
function seedWeek(workspaceId: string, deviceId: string, now: number) {
  const outcomes: Record<number, Outcome> = { 12: 'max_tokens', 44: 'error', 51: 'error', 63: 'truncated' };
  return Array.from({ length: 70 }, (_, index) => {
    // The first call starts an hour inside the page's default range of seven days.
    const startedAt = new Date(now - 7 * DAY + 3_600_000 + index * (DAY / 10));
    return call(workspaceId, deviceId, index < 35 ? V1 : V2, startedAt, index, outcomes[index] ?? 'ok');
  });
}

describe.skipIf(!haveChromium && !required)('Prompts pages in Chromium', () => {
  beforeAll(async () => {
    if (!haveChromium) throw new Error(`${CHROMIUM} is missing: install it with apt-get install -y chromium`);
    // A build of this checkout's pages of its own, so a stale dist/web never hides them.
    buildDir = await mkdtemp(join(tmpdir(), 'tokenwise-prompts-web-'));
    await promisify(execFile)('npx', ['vite', 'build', '--outDir', buildDir, '--emptyOutDir'], { cwd: packageDir });

    running = await startTestServer({ dashboardDir: buildDir, ingestSecret: INGEST_SECRET, insightsIntervalMs: 3_600_000 });
    const me = (await (await running.api('/api/v1/me')).json()) as { workspaces: { id: string }[] };
    const devices = (await (await running.api('/api/v1/devices')).json()) as { devices: { id: string }[] };
    const calls = seedWeek(me.workspaces[0]!.id, devices.devices[0]!.id, Date.now());
    seeded = calls;
    for (let start = 0; start < calls.length; start += 50) {
      const response = await fetch(`${running.server.url}/api/v1/ingest`, {
        method: 'POST',
        headers: { authorization: `Bearer ${INGEST_SECRET}`, 'content-type': 'application/json' },
        body: JSON.stringify({ calls: calls.slice(start, start + 50) }),
      });
      expect(response.status).toBe(200);
    }
    await running.server.runInsights();

    profileDir = await mkdtemp(join(tmpdir(), 'tokenwise-chromium-'));
    await mkdir(screenshotDir, { recursive: true });
    ({ context, page } = await launchBrowser(profileDir, { width: 1280, height: 900 }));

    await createOwnerAccount(page, running.server.setupUrl!, `${running.server.url}/`, OWNER);
  });

  afterAll(async () => {
    await context?.close();
    await running?.dispose();
    for (const dir of [buildDir, profileDir]) if (dir) await rm(dir, { recursive: true, force: true });
  });

  it('lists prompt, versions and insights', async () => {
    await page.getByRole('link', { name: 'Prompts', exact: true }).click();
    const table = page.getByRole('table', { name: 'Prompt groups, most expensive first' });
    await table.waitFor();
    const row = table.locator('tbody tr', { hasText: `claude-code: ${IDENTITY}` });

    expect(await row.count()).toBe(1);
    const cells = await row.locator('td').allInnerTexts();
    expect(cells[1]).toBe('2');
    expect(cells[2]).toMatch(/^70 /);
    expect(cells[2]).toContain('2 errors');
    const insights = page.getByRole('region', { name: 'Insights' });
    await expect.poll(() => insights.getByText('New prompt version of "claude-code').count()).toBe(1);
    expect(await insights.getByText(/Cost per call of "claude-code.*" rose 50%/).count()).toBe(1);
    await page.screenshot({ path: join(screenshotDir, 'prompts.png'), fullPage: true });
  });

  it('shows version diff and cost change', async () => {
    await page
      .getByRole('table', { name: 'Prompt groups, most expensive first' })
      .getByRole('link', { name: `claude-code: ${IDENTITY}` })
      .click();
    const versions = page.getByRole('table', { name: 'Prompt versions, oldest first' });
    await versions.waitFor();

    const rows = await versions.locator('tbody tr').allInnerTexts();
    expect(rows).toHaveLength(2);
    expect(rows[0]).toContain('2.1.197');
    expect(rows[1]).toContain('2.1.198');
    expect(rows[1]).toContain('tools added: WebFetch');

    const metrics = page.getByRole('table', { name: 'Metrics before and after the change' });
    await metrics.waitFor();
    // biome-ignore lint/performance/useDomNodeTextContent: innerText of a Playwright locator is the rendered text
    expect(await metrics.locator('tr', { hasText: 'Cost per call' }).innerText()).toContain('+50.0%');
    const instructions = page.getByRole('region', { name: 'Instructions diff' });
    expect(await instructions.locator('[data-change="added"]', { hasText: 'Run the tests after each change.' }).count()).toBe(1);
    expect(await instructions.locator('[data-change="removed"]', { hasText: 'Be concise.' }).count()).toBe(1);
    expect(await page.getByText(/^Added: WebFetch · Removed: none · Unchanged: 1$/).count()).toBe(1);
    await page.screenshot({ path: join(screenshotDir, 'prompt-group.png'), fullPage: true });
  });

  it('marks failing calls with scores', async () => {
    const calls = page.getByRole('table', { name: 'Calls of this prompt, newest first' });
    await calls.waitFor();

    expect(await calls.locator('tbody tr').count()).toBe(70);
    expect(await calls.locator('.badge', { hasText: 'Provider error' }).count()).toBe(2);
    expect(await calls.locator('.badge', { hasText: 'Cut at max tokens' }).count()).toBe(1);
    expect(await calls.locator('.badge', { hasText: 'Stream cut' }).count()).toBe(1);
  });

  it('call list and detail show scores', async () => {
    const cut = seeded.find((entry) => entry.record.status === 'truncated')!.record;
    const overloaded = seeded.filter((entry) => entry.record.status === 'error').at(-1)!.record;
    const newest = seeded.at(-1)!.record;
    await page.getByRole('link', { name: 'Calls', exact: true }).click();
    const table = page.getByRole('table', { name: 'Calls, newest first' });
    await table.waitFor();
    const rowOf = (id: string) => table.locator('tbody tr', { has: page.locator(`a[href="/calls/${id}"]`) });

    await expect.poll(() => rowOf(cut.id).locator('.badge', { hasText: 'Stream cut' }).count()).toBe(1);
    expect(await rowOf(overloaded.id).locator('.badge', { hasText: 'Provider error' }).count()).toBe(1);
    expect(await rowOf(newest.id).getByText('passed', { exact: true }).count()).toBe(1);
    expect(await rowOf(newest.id).locator('.badge', { hasText: 'Stream cut' }).count()).toBe(0);
    await page.screenshot({ path: join(screenshotDir, 'calls-scores.png') });

    await rowOf(cut.id).locator('td').first().click();
    await page.waitForURL(`${running.server.url}/calls/${cut.id}`);
    const scores = page.getByRole('region', { name: 'Scores' });
    await expect.poll(() => scores.locator('.badge', { hasText: 'Stream cut' }).count()).toBe(1);
    expect(await scores.getByText('Stream cut: status truncated').count()).toBe(1);
    expect(await scores.getByRole('link', { name: 'Prompt group of this call' }).count()).toBe(1);
    await page.screenshot({ path: join(screenshotDir, 'call-detail-scores.png'), fullPage: true });
  });
});
