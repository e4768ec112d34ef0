import type { CallRecord } from '@tokenwise/core';
import { type FakeProvider, startFakeProvider } from '@tokenwise/testkit';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { invitePerson, type PairedDevice, type Person, pairDevice, sendPrompt, setUpOwner } from './helpers/accounts.js';
import { startTestServer, type TestServer } from './helpers/test-server.js';

/**
 * Workspace A belongs to Ada (owner) and Carol (member); workspace B to Bob. Every route that takes an id
 * is called by each of A's callers with an id from B, and must answer 404 as for an unknown id, leaving B
 * as it was.
 */
let upstream: FakeProvider;
let running: TestServer;
let ada: Person;
let carol: Person;
let bob: Person;
let bobDevice: PairedDevice;
let adaDevice: PairedDevice;
let bobCall: CallRecord;
const ids: Record<string, string> = {};
const bearers: Record<string, string> = {};

beforeAll(async () => {
  upstream = await startFakeProvider();
  running = await startTestServer({ upstreams: { anthropic: upstream.url } });
  const { server } = running;
  ada = await setUpOwner(server);
  carol = await invitePerson(ada, 'carol@example.com', 'Carol', { role: 'member' });
  bob = await invitePerson(ada, 'bob@example.com', 'Bob');
  bobDevice = await pairDevice(server, bob, 'bob-laptop');
  adaDevice = await pairDevice(server, ada, 'ada-laptop');

  expect((await sendPrompt(server.url, bobDevice.token, 'bob prompt', 'bob-session-1')).status).toBe(200);
  expect((await sendPrompt(server.url, adaDevice.token, 'ada prompt', 'ada-session-1')).status).toBe(200);
  await vi.waitFor(async () => {
    const calls = ((await (await bob.browser.api('GET', '/api/v1/calls')).json()) as { calls: CallRecord[] }).calls;
    expect(calls).toHaveLength(1);
    bobCall = calls[0]!;
  });

  const invite = (await (await bob.browser.api('POST', '/api/v1/invites', { role: 'member' })).json()) as { id: string };
  const bobApiToken = (await (await bob.browser.api('POST', '/api/v1/api-tokens', { name: 'bob script' })).json()) as { id: string };
  const bobRouteTokens = (await (await bob.browser.api('GET', '/api/v1/route-tokens')).json()) as { route_tokens: { id: string }[] };
  const bobMe = (await (await bob.browser.api('GET', '/api/v1/me')).json()) as { user: { id: string } };
  Object.assign(ids, {
    workspace: bob.workspaceId,
    device: bobDevice.deviceId,
    call: bobCall.id,
    session: bobCall.session_id!,
    user: bobMe.user.id,
    invite: invite.id,
    apiToken: bobApiToken.id,
    routeToken: bobRouteTokens.route_tokens[0]!.id,
  });

  for (const [name, person] of [
    ['ada', ada],
    ['carol', carol],
  ] as const) {
    const created = await person.browser.api('POST', '/api/v1/api-tokens', { name: `${name} script` });
    expect(created.status).toBe(201);
    bearers[name] = ((await created.json()) as { token: string }).token;
  }
  bearers.local = server.apiToken;
});

afterAll(async () => {
  await running?.dispose();
  await upstream?.close();
});

const ROUTES: [method: string, path: () => string, body?: unknown][] = [
  ['GET', () => `/api/v1/calls/${ids.call}`],
  ['DELETE', () => `/api/v1/calls/${ids.call}`],
  ['POST', () => '/api/v1/calls/delete', () => ({ ids: [ids.call] })],
  ['POST', () => '/api/v1/calls/delete', () => ({ device_id: ids.device })],
  ['DELETE', () => `/api/v1/sessions/${ids.session}`],
  ['GET', () => `/api/v1/workspaces/${ids.workspace}`],
  ['PATCH', () => `/api/v1/workspaces/${ids.workspace}`, () => ({ privacy_mode: true })],
  ['DELETE', () => `/api/v1/workspaces/${ids.workspace}`],
  ['GET', () => `/api/v1/devices/${ids.device}`],
  ['PATCH', () => `/api/v1/devices/${ids.device}`, () => ({ privacy_mode: true })],
  ['POST', () => `/api/v1/devices/${ids.device}/revoke`],
  ['DELETE', () => `/api/v1/devices/${ids.device}?calls=delete`],
  ['PATCH', () => `/api/v1/members/${ids.user}`, () => ({ role: 'member' })],
  ['DELETE', () => `/api/v1/members/${ids.user}`],
  ['POST', () => `/api/v1/members/${ids.user}/password-reset`],
  ['DELETE', () => `/api/v1/invites/${ids.invite}`],
  ['DELETE', () => `/api/v1/api-tokens/${ids.apiToken}`],
  ['DELETE', () => `/api/v1/route-tokens/${ids.routeToken}`],
];

