/**
 * SIGTERM to `tokenwise serve` with a stream in flight: the server stops accepting connections at once,
 * lets the stream finish (within the grace period, 10 s by default), stores its record and exits 0.
 * The stream cut at the end of the grace period is covered in packages/server/test/serve-shutdown.test.ts.
 */
import { once } from 'node:events';
import { rm } from 'node:fs/promises';
import { join } from 'node:path';
import { SqliteStore } from '@tokenwise/storage';
import { FAKE_CREDENTIALS, makeTestDir } from '@tokenwise/testkit';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type SlowUpstream, startSlowUpstream } from '../../server/test/helpers/slow-upstream.js';
import { startServe } from './helpers/cli-process.js';

/** How long the upstream streams, in ms: long enough for SIGTERM to arrive mid-stream, well within the grace period. */
const STREAM_MS = 2_000;

let upstream: SlowUpstream;
let dataDir: string;
let keepDataDir = false;

beforeAll(async () => {
  upstream = await startSlowUpstream();
  const created = await makeTestDir('tokenwise-sigterm-');
  dataDir = created.dir;
  keepDataDir = created.keep;
});

afterAll(async () => {
  await upstream.close();
  if (!keepDataDir) await rm(dataDir, { recursive: true, force: true });
});

describe('tokenwise serve on SIGTERM', () => {
  it('finishes the live stream, stores it and refuses new connections', async () => {
    const server = await startServe(['--port', '0', '--data-dir', dataDir, '--upstream', `anthropic=${upstream.url}`]);
    const response = await fetch(`${server.url}/r/${server.routeToken}/anthropic/v1/messages`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', 'x-api-key': FAKE_CREDENTIALS.anthropicApiKey, 'x-stream-ms': String(STREAM_MS) },
      body: JSON.stringify({ model: 'claude-sonnet-4-5', max_tokens: 16, stream: true, messages: [{ role: 'user', content: 'hi' }] }),
    });
    expect(response.status).toBe(200);
    const reader = response.body!.pipeThrough(new TextDecoderStream()).getReader();
    let text = (await reader.read()).value ?? '';

    const exited = once(server.child, 'exit');
    server.child.kill('SIGTERM');
    // New connections are refused while the stream goes on.
    await expect
      .poll(
        () =>
          fetch(`${server.url}/healthz`).then(
            () => 'accepted',
            () => 'refused',
          ),
        { timeout: 5_000 },
      )
      .toBe('refused');

    for (let chunk = await reader.read(); !chunk.done; chunk = await reader.read()) text += chunk.value;
    expect(text).toContain('event: message_stop');
    const [code] = await exited;
    expect(code).toBe(0);
    // The process has exited, so this only keeps its output for the closing secret scan.
    await server.stop();

    const store = new SqliteStore(join(dataDir, 'tokenwise.db'), { readonly: true });
    const calls = await store.listCalls({ limit: 10 });
    await store.close();
    expect(calls).toHaveLength(1);
    expect(calls[0]!.record).toMatchObject({ status: 'success', usage: { output_tokens: 9 } });
    expect(server.stderr() + server.stdout()).toContain('"msg":"server stopped"');
  });
});
