import { mkdtemp, rm } from 'node:fs/promises';
import { request } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { CallBodies, CallRecord } from '@tokenwise/core';
import { SqliteStore } from '@tokenwise/storage';
import { type FakeProvider, startFakeProvider } from '@tokenwise/testkit';
import Database from 'better-sqlite3';
import { afterAll, afterEach, beforeAll, describe, expect, it, vi } from 'vitest';
import { invitePerson, type Person, pairDevice, sendPrompt, setUpOwner } from './helpers/accounts.js';
import { Browser, csrfTokenOf } from './helpers/browser.js';
import { startTestServer, type TestServer } from './helpers/test-server.js';

let upstream: FakeProvider;
let running: TestServer;

beforeAll(async () => {
  upstream = await startFakeProvider();
});

afterAll(async () => {
  await upstream.close();
});

afterEach(async () => {
  await running?.dispose();
});

const start = async (options: Parameters<typeof startTestServer>[0] = {}) => {
  running = await startTestServer({ upstreams: { anthropic: upstream.url }, ...options });
  return running;
};

/** Send a GET with a `Host` header of our choice, which `fetch` does not allow, and return the status. */
function statusWithHost(serverUrl: string, path: string, host: string, cookie = ''): Promise<number> {
  const { hostname, port } = new URL(serverUrl);
  return new Promise((resolve, reject) => {
    const req = request({ hostname, port, path, headers: { host, cookie } }, (res) => {
      res.resume();
      resolve(res.statusCode ?? 0);
    });
    req.on('error', reject);
    req.end();
  });
}

/** A page's text without the parts that differ on every request: CSRF tokens and echoed field values. */
const comparable = (text: string) => text.replace(/value="[^"]*"/g, 'value=""');

describe('first start', () => {
  it('shows only the setup hint until the owner account exists', async () => {
    const { server } = await start();
    const browser = new Browser(server.url);

    for (const path of ['/', '/login', '/device', '/invite?token=x']) {
      const page = await browser.get(path);
      expect(page.status, path).toBe(503);
      expect(page.text, path).toContain('Tokenwise is not set up yet');
    }
  });

  it('rejects a wrong setup code and accepts the printed one once', async () => {
    const { server } = await start();
    const browser = new Browser(server.url);

    expect((await browser.get('/setup?code=twu_wrong')).status).toBe(403);
    const owner = await setUpOwner(server);
    expect(owner.workspaceId).toBeTruthy();

    const again = await new Browser(server.url).get(new URL(server.setupUrl!).pathname + new URL(server.setupUrl!).search);
    expect(again.url).toMatch(/\/login$/);
  });

  it('prints a new setup link on each start until it is used, then none', async () => {
    const dataDir = await mkdtemp(join(tmpdir(), 'tokenwise-setup-'));
    const first = await startTestServer({ dataDir });
    const firstLink = first.server.setupUrl;
    await first.dispose();

    running = await startTestServer({ dataDir });
    expect(running.server.setupUrl).not.toBe(firstLink);
    const stale = new URL(firstLink!);
    expect((await new Browser(running.server.url).get(stale.pathname + stale.search)).status).toBe(403);
    await setUpOwner(running.server);
    await running.dispose();

    running = await startTestServer({ dataDir });
    expect(running.server.setupUrl).toBeNull();
    await running.dispose();
    await rm(dataDir, { recursive: true, force: true });
  });

  it('keeps the local route token and owner API token working', async () => {
    const { server } = await start();
    await setUpOwner(server);

    expect((await sendPrompt(server.url, server.routeToken, 'local call')).status).toBe(200);
    await vi.waitFor(async () => {
      const response = await running.api('/api/v1/calls');
      expect(((await response.json()) as { calls: CallRecord[] }).calls).toHaveLength(1);
    });
  });
});

