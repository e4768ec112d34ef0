/**
 * A 1 GiB request body and a 1 GiB response streamed through `tokenwise serve`. The proxy forwards every
 * byte and its memory stays bounded, which the resident set of the server process, sampled throughout,
 * shows. The stored bodies are cut at the capture's cap.
 */
import { once } from 'node:events';
import { readFileSync } from 'node:fs';
import { rm } from 'node:fs/promises';
import { createServer, request as httpRequest, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { SqliteStore } from '@tokenwise/storage';
import { FAKE_CREDENTIALS, makeTestDir } from '@tokenwise/testkit';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type ServeProcess, startServe } from './helpers/cli-process.js';

const GIB = 1024 * 1024 * 1024;
const CHUNK = Buffer.alloc(1024 * 1024, 'x');
/** A Messages request whose one prompt is the 1 GiB of CHUNKs sent between these two parts. */
const REQUEST_PREFIX = Buffer.from('{"model":"claude-sonnet-4-5","max_tokens":1,"messages":[{"role":"user","content":"');
const REQUEST_SUFFIX = Buffer.from('"}]}');
const REQUEST_BYTES = REQUEST_PREFIX.length + GIB + REQUEST_SUFFIX.length;
/** The capture's default body cap, in bytes. */
const BODY_CAP_BYTES = 4 * 1024 * 1024;
/**
 * Growth of the server's resident set allowed over its size before the transfer, in bytes: far below
 * the 1 GiB that crosses it, far above what the capture's cap and the stream buffers need.
 */
const MAX_RSS_GROWTH_BYTES = 256 * 1024 * 1024;

let upstream: Server;
let upstreamUrl: string;
/** Bytes of request body the upstream read, per request path. */
const upstreamRead = new Map<string, number>();
let server: ServeProcess;
let dataDir: string;
let keepDataDir = false;

beforeAll(async () => {
  upstream = createServer((req, res) => {
    let bytes = 0;
    req.on('data', (chunk: Buffer) => {
      bytes += chunk.length;
    });
    req.on('end', () => {
      upstreamRead.set(req.url ?? '', bytes);
      if (req.url === '/v1/messages?case=big-response') streamHugeAnswer(res);
      else answerSmall(res);
    });
  });
  upstream.listen(0, '127.0.0.1');
  await once(upstream, 'listening');
  upstreamUrl = `http://127.0.0.1:${(upstream.address() as AddressInfo).port}`;

  const created = await makeTestDir('tokenwise-large-');
  dataDir = created.dir;
  keepDataDir = created.keep;
  server = await startServe(['--port', '0', '--data-dir', dataDir, '--upstream', `anthropic=${upstreamUrl}`]);
});

afterAll(async () => {
  await server?.stop();
  upstream?.closeAllConnections();
  await new Promise((resolve) => upstream?.close(resolve));
  if (!keepDataDir) await rm(dataDir, { recursive: true, force: true });
});

function answerSmall(res: import('node:http').ServerResponse): void {
  res.writeHead(200, { 'content-type': 'application/json', 'request-id': 'req_big_request' });
  res.end(
    JSON.stringify({
      id: 'msg_big',
      type: 'message',
      role: 'assistant',
      model: 'claude-sonnet-4-5-20250929',
      content: [{ type: 'text', text: 'ok' }],
      stop_reason: 'end_turn',
      usage: { input_tokens: 250_000_000, output_tokens: 1 },
    }),
  );
}

/** Stream 1 GiB of Anthropic text deltas with backpressure, then the usage and the end of the message. */
function streamHugeAnswer(res: import('node:http').ServerResponse): void {
  res.writeHead(200, { 'content-type': 'text/event-stream', 'request-id': 'req_big_response' });
  const event = (type: string, data: object) => `event: ${type}\ndata: ${JSON.stringify({ type, ...data })}\n\n`;
  res.write(
    event('message_start', {
      message: {
        id: 'msg_huge',
        type: 'message',
        role: 'assistant',
        model: 'claude-sonnet-4-5-20250929',
        content: [],
        usage: { input_tokens: 10, output_tokens: 1 },
      },
    }),
  );
  res.write(event('content_block_start', { index: 0, content_block: { type: 'text', text: '' } }));
  const delta = Buffer.from(event('content_block_delta', { index: 0, delta: { type: 'text_delta', text: 'y'.repeat(64 * 1024) } }));
  let sent = 0;
  const pump = () => {
    while (sent < GIB) {
      sent += delta.length;
      if (!res.write(delta)) {
        res.once('drain', pump);
        return;
      }
    }
    res.write(event('content_block_stop', { index: 0 }));
    res.write(event('message_delta', { delta: { stop_reason: 'end_turn' }, usage: { output_tokens: 300_000_000 } }));
    res.end(event('message_stop', {}));
  };
  pump();
}

