import { execFile } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdir, mkdtemp, readdir, readFile, rm, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import type { CallRecord } from '@tokenwise/core';
import { FAKE_CREDENTIALS, type FakeProvider, startFakeProvider } from '@tokenwise/testkit';
import { type Browser, type BrowserContext, chromium, type Locator, type Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type ServeProcess, startServe } from '../../cli/test/helpers/cli-process.js';
import { CHROMIUM, CHROMIUM_ARGS, launchBrowser } from './helpers/browser.js';

/**
 * The dashboard in real Chromium against a real `tokenwise serve`, whose calls come through its proxy
 * from the fake provider. Every page is saved as a screenshot in both themes at desktop and phone width,
 * under packages/dashboard/test-artifacts/screenshots (ignored by git), for a person to look at.
 */

const required = process.env.TOKENWISE_E2E === 'required';
const haveChromium = existsSync(CHROMIUM);
if (!haveChromium && !required) {
  console.warn(
    `Skipping the dashboard browser tests: ${CHROMIUM} is missing (apt-get install chromium). TOKENWISE_E2E=required makes this a failure.`,
  );
}

const packageDir = fileURLToPath(new URL('..', import.meta.url));
const buildIndex = join(packageDir, 'dist', 'web', 'index.html');
const screenshotDir = join(packageDir, 'test-artifacts', 'screenshots');
const VIEWPORTS = { desktop: { width: 1280, height: 800 }, phone: { width: 390, height: 844 } } as const;
const OWNER = { email: 'ada@example.com', name: 'Ada', password: 'correct horse battery' };
const GUEST = { email: 'grace@example.com', name: 'Grace', password: 'another good password' };
/** A system prompt of 41 lines, longer than the conversation view shows unfolded. */
const LONG_SYSTEM_PROMPT = [
  'You are a careful coding agent.',
  ...Array.from({ length: 40 }, (_, index) => `Rule ${index + 1}: keep each change small.`),
].join('\n');
let upstream: FakeProvider;
let serve: ServeProcess;
let dataDir: string;
let profileDir: string;
let context: BrowserContext;
let page: Page;