describe('sign-in', () => {
  it('answers an unknown email like a wrong password', async () => {
    const { server } = await start();
    const owner = await setUpOwner(server);
    const browser = new Browser(server.url);

    const form = await browser.get('/login');
    const unknown = await browser.submit('/login', { email: 'nobody@example.com', password: 'whatever it is' }, form);
    const wrong = await browser.submit('/login', { email: owner.email, password: 'not the password' }, form);

    expect(unknown.status).toBe(401);
    expect(wrong.status).toBe(401);
    expect(comparable(unknown.text)).toBe(comparable(wrong.text));
    expect(wrong.text).toContain('Wrong email or password.');
  });

  it('pauses an email after ten failures, whether it exists or not', async () => {
    const { server } = await start();
    const owner = await setUpOwner(server);
    const browser = new Browser(server.url);
    const form = await browser.get('/login');

    const statuses = async (email: string) => {
      const seen: number[] = [];
      for (let attempt = 0; attempt < 11; attempt += 1)
        seen.push((await browser.submit('/login', { email, password: 'bad guess!' }, form)).status);
      return seen;
    };
    const known = await statuses(owner.email);
    const unknown = await statuses('ghost@example.com');

    expect(known).toEqual([...Array(10).fill(401), 429]);
    expect(unknown).toEqual(known);
    const blocked = await browser.submit('/login', { email: owner.email, password: owner.password }, form);
    expect(blocked.status).toBe(429);
    expect(blocked.headers.get('retry-after')).toMatch(/^\d+$/);
  });

  it('sets an HttpOnly SameSite session cookie and signs out', async () => {
    const { server } = await start();
    const owner = await setUpOwner(server);
    const browser = new Browser(server.url);
    const form = await browser.get('/login');

    const response = await fetch(`${server.url}/login`, {
      method: 'POST',
      redirect: 'manual',
      headers: { 'content-type': 'application/x-www-form-urlencoded', cookie: browser.cookieHeader() },
      body: new URLSearchParams({ email: owner.email, password: owner.password, csrf_token: csrfTokenOf(form) }).toString(),
    });
    const cookie = response.headers.getSetCookie().find((line) => line.startsWith('tokenwise_session='));
    expect(response.status).toBe(303);
    expect(cookie).toMatch(/HttpOnly/);
    expect(cookie).toMatch(/SameSite=Lax/);

    const home = await owner.browser.get('/');
    const signedOut = await owner.browser.submit('/logout', {}, home);
    expect(signedOut.url).toMatch(/\/login$/);
    expect((await owner.browser.api('GET', '/api/v1/me')).status).toBe(401);
  });

  it('sends a signed-out browser to sign-in and back', async () => {
    const { server } = await start();
    const owner = await setUpOwner(server);
    const browser = new Browser(server.url);

    const form = await browser.get('/device?user_code=BCDF-GHJK');
    expect(form.url).toContain('/login?next=');
    const page = await browser.submit(
      '/login',
      { email: owner.email, password: owner.password, next: '/device?user_code=BCDF-GHJK' },
      form,
    );

    expect(page.url).toBe(`${server.url}/device?user_code=BCDF-GHJK`);
    expect(page.text).toContain('This code is unknown');
  });
});

