import { execFile } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdir, mkdtemp, readdir, readFile, rm, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import type { CallRecord } from '@tokenwise/core';
import { FAKE_CREDENTIALS, type FakeProvider, startFakeProvider } from '@tokenwise/testkit';
import { type BrowserContext, chromium, type Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type ServeProcess, startServe } from '../../cli/test/helpers/cli-process.js';

/**
 * The dashboard in real Chromium against a real `tokenwise serve`, whose calls come through its proxy
 * from the fake provider. Every page is saved as a screenshot in both themes at desktop and phone width,
 * under packages/dashboard/test-artifacts/screenshots (ignored by git), for a person to look at.
 */

const CHROMIUM = '/usr/bin/chromium';
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

let upstream: FakeProvider;
let serve: ServeProcess;
let dataDir: string;
let profileDir: string;
let context: BrowserContext;
let page: Page;

describe.skipIf(!haveChromium && !required)('dashboard in Chromium', () => {
  beforeAll(async () => {
    if (!haveChromium) throw new Error(`${CHROMIUM} is missing: install it with apt-get install -y chromium`);
    // `npm install` builds the dashboard; build it again when the sources changed since, so the test never
    // runs an old build.
    if (await buildIsStale()) await promisify(execFile)('npx', ['vite', 'build'], { cwd: packageDir });

    upstream = await startFakeProvider();
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
    context = await chromium.launchPersistentContext(profileDir, {
      executablePath: CHROMIUM,
      headless: true,
      args: [
        '--headless',
        '--no-sandbox',
        '--disable-gpu',
        '--disable-background-networking',
        '--disable-component-update',
        '--disable-sync',
        '--no-first-run',
      ],
      viewport: VIEWPORTS.desktop,
    });
    await context.grantPermissions(['clipboard-read', 'clipboard-write'], { origin: serve.url });
    page = context.pages()[0] ?? (await context.newPage());
    page.on('pageerror', (error) => console.error(`page error: ${error.message}`));
  });

  afterAll(async () => {
    await context?.close();
    await serve?.stop();
    await upstream?.close();
    for (const dir of [dataDir, profileDir]) if (dir) await rm(dir, { recursive: true, force: true });
  });

  it('sets up the owner through the setup link and shows how to connect', async () => {
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
    await expect.poll(() => page.getByRole('heading', { name: 'No calls yet: connect your first AI tool' }).isVisible()).toBe(true);
    expect(await page.getByText(`curl -fsSL ${serve.url}/connect.sh | bash`).count()).toBeGreaterThan(0);
    await shootAll('empty-state');
  });

  it('shows overview totals that match the recorded calls', async () => {
    await seedCalls();
    const calls = await listCalls();
    expect(calls).toHaveLength(7);

    await page.goto(`${serve.url}/`);
    await page.getByRole('heading', { name: 'Overview' }).waitFor();
    const totals = page.getByRole('region', { name: 'Totals' });
    await totals.waitFor();
    await expect.poll(() => statValue('Calls')).toBe(String(calls.length));
    const apiSpend = calls
      .filter((call) => call.cost.basis === 'exact' || call.cost.basis === 'partial')
      .reduce((sum, call) => sum + (call.cost.usd ?? 0), 0);
    expect(apiSpend).toBeGreaterThan(0);
    expect(await statValue('API spend')).toBe(formatUsdLikeTheDashboard(apiSpend));
    await shootAll('overview');
  });

  it('filters the call list by tool and opens a call with its prompt', async () => {
    await page.goto(`${serve.url}/calls`);
    const table = page.getByRole('table', { name: 'Calls, newest first' });
    await table.waitFor();
    await expect.poll(() => table.locator('tbody tr').count()).toBe(7);
    await shootAll('calls');

    const tool = page.getByLabel('Tool', { exact: true });
    if ((await tool.evaluate((element) => element.tagName)) === 'SELECT') await tool.selectOption('codex');
    else {
      await tool.fill('codex');
      await tool.press('Enter');
    }
    await expect.poll(() => table.locator('tbody tr').count()).toBe(2);
    // biome-ignore lint/performance/useDomNodeTextContent: a Playwright locator; innerText is the text a person sees
    for (const row of await table.locator('tbody tr').all()) expect(await row.innerText()).toContain('codex');

    await page.getByRole('button', { name: 'Clear filters' }).click();
    await expect.poll(() => table.locator('tbody tr').count()).toBe(7);
    const row = table.locator('tbody tr', { hasText: 'claude-code' }).first();
    await row.focus();
    await page.keyboard.press('Enter');
    await page.waitForURL(/\/calls\/[0-9a-f-]+$/);
    await page.getByRole('heading', { name: /claude-sonnet-4-5/ }).waitFor();
    await expect.poll(() => page.getByText(CLAUDE_PROMPT_PATTERN).first().isVisible()).toBe(true);
    await page.getByRole('button', { name: 'Copy as curl' }).click();
    const curl = await page.evaluate(() => navigator.clipboard.readText());
    expect(curl).toContain('$TOKENWISE_ROUTE_TOKEN/anthropic/v1/messages');
    expect(curl).not.toContain('FAKE');
    await shootAll('call-detail');
  });

  it('shows a new call live at the top of the list', async () => {
    await page.goto(`${serve.url}/calls`);
    const table = page.getByRole('table', { name: 'Calls, newest first' });
    await expect.poll(() => table.locator('tbody tr').count()).toBe(7);
    await page.getByText('live: new calls appear at the top').waitFor();

    await claudeCall(serve.routeToken, 'A call sent while the page is open', 'live-session-0001');
    await expect.poll(() => table.locator('tbody tr').count()).toBe(8);
  });

  it('opens a session and steps through its calls', async () => {
    await page.goto(`${serve.url}/sessions/${SESSION_CLAUDE}`);
    await page.getByRole('heading', { name: 'Timeline' }).waitFor();
    await expect.poll(() => page.locator('.timeline li').count()).toBe(3);
    await expect.poll(() => page.getByText('Refactor the billing module').first().isVisible()).toBe(true);
    await page.getByRole('button', { name: 'Next call (j)' }).click();
    await expect.poll(() => page.getByText('Write tests for the invoice parser').first().isVisible()).toBe(true);
    await page.keyboard.press('j');
    await expect.poll(() => page.getByText('Explain the retry loop').first().isVisible()).toBe(true);
    await shootAll('session-detail');

    await page.goto(`${serve.url}/sessions`);
    await page.getByRole('heading', { name: 'Sessions' }).waitFor();
    await page.getByRole('link', { name: new RegExp(SESSION_CLAUDE.slice(-12)) }).waitFor();
    await shootAll('sessions');
  });

  it('revokes a device, after which its token is rejected', async () => {
    await page.goto(`${serve.url}/devices`);
    const device = page.getByRole('region', { name: 'Device ci-runner' });
    await device.waitFor();
    await shootAll('devices');

    page.once('dialog', (dialog) => void dialog.accept());
    await device.getByRole('button', { name: 'Revoke' }).click();
    await device.getByText('revoked', { exact: true }).waitFor();
    const rejected = await claudeCall(secondDeviceToken, 'after revocation', 'revoked-session-0001');
    expect(rejected.status).toBe(401);
  });

  it('turns privacy mode on in the settings', async () => {
    await page.goto(`${serve.url}/settings`);
    const privacy = page.getByRole('checkbox', { name: 'Privacy mode' });
    await privacy.waitFor();
    expect(await privacy.isChecked()).toBe(false);
    await shootAll('settings');

    await privacy.check();
    await expect.poll(() => page.getByText(/On: calls are recorded/).isVisible()).toBe(true);
    const me = (await (await ownerApi('/api/v1/me')).json()) as { workspaces: { privacy_mode: boolean }[] };
    expect(me.workspaces[0]!.privacy_mode).toBe(true);
  });

  it('shows the sign-in page in the same style', async () => {
    await page.getByRole('button', { name: 'Sign out' }).click();
    await page.waitForURL(/\/login/);
    await shootAll('login');
    await page.getByLabel('Email').fill(OWNER.email);
    await page.getByLabel('Password').fill(OWNER.password);
    await page.getByRole('button', { name: 'Sign in' }).click();
    await page.getByRole('heading', { name: 'Overview' }).waitFor();
  });
});

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
    expect((await claudeCall(secondDeviceToken, prompt, 'ci-session-00000001')).status).toBe(200);
  }
  await expect.poll(async () => (await listCalls()).length, { timeout: 10_000 }).toBe(7);
}