describe.skipIf(!haveChromium && !required)('dashboard in Chromium', () => {
  beforeAll(async () => {
    if (!haveChromium) throw new Error(`${CHROMIUM} is missing: install it with apt-get install -y chromium`);
    // `npm install` builds the dashboard. Build it again when the sources changed since, so the test never
    // runs an old build.
    if (await buildIsStale()) await promisify(execFile)('npx', ['vite', 'build'], { cwd: packageDir });

    upstream = await startFakeProvider({ extraResponseHeaders: RATE_LIMIT_HEADERS });
    dataDir = await mkdtemp(join(tmpdir(), 'tokenwise-dashboard-e2e-'));
    serve = await startServe([
      '--port',
      '0',
      '--data-dir',
      dataDir,
      '--upstream',
      `anthropic=${upstream.url}`,
      '--upstream',
      `openai=${upstream.url}`,
    ]);

    profileDir = await mkdtemp(join(tmpdir(), 'tokenwise-chromium-'));
    await mkdir(screenshotDir, { recursive: true });
    ({ context, page } = await launchBrowser(profileDir, VIEWPORTS.desktop));
    await context.grantPermissions(['clipboard-read', 'clipboard-write'], { origin: serve.url });
  });

  afterAll(async () => {
    await context?.close();
    await serve?.stop();
    await upstream?.close();
    for (const dir of [dataDir, profileDir]) if (dir) await rm(dir, { recursive: true, force: true });
  });

  it('setup link creates the owner', async () => {
    const setupUrl = /(http:\/\/\S+\/setup\?code=twu_\S+)/.exec(serve.stderr())?.[1];
    expect(setupUrl).toBeDefined();

    await page.goto(setupUrl!);
    await shoot('setup');
    await page.getByLabel('Email').fill(OWNER.email);
    await page.getByLabel('Name').fill(OWNER.name);
    await page.getByLabel('Password (at least 10 characters)').fill(OWNER.password);
    await page.getByLabel('Repeat the password').fill(OWNER.password);
    await page.getByRole('button', { name: 'Create account' }).click();

    await page.waitForURL(`${serve.url}/`);
    await poll(() => page.getByRole('heading', { name: 'No calls yet: connect your first AI tool' }).isVisible()).toBe(true);
    expect(await page.getByText(`curl -fsSL ${serve.url}/connect.sh | bash`).count()).toBeGreaterThan(0);
    await shootAll('empty-state');
  });

  it('overview totals match recorded calls', async () => {
    await seedCalls();
    const calls = await listCalls();
    expect(calls).toHaveLength(7);

    await page.goto(`${serve.url}/`);
    await page.getByRole('heading', { name: 'Overview' }).waitFor();
    const totals = page.getByRole('region', { name: 'Totals' });
    await totals.waitFor();
    await poll(() => statValue('Calls')).toBe(String(calls.length));
    const apiSpend = calls
      .filter((call) => call.cost.basis === 'exact' || call.cost.basis === 'partial')
      .reduce((sum, call) => sum + (call.cost.usd ?? 0), 0);
    expect(apiSpend).toBeGreaterThan(0);
    expect(await statValue('API spend')).toBe(formatUsdLikeTheDashboard(apiSpend));
    // The ci-runner's calls bill a Claude subscription: shown apart, never added to the API spend.
    const equivalent = calls.filter((call) => call.cost.basis === 'api_equivalent').reduce((sum, call) => sum + (call.cost.usd ?? 0), 0);
    expect(equivalent).toBeGreaterThan(0);
    expect(await statValue('Subscription, API-equivalent')).toBe(formatUsdLikeTheDashboard(equivalent));
    await shootAll('overview');

    await page.getByRole('button', { name: 'Cache read', exact: true }).click();
    await page.getByRole('heading', { name: 'Cache read tokens by tool' }).waitFor();
    expect(new URL(page.url()).searchParams.get('metric')).toBe('cache_read');

    await page.getByLabel('Stack by').selectOption('model');
    await page.getByRole('heading', { name: 'By model', exact: true }).waitFor();
    await page.getByRole('link', { name: 'gpt-5-2025-08-07' }).first().waitFor();

    await page.getByRole('button', { name: 'Yesterday' }).click();
    const today = new Date();
    today.setHours(0, 0, 0, 0);
    const yesterday = new Date(today);
    yesterday.setDate(today.getDate() - 1);
    // Zero unless the test runs just after midnight, when the calls made a moment ago were yesterday's.
    const madeYesterday = calls.filter((call) => new Date(call.started_at) >= yesterday && new Date(call.started_at) < today);
    await poll(() => statValue('Calls')).toBe(String(madeYesterday.length));

    await page.getByRole('button', { name: 'Custom' }).click();
    const now = new Date();
    await page.getByLabel('From', { exact: true }).fill(localInput(new Date(now.getTime() - 3_600_000)));
    await page.getByLabel('To', { exact: true }).fill(localInput(new Date(now.getTime() + 3_600_000)));
    await page.getByRole('button', { name: 'Apply' }).click();
    await poll(() => statValue('Calls')).toBe(String(calls.length));
    expect(new URL(page.url()).searchParams.get('from')).toBe(localInput(new Date(now.getTime() - 3_600_000)));
  });

  it('call list filters and opens calls', async () => {
    await page.goto(`${serve.url}/calls`);
    const table = page.getByRole('table', { name: 'Calls, newest first' });
    await table.waitFor();
    await poll(() => table.locator('tbody tr').count()).toBe(7);
    await shootAll('calls');

    await page.getByLabel('Tool', { exact: true }).selectOption('codex');
    await poll(() => table.locator('tbody tr').count()).toBe(2);
    // biome-ignore lint/performance/useDomNodeTextContent: innerText of a Playwright locator is the rendered text
    for (const row of await table.locator('tbody tr').all()) expect(await row.innerText()).toContain('codex');

    await page.getByRole('button', { name: 'Clear filters' }).click();
    await poll(() => table.locator('tbody tr').count()).toBe(7);
    const row = table.locator('tbody tr', { hasText: 'claude-code' }).first();
    await row.focus();
    await page.keyboard.press('Enter');
    await page.waitForURL(/\/calls\/[0-9a-f-]+$/);
    await page.getByRole('heading', { name: /claude-sonnet-4-5/ }).waitFor();
    await poll(() => page.getByText(CLAUDE_PROMPT_PATTERN).first().isVisible()).toBe(true);
    await page.getByRole('button', { name: 'Copy as curl' }).click();
    const curl = await page.evaluate(() => navigator.clipboard.readText());
    expect(curl).toContain('$TOKENWISE_ROUTE_TOKEN/anthropic/v1/messages');
    expect(curl).not.toContain('FAKE');
    await shootAll('call-detail');
  });

  it('call list shows new calls live', async () => {
    await page.goto(`${serve.url}/calls`);
    const table = page.getByRole('table', { name: 'Calls, newest first' });
    await poll(() => table.locator('tbody tr').count()).toBe(7);
    await page.getByText('live: new calls appear at the top').waitFor();

    await claudeCall(serve.routeToken, 'A call sent while the page is open', 'live-session-0001');
    await poll(() => table.locator('tbody tr').count()).toBe(8);
  });

  it('call list search, columns and export', async () => {
    await page.goto(`${serve.url}/calls`);
    const table = page.getByRole('table', { name: 'Calls, newest first' });
    await poll(() => table.locator('tbody tr').count()).toBe(8);

    await page.getByLabel('Search prompts').fill('INVOICE parser');
    await page.getByRole('button', { name: 'Search', exact: true }).click();
    await poll(() => table.locator('tbody tr').count()).toBe(1);
    await page.getByRole('button', { name: 'Clear filters' }).click();
    await poll(() => table.locator('tbody tr').count()).toBe(8);

    const headers = () => table.locator('thead th').allInnerTexts();
    expect(await headers()).not.toContain('Call id');
    await page.getByText('Columns', { exact: true }).click();
    await page.getByLabel('Call id column').check();
    await page.getByLabel('Latency column').uncheck();
    await poll(headers).toContain('Call id');
    expect(await headers()).not.toContain('Latency');
    // The choice is kept for the next visit.
    await page.reload();
    await poll(headers).toContain('Call id');
    expect(await headers()).not.toContain('Latency');

    await page.getByLabel('Tool', { exact: true }).selectOption('codex');
    await poll(() => table.locator('tbody tr').count()).toBe(2);
    const jsonl = await download(page.getByRole('link', { name: 'Export JSON Lines' }));
    const exported = jsonl
      .trim()
      .split('\n')
      .map((line) => JSON.parse(line) as CallRecord);
    expect(exported.map((call) => call.tool)).toEqual(['codex', 'codex']);
    const csv = await download(page.getByRole('link', { name: 'Export CSV' }));
    expect(csv.split('\n')[0]).toContain('tool');
    expect(csv.match(/,codex,/g)).toHaveLength(2);
  });

  it('conversation renders images, thinking, tools', async () => {
    const call = await recordCall(() =>
      claudeRequest(serve.routeToken, 'rich-session-0001', {
        model: 'claude-sonnet-4-5',
        max_tokens: 256,
        system: LONG_SYSTEM_PROMPT,
        tools: [
          {
            name: 'Bash',
            description: 'Run a shell command.',
            input_schema: { type: 'object', properties: { command: { type: 'string' } } },
          },
        ],
        messages: [
          {
            role: 'user',
            content: [
              { type: 'text', text: 'Why does this chart look wrong?' },
              { type: 'image', source: { type: 'base64', media_type: 'image/png', data: TINY_PNG } },
            ],
          },
          {
            role: 'assistant',
            content: [
              { type: 'thinking', thinking: 'The axis labels overlap; check the tick formatter first.', signature: 'c2ln' },
              { type: 'tool_use', id: 'toolu_e2e_1', name: 'Bash', input: { command: 'cat chart.ts' } },
            ],
          },
          { role: 'user', content: [{ type: 'tool_result', tool_use_id: 'toolu_e2e_1', content: 'export const ticks = 12;' }] },
        ],
      }),
    );

    await page.goto(`${serve.url}/calls/${call.id}`);
    await page.getByText('Why does this chart look wrong?').waitFor();
    const image = page.getByRole('img', { name: 'image/png image' });
    await image.waitFor();
    expect(await image.evaluate((element) => (element as HTMLImageElement).naturalWidth)).toBeGreaterThan(0);
    await page.getByText('The axis labels overlap; check the tick formatter first.').waitFor();
    await page.getByText('cat chart.ts').waitFor();
    await page.getByText('export const ticks = 12;').waitFor();
    // A long system prompt shows its beginning until the person requests all of it.
    await page.getByText('Rule 1: keep each change small.', { exact: false }).waitFor();
    expect(await page.getByText('Rule 40: keep each change small.', { exact: false }).count()).toBe(0);
    await page.getByRole('button', { name: 'Show all 41 lines' }).click();
    await page.getByText('Rule 40: keep each change small.', { exact: false }).waitFor();
    await page.getByRole('button', { name: 'Show less' }).click();
    // Tool definitions start folded.
    const definitions = page.locator('details', { has: page.getByText('1 tool definition') });
    expect(await definitions.getAttribute('open')).toBeNull();
    await shootAll('call-detail-rich');

    await page.getByRole('tab', { name: 'Raw request' }).click();
    await page.getByText('"tool_use_id": "toolu_e2e_1"').waitFor();
    await page.getByRole('tab', { name: 'Headers' }).click();
    await page.getByText('anthropic-version').first().waitFor();
    // biome-ignore lint/performance/useDomNodeTextContent: innerText of a Playwright locator is the rendered text
    expect(await page.locator('main').innerText()).not.toContain('FAKE');
  });

  it('large body loads on open', async () => {
    const large = `Review this log:\n${'GET /api/v1/calls 200 12ms\n'.repeat(12_000)}`;
    expect(Buffer.byteLength(large)).toBeGreaterThan(300 * 1024);
    const call = await recordCall(() => claudeCall(serve.routeToken, large, 'large-session-0001'));

    const detail = (await (await ownerApi(`/api/v1/calls/${call.id}/detail`)).json()) as {
      bodies: { request: { text: string | null; url: string } };
    };
    expect(detail.bodies.request.text).toBeNull();

    const bodyRequest = page.waitForResponse((response) => response.url().endsWith(detail.bodies.request.url));
    await page.goto(`${serve.url}/calls/${call.id}`);
    expect((await bodyRequest).status()).toBe(200);
    await page.getByText('Review this log:', { exact: false }).first().waitFor();
  });

  it('session view steps through calls', async () => {
    await page.goto(`${serve.url}/sessions/${SESSION_CLAUDE}`);
    await page.getByRole('heading', { name: 'Timeline' }).waitFor();
    await poll(() => page.locator('.timeline li').count()).toBe(3);
    await poll(() => page.getByText('Refactor the billing module').first().isVisible()).toBe(true);
    await page.getByRole('button', { name: 'Next call (j)' }).click();
    await poll(() => page.getByText('Write tests for the invoice parser').first().isVisible()).toBe(true);
    await page.keyboard.press('j');
    await poll(() => page.getByText('Explain the retry loop').first().isVisible()).toBe(true);
    await shootAll('session-detail');

    await page.goto(`${serve.url}/sessions`);
    await page.getByRole('heading', { name: 'Sessions' }).waitFor();
    await page.getByRole('link', { name: new RegExp(SESSION_CLAUDE.slice(-12)) }).waitFor();
    await shootAll('sessions');
  });

  it('revoked device token is rejected', async () => {
    await page.goto(`${serve.url}/devices`);
    const device = page.getByRole('region', { name: 'Device ci-runner' });
    await device.waitFor();
    await device.getByText('Rate limits and plan usage').waitFor();
    await device.getByText('plan 5h window').waitFor();
    await device.getByText(/^25% used/).waitFor();
    expect(await page.getByText(`curl -fsSL ${serve.url}/connect.sh | bash`).count()).toBe(1);
    await shootAll('devices');

    page.once('dialog', (dialog) => void dialog.accept());
    await device.getByRole('button', { name: 'Revoke' }).click();
    await device.getByText('revoked', { exact: true }).waitFor();
    const rejected = await claudeCall(secondDeviceToken, 'after revocation', 'revoked-session-0001');
    expect(rejected.status).toBe(401);
  });

  it('creates and revokes an invite link', async () => {
    await page.goto(`${serve.url}/settings`);
    const members = page.getByRole('region', { name: 'Members' });
    await members.getByRole('cell', { name: OWNER.email }).waitFor();

    const invites = page.getByRole('region', { name: 'Invites' });
    await invites.getByLabel('Email (optional: only this address can accept)').fill('grace@example.com');
    await invites.getByRole('button', { name: 'Create invite link' }).click();
    // biome-ignore lint/performance/useDomNodeTextContent: innerText of a Playwright locator is the rendered text
    const link = await invites.locator('.copy-line code').innerText();
    expect(link).toMatch(new RegExp(`^${serve.url}/invite`));
    await invites.getByRole('cell', { name: 'grace@example.com' }).waitFor();

    await invites.getByRole('button', { name: 'Revoke' }).click();
    await invites.getByText('No open invite.').waitFor();
  });

  it('invites, promotes and removes a member', async () => {
    await page.goto(`${serve.url}/settings`);
    const invites = page.getByRole('region', { name: 'Invites' });
    await invites.getByRole('button', { name: 'Create invite link' }).click();
    // biome-ignore lint/performance/useDomNodeTextContent: innerText of a Playwright locator is the rendered text
    const link = await invites.locator('.copy-line code').innerText();

    // The invited person uses a browser of their own, so no cookie of the owner's session is shared.
    const guestBrowser: Browser = await chromium.launch({ executablePath: CHROMIUM, headless: true, args: CHROMIUM_ARGS });
    try {
      const guest = await (await guestBrowser.newContext({ viewport: VIEWPORTS.desktop })).newPage();
      await guest.goto(link);
      await guest.getByText('You are invited to join the workspace "local" as member.').waitFor();
      await guest.getByLabel('Email').fill(GUEST.email);
      await guest.getByLabel('Name').fill(GUEST.name);
      await guest.getByLabel('Password (at least 10 characters)').fill(GUEST.password);
      await guest.getByLabel('Repeat the password').fill(GUEST.password);
      await guest.getByRole('button', { name: 'Create account' }).click();
      await guest.waitForURL(`${serve.url}/`);
      await guest.getByRole('region', { name: 'Totals' }).waitFor();

      const guestMe = (await (await guest.request.get(`${serve.url}/api/v1/me`)).json()) as {
        csrf_token: string;
        workspaces: { id: string; name: string; role: string }[];
      };
      expect(guestMe.workspaces.map((workspace) => [workspace.name, workspace.role])).toEqual([['local', 'member']]);
      const workspaceHeader = { 'x-tokenwise-workspace': guestMe.workspaces[0]!.id };
      const guestGet = async (path: string) => (await guest.request.get(`${serve.url}${path}`, { headers: workspaceHeader })).status();
      const created = await guest.request.post(`${serve.url}/api/v1/api-tokens`, {
        headers: { ...workspaceHeader, 'x-csrf-token': guestMe.csrf_token },
        data: { name: 'grace script' },
      });
      expect(created.status()).toBe(201);
      const guestApiToken = ((await created.json()) as { token: string }).token;
      expect(await guestGet('/api/v1/invites')).toBe(403);

      await page.reload();
      const members = page.getByRole('region', { name: 'Members' });
      const guestRow = members.getByRole('row', { name: new RegExp(GUEST.email) });
      await guestRow.waitFor();
      await guestRow.getByLabel(`Role of ${GUEST.name}`).selectOption('owner');
      await poll(() => memberRoles()).toEqual({ [OWNER.email]: 'owner', [GUEST.email]: 'owner' });
      expect(await guestGet('/api/v1/invites')).toBe(200);

      page.once('dialog', (dialog) => void dialog.accept());
      await guestRow.getByRole('button', { name: 'Remove' }).click();
      await guestRow.waitFor({ state: 'detached' });
      expect(await memberRoles()).toEqual({ [OWNER.email]: 'owner' });

      // The removed person keeps the account but reads nothing of the workspace any more.
      for (const path of ['/api/v1/calls', '/api/v1/members', '/api/v1/devices', '/api/v1/overview']) {
        expect(await guestGet(path), path).toBe(404);
      }
      const withToken = await fetch(`${serve.url}/api/v1/calls`, { headers: { authorization: `Bearer ${guestApiToken}` } });
      expect(withToken.status).toBe(401);
      await guest.reload();
      await guest.getByRole('heading', { name: 'No workspace' }).waitFor();
    } finally {
      await guestBrowser.close();
    }
  });

  it('custom price re-prices past calls', async () => {
    await page.goto(`${serve.url}/settings`);
    const prices = page.getByRole('region', { name: 'Custom prices' });
    await prices.getByLabel('Model').fill('gpt-5');
    await prices.getByLabel('Effective from').fill(localInput(new Date(Date.now() - 86_400_000)).slice(0, 10));
    await prices.getByLabel('Input $/MTok').fill('100');
    await prices.getByLabel('Output $/MTok').fill('100');
    await prices.getByRole('button', { name: 'Add price' }).click();
    await prices.getByRole('cell', { name: 'gpt-5', exact: true }).waitFor();

    await prices.getByRole('button', { name: 'Re-price past calls' }).click();
    await prices.getByText('Re-priced 2 calls.').waitFor();
    const codex = (await listCalls()).filter((call) => call.tool === 'codex');
    expect(codex.map((call) => call.cost.price_source?.startsWith('custom:'))).toEqual([true, true]);
  });

  it('second workspace and switching', async () => {
    await page.goto(`${serve.url}/settings`);
    const workspaces = page.getByRole('region', { name: 'Workspaces' });
    await workspaces.getByLabel('New workspace').fill('Side project');
    await workspaces.getByRole('button', { name: 'Create' }).click();
    await workspaces.getByText('Side project (shown now)').waitFor();

    // A new workspace has no calls: every page shows how to connect a first tool to it.
    await page.getByRole('link', { name: 'Overview' }).click();
    await page.getByRole('heading', { name: 'No calls yet: connect your first AI tool' }).waitFor();
    await page.getByRole('link', { name: 'Calls' }).click();
    await page.getByRole('heading', { name: 'No calls yet: connect your first AI tool' }).waitFor();

    await page.getByLabel('Workspace', { exact: true }).selectOption({ label: 'local' });
    await page.getByRole('link', { name: 'Overview' }).click();
    await page.getByRole('region', { name: 'Totals' }).waitFor();
    await poll(() => statValue('Calls')).not.toBe('0');
  });

  it('settings turn privacy mode on', async () => {
    await page.goto(`${serve.url}/settings`);
    const privacy = page.getByRole('checkbox', { name: 'Privacy mode' });
    await privacy.waitFor();
    expect(await privacy.isChecked()).toBe(false);
    await shootAll('settings');

    await privacy.check();
    await poll(() => page.getByText(/On: calls are recorded/).isVisible()).toBe(true);
    // The switch shows its new state before the server responds, so wait for the stored setting.
    await poll(async () => {
      const me = (await (await ownerApi('/api/v1/me')).json()) as { workspaces: { name: string; privacy_mode: boolean }[] };
      return me.workspaces.find((workspace) => workspace.name === 'local')!.privacy_mode;
    }).toBe(true);

    // A call made now keeps no body, and the pages explain why instead of showing an empty conversation.
    const call = await recordCall(() => claudeCall(serve.routeToken, 'A private prompt', 'private-session-0001'));
    await page.goto(`${serve.url}/calls/${call.id}`);
    await page.getByText('The workspace is in privacy mode, so its bodies are not stored.').waitFor();
    expect(await page.getByText('A private prompt').count()).toBe(0);
    await shoot('call-detail-privacy');
    await page.goto(`${serve.url}/calls`);
    await page.getByText('Privacy mode is on for this workspace.').waitFor();
  });

  it('sign-in page shares the style', async () => {
    await page.getByRole('button', { name: 'Sign out' }).click();
    await page.waitForURL(/\/login/);
    await shootAll('login');
    await page.getByLabel('Email').fill(OWNER.email);
    await page.getByLabel('Password').fill(OWNER.password);
    await page.getByRole('button', { name: 'Sign in' }).click();
    await page.getByRole('heading', { name: 'Overview' }).waitFor();
  });

  it('shows devices beyond one page', async () => {
    // The API returns 100 devices per page by default. These make the list longer than one page.
    for (let index = 0; index < 100; index += 1) {
      const created = await ownerApi('/api/v1/route-tokens', {
        method: 'POST',
        body: JSON.stringify({ name: `build-agent-${index}` }),
        headers: { 'content-type': 'application/json' },
      });
      expect(created.status).toBe(201);
    }
    const listed = (await (await ownerApi('/api/v1/devices?limit=500')).json()) as { devices: { name: string }[] };
    expect(listed.devices.length).toBeGreaterThan(100);

    await page.goto(`${serve.url}/devices`);
    await page.getByRole('region', { name: 'Device build-agent-0' }).waitFor();
    await poll(() => page.getByRole('region', { name: /^Device / }).count()).toBe(listed.devices.length);
    await page.getByRole('region', { name: 'Device build-agent-99' }).waitFor();
  });
});

