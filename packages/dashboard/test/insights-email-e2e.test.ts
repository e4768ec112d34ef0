import { execFile } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { existsSync } from 'node:fs';
import { mkdir, mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import type { CallRecord } from '@tokenwise/core';
import { FAKE_CREDENTIALS } from '@tokenwise/testkit';
import type { BrowserContext, Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startTestServer, type TestServer } from '../../server/test/helpers/test-server.js';
import { CHROMIUM, createOwnerAccount, launchBrowser } from './helpers/browser.js';

/**
 * The insights email and LLM judge settings in real Chromium against a real `tokenwise serve`: choosing a
 * frequency, the preview of the weekly email in its sandboxed frame (with the email's own inline styles,
 * which the dashboard's own policy forbids), and turning the judge on.
 */

const required = process.env.TOKENWISE_E2E === 'required';
const haveChromium = existsSync(CHROMIUM);
if (!haveChromium && !required) {
  console.warn(
    `Skipping the insights email browser tests: ${CHROMIUM} is missing (apt-get install chromium). TOKENWISE_E2E=required makes this a failure.`,
  );
}

const packageDir = fileURLToPath(new URL('..', import.meta.url));
const screenshotDir = join(packageDir, 'test-artifacts', 'screenshots');
const INGEST_SECRET = 'insights-email-e2e-ingest-secret-0123456789';
const OWNER = { email: 'ada@example.com', name: 'Ada', password: 'correct horse battery' };
const DAY = 86_400_000;

let running: TestServer;
let buildDir: string;
let profileDir: string;
let context: BrowserContext;
let page: Page;

/** Four calls in each of the last two full weeks (Monday to Monday, UTC), the later ones dearer. */
function lastTwoWeeks(workspaceId: string, deviceId: string): { record: CallRecord; bodies: null }[] {
  const todayMs = Math.floor(Date.now() / DAY) * DAY;
  const weekFrom = todayMs - ((new Date(todayMs).getUTCDay() + 6) % 7) * DAY - 7 * DAY;
  return Array.from({ length: 8 }, (_, index) => {
    const at = weekFrom + (index < 4 ? -7 * DAY : 0) + (index % 4) * DAY + 3_600_000;
    const usd = index < 4 ? 0.5 : 1.25;
    const record: CallRecord = {
      id: randomUUID(),
      started_at: new Date(at).toISOString(),
      workspace_id: workspaceId,
      device_id: deviceId,
      route: 'anthropic',
      provider: 'anthropic',
      api_shape: 'anthropic.messages',
      method: 'POST',
      path: '/v1/messages',
      tool: 'claude-code',
      tool_version: '2.1.197',
      user_agent: 'claude-cli/2.1.197 (external, cli)',
      session_id: `session-${index % 2}`,
      stream_requested: false,
      streaming: false,
      stream_format: null,
      model_requested: 'claude-sonnet-4-5',
      model_answered: 'claude-sonnet-4-5-20250929',
      http_status: 200,
      status: 'success',
      error: null,
      billable: true,
      usage: {
        input_tokens: 1000,
        uncached_input_tokens: 1000,
        cache_read_tokens: 0,
        cache_write_tokens: 0,
        cache_write_5m_tokens: null,
        cache_write_1h_tokens: null,
        output_tokens: 100,
        reasoning_tokens: null,
        web_search_requests: null,
      },
      stop_reason: 'end_turn',
      stop_reason_normalized: 'end',
      tool_calls: 0,
      server_tool_calls: {},
      timing: { ttft_ms: null, total_ms: 1000, headers_ms: 300 },
      upstream_request_id: null,
      response_id: null,
      cost: { usd, basis: 'exact', price_key: 'claude-sonnet-4-5', breakdown: { input: usd }, price_data_version: null },
      request_bytes: 500,
      response_bytes: 300,
    };
    return { record, bodies: null };
  });
}

describe.skipIf(!haveChromium && !required)('Insights email settings in Chromium', () => {
  beforeAll(async () => {
    if (!haveChromium) throw new Error(`${CHROMIUM} is missing: install it with apt-get install -y chromium`);
    // A build of this checkout's pages of its own, so a stale dist/web never hides them.
    buildDir = await mkdtemp(join(tmpdir(), 'tokenwise-insights-email-web-'));
    await promisify(execFile)('npx', ['vite', 'build', '--outDir', buildDir, '--emptyOutDir'], { cwd: packageDir });

    running = await startTestServer({
      dashboardDir: buildDir,
      ingestSecret: INGEST_SECRET,
      judgeApiKey: FAKE_CREDENTIALS.anthropicApiKey,
      insightsIntervalMs: 3_600_000,
      insightsEmailIntervalMs: 3_600_000,
      judgeIntervalMs: 3_600_000,
    });
    const me = (await (await running.api('/api/v1/me')).json()) as { workspaces: { id: string }[] };
    const devices = (await (await running.api('/api/v1/devices')).json()) as { devices: { id: string }[] };
    const response = await fetch(`${running.server.url}/api/v1/ingest`, {
      method: 'POST',
      headers: { authorization: `Bearer ${INGEST_SECRET}`, 'content-type': 'application/json' },
      body: JSON.stringify({ calls: lastTwoWeeks(me.workspaces[0]!.id, devices.devices[0]!.id) }),
    });
    expect(response.status).toBe(200);

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

  it('sets the frequencies', async () => {
    await page.goto(`${running.server.url}/settings`);
    const section = page.getByRole('region', { name: 'Insights email' });
    await section.waitFor();

    expect(await section.getByLabel('For everyone in this workspace').inputValue()).toBe('weekly');
    await section.getByLabel('For you (ada@example.com)').selectOption('daily');

    await expect.poll(async () => (await (await running.api('/api/v1/insights/email-settings')).json()).workspace_frequency).toBe('weekly');
    const mine = await page.evaluate(async () => (await fetch('/api/v1/insights/email-settings')).json());
    expect(mine).toMatchObject({ my_frequency: 'daily', effective_frequency: 'daily' });
    expect(await section.getByText('This server sends no email').count()).toBe(1);
  });

  it('previews the weekly email with its own styles', async () => {
    const section = page.getByRole('region', { name: 'Insights email' });
    await section.getByRole('button', { name: 'Show the preview' }).click();
    const frame = page.frameLocator('iframe[title="Preview of the insights email"]');
    await frame.locator('h1').waitFor();

    const preview = (await (await running.api('/api/v1/insights/email-preview?period=week')).json()) as { subject: string; text: string };
    expect(await frame.locator('h1').textContent()).toBe('Tokenwise weekly insights: local');
    const spend = /^Spend: .*$/m.exec(preview.text)![0];
    expect(spend).toBe('Spend: $5.00 (+150%; before: $2.00)');
    expect(await frame.getByText(spend).count()).toBe(1);
    // The email's inline styles apply inside the frame, though the dashboard's own policy forbids them.
    const background = await frame.locator('body').evaluate((body) => getComputedStyle(body).backgroundColor);
    expect(background).toBe('rgb(245, 246, 248)');
    await section.screenshot({ path: join(screenshotDir, 'insights-email-preview.png') });
  });

  it('turns the judge on', async () => {
    const section = page.getByRole('region', { name: 'LLM judge' });
    await section.getByLabel('Judge sampled calls').check();

    await expect.poll(async () => (await (await running.api('/api/v1/judge/settings')).json()).judge.enabled).toBe(true);
    expect(await section.getByText("The judge's own calls: 0, costing $0.00.", { exact: false }).count()).toBe(1);
    await section.getByLabel('Calls judged (%)').fill('25');
    await section.getByRole('button', { name: 'Save the judge' }).click();
    await expect.poll(async () => (await (await running.api('/api/v1/judge/settings')).json()).judge.sample_rate).toBe(0.25);
    await section.screenshot({ path: join(screenshotDir, 'judge-settings.png') });
  });

  it("scrolls to the email's settings link", async () => {
    await page.goto(`${running.server.url}/settings#insights-email`);
    const section = page.getByRole('region', { name: 'Insights email' });
    await section.waitFor();

    // The section sits below the privacy, members, invites, workspaces and prices sections.
    await expect.poll(async () => Math.abs((await section.boundingBox())!.y)).toBeLessThan(50);
    expect(await section.getByLabel('For you (ada@example.com)').isVisible()).toBe(true);
  });

  it('shows its own page for an unknown path', async () => {
    await page.goto(`${running.server.url}/no-such-page`);

    await page.getByRole('heading', { name: 'Page not found' }).waitFor();
    expect(await page.getByRole('link', { name: 'Go to the overview' }).count()).toBe(1);
  });

  it('fits the default call columns at 1280 px', async () => {
    await page.setViewportSize({ width: 1280, height: 800 });
    // The calls this test stored are one and two weeks old.
    await page.goto(`${running.server.url}/calls?range=30d`);
    await page.locator('.grid-table th').first().waitFor();

    const fit = await page.locator('.grid-table').evaluate((element) => ({
      scroll: element.scrollWidth,
      client: element.clientWidth,
      clippedHeaders: Array.from(element.querySelectorAll('th'))
        .filter((th) => th.scrollWidth > th.clientWidth)
        .map((th) => th.textContent),
    }));
    expect(fit.scroll).toBeLessThanOrEqual(fit.client);
    expect(fit.clippedHeaders).toEqual([]);
  });

  it('wraps the navigation on a phone', async () => {
    await page.setViewportSize({ width: 390, height: 844 });
    await page.goto(`${running.server.url}/settings`);
    const links = page.getByRole('navigation', { name: 'Main' }).getByRole('link');
    await links.first().waitFor();

    const rightEdges = await links.evaluateAll((elements) => elements.map((element) => element.getBoundingClientRect().right));
    expect(rightEdges).toHaveLength(7);
    for (const right of rightEdges) expect(right).toBeLessThanOrEqual(390);
    await page.setViewportSize({ width: 1280, height: 900 });
  });

  // Runs last: it deletes the only workspace of the signed-in owner.
  it('creates a workspace after the last one was deleted', async () => {
    const deleted = await page.evaluate(async () => {
      const csrf = document.querySelector<HTMLMetaElement>('meta[name="csrf-token"]')!.content;
      const me = (await (await fetch('/api/v1/me')).json()) as { workspaces: { id: string }[] };
      const response = await fetch(`/api/v1/workspaces/${me.workspaces[0]!.id}`, { method: 'DELETE', headers: { 'x-csrf-token': csrf } });
      return response.status;
    });
    expect(deleted).toBe(200);

    await page.goto(`${running.server.url}/`);
    await page.getByRole('heading', { name: 'No workspace' }).waitFor();
    await page.getByLabel('Workspace name').fill('Fresh start');
    await page.getByRole('button', { name: 'Create a workspace' }).click();

    await page.getByRole('heading', { name: 'Overview' }).waitFor();
    const me = await page.evaluate(async () => (await fetch('/api/v1/me')).json());
    expect(me.workspaces.map((workspace: { name: string }) => workspace.name)).toEqual(['Fresh start']);
  });
});
