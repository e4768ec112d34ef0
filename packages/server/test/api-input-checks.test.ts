import { randomUUID } from 'node:crypto';
import type { CallRecord } from '@tokenwise/core';
import { type FakeProvider, startFakeProvider } from '@tokenwise/testkit';
import { afterAll, afterEach, beforeAll, describe, expect, it, vi } from 'vitest';
import { invitePerson, type Person, pairDevice, sendPrompt, setUpOwner } from './helpers/accounts.js';
import { startTestServer, type TestServer } from './helpers/test-server.js';

let running: TestServer;
let ada: Person & { workspaceId: string };
let upstream: FakeProvider;

beforeAll(async () => {
  upstream = await startFakeProvider();
});

afterAll(async () => {
  await upstream.close();
});

afterEach(async () => {
  await running?.dispose();
});

async function start(): Promise<void> {
  running = await startTestServer({ upstreams: { anthropic: upstream.url } });
  ada = (await setUpOwner(running.server)) as Person & { workspaceId: string };
}

async function errorOf(response: Response): Promise<{ status: number; message: string }> {
  const body = (await response.json()) as { error: { message: string } };
  return { status: response.status, message: body.error.message };
}

describe('unknown JSON fields', () => {
  it('reject a workspace change with a typo', async () => {
    await start();
    const rejected = await errorOf(await ada.browser.api('PATCH', `/api/v1/workspaces/${ada.workspaceId}`, { privacy: true }));
    expect(rejected.status).toBe(400);
    expect(rejected.message).toContain('unknown field "privacy"');
    expect(rejected.message).toContain('privacy_mode');

    const workspace = (await (await ada.browser.api('GET', `/api/v1/workspaces/${ada.workspaceId}`)).json()) as {
      workspace: { privacy_mode: boolean };
    };
    expect(workspace.workspace.privacy_mode).toBe(false);
  });

  it('reject unknown fields on other write routes', async () => {
    await start();
    const cases: [method: string, path: string, body: Record<string, unknown>, accepted: string][] = [
      ['POST', '/api/v1/calls/delete', { id: ['x'] }, 'ids'],
      ['POST', '/api/v1/workspaces', { name: 'Lab', private: true }, 'name'],
      ['POST', '/api/v1/invites', { role: 'member', emails: ['a@example.com'] }, 'email'],
      ['POST', '/api/v1/route-tokens', { name: 'ci', device: 'x' }, 'name'],
      ['POST', '/api/v1/prices', { model: 'm', input_mtok: 1, output_mtok: 2, effective_from: '2026-01-01', cache: 1 }, 'cache_read_mtok'],
      ['POST', '/api/v1/budgets', { period: 'month', amount_usd: 5, limit_usd: 5 }, 'amount_usd'],
    ];
    for (const [method, path, body, accepted] of cases) {
      const rejected = await errorOf(await ada.browser.api(method, path, body));
      const unknown = Object.keys(body).at(-1)!;
      expect({ path, status: rejected.status }).toEqual({ path, status: 400 });
      expect(rejected.message).toContain(`unknown field "${unknown}"`);
      expect(rejected.message).toContain(accepted);
    }
  });
});

describe('call filters', () => {
  it('reject an unknown status', async () => {
    await start();
    const rejected = await errorOf(await running.api('/api/v1/calls?status=weird'));
    expect(rejected.status).toBe(400);
    expect(rejected.message).toContain('"weird"');
    expect(rejected.message).toContain('success, error, truncated, aborted');
  });

  it('reject a device_id that is no UUID', async () => {
    await start();
    const rejected = await errorOf(await running.api('/api/v1/calls?device_id=not-a-uuid'));
    expect(rejected.status).toBe(400);
    expect(rejected.message).toContain('"not-a-uuid"');
  });
});

describe('device privacy', () => {
  it('reports the private workspace as the reason', async () => {
    await start();
    const laptop = await pairDevice(running.server, ada, 'ada-laptop');
    expect((await ada.browser.api('PATCH', `/api/v1/workspaces/${ada.workspaceId}`, { privacy_mode: true })).status).toBe(200);

    const changed = await ada.browser.api('PATCH', `/api/v1/devices/${laptop.deviceId}`, { privacy_mode: false });
    expect(changed.status).toBe(200);
    const { device } = (await changed.json()) as {
      device: { privacy_mode: boolean; effective_privacy_mode: boolean; privacy_reason: string | null };
    };
    expect(device.privacy_mode).toBe(false);
    expect(device.effective_privacy_mode).toBe(true);
    expect(device.privacy_reason).toContain("workspace's privacy mode is on");
  });
});

describe('JSON body limits', () => {
  it('take 1000 ids in one delete', async () => {
    await start();
    const ids = Array.from({ length: 1000 }, () => randomUUID());
    const response = await running.api('/api/v1/calls/delete', {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ ids }, null, 2),
    });
    // The body is read whole: none of these random ids is a call, which is the only complaint.
    const answer = await errorOf(response);
    expect(answer.status).toBe(404);
    expect(answer.message).toContain('none of these call ids');
  });

  it('name the limit of a body too large', async () => {
    await start();
    const ids = Array.from({ length: 2000 }, () => randomUUID());
    const rejected = await errorOf(
      await running.api('/api/v1/calls/delete', {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ ids }),
      }),
    );
    expect(rejected.status).toBe(400);
    expect(rejected.message).toContain('65536 bytes');
    expect(rejected.message).toContain('at most 1000 ids');
    expect(rejected.message).not.toContain('form');
  });

  it('name the default limit on other routes', async () => {
    await start();
    const rejected = await errorOf(await ada.browser.api('POST', '/api/v1/workspaces', { name: 'x'.repeat(20_000) }));
    expect(rejected.status).toBe(400);
    expect(rejected.message).toContain('16384 bytes');
    expect(rejected.message).not.toContain('form');
  });
});

describe('member deletes', () => {
  it("answer 403 for another person's call", async () => {
    await start();
    const adaLaptop = await pairDevice(running.server, ada, 'ada-laptop');
    expect((await sendPrompt(running.server.url, adaLaptop.token, 'owner prompt', 'session-ada')).status).toBe(200);
    const carol = await invitePerson(ada, 'carol@example.com', 'Carol', { role: 'member' });

    const listCalls = async () => ((await (await carol.browser.api('GET', '/api/v1/calls')).json()) as { calls: CallRecord[] }).calls;
    await vi.waitFor(async () => expect(await listCalls()).toHaveLength(1));
    const [call] = await listCalls();
    expect((await carol.browser.api('GET', `/api/v1/calls/${call!.id}`)).status).toBe(200);

    const attempts = [
      await carol.browser.api('DELETE', `/api/v1/calls/${call!.id}`),
      await carol.browser.api('POST', '/api/v1/calls/delete', { ids: [call!.id] }),
      await carol.browser.api('DELETE', '/api/v1/sessions/session-ada'),
    ];
    for (const attempt of attempts) {
      const rejected = await errorOf(attempt);
      expect(rejected.status).toBe(403);
      expect(rejected.message).toContain('members delete only calls of devices they paired');
    }
    expect((await carol.browser.api('GET', `/api/v1/calls/${call!.id}`)).status).toBe(200);

    // An unknown id is still 404 for a member.
    expect((await carol.browser.api('DELETE', '/api/v1/calls/00000000-0000-4000-8000-000000000000')).status).toBe(404);
  });
});
