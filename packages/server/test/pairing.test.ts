import { join } from 'node:path';
import type { CallBodies, CallRecord } from '@tokenwise/core';
import { type FakeProvider, startFakeProvider } from '@tokenwise/testkit';
import Database from 'better-sqlite3';
import { afterAll, afterEach, beforeAll, describe, expect, it, vi } from 'vitest';
import { invitePerson, pairDevice, pollDeviceToken, requestDeviceCode, sendPrompt, setUpOwner } from './helpers/accounts.js';
import { findMarkerInFile } from './helpers/byte-scan.js';
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

const start = async () => {
  running = await startTestServer({ upstreams: { anthropic: upstream.url } });
  return running;
};

describe('two people on one server', () => {
  it('pair through the browser, see only their own calls, keep private prompts out of every byte', async () => {
    const { server, dataDir, logs } = await start();
    const ada = await setUpOwner(server);
    const bob = await invitePerson(ada, 'bob@example.com', 'Bob');
    expect(bob.workspaceId).not.toBe(ada.workspaceId);

    const adaLaptop = await pairDevice(server, ada, 'ada-laptop');
    const bobLaptop = await pairDevice(server, bob, 'bob-laptop');

    // Bob turns privacy mode on for his workspace before his private prompt.
    const privacy = await bob.browser.api('PATCH', `/api/v1/workspaces/${bob.workspaceId}`, { privacy_mode: true });
    expect(privacy.status).toBe(200);
    expect(((await privacy.json()) as { workspace: { privacy_mode: boolean } }).workspace.privacy_mode).toBe(true);

    const adaMarker = 'ADA-VISIBLE-MARKER-7f3a9c';
    const bobMarker = 'BOB-PRIVATE-MARKER-2d8e41';
    expect((await sendPrompt(server.url, adaLaptop.token, `remember ${adaMarker}`)).status).toBe(200);
    expect((await sendPrompt(server.url, bobLaptop.token, `remember ${bobMarker}`)).status).toBe(200);

    const listCalls = async (person: typeof ada) =>
      ((await (await person.browser.api('GET', '/api/v1/calls')).json()) as { calls: CallRecord[] }).calls;
    await vi.waitFor(async () => {
      expect(await listCalls(ada)).toHaveLength(1);
      expect(await listCalls(bob)).toHaveLength(1);
    });
    const [adaCall] = await listCalls(ada);
    const [bobCall] = await listCalls(bob);
    expect(adaCall).toMatchObject({ workspace_id: ada.workspaceId, device_id: adaLaptop.deviceId });
    expect(bobCall).toMatchObject({ workspace_id: bob.workspaceId, device_id: bobLaptop.deviceId, usage: { output_tokens: 12 } });

    const adaDetail = (await (await ada.browser.api('GET', `/api/v1/calls/${adaCall!.id}`)).json()) as { bodies: CallBodies | null };
    expect(adaDetail.bodies?.request?.text).toContain(adaMarker);
    const bobDetail = (await (await bob.browser.api('GET', `/api/v1/calls/${bobCall!.id}`)).json()) as { bodies: CallBodies | null };
    expect(bobDetail.bodies).toBeNull();
    expect((await ada.browser.api('GET', `/api/v1/calls/${bobCall!.id}`)).status).toBe(404);

    await running.server.close();
    const files = ['tokenwise.db', 'tokenwise.db-wal', 'tokenwise.db-shm'].map((name) => join(dataDir, name));
    // Ada's marker is found, which shows the scan reads the stored (compressed) bodies; Bob's is nowhere.
    expect(files.flatMap((file) => findMarkerInFile(file, adaMarker))).not.toEqual([]);
    expect(files.flatMap((file) => findMarkerInFile(file, bobMarker))).toEqual([]);
    expect(logs.text()).not.toContain(bobMarker);
    expect(logs.text()).not.toContain(adaMarker);
  });

  it('answers a revoked device with 401 invalid route on its next call', async () => {
    const { server } = await start();
    const ada = await setUpOwner(server);
    const laptop = await pairDevice(server, ada, 'ada-laptop');
    expect((await sendPrompt(server.url, laptop.token, 'hi')).status).toBe(200);

    const revoked = await ada.browser.api('POST', `/api/v1/devices/${laptop.deviceId}/revoke`);
    expect(revoked.status).toBe(200);

    const next = await sendPrompt(server.url, laptop.token, 'hi again');
    expect(next.status).toBe(401);
    const body = (await next.json()) as { type: string; error: { type: string; message: string } };
    expect(body.error.message).toMatch(/invalid route/i);
    expect(JSON.stringify(body)).not.toContain(laptop.token);
  });

  it('applies privacy mode of one device only', async () => {
    const { server } = await start();
    const ada = await setUpOwner(server);
    const open = await pairDevice(server, ada, 'open-laptop');
    const quiet = await pairDevice(server, ada, 'quiet-laptop');

    const changed = await ada.browser.api('PATCH', `/api/v1/devices/${quiet.deviceId}`, { privacy_mode: true });
    expect(changed.status).toBe(200);
    await sendPrompt(server.url, open.token, 'open prompt');
    await sendPrompt(server.url, quiet.token, 'quiet prompt');

    await vi.waitFor(async () => {
      const calls = ((await (await ada.browser.api('GET', '/api/v1/calls')).json()) as { calls: CallRecord[] }).calls;
      expect(calls).toHaveLength(2);
    });
    const calls = ((await (await ada.browser.api('GET', '/api/v1/calls')).json()) as { calls: CallRecord[] }).calls;
    const bodiesOf = async (deviceId: string) => {
      const call = calls.find((item) => item.device_id === deviceId)!;
      return ((await (await ada.browser.api('GET', `/api/v1/calls/${call.id}`)).json()) as { bodies: CallBodies | null }).bodies;
    };
    expect((await bodiesOf(open.deviceId))?.request?.text).toContain('open prompt');
    expect(await bodiesOf(quiet.deviceId)).toBeNull();
  });
});