/** Sample the resident set of a process every 50 ms until stopped; `stop` returns the largest, in bytes. */
function sampleRss(pid: number): { stop(): number } {
  const read = () => rssOf(pid);
  let largest = read();
  const timer = setInterval(() => {
    largest = Math.max(largest, read());
  }, 50);
  return {
    stop() {
      clearInterval(timer);
      return Math.max(largest, read());
    },
  };
}

/** Return the resident set of a process (VmRSS in /proc/<pid>/status), in bytes. */
function rssOf(pid: number): number {
  return Number(/VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))?.[1] ?? 0) * 1024;
}

async function storedCall(requestId: string) {
  const store = new SqliteStore(join(dataDir, 'tokenwise.db'), { readonly: true });
  try {
    for (let attempt = 0; attempt < 100; attempt += 1) {
      const call = (await store.listCalls({ limit: 10 })).find((listed) => listed.record.upstream_request_id === requestId);
      if (call) return store.getCall(call.record.id);
      await new Promise((resolve) => setTimeout(resolve, 100));
    }
    throw new Error(`no stored call with upstream request id ${requestId}`);
  } finally {
    await store.close();
  }
}

describe('1 GiB bodies through tokenwise serve', () => {
  it('streams a 1 GiB request body in bounded memory', async () => {
    const pid = server.child.pid!;
    const before = rssOf(pid);
    const rss = sampleRss(pid);

    const status = await new Promise<number>((resolve, reject) => {
      const req = httpRequest(`${server.url}/r/${server.routeToken}/anthropic/v1/messages?case=big-request`, {
        method: 'POST',
        headers: { 'content-type': 'application/json', 'x-api-key': FAKE_CREDENTIALS.anthropicApiKey },
      });
      req.once('error', reject);
      req.once('response', (res) => {
        res.resume();
        res.once('end', () => resolve(res.statusCode ?? 0));
      });
      req.write(REQUEST_PREFIX);
      let written = 0;
      const pump = () => {
        while (written < GIB) {
          written += CHUNK.length;
          if (!req.write(CHUNK)) {
            req.once('drain', pump);
            return;
          }
        }
        req.end(REQUEST_SUFFIX);
      };
      pump();
    });
    const largest = rss.stop();

    expect(status).toBe(200);
    expect(upstreamRead.get('/v1/messages?case=big-request')).toBe(REQUEST_BYTES);
    expect(largest - before).toBeLessThan(MAX_RSS_GROWTH_BYTES);
    const stored = await storedCall('req_big_request');
    expect(stored?.record.request_bytes).toBe(REQUEST_BYTES);
    expect(stored?.record.model_requested).toBe('claude-sonnet-4-5');
    expect(stored?.bodies?.request?.truncated).toBe(true);
    expect(Buffer.byteLength(stored?.bodies?.request?.text ?? '')).toBeLessThanOrEqual(BODY_CAP_BYTES);
  });

  it('streams a 1 GiB response in bounded memory and reads its usage', async () => {
    const pid = server.child.pid!;
    const before = rssOf(pid);
    const rss = sampleRss(pid);

    const received = await new Promise<number>((resolve, reject) => {
      const req = httpRequest(`${server.url}/r/${server.routeToken}/anthropic/v1/messages?case=big-response`, {
        method: 'POST',
        headers: { 'content-type': 'application/json', 'x-api-key': FAKE_CREDENTIALS.anthropicApiKey },
      });
      req.once('error', reject);
      req.once('response', (res) => {
        let bytes = 0;
        res.on('data', (chunk: Buffer) => {
          bytes += chunk.length;
        });
        res.once('end', () => resolve(bytes));
      });
      req.end('{"model":"claude-sonnet-4-5","max_tokens":1,"stream":true,"messages":[]}');
    });
    const largest = rss.stop();

    expect(received).toBeGreaterThan(GIB);
    expect(largest - before).toBeLessThan(MAX_RSS_GROWTH_BYTES);
    const stored = await storedCall('req_big_response');
    expect(stored?.record.response_bytes).toBe(received);
    expect(stored?.record).toMatchObject({ status: 'success', usage: { input_tokens: 10, output_tokens: 300_000_000 } });
    expect(stored?.bodies?.response?.truncated).toBe(true);
    expect(Buffer.byteLength(stored?.bodies?.response?.text ?? '')).toBeLessThanOrEqual(BODY_CAP_BYTES);
  });
});
