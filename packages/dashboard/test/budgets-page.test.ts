import { execFile } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdir, mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import type { CallRecord } from '@tokenwise/core';
import { type FakeProvider, startFakeProvider } from '@tokenwise/testkit';
import type { BrowserContext, Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { anthropicCall, startTestServer, type TestServer } from '../../server/test/helpers/test-server.js';
import { formatUsd } from '../src/lib/format.js';
import { CHROMIUM, createOwnerAccount, launchBrowser } from './helpers/browser.js';

/**
 * The Budgets page in real Chromium against `serve` in this process. The page is built into a directory of
 * this test's own, so a concurrent build by another test cannot swap files under it.
 */

const required = process.env.TOKENWISE_E2E === 'required';
const haveChromium = existsSync(CHROMIUM);
if (!haveChromium && !required) console.warn(`Skipping the Budgets page browser test: ${CHROMIUM} is missing (apt-get install chromium).`);

const packageDir = fileURLToPath(new URL('..', import.meta.url));
const screenshotDir = join(packageDir, 'test-artifacts', 'screenshots');
const OWNER = { email: 'ada@example.com', name: 'Ada', password: 'correct horse battery' };

let upstream: FakeProvider;
let server: TestServer;
let buildDir: string;
let profileDir: string;
let context: BrowserContext;
let page: Page;

describe.skipIf(!haveChromium && !required)('Budgets page in Chromium', () => {
  beforeAll(async () => {
    if (!haveChromium) throw new Error(`${CHROMIUM} is missing: install it with apt-get install -y chromium`);
    buildDir = await mkdtemp(join(tmpdir(), 'tokenwise-budgets-web-'));
    await promisify(execFile)('npx', ['vite', 'build', '--outDir', buildDir, '--emptyOutDir'], { cwd: packageDir });

    upstream = await startFakeProvider();
    server = await startTestServer({ upstreams: { anthropic: upstream.url }, dashboardDir: buildDir });
    profileDir = await mkdtemp(join(tmpdir(), 'tokenwise-chromium-budgets-'));
    await mkdir(screenshotDir, { recursive: true });
    ({ context, page } = await launchBrowser(profileDir, { width: 1280, height: 800 }));
  }, 120_000);

  afterAll(async () => {
    await context?.close();
    await server?.dispose();
    await upstream?.close();
    for (const dir of [buildDir, profileDir]) if (dir) await rm(dir, { recursive: true, force: true });
  });

  it('creates budget, shows its spend', async () => {
    await createOwnerAccount(page, server.server.setupUrl!, `${server.server.url}/`, OWNER);

    const response = await anthropicCall(server.server.url, server.server.routeToken);
    expect(response.status).toBe(200);
    await response.arrayBuffer();
    let callUsd = 0;
    await expect
      .poll(
        async () => {
          const { calls } = (await (await server.api('/api/v1/calls')).json()) as { calls: CallRecord[] };
          callUsd = calls[0]?.cost.usd ?? 0;
          return callUsd;
        },
        { timeout: 10_000 },
      )
      .toBeGreaterThan(0);

    await page.getByRole('link', { name: 'Budgets' }).click();
    await page.getByRole('heading', { name: 'Budgets', level: 1 }).waitFor();
    await expect.poll(() => page.getByText('No budgets yet. Create one below.').isVisible(), { timeout: 10_000 }).toBe(true);

    await page.getByLabel('Name (optional)').fill('Team daily');
    await page.getByLabel('Amount (USD)').fill('5');
    await page.getByLabel('Reject further calls at the amount').check();
    await page.getByRole('button', { name: 'Create budget' }).click();

    const row = page.getByRole('row', { name: /Team daily/ });
    await row.waitFor();
    // biome-ignore lint/performance/useDomNodeTextContent: innerText of a Playwright locator is the rendered text
    const text = await row.innerText();
    expect(text).toContain('API spend per day, whole workspace');
    expect(text).toContain(`${formatUsd(callUsd)} of $5.00`);
    expect(text).toContain('within budget');
    expect(text).toContain('calls rejected (429)');

    const failClosed = page.getByLabel('Reject calls while blocking budgets cannot be checked');
    await failClosed.check();
    await expect.poll(() => page.getByText('On: calls get 503 until the database is back').isVisible(), { timeout: 10_000 }).toBe(true);
    // A switch may show its new state before the server responds, so wait for the stored setting.
    await expect
      .poll(
        async () => {
          const { workspaces } = (await (await server.api('/api/v1/workspaces')).json()) as {
            workspaces: { budgets_fail_closed: boolean }[];
          };
          return workspaces[0]?.budgets_fail_closed;
        },
        { timeout: 10_000 },
      )
      .toBe(true);

    expect(await page.getByText('No alerts yet.').isVisible()).toBe(true);
    await page.screenshot({ path: join(screenshotDir, 'budgets.png'), fullPage: true });
  });

  it('lists budgets and alerts past one page', async () => {
    // One more than the API's default page size of 100. Each budget is less than the call made above,
    // so the alert job records a threshold and a limit alert for each.
    const CREATED = 101;
    for (let index = 0; index < CREATED; index += 1) {
      const response = await server.api('/api/v1/budgets', {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ name: `Runner ${index}`, period: 'day', amount_usd: 0.000001 }),
      });
      expect(response.status).toBe(201);
    }
    await server.server.runBudgetAlerts();

    await page.reload();
    const budgets = page.getByRole('region', { name: 'Budgets', exact: true });
    const alerts = page.getByRole('region', { name: 'Alerts', exact: true });
    await budgets.getByRole('row', { name: new RegExp(`Runner ${CREATED - 1}\\b`) }).waitFor();
    await alerts.getByText('The newest 100 alerts.').waitFor();
    const budgetRows = budgets.locator('tbody tr');

    // The budget created in the browser, then the ones created here.
    expect(await budgetRows.count()).toBe(CREATED + 1);
    expect(await alerts.locator('tbody tr').count()).toBe(100);
  });
});