describe('CSRF and Host checks', () => {
  it('rejects a form without its CSRF token or from another origin', async () => {
    const { server } = await start();
    const owner = await setUpOwner(server);
    const home = await owner.browser.get('/');

    const missing = await owner.browser.submit('/logout', { csrf_token: '' });
    const foreign = await owner.browser.submit('/logout', {}, home, { origin: 'https://evil.example' });

    expect(missing.status).toBe(403);
    expect(foreign.status).toBe(403);
    expect((await owner.browser.api('GET', '/api/v1/me')).status).toBe(200);
  });

  it('rejects an API change by a session without the CSRF header', async () => {
    const { server } = await start();
    const owner = await setUpOwner(server);

    const response = await fetch(`${server.url}/api/v1/workspaces/${owner.workspaceId}`, {
      method: 'PATCH',
      headers: { cookie: owner.browser.cookieHeader(), 'content-type': 'application/json' },
      body: JSON.stringify({ privacy_mode: true }),
    });

    expect(response.status).toBe(403);
    const workspace = (await (await owner.browser.api('GET', `/api/v1/workspaces/${owner.workspaceId}`)).json()) as {
      workspace: { privacy_mode: boolean };
    };
    expect(workspace.workspace.privacy_mode).toBe(false);
  });

  it('rejects a host name it is not known by', async () => {
    const { server } = await start();
    const owner = await setUpOwner(server);
    const cookie = owner.browser.cookieHeader();

    expect(await statusWithHost(server.url, '/', 'rebound.example.com', cookie)).toBe(421);
    expect(await statusWithHost(server.url, '/api/v1/me', 'rebound.example.com', cookie)).toBe(421);
    expect(await statusWithHost(server.url, '/', `localhost:${new URL(server.url).port}`, cookie)).toBe(200);
    expect(await statusWithHost(server.url, '/api/v1/me', `[::1]:${new URL(server.url).port}`, cookie)).toBe(200);
  });

  it('accepts the --public-url host and uses secure cookies for https', async () => {
    const { server } = await start({ publicUrl: 'https://tokenwise.example.test' });
    expect(server.setupUrl).toMatch(/^https:\/\/tokenwise\.example\.test\/setup\?code=/);

    expect(await statusWithHost(server.url, '/login', 'tokenwise.example.test')).toBe(503);
    expect(await statusWithHost(server.url, '/login', 'other.example.test')).toBe(421);
    const code = await fetch(`${server.url}/api/v1/device/code`, { method: 'POST', body: 'device_name=x' });
    const body = (await code.json()) as { verification_uri: string };
    expect(body.verification_uri).toBe('https://tokenwise.example.test/device');

    const setup = new URL(server.setupUrl!);
    const page = await fetch(`${server.url}${setup.pathname}${setup.search}`);
    expect(page.headers.getSetCookie().join('\n')).toMatch(
      /^__Host-tokenwise_csrf=[^;]+; Path=\/; HttpOnly; SameSite=Lax; Max-Age=\d+; Secure$/m,
    );
  });
});

describe('home page', () => {
  it('lists devices and lets the owner revoke one and turn privacy mode on', async () => {
    const { server } = await start();
    const owner = await setUpOwner(server);
    const device = await pairDevice(server, owner, 'form-laptop');

    const home = await owner.browser.get('/');
    expect(home.text).toContain('form-laptop');
    expect(home.text).toContain('Privacy mode is <strong>off</strong>');
    const afterRevoke = await owner.browser.submit('/devices/revoke', { device_id: device.deviceId }, home);
    expect(afterRevoke.status).toBe(200);
    expect((await sendPrompt(server.url, device.token, 'after')).status).toBe(401);

    const afterPrivacy = await owner.browser.submit(
      '/workspaces/privacy',
      { workspace_id: owner.workspaceId, privacy_mode: 'on' },
      afterRevoke,
    );
    expect(afterPrivacy.text).toContain('Privacy mode is <strong>on</strong>');
  });

  it('hides the controls of another workspace', async () => {
    const { server } = await start();
    const owner = await setUpOwner(server);
    const bob = await invitePerson(owner, 'bob@example.com', 'Bob');
    const device = await pairDevice(server, owner, 'owner-laptop');

    const home = await bob.browser.get('/');
    const attempt = await bob.browser.submit('/devices/revoke', { device_id: device.deviceId }, home);
    const privacy = await bob.browser.submit('/workspaces/privacy', { workspace_id: owner.workspaceId, privacy_mode: 'on' }, home);

    expect(home.text).not.toContain('owner-laptop');
    expect(attempt.status).toBe(404);
    expect(privacy.status).toBe(404);
    expect((await sendPrompt(server.url, device.token, 'still works')).status).toBe(200);
  });
});

