import { once } from 'node:events';
import { request as httpRequest } from 'node:http';
import { setTimeout as sleep } from 'node:timers/promises';
import { afterEach, expect, it } from 'vitest';
import { startTestProxy, startUpstream } from './proxy-harness.js';

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