/** Rate-limit headers of every fake response, as Anthropic sends them to a Claude subscription. */
const RATE_LIMIT_HEADERS = {
  'anthropic-ratelimit-unified-status': 'allowed',
  'anthropic-ratelimit-unified-5h-utilization': '0.25',
  'anthropic-ratelimit-unified-5h-reset': String(Math.floor(Date.now() / 1000) + 3 * 3600),
};
/** A 1×1 PNG. */
const TINY_PNG = 'iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNkYPhfDwAChwGA60e6kgAAAABJRU5ErkJggg==';
const SESSION_CLAUDE = '5c1e0a52-7d1b-4c3e-9a0f-2b8d6e4f1a01';
/** Every prompt the seeded Claude Code calls send, from either device. */
const CLAUDE_PROMPT_PATTERN =
  /Refactor the billing module|Write tests for the invoice parser|Explain the retry loop|Summarise the changelog|Draft the release notes/;
const SESSION_CODEX = '0199b0c4-2f6e-7a41-8c3d-5e9f1a2b3c4d';
let secondDeviceToken = '';

/** Record seven calls through the proxy: a Claude Code session of three, a Codex session of two, and two from a second device. */
async function seedCalls(): Promise<void> {
  const prompts = ['Refactor the billing module', 'Write tests for the invoice parser', 'Explain the retry loop'];
  for (const prompt of prompts) expect((await claudeCall(serve.routeToken, prompt, SESSION_CLAUDE)).status).toBe(200);
  for (const prompt of ['List the files', 'Run the tests'])
    expect((await codexCall(serve.routeToken, prompt, SESSION_CODEX)).status).toBe(200);

  const created = await ownerApi('/api/v1/route-tokens', {
    method: 'POST',
    body: JSON.stringify({ name: 'ci-runner' }),
    headers: { 'content-type': 'application/json' },
  });
  expect(created.status).toBe(201);
  secondDeviceToken = ((await created.json()) as { token: string }).token;
  for (const prompt of ['Summarise the changelog', 'Draft the release notes']) {
    expect((await claudeCall(secondDeviceToken, prompt, 'ci-session-00000001', true)).status).toBe(200);
  }
  await poll(async () => (await listCalls()).length).toBe(7);
}