describe('invites and password resets', () => {
  it('joins a member into the workspace and rejects an expired invite', async () => {
    const { server, dataDir } = await start();
    const owner = await setUpOwner(server);
    const carol = await invitePerson(owner, 'carol@example.com', 'Carol', { role: 'member' });
    expect(carol.workspaceId).toBe(owner.workspaceId);

    const created = (await (await owner.browser.api('POST', '/api/v1/invites', { role: 'member' })).json()) as { url: string };
    const db = new Database(join(dataDir, 'tokenwise.db'));
    db.prepare("UPDATE invites SET expires_at = '2000-01-01T00:00:00.000Z' WHERE accepted_at IS NULL").run();
    db.close();
    const link = new URL(created.url);
    expect((await new Browser(server.url).get(link.pathname + link.search)).status).toBe(404);
  });

  it('lets an owner reset a member password with a one-time link', async () => {
    const { server } = await start();
    const owner = await setUpOwner(server);
    const carol = await invitePerson(owner, 'carol@example.com', 'Carol', { role: 'member' });
    const me = (await (await carol.browser.api('GET', '/api/v1/me')).json()) as { user: { id: string } };

    const created = await owner.browser.api('POST', `/api/v1/members/${me.user.id}/password-reset`);
    expect(created.status).toBe(201);
    const link = new URL(((await created.json()) as { url: string }).url);
    expect((await carol.browser.api('GET', '/api/v1/me')).status).toBe(200);

    const helper = new Browser(server.url);
    const form = await helper.get(link.pathname + link.search);
    const done = await helper.submit(
      '/reset-password',
      { token: link.searchParams.get('token')!, password: 'a brand new password', password_repeat: 'a brand new password' },
      form,
    );
    expect(done.status).toBe(200);
    expect((await carol.browser.api('GET', '/api/v1/me')).status).toBe(401);
    expect((await helper.get(link.pathname + link.search)).status).toBe(404);

    const login = new Browser(server.url);
    const loginForm = await login.get('/login');
    expect((await login.submit('/login', { email: carol.email, password: carol.password }, loginForm)).status).toBe(401);
    expect((await login.submit('/login', { email: carol.email, password: 'a brand new password' }, loginForm)).status).toBe(200);
  });
});

describe('API tokens per person', () => {
  it('shows the token once, stores its hash and stops it at once on revocation', async () => {
    const { server, dataDir } = await start();
    const owner = await setUpOwner(server);

    const created = (await (await owner.browser.api('POST', '/api/v1/api-tokens', { name: 'ci' })).json()) as { id: string; token: string };
    const call = () => fetch(`${server.url}/api/v1/calls`, { headers: { authorization: `Bearer ${created.token}` } });
    expect(created.token).toMatch(/^twa_/);
    expect((await call()).status).toBe(200);
    const listed = await (await owner.browser.api('GET', '/api/v1/api-tokens')).text();
    expect(listed).not.toContain(created.token);

    expect((await owner.browser.api('DELETE', `/api/v1/api-tokens/${created.id}`)).status).toBe(200);
    expect((await call()).status).toBe(401);
    await running.server.close();
    const database = new Database(join(dataDir, 'tokenwise.db'), { readonly: true });
    expect(JSON.stringify(database.prepare('SELECT * FROM api_tokens').all())).not.toContain(created.token);
    database.close();
  });
});

