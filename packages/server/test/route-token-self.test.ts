import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ensureLocalWorkspace, generateRouteToken, hashToken } from '@tokenwise/server';
import { SqliteStore } from '@tokenwise/storage';
import { type FakeProvider, startFakeProvider } from '@tokenwise/testkit';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { anthropicCall, startTestServer, type TestServer } from './helpers/test-server.js';

interface SelfInfo {
  id: string;
  device_id: string | null;
  last_calls: Record<string, string> | null;
  public_url: string | null;
}

let upstream: FakeProvider;
let running: TestServer;
let dataDir: string;
/** A token as older versions made them: no device, so its calls cannot be told apart. */
let tokenWithoutDevice: string;
let laptop: { token: string; device_id: string };
let desktop: { token: string; device_id: string };

async function self(token: string): Promise<SelfInfo> {
  const response = await fetch(`${running.server.url}/api/v1/route-tokens/self`, { headers: { authorization: `Bearer ${token}` } });
  expect(response.status).toBe(200);
  return (await response.json()) as SelfInfo;
}

async function createToken(name: string): Promise<{ token: string; device_id: string }> {
  const response = await running.api('/api/v1/route-tokens', { method: 'POST', body: JSON.stringify({ name }) });
  expect(response.status).toBe(201);
  return (await response.json()) as { token: string; device_id: string };
}

beforeAll(async () => {
  upstream = await startFakeProvider();
  dataDir = await mkdtemp(join(tmpdir(), 'tokenwise-self-'));
  const store = new SqliteStore(join(dataDir, 'tokenwise.db'));
  const { workspace } = await ensureLocalWorkspace(store);
  tokenWithoutDevice = generateRouteToken();
  await store.createRouteToken({ workspaceId: workspace.id, deviceId: null, name: 'old', tokenSha256: hashToken(tokenWithoutDevice) });
  await store.close();

  running = await startTestServer({ dataDir, upstreams: { anthropic: upstream.url }, publicUrl: 'https://tokenwise.example.com' });
  laptop = await createToken('laptop');
  desktop = await createToken('desktop');
  expect((await anthropicCall(running.server.url, laptop.token)).status).toBe(200);
  expect((await anthropicCall(running.server.url, tokenWithoutDevice)).status).toBe(200);
  await vi.waitFor(async () => {
    const calls = (await (await running.api('/api/v1/calls')).json()) as { calls: unknown[] };
    expect(calls.calls).toHaveLength(2);
  });
});

afterAll(async () => {
  await running?.dispose();
  await rm(dataDir, { recursive: true, force: true });
  await upstream?.close();
});

describe('route token self endpoint', () => {
  it("reports the token's own last calls", async () => {
    const info = await self(laptop.token);

    expect(info.device_id).toBe(laptop.device_id);
    expect(Object.keys(info.last_calls ?? {})).toEqual(['claude-code']);
  });

  it("leaves out other devices' calls", async () => {
    expect((await self(desktop.token)).last_calls).toEqual({});
    expect((await self(running.server.routeToken)).last_calls).toEqual({});
  });

  it('returns null calls for a token without device', async () => {
    const info = await self(tokenWithoutDevice);

    expect(info.device_id).toBeNull();
    expect(info.last_calls).toBeNull();
  });

  it('reports the public URL', async () => {
    expect((await self(desktop.token)).public_url).toBe('https://tokenwise.example.com');
  });
});