describe('device authorization grant', () => {
  it('answers codes the way RFC 8628 describes', async () => {
    const { server } = await start();
    const code = await requestDeviceCode(server.url, 'ci-runner', 'darwin');

    expect(code.user_code).toMatch(/^[BCDFGHJKLMNPQRSTVWXZ]{4}-[BCDFGHJKLMNPQRSTVWXZ]{4}$/);
    expect(code.verification_uri).toBe(`${server.url}/device`);
    expect(code.verification_uri_complete).toBe(`${server.url}/device?user_code=${code.user_code}`);
    expect(code.expires_in).toBe(900);
    expect(code.interval).toBe(5);
    expect(code.device_code).toMatch(/^twd_/);
  });

  it('slows down a device that polls too fast', async () => {
    const { server } = await start();
    const code = await requestDeviceCode(server.url, 'eager');

    expect((await pollDeviceToken(server.url, code.device_code)).body.error).toBe('authorization_pending');
    const second = await pollDeviceToken(server.url, code.device_code);

    expect(second.status).toBe(400);
    expect(second.body).toMatchObject({ error: 'slow_down', interval: 10 });
  });

  it('tells the device when the person denies it', async () => {
    const { server } = await start();
    const ada = await setUpOwner(server);
    const code = await requestDeviceCode(server.url, 'stranger');

    const page = await ada.browser.get(`/device?user_code=${code.user_code.toLowerCase().replace('-', ' ')}`);
    expect(page.text).toContain('stranger');
    expect(page.text).toMatch(/<th>Requested<\/th><td>[A-Z][a-z]{2} \d{1,2}, \d\d:\d\d:\d\d UTC \(just now\)<\/td>/);
    const denied = await ada.browser.submit('/device', { user_code: code.user_code, action: 'deny' }, page);
    expect(denied.text).toContain('Device denied');

    expect((await pollDeviceToken(server.url, code.device_code)).body.error).toBe('access_denied');
  });

  it('hands out the token once', async () => {
    const { server } = await start();
    const ada = await setUpOwner(server);
    const code = await requestDeviceCode(server.url, 'twice');
    const page = await ada.browser.get(`/device?user_code=${code.user_code}`);
    await ada.browser.submit('/device', { user_code: code.user_code, workspace_id: ada.workspaceId, action: 'approve' }, page);

    expect((await pollDeviceToken(server.url, code.device_code)).status).toBe(200);
    expect((await pollDeviceToken(server.url, code.device_code)).body.error).toBe('invalid_grant');
  });

  it('reports an expired code', async () => {
    const { server, dataDir } = await start();
    const code = await requestDeviceCode(server.url, 'late');
    const db = new Database(join(dataDir, 'tokenwise.db'));
    db.prepare("UPDATE device_codes SET expires_at = '2000-01-01T00:00:00.000Z'").run();
    db.close();

    expect((await pollDeviceToken(server.url, code.device_code)).body.error).toBe('expired_token');
  });

  it('rejects unknown codes and grant types', async () => {
    const { server } = await start();

    expect((await pollDeviceToken(server.url, 'twd_unknown')).body.error).toBe('invalid_grant');
    const wrongGrant = await fetch(`${server.url}/api/v1/device/token`, {
      method: 'POST',
      headers: { 'content-type': 'application/x-www-form-urlencoded' },
      body: 'grant_type=password&device_code=x',
    });
    expect(wrongGrant.status).toBe(400);
    expect(await wrongGrant.json()).toMatchObject({ error: 'unsupported_grant_type' });
  });

  it('keeps the device page behind sign-in', async () => {
    const { server } = await start();
    await setUpOwner(server);
    const code = await requestDeviceCode(server.url, 'laptop');

    const response = await fetch(`${server.url}/device?user_code=${code.user_code}`, { redirect: 'manual' });

    expect(response.status).toBe(303);
    expect(response.headers.get('location')).toBe(`/login?next=${encodeURIComponent(`/device?user_code=${code.user_code}`)}`);
  });
});