function claudeCall(routeToken: string, prompt: string, sessionId: string, subscription = false): Promise<Response> {
  return claudeRequest(
    routeToken,
    sessionId,
    {
      model: 'claude-sonnet-4-5',
      max_tokens: 256,
      system: 'You are a careful coding agent.',
      messages: [{ role: 'user', content: prompt }],
    },
    subscription,
  );
}

/** Send a Messages request as Claude Code does: with an API key, or with a Claude subscription's OAuth token. */
function claudeRequest(routeToken: string, sessionId: string, body: unknown, subscription = false): Promise<Response> {
  const credential: Record<string, string> = subscription
    ? { authorization: `Bearer ${FAKE_CREDENTIALS.anthropicOauth}` }
    : { 'x-api-key': FAKE_CREDENTIALS.anthropicApiKey };
  return fetch(`${serve.url}/r/${routeToken}/anthropic/v1/messages`, {
    method: 'POST',
    headers: {
      'content-type': 'application/json',
      ...credential,
      'anthropic-version': '2023-06-01',
      'user-agent': 'claude-cli/2.1.197 (external, cli)',
      'x-claude-code-session-id': sessionId,
    },
    body: JSON.stringify(body),
  });
}

function codexCall(routeToken: string, prompt: string, sessionId: string): Promise<Response> {
  return fetch(`${serve.url}/r/${routeToken}/openai/v1/responses`, {
    method: 'POST',
    headers: {
      'content-type': 'application/json',
      authorization: `Bearer ${FAKE_CREDENTIALS.openaiApiKey}`,
      'user-agent': 'codex_cli_rs/0.171.0 (Debian 12; x86_64) xterm-256color',
      originator: 'codex_cli_rs',
      'session-id': sessionId,
    },
    body: JSON.stringify({
      model: 'gpt-5-codex',
      instructions: 'You are Codex.',
      input: [{ role: 'user', content: [{ type: 'input_text', text: prompt }] }],
      stream: false,
    }),
  });
}

