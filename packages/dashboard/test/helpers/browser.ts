import { type BrowserContext, chromium, type Page } from 'playwright-core';

/** Debian's Chromium, which `.ci/run` installs. */
export const CHROMIUM = '/usr/bin/chromium';

/** Flags that keep a headless Chromium from contacting any host of its own accord. */
export const CHROMIUM_ARGS = [
  '--headless',
  '--no-sandbox',
  '--disable-gpu',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
  '--no-first-run',
];

/** Launch Chromium with a profile in `profileDir` and return its context and first page, which logs page errors. */
export async function launchBrowser(
  profileDir: string,
  viewport: { width: number; height: number },
): Promise<{ context: BrowserContext; page: Page }> {
  const context = await chromium.launchPersistentContext(profileDir, {
    executablePath: CHROMIUM,
    headless: true,
    args: CHROMIUM_ARGS,
    viewport,
  });
  const page = context.pages()[0] ?? (await context.newPage());
  page.on('pageerror', (error) => console.error(`page error: ${error.message}`));
  return { context, page };
}

/** Create the owner account through the one-time setup link and wait for the dashboard at `homeUrl`. */
export async function createOwnerAccount(
  page: Page,
  setupUrl: string,
  homeUrl: string,
  owner: { email: string; name: string; password: string },
): Promise<void> {
  await page.goto(setupUrl);
  await page.getByLabel('Email').fill(owner.email);
  await page.getByLabel('Name').fill(owner.name);
  await page.getByLabel('Password (at least 10 characters)').fill(owner.password);
  await page.getByLabel('Repeat the password').fill(owner.password);
  await page.getByRole('button', { name: 'Create account' }).click();
  await page.waitForURL(homeUrl);
}