function claudeCall(routeToken: string, prompt: string, sessionId: string): Promise<Response> {
  return fetch(`${serve.url}/r/${routeToken}/anthropic/v1/messages`, {
    method: 'POST',
    headers: {
      'content-type': 'application/json',
      'x-api-key': FAKE_CREDENTIALS.anthropicApiKey,
      'anthropic-version': '2023-06-01',
      'user-agent': 'claude-cli/2.1.197 (external, cli)',
      'x-claude-code-session-id': sessionId,
    },
    body: JSON.stringify({
      model: 'claude-sonnet-4-5',
      max_tokens: 256,
      system: 'You are a careful coding agent.',
      messages: [{ role: 'user', content: prompt }],
    }),
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

async function listCalls(): Promise<CallRecord[]> {
  return ((await (await ownerApi('/api/v1/calls?limit=1000')).json()) as { calls: CallRecord[] }).calls;
}

async function statValue(label: string): Promise<string> {
  const stat = page.locator('.stat', { has: page.locator('.label', { hasText: new RegExp(`^${label}$`) }) });
  // biome-ignore lint/performance/useDomNodeTextContent: a Playwright locator; innerText is the text a person sees
  return (await stat.locator('.value').innerText()).trim();
}

/** The dashboard's dollar format (lib/format.ts), repeated here so the test states the expected text. */
function formatUsdLikeTheDashboard(value: number): string {
  if (value === 0) return '$0.00';
  if (value >= 1) return `$${value.toFixed(2)}`;
  if (value >= 0.01) return `$${value.toFixed(3)}`;
  return `$${value.toPrecision(2)}`;
}

/** True when the build is missing or older than a source file, index.html or the Vite config. */
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

/** Screenshot the current page in light and dark, at desktop and phone width; leaves it light at desktop width. */
async function shootAll(name: string): Promise<void> {
  for (const [size, viewport] of Object.entries(VIEWPORTS)) {
    await page.setViewportSize(viewport);
    for (const scheme of ['light', 'dark'] as const) {
      await page.emulateMedia({ colorScheme: scheme });
      // Charts redraw on a theme or size change; give them a frame.
      await page.waitForTimeout(150);
      await page.screenshot({ path: join(screenshotDir, `${name}-${scheme}-${size}.png`), fullPage: true });
    }
  }
  await page.setViewportSize(VIEWPORTS.desktop);
  await page.emulateMedia({ colorScheme: 'light' });
}