async function ownerApi(path: string, init: RequestInit = {}): Promise<Response> {
  const info = JSON.parse(await readFile(join(dataDir, 'server.json'), 'utf8')) as { api_token: string };
  return fetch(`${serve.url}${path}`, { ...init, headers: { ...init.headers, authorization: `Bearer ${info.api_token}` } });
}

/** Read the role of each member of the owner's workspace, by email. */
async function memberRoles(): Promise<Record<string, string>> {
  const body = (await (await ownerApi('/api/v1/members')).json()) as { members: { email: string; role: string }[] };
  return Object.fromEntries(body.members.map((member) => [member.email, member.role]));
}

async function listCalls(): Promise<CallRecord[]> {
  return ((await (await ownerApi('/api/v1/calls?limit=1000')).json()) as { calls: CallRecord[] }).calls;
}

/** Send one call through the proxy, wait until it is stored, and return its record. */
async function recordCall(send: () => Promise<Response>): Promise<CallRecord> {
  const before = (await listCalls()).length;
  expect((await send()).status).toBe(200);
  let calls: CallRecord[] = [];
  await expect
    .poll(
      async () => {
        calls = await listCalls();
        return calls.length;
      },
      { timeout: 10_000 },
    )
    .toBe(before + 1);
  return calls[0]!;
}