describe.each(['ada', 'carol'] as const)('%s of workspace A', (name) => {
  const person = () => (name === 'ada' ? ada : carol);

  it.each(ROUTES.map(([method, path, body]) => [`${method} ${path.toString().replace(/^\(\) => /, '')}`, method, path, body] as const))(
    'gets 404 in the browser for %s',
    async (_label, method, path, body) => {
      const response = await person().browser.api(method, path(), typeof body === 'function' ? body() : undefined);

      expect(response.status).toBe(404);
    },
  );

  it.each(ROUTES.map(([method, path, body]) => [`${method} ${path.toString().replace(/^\(\) => /, '')}`, method, path, body] as const))(
    'gets 404 with a personal API token for %s',
    async (_label, method, path, body) => {
      const response = await fetch(`${running.server.url}${path()}`, {
        method,
        headers: { authorization: `Bearer ${bearers[name]}`, 'content-type': 'application/json' },
        body: typeof body === 'function' ? JSON.stringify(body()) : undefined,
      });

      expect(response.status).toBe(404);
    },
  );

  it('cannot pick workspace B in the browser', async () => {
    const lists = ['/api/v1/devices', '/api/v1/members', '/api/v1/invites', '/api/v1/route-tokens', '/api/v1/prices'];
    for (const path of ['/api/v1/calls', '/api/v1/calls/stream', ...lists]) {
      const response = await person().browser.api('GET', path, undefined, { 'x-tokenwise-workspace': ids.workspace! });
      expect(response.status, path).toBe(404);
    }
  });

  it('lists no call of workspace B', async () => {
    const calls = ((await (await person().browser.api('GET', `/api/v1/calls?device_id=${ids.device}`)).json()) as { calls: CallRecord[] })
      .calls;
    const all = ((await (await person().browser.api('GET', '/api/v1/calls')).json()) as { calls: CallRecord[] }).calls;

    expect(calls).toEqual([]);
    expect(all.map((call) => call.workspace_id)).toEqual([ada.workspaceId]);
  });
});

describe('the local owner API token of workspace A', () => {
  it.each(ROUTES.map(([method, path, body]) => [`${method} ${path.toString().replace(/^\(\) => /, '')}`, method, path, body] as const))(
    'gets 404 for %s',
    async (_label, method, path, body) => {
      const response = await fetch(`${running.server.url}${path()}`, {
        method,
        headers: { authorization: `Bearer ${bearers.local}`, 'content-type': 'application/json' },
        body: typeof body === 'function' ? JSON.stringify(body()) : undefined,
      });

      expect(response.status).toBe(404);
    },
  );
});

describe('route tokens', () => {
  it('see only their own device through the self endpoint', async () => {
    const response = await fetch(`${running.server.url}/api/v1/route-tokens/self`, {
      headers: { authorization: `Bearer ${adaDevice.token}` },
    });
    const self = (await response.json()) as { workspace_id: string; device_id: string };

    expect(self.workspace_id).toBe(ada.workspaceId);
    expect(self.device_id).toBe(adaDevice.deviceId);
  });

  it('are no API tokens', async () => {
    const response = await fetch(`${running.server.url}/api/v1/calls/${ids.call}`, {
      headers: { authorization: `Bearer ${adaDevice.token}` },
    });

    expect(response.status).toBe(401);
  });

  it('record calls into their own workspace only', async () => {
    const calls = ((await (await bob.browser.api('GET', '/api/v1/calls')).json()) as { calls: CallRecord[] }).calls;

    expect(calls.map((call) => call.device_id)).toEqual([bobDevice.deviceId]);
  });
});

describe('workspace B afterwards', () => {
  it('is as it was', async () => {
    const call = await bob.browser.api('GET', `/api/v1/calls/${ids.call}`);
    const device = (await (await bob.browser.api('GET', `/api/v1/devices/${ids.device}`)).json()) as {
      device: { revoked_at: string | null };
    };
    const workspace = (await (await bob.browser.api('GET', `/api/v1/workspaces/${ids.workspace}`)).json()) as {
      workspace: { privacy_mode: boolean };
    };
    const invites = (await (await bob.browser.api('GET', '/api/v1/invites')).json()) as { invites: { revoked_at: string | null }[] };
    const tokens = (await (await bob.browser.api('GET', '/api/v1/api-tokens')).json()) as { api_tokens: { id: string }[] };

    expect(call.status).toBe(200);
    expect(device.device.revoked_at).toBeNull();
    expect(workspace.workspace.privacy_mode).toBe(false);
    expect(invites.invites[0]?.revoked_at).toBeNull();
    expect(tokens.api_tokens.map((token) => token.id)).toEqual([ids.apiToken]);
    expect((await sendPrompt(running.server.url, bobDevice.token, 'still works')).status).toBe(200);
  });
});