describe('device code rate limit', () => {
  /** Request one code as the client `forwardedFor` names, the way a reverse proxy forwards it. */
  const requestCodeAs = (serverUrl: string, forwardedFor: string) =>
    fetch(`${serverUrl}/api/v1/device/code`, {
      method: 'POST',
      headers: { 'content-type': 'application/x-www-form-urlencoded', 'x-forwarded-for': forwardedFor },
      body: new URLSearchParams({ client_id: 'tokenwise-cli', device_name: 'limit-test', os: 'linux' }).toString(),
    });

  it('counts each client behind a trusted proxy apart', async () => {
    running = await startTestServer({ upstreams: { anthropic: upstream.url }, trustProxy: true });
    const { server } = running;
    for (let index = 0; index < 10; index += 1) expect((await requestCodeAs(server.url, '203.0.113.7')).status).toBe(200);

    const limited = await requestCodeAs(server.url, '203.0.113.7');
    expect(limited.status).toBe(429);
    expect(Number(limited.headers.get('retry-after'))).toBeLessThanOrEqual(60);
    expect(((await limited.json()) as { error_description: string }).error_description).toMatch(/10 per 60 s/);
    // A forged first entry does not help: the proxy appended the real address last.
    expect((await requestCodeAs(server.url, '198.51.100.1, 203.0.113.7')).status).toBe(429);

    expect((await requestCodeAs(server.url, '198.51.100.1')).status).toBe(200);
  });

  it('ignores X-Forwarded-For without --trust-proxy', async () => {
    const { server } = await start();
    for (let index = 0; index < 10; index += 1) expect((await requestCodeAs(server.url, `198.51.100.${index}`)).status).toBe(200);
    expect((await requestCodeAs(server.url, '198.51.100.99')).status).toBe(429);
  });
});