/** Fetch what a download link points at, with the page's session cookie. */
async function download(link: Locator): Promise<string> {
  const href = await link.getAttribute('href');
  expect(href).not.toBeNull();
  const response = await page.request.get(new URL(href!, serve.url).toString());
  expect(response.status()).toBe(200);
  expect(response.headers()['content-disposition']).toMatch(/^attachment/);
  return response.text();
}

/** Format a date as a datetime-local input takes it, in the browser's (and this process's) time zone. */
function localInput(date: Date): string {
  const pad = (value: number) => String(value).padStart(2, '0');
  return `${date.getFullYear()}-${pad(date.getMonth() + 1)}-${pad(date.getDate())}T${pad(date.getHours())}:${pad(date.getMinutes())}`;
}

/**
 * Poll with `expect.poll` and room for a loaded machine. A call goes through the proxy, the store and the
 * live stream before the page shows it, and each step waits for a busy CPU.
 */
function poll<T>(read: () => T | Promise<T>) {
  return expect.poll(read, { timeout: 10_000 });
}

async function statValue(label: string): Promise<string> {
  const stat = page.locator('.stat', { has: page.locator('.label', { hasText: new RegExp(`^${label}$`) }) });
  // biome-ignore lint/performance/useDomNodeTextContent: innerText of a Playwright locator is the rendered text
  return (await stat.locator('.value').innerText()).trim();
}