describe('deletion', () => {
  async function twoCalls(owner: Person) {
    const device = await pairDevice(running.server, owner, 'laptop');
    await sendPrompt(running.server.url, device.token, 'first', 'session-1');
    await sendPrompt(running.server.url, device.token, 'second', 'session-2');
    await vi.waitFor(async () => expect(await listCalls(owner)).toHaveLength(2));
    return device;
  }

  const listCalls = async (person: Person) =>
    ((await (await person.browser.api('GET', '/api/v1/calls')).json()) as { calls: CallRecord[] }).calls;

  it('deletes one call, a session and a filter', async () => {
    await start();
    const owner = await setUpOwner(running.server);
    await twoCalls(owner);
    const [newest, oldest] = await listCalls(owner);

    expect((await owner.browser.api('DELETE', `/api/v1/calls/${newest!.id}`)).status).toBe(200);
    expect((await owner.browser.api('DELETE', `/api/v1/calls/${newest!.id}`)).status).toBe(404);
    expect((await owner.browser.api('DELETE', `/api/v1/sessions/${oldest!.session_id}`)).status).toBe(200);
    expect(await listCalls(owner)).toEqual([]);

    const device = await pairDevice(running.server, owner, 'desk');
    await sendPrompt(running.server.url, device.token, 'third');
    await vi.waitFor(async () => expect(await listCalls(owner)).toHaveLength(1));
    const filtered = await owner.browser.api('POST', '/api/v1/calls/delete', { since: '1h' });
    expect(await filtered.json()).toEqual({ deleted: 1 });
  });

  it('deletes a device with its calls', async () => {
    await start();
    const owner = await setUpOwner(running.server);
    const device = await twoCalls(owner);

    const deleted = await owner.browser.api('DELETE', `/api/v1/devices/${device.deviceId}?calls=delete`);

    expect(deleted.status).toBe(200);
    expect(await listCalls(owner)).toEqual([]);
    expect((await sendPrompt(running.server.url, device.token, 'after')).status).toBe(401);
  });

  it('deletes a workspace and an account', async () => {
    await start();
    const owner = await setUpOwner(running.server);
    const bob = await invitePerson(owner, 'bob@example.com', 'Bob');
    const bobDevice = await pairDevice(running.server, bob, 'bob-laptop');
    const spare = (await (await bob.browser.api('POST', '/api/v1/workspaces', { name: 'spare' })).json()) as { workspace: { id: string } };

    expect((await bob.browser.api('DELETE', `/api/v1/workspaces/${spare.workspace.id}`)).status).toBe(200);
    expect((await bob.browser.api('DELETE', '/api/v1/me', { password: 'wrong password!' })).status).toBe(403);
    const gone = await bob.browser.api('DELETE', '/api/v1/me', { password: bob.password });

    expect(gone.status).toBe(200);
    expect(((await gone.json()) as { workspaces_deleted: string[] }).workspaces_deleted).toEqual([bob.workspaceId]);
    expect((await sendPrompt(running.server.url, bobDevice.token, 'after')).status).toBe(401);
    const login = new Browser(running.server.url);
    expect((await login.submit('/login', { email: bob.email, password: bob.password }, await login.get('/login'))).status).toBe(401);
  });

  it('keeps an owner with members from deleting the account', async () => {
    await start();
    const owner = await setUpOwner(running.server);
    await invitePerson(owner, 'carol@example.com', 'Carol', { role: 'member' });

    const refused = await owner.browser.api('DELETE', '/api/v1/me', { password: owner.password });

    expect(refused.status).toBe(409);
    expect(((await refused.json()) as { error: { message: string } }).error.message).toContain('make someone else owner');
  });
});

describe('body retention', () => {
  it('deletes bodies older than the workspace keeps them', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'tokenwise-retention-'));
    const store = new SqliteStore(join(dir, 'tokenwise.db'));
    await start({ dataDir: dir, store });
    const owner = await setUpOwner(running.server);
    const device = await pairDevice(running.server, owner, 'laptop');
    await sendPrompt(running.server.url, device.token, 'fresh');
    await vi.waitFor(async () =>
      expect(((await (await owner.browser.api('GET', '/api/v1/calls')).json()) as { calls: unknown[] }).calls).toHaveLength(1),
    );
    const [fresh] = ((await (await owner.browser.api('GET', '/api/v1/calls')).json()) as { calls: CallRecord[] }).calls;
    const old: CallRecord = { ...fresh!, id: '0190a1b2-0000-7000-8000-00000000beef', started_at: '2020-01-01T00:00:00.000Z' };
    const bodies: CallBodies = { request: null, response: null, request_headers: { a: 'b' }, response_headers: {} };
    await store.insertCalls([{ record: old, bodies }]);

    const changed = await owner.browser.api('PATCH', `/api/v1/workspaces/${owner.workspaceId}`, { body_retention_days: 7 });
    expect(changed.status).toBe(200);
    await running.server.runRetention();

    const bodiesOf = async (id: string) =>
      ((await (await owner.browser.api('GET', `/api/v1/calls/${id}`)).json()) as { bodies: CallBodies | null }).bodies;
    expect(await bodiesOf(old.id)).toBeNull();
    expect(await bodiesOf(fresh!.id)).not.toBeNull();
    await running.dispose();
    await rm(dir, { recursive: true, force: true });
  });
});
