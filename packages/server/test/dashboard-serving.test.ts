import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { makeTestDir } from '@tokenwise/testkit';
import { afterEach, beforeAll, describe, expect, it } from 'vitest';
import { setUpOwner } from './helpers/accounts.js';
import { Browser } from './helpers/browser.js';
import { startTestServer, type TestServer } from './helpers/test-server.js';

let running: TestServer | undefined;
let buildDir: string;
const script = `console.log(${JSON.stringify('x'.repeat(4000))});\n`;

beforeAll(async () => {
  buildDir = (await makeTestDir('tokenwise-dashboard-build-')).dir;
  await mkdir(join(buildDir, 'assets'));
  await writeFile(
    join(buildDir, 'index.html'),
    '<!doctype html><html><head><title>Tokenwise</title></head><body><div id="root"></div></body></html>',
  );
  await writeFile(join(buildDir, 'assets', 'index-AbC123.js'), script);
  await writeFile(join(buildDir, 'favicon.svg'), '<svg xmlns="http://www.w3.org/2000/svg"/>');
});

afterEach(async () => {
  await running?.dispose();
  running = undefined;
});

/** Start a server with the build, its owner account already set up, and the owner's signed-in browser. */
async function startWithOwner(): Promise<{ server: TestServer; browser: Browser }> {
  // The owner is set up on the plain pages, whose home page setUpOwner checks, then the server restarts with the build.
  const plain = await startTestServer();
  const owner = await setUpOwner(plain.server);
  await plain.server.close();
  running = await startTestServer({ dataDir: plain.dataDir, dashboardDir: buildDir });
  const browser = new Browser(running.server.url);
  for (const name of ['tokenwise_session', 'tokenwise_csrf']) {
    const value = owner.browser.cookie(name);
    if (value) browser.setCookie(name, value);
  }
  return { server: running, browser };
}

describe('dashboard build', () => {
  it('serves hashed assets for a year, compressed when accepted', async () => {
    running = await startTestServer({ dashboardDir: buildDir });
    const url = `${running.server.url}/assets/index-AbC123.js`;

    const plain = await fetch(url, { headers: { 'accept-encoding': 'identity' } });
    expect(plain.status).toBe(200);
    expect(plain.headers.get('content-type')).toBe('text/javascript; charset=utf-8');
    expect(plain.headers.get('cache-control')).toBe('public, max-age=31536000, immutable');
    expect(plain.headers.get('content-security-policy')).toContain("script-src 'self'");
    expect(await plain.text()).toBe(script);

    const gzip = await fetch(url, { headers: { 'accept-encoding': 'gzip' } });
    expect(gzip.headers.get('content-encoding')).toBe('gzip');
    expect(await gzip.text()).toBe(script);

    const again = await fetch(url, { headers: { 'if-none-match': plain.headers.get('etag')! } });
    expect(again.status).toBe(304);
  });

  it('revalidates files without a hash in their name', async () => {
    running = await startTestServer({ dashboardDir: buildDir });
    const response = await fetch(`${running.server.url}/favicon.svg`);
    expect(response.status).toBe(200);
    expect(response.headers.get('cache-control')).toBe('no-cache');
  });

  it('serves only files of the build', async () => {
    running = await startTestServer({ dashboardDir: buildDir });
    for (const path of ['/assets/missing.js', '/assets/../index.html', '/index.html', '/assets/%2e%2e/index.html']) {
      const response = await fetch(`${running.server.url}${path}`);
      expect(response.status, path).toBe(404);
    }
  });

  it('shows the setup hint before the owner account exists', async () => {
    running = await startTestServer({ dashboardDir: buildDir });
    const page = await new Browser(running.server.url).get('/calls');
    expect(page.status).toBe(503);
    expect(page.text).toContain('Tokenwise is not set up yet');
  });

  it('sends a signed-out browser to sign in and back', async () => {
    const { server } = await startWithOwner();
    const page = await new Browser(server.server.url).get('/sessions/abc');
    expect(page.url).toMatch(/\/login\?next=%2Fsessions%2Fabc$/);
  });

  it('answers the app routes with index.html and a working CSRF token', async () => {
    const { browser } = await startWithOwner();

    const appPaths = ['/', '/calls', '/calls/0196', '/sessions', '/sessions/s-1', '/prompts', '/prompts/g-1', '/devices', '/budgets'];
    for (const path of [...appPaths, '/settings']) {
      const page = await browser.get(path);
      expect(page.status, path).toBe(200);
      expect(page.text, path).toContain('<div id="root">');
      expect(page.headers.get('cache-control'), path).toBe('no-store');
      expect(page.headers.get('content-security-policy'), path).toContain("frame-ancestors 'none'");
    }

    const me = (await (await browser.api('GET', '/api/v1/me')).json()) as { workspaces: { id: string }[] };
    const changed = await browser.api('PATCH', `/api/v1/workspaces/${me.workspaces[0]!.id}`, { privacy_mode: true });
    expect(changed.status).toBe(200);
  });

  it('gives browsers the app for unknown paths', async () => {
    const { browser } = await startWithOwner();
    const html = { accept: 'text/html,application/xhtml+xml,*/*;q=0.8' };

    for (const path of ['/nope', '/Calls', '/calls/a/b']) {
      const page = await browser.get(path, html);
      expect(page.status, path).toBe(200);
      expect(page.text, path).toContain('<div id="root">');
    }

    const slash = await browser.get('/settings/?tab=1', html);
    expect(slash.url).toMatch(/\/settings\?tab=1$/);
    expect(slash.text).toContain('<div id="root">');
  });

  it('keeps JSON 404s for API clients and missing files', async () => {
    const { server, browser } = await startWithOwner();
    const html = { accept: 'text/html' };
    const cases: [string, Record<string, string>][] = [
      ['/nope', {}],
      ['/nope', { accept: 'application/json' }],
      ['/favicon.ico', html],
      ['/api/v1/nope', html],
      ['/metrics/x', html],
      ['/connect.zsh', html],
      ['/assets/missing.js', html],
    ];
    for (const [path, headers] of cases) {
      const page = await browser.get(path, headers);
      expect(page.status, path).toBe(404);
      expect(page.headers.get('content-type'), path).toContain('application/json');
    }

    const posted = await fetch(`${server.server.url}/nope`, { method: 'POST', headers: html });
    expect(posted.status).toBe(404);
    expect(((await posted.json()) as { error: { message: string } }).error.message).toContain('nothing at /nope');
  });

  it('keeps the plain home page without a build', async () => {
    running = await startTestServer({ dashboardDir: join(buildDir, 'missing') });
    const owner = await setUpOwner(running.server);

    expect((await owner.browser.get('/')).text).toContain('Signed in as Ada');
    expect((await owner.browser.get('/calls')).status).toBe(404);
  });
});