/** Format dollars as the dashboard does (lib/format.ts), repeated here so the test states the expected text. */
function formatUsdLikeTheDashboard(value: number): string {
  if (value === 0) return '$0.00';
  if (value >= 1) return `$${value.toFixed(2)}`;
  if (value >= 0.01) return `$${value.toFixed(3)}`;
  return `$${value.toPrecision(2)}`;
}

/** Check whether the build is missing or older than a source file, index.html or the Vite config. */
async function buildIsStale(): Promise<boolean> {
  if (!existsSync(buildIndex)) return true;
  const built = (await stat(buildIndex)).mtimeMs;
  const sources = [join(packageDir, 'index.html'), join(packageDir, 'vite.config.ts')];
  for (const entry of await readdir(join(packageDir, 'src'), { recursive: true, withFileTypes: true })) {
    if (entry.isFile()) sources.push(join(entry.parentPath, entry.name));
  }
  for (const source of sources) if ((await stat(source)).mtimeMs > built) return true;
  return false;
}

async function shoot(name: string): Promise<void> {
  await page.screenshot({ path: join(screenshotDir, `${name}.png`), fullPage: true });
}

/** Screenshot the current page in light and dark, at desktop and phone width. Leaves it light at desktop width. */
async function shootAll(name: string): Promise<void> {
  for (const [size, viewport] of Object.entries(VIEWPORTS)) {
    await page.setViewportSize(viewport);
    for (const scheme of ['light', 'dark'] as const) {
      await page.emulateMedia({ colorScheme: scheme });
      // Charts redraw on a theme or size change, so give them a frame.
      await page.waitForTimeout(150);
      await page.screenshot({ path: join(screenshotDir, `${name}-${scheme}-${size}.png`), fullPage: true });
    }
    // Wide tables scroll inside their own box, so the page itself never scrolls sideways.
    const pageWidth = await page.evaluate(() => document.documentElement.scrollWidth);
    expect(pageWidth, `${name} at ${size} width`).toBeLessThanOrEqual(viewport.width);
  }
  await page.setViewportSize(VIEWPORTS.desktop);
  await page.emulateMedia({ colorScheme: 'light' });
}
