import type { RunningServer } from '@tokenwise/server';
import { expect } from 'vitest';
import { Browser } from './browser.js';

export const DEVICE_GRANT_TYPE = 'urn:ietf:params:oauth:grant-type:device_code';

export interface Person {
  browser: Browser;
  email: string;
  password: string;
  workspaceId: string;
}

/** Create the owner account through the setup link the server printed; returns the signed-in owner. */
export async function setUpOwner(server: RunningServer, email = 'ada@example.com', password = 'correct horse battery'): Promise<Person> {
  expect(server.setupUrl).toMatch(/\/setup\?code=twu_/);
  const browser = new Browser(server.url);
  const setupUrl = new URL(server.setupUrl!);
  const form = await browser.get(setupUrl.pathname + setupUrl.search);
  expect(form.status).toBe(200);

  const home = await browser.submit(
    '/setup',
    { code: setupUrl.searchParams.get('code')!, email, name: 'Ada', password, password_repeat: password },
    form,
  );
  expect(home.status).toBe(200);
  expect(home.text).toContain(`Signed in as Ada (${email})`);
  return { browser, email, password, workspaceId: await onlyWorkspace(browser) };
}

/**
 * Invite a person to a workspace of their own (or with `role`, into the owner's workspace) and let them
 * register through the link.
 */
export async function invitePerson(
  owner: Person,
  email: string,
  name: string,
  options: { password?: string; role?: 'owner' | 'member' } = {},
): Promise<Person> {
  const password = options.password ?? 'another good password';
  const invite = options.role ? { role: options.role } : { own_workspace: true };
  const created = await owner.browser.api('POST', '/api/v1/invites', invite, { 'x-tokenwise-workspace': owner.workspaceId });
  expect(created.status).toBe(201);
  const { url } = (await created.json()) as { url: string };

  const link = new URL(url);
  const browser = new Browser(link.origin);
  const form = await browser.get(link.pathname + link.search);
  expect(form.status).toBe(200);
  const home = await browser.submit(
    '/invite',
    { token: link.searchParams.get('token')!, email, name, password, password_repeat: password },
    form,
  );
  expect(home.status).toBe(200);
  expect(home.text).toContain(`Signed in as ${name}`);
  return { browser, email, password, workspaceId: await onlyWorkspace(browser) };
}

async function onlyWorkspace(browser: Browser): Promise<string> {
  const me = (await (await browser.api('GET', '/api/v1/me')).json()) as { workspaces: { id: string }[] };
  expect(me.workspaces).toHaveLength(1);
  return me.workspaces[0]!.id;
}

export interface DeviceCodeAnswer {
  device_code: string;
  user_code: string;
  verification_uri: string;
  verification_uri_complete: string;
  expires_in: number;
  interval: number;
}

export async function requestDeviceCode(serverUrl: string, deviceName: string, os = 'linux'): Promise<DeviceCodeAnswer> {
  const response = await fetch(`${serverUrl}/api/v1/device/code`, {
    method: 'POST',
    headers: { 'content-type': 'application/x-www-form-urlencoded' },
    body: new URLSearchParams({ client_id: 'tokenwise-cli', device_name: deviceName, os }).toString(),
  });
  expect(response.status).toBe(200);
  return (await response.json()) as DeviceCodeAnswer;
}

export async function pollDeviceToken(serverUrl: string, deviceCode: string): Promise<{ status: number; body: Record<string, unknown> }> {
  const response = await fetch(`${serverUrl}/api/v1/device/token`, {
    method: 'POST',
    headers: { 'content-type': 'application/x-www-form-urlencoded' },
    body: new URLSearchParams({ grant_type: DEVICE_GRANT_TYPE, device_code: deviceCode, client_id: 'tokenwise-cli' }).toString(),
  });
  return { status: response.status, body: (await response.json()) as Record<string, unknown> };
}

export interface PairedDevice {
  token: string;
  deviceId: string;
  workspaceId: string;
}

/** Pair a device the way `tokenwise connect` and a person in the browser do it together. */
export async function pairDevice(server: RunningServer, person: Person, deviceName: string): Promise<PairedDevice> {
  const code = await requestDeviceCode(server.url, deviceName);
  expect((await pollDeviceToken(server.url, code.device_code)).body.error).toBe('authorization_pending');

  const complete = new URL(code.verification_uri_complete);
  const page = await person.browser.get(complete.pathname + complete.search);
  expect(page.status).toBe(200);
  expect(page.text).toContain(code.user_code);
  expect(page.text).toContain(deviceName);
  const approved = await person.browser.submit(
    '/device',
    { user_code: code.user_code, workspace_id: person.workspaceId, action: 'approve' },
    page,
  );
  expect(approved.status).toBe(200);
  expect(approved.text).toContain('Device approved');

  const token = await pollDeviceToken(server.url, code.device_code);
  expect(token.status).toBe(200);
  expect(token.body).toMatchObject({ token_type: 'route', workspace_id: person.workspaceId, proxy_base_url: server.url });
  return { token: token.body.access_token as string, deviceId: token.body.device_id as string, workspaceId: person.workspaceId };
}

/** Send one Anthropic Messages call whose prompt is `prompt`, through the proxy with `routeToken`, in Claude Code session `sessionId`. */
export function sendPrompt(serverUrl: string, routeToken: string, prompt: string, sessionId?: string): Promise<Response> {
  return fetch(`${serverUrl}/r/${routeToken}/anthropic/v1/messages`, {
    method: 'POST',
    headers: {
      'content-type': 'application/json',
      'x-api-key': 'sk-ant-api03-FAKE-pairing-test',
      'anthropic-version': '2023-06-01',
      'user-agent': 'claude-cli/2.1.197 (external, sdk-cli)',
      ...(sessionId === undefined ? {} : { 'x-claude-code-session-id': sessionId }),
    },
    body: JSON.stringify({ model: 'claude-sonnet-4-5', max_tokens: 64, messages: [{ role: 'user', content: prompt }] }),
  });
}
