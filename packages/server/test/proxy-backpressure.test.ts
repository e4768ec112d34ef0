import { once } from 'node:events';
import { request as httpRequest } from 'node:http';
import { setTimeout as sleep } from 'node:timers/promises';
import { afterEach, expect, it } from 'vitest';
import { sendRequest, startTestProxy, startUpstream } from './proxy-harness.js';

/**
 * With backpressure, a stalled reader stops the writer at the other end once the socket buffers on the
 * way are full. On Linux loopback those hold tens of MiB at most: two connections, each with a send
 * buffer of up to 4 MiB and a receive buffer of up to 32 MiB by default. A writer that got far past that
 * was buffered by the proxy instead.
 */
const STREAM_BYTES = 256 * 1024 * 1024;
const STALLED_BOUND_BYTES = 128 * 1024 * 1024;
const CHUNK = Buffer.alloc(64 * 1024, 0x61);
/** The writer counts as stalled once it has waited this long for `drain`. */
const STALL_MS = 500;

const cleanup: (() => Promise<void>)[] = [];
afterEach(async () => {
  while (cleanup.length > 0) await cleanup.pop()!();
});

/** Write until `STREAM_BYTES` or until `drain` has not come for `STALL_MS`; resolves with the bytes written. */
async function writeUntilStalled(write: (chunk: Buffer) => boolean, waitForDrain: () => Promise<unknown>): Promise<number> {
  let written = 0;
  while (written < STREAM_BYTES) {
    written += CHUNK.length;
    if (!write(CHUNK)) {
      const drained = await Promise.race([waitForDrain().then(() => true), sleep(STALL_MS).then(() => false)]);
      if (!drained) return written;
    }
  }
  return written;
}

it('stalls the upstream when the client stops reading', async () => {
  let upstreamWritten: Promise<number> = Promise.resolve(0);
  const upstream = await startUpstream((_req, res) => {
    res.writeHead(200, { 'content-type': 'application/octet-stream' });
    upstreamWritten = writeUntilStalled(
      (chunk) => res.write(chunk),
      () => once(res, 'drain'),
    );
  });
  const proxy = await startTestProxy({ upstreams: { openai: upstream.url } });
  cleanup.push(
    () => upstream.close(),
    () => proxy.close(),
  );

  const req = httpRequest({
    host: '127.0.0.1',
    port: proxy.port,
    method: 'GET',
    path: proxy.pathFor('openai', '/v1/files/big/content'),
    agent: false,
  });
  req.once('error', () => {});
  req.end();
  const [res] = (await once(req, 'response')) as [import('node:http').IncomingMessage];
  res.pause();

  await sleep(100);
  const written = await upstreamWritten;
  expect(written).toBeLessThan(STALLED_BOUND_BYTES);
  req.destroy();
});

it('stalls the client when the upstream stops reading', async () => {
  const upstream = await startUpstream(() => {}, { readBody: false });
  const proxy = await startTestProxy({ upstreams: { openai: upstream.url } });
  cleanup.push(
    () => upstream.close(),
    () => proxy.close(),
  );

  const req = httpRequest({
    host: '127.0.0.1',
    port: proxy.port,
    method: 'POST',
    path: proxy.pathFor('openai', '/v1/files'),
    headers: { 'content-type': 'application/octet-stream' },
    agent: false,
  });
  req.once('error', () => {});
  const written = await writeUntilStalled(
    (chunk) => req.write(chunk),
    () => once(req, 'drain'),
  );
  expect(written).toBeLessThan(STALLED_BOUND_BYTES);
  req.destroy();
});

it('reads usage after 40 MiB of long strings (regression: usage and model lost)', async () => {
  const padding = `"${'x'.repeat(1024 * 1024)}"`;
  const tail = JSON.stringify({
    id: 'msg_big',
    type: 'message',
    model: 'claude-sonnet-4-5-20250929',
    content: [{ type: 'text', text: 'hello' }],
    stop_reason: 'end_turn',
    usage: { input_tokens: 100, output_tokens: 12 },
  });
  const upstream = await startUpstream(async (_req, res) => {
    res.writeHead(200, { 'content-type': 'application/json' });
    res.write('{"pad":[');
    for (let i = 0; i < 40; i++) {
      if (!res.write(i === 0 ? padding : `,${padding}`)) await once(res, 'drain');
    }
    res.end(`],${tail.slice(1)}`);
  });
  const proxy = await startTestProxy({ upstreams: { anthropic: upstream.url } });
  cleanup.push(
    () => upstream.close(),
    () => proxy.close(),
  );

  const response = await sendRequest(proxy.port, {
    method: 'POST',
    path: proxy.pathFor('anthropic', '/v1/messages'),
    headers: { 'content-type': 'application/json' },
    body: '{"model":"claude-sonnet-4-5","max_tokens":10,"messages":[]}',
  });
  expect(response.status).toBe(200);
  expect(response.body.length).toBe(8 + 40 * padding.length + 39 + tail.length + 1);

  const { record } = await proxy.sink.next();
  expect(record.status).toBe('success');
  expect(record.model_answered).toBe('claude-sonnet-4-5-20250929');
  expect(record.usage.output_tokens).toBe(12);
  expect(record.cost.basis).toBe('exact');
});
