import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { SqliteStore } from '@tokenwise/storage';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { type SlowUpstream, startSlowUpstream } from './helpers/slow-upstream.js';
import { startTestServer } from './helpers/test-server.js';

describe('serve shutdown', () => {
  let upstream: SlowUpstream;
  let dataDir: string;

  beforeEach(async () => {
    upstream = await startSlowUpstream();
    dataDir = await mkdtemp(join(tmpdir(), 'tokenwise-shutdown-'));
  });

  afterEach(async () => {
    await upstream.close();
    await rm(dataDir, { recursive: true, force: true });
  });

  // Regression: a stream still running when the grace period ran out was aborted after the sink's last
  // flush, so its record was dropped ("the store queue is full or closed") and never stored.
  it('stores a call aborted at the end of the grace period', async () => {
    const running = await startTestServer({ dataDir, upstreams: { anthropic: upstream.url }, shutdownGraceMs: 300 });
    const response = await fetch(`${running.server.url}/r/${running.server.routeToken}/anthropic/v1/messages`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', 'x-api-key': 'sk-ant-api03-FAKE-shutdown', 'x-stream-ms': '600000' },
      body: JSON.stringify({ model: 'claude-sonnet-4-5', max_tokens: 16, stream: true, messages: [{ role: 'user', content: 'hi' }] }),
    });
    expect(response.status).toBe(200);
    const reader = response.body!.getReader();
    await reader.read();
    const drained = (async () => {
      try {
        while (!(await reader.read()).done);
      } catch {
        // The server cuts the stream when the grace period ends.
      }
    })();

    await running.server.close();
    await drained;

    expect(running.server.stats().sink).toMatchObject({ dropped: 0, lost: 0, stored: 1 });
    const store = new SqliteStore(join(dataDir, 'tokenwise.db'));
    const calls = await store.listCalls({ limit: 10 });
    await store.close();
    expect(calls).toHaveLength(1);
    expect(calls[0]!.record).toMatchObject({ status: 'aborted', model_requested: 'claude-sonnet-4-5' });
  });
});
