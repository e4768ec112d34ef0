import type { CallRecord } from '@tokenwise/core';
import { type FakeProvider, startFakeProvider } from '@tokenwise/testkit';
import { afterAll, afterEach, beforeAll, describe, expect, it, vi } from 'vitest';
import { sendPrompt } from './helpers/accounts.js';
import { findMarkerInDir } from './helpers/byte-scan.js';
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

/** Send one prompt per marker through the running server and return the stored call ids, in marker order. */
async function recordCalls(markers: string[], sessionId?: string): Promise<string[]> {
  const { server } = running;
  for (const marker of markers) {
    expect((await sendPrompt(server.url, server.routeToken, `remember ${marker}`, sessionId)).status).toBe(200);
  }
  const listCalls = async () => ((await (await running.api('/api/v1/calls')).json()) as { calls: CallRecord[] }).calls;
  await vi.waitFor(async () => expect(await listCalls()).toHaveLength(markers.length));
  // The newest call is listed first.
  return (await listCalls()).map((call) => call.id).reverse();
}

describe('deleted prompts on disk while the server runs', () => {
  it('leave no byte after DELETE /api/v1/calls/{id}', async () => {
    running = await startTestServer({ upstreams: { anthropic: upstream.url } });
    const [deletedId] = await recordCalls(['DELETED-MARKER-4c1e8a', 'KEPT-MARKER-9b27d3']);

    const deleted = await running.api(`/api/v1/calls/${deletedId}`, { method: 'DELETE' });
    expect(deleted.status).toBe(200);

    // The kept call's marker is found, which shows the scan reads the stored (compressed) bodies.
    expect(findMarkerInDir(running.dataDir, 'KEPT-MARKER-9b27d3')).not.toEqual([]);
    expect(findMarkerInDir(running.dataDir, 'DELETED-MARKER-4c1e8a')).toEqual([]);
  });

  it('leave no byte after POST /api/v1/calls/delete', async () => {
    running = await startTestServer({ upstreams: { anthropic: upstream.url } });
    const [firstId, secondId] = await recordCalls(['FIRST-MARKER-71d0f2', 'SECOND-MARKER-e83b55', 'KEPT-MARKER-0a9c64']);

    const deleted = await running.api('/api/v1/calls/delete', {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ ids: [firstId, secondId] }),
    });
    expect(deleted.status).toBe(200);
    expect(await deleted.json()).toEqual({ deleted: 2 });

    expect(findMarkerInDir(running.dataDir, 'KEPT-MARKER-0a9c64')).not.toEqual([]);
    expect(findMarkerInDir(running.dataDir, 'FIRST-MARKER-71d0f2')).toEqual([]);
    expect(findMarkerInDir(running.dataDir, 'SECOND-MARKER-e83b55')).toEqual([]);
  });

  it('leave no byte after DELETE /api/v1/sessions/{id}', async () => {
    running = await startTestServer({ upstreams: { anthropic: upstream.url } });
    await recordCalls(['SESSION-MARKER-5e0b93'], 'session-to-delete');

    expect((await running.api('/api/v1/sessions/session-to-delete', { method: 'DELETE' })).status).toBe(200);

    expect(findMarkerInDir(running.dataDir, 'SESSION-MARKER-5e0b93')).toEqual([]);
  });

  it('leave no byte after deleting a device with its calls', async () => {
    running = await startTestServer({ upstreams: { anthropic: upstream.url } });
    await recordCalls(['DEVICE-MARKER-c4a217']);
    const { devices } = (await (await running.api('/api/v1/devices')).json()) as { devices: { id: string }[] };
    expect(devices).toHaveLength(1);

    expect((await running.api(`/api/v1/devices/${devices[0]!.id}?calls=delete`, { method: 'DELETE' })).status).toBe(200);

    expect(findMarkerInDir(running.dataDir, 'DEVICE-MARKER-c4a217')).toEqual([]);
  });

  it('leave no byte after the retention job deletes the bodies', async () => {
    running = await startTestServer({ upstreams: { anthropic: upstream.url } });
    await recordCalls(['RETAINED-MARKER-93fd10']);
    const { workspaces } = (await (await running.api('/api/v1/workspaces')).json()) as { workspaces: { id: string }[] };
    const changed = await running.api(`/api/v1/workspaces/${workspaces[0]!.id}`, {
      method: 'PATCH',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ body_retention_days: 1 }),
    });
    expect(changed.status).toBe(200);
    expect(findMarkerInDir(running.dataDir, 'RETAINED-MARKER-93fd10')).not.toEqual([]);

    // Only Date moves two days on: the server's timers keep running, so the job sees the call as expired.
    vi.useFakeTimers({ toFake: ['Date'], now: Date.now() + 2 * 86_400_000 });
    try {
      await running.server.runRetention();
    } finally {
      vi.useRealTimers();
    }

    expect(findMarkerInDir(running.dataDir, 'RETAINED-MARKER-93fd10')).toEqual([]);
  });
});
