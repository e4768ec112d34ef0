import type { ServerResponse } from 'node:http';
import { type ClientRequest, request as httpRequest } from 'node:http';
import type { CaptureEnd } from '@tokenwise/core';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { startTestProxy, startUpstream, type TestProxy, type TestUpstream } from './proxy-harness.js';

/** Ends each HTTP capture was finished with, in order; the real capture runs unchanged underneath. */
const captureEnds: CaptureEnd[] = [];

vi.mock('@tokenwise/core', async (importOriginal) => {
  const core = await importOriginal<typeof import('@tokenwise/core')>();
  return {
    ...core,
    createHttpCapture: (...args: Parameters<typeof core.createHttpCapture>) => {
      const capture = core.createHttpCapture(...args);
      return {
        ...capture,
        finish(end: CaptureEnd) {
          captureEnds.push(end);
          return capture.finish(end);
        },
      };
    },
  };
});

/** How long the upstream may take to notice the cancellation; a bound of correctness, not of speed. */
const CANCEL_BOUND_MS = 5_000;

const cleanup: (() => Promise<void>)[] = [];
afterEach(async () => {
  while (cleanup.length > 0) await cleanup.pop()!();
  captureEnds.length = 0;
});

async function setUp(
  respond: (res: ServerResponse) => void,
): Promise<{ upstream: TestUpstream; proxy: TestProxy; upstreamClosed: Promise<number> }> {
  let resolveClosed: (atMs: number) => void = () => {};
  const upstreamClosed = new Promise<number>((resolve) => {
    resolveClosed = resolve;
  });
  const upstream = await startUpstream((_req, res) => {
    res.once('close', () => resolveClosed(performance.now()));
    respond(res);
  });
  const proxy = await startTestProxy({ upstreams: { anthropic: upstream.url } });
  cleanup.push(
    () => upstream.close(),
    () => proxy.close(),
  );
  return { upstream, proxy, upstreamClosed };
}

/** Start a POST of the Anthropic Messages path through `proxy` on a connection of its own. */
function postMessages(proxy: TestProxy): ClientRequest {
  return httpRequest({
    host: '127.0.0.1',
    port: proxy.port,
    method: 'POST',
    path: proxy.pathFor('anthropic', '/v1/messages'),
    agent: false,
  });
}

describe('client disconnect', () => {
  it('cancels the upstream mid-stream', async () => {
    const { proxy, upstreamClosed } = await setUp((res) => {
      res.writeHead(200, { 'content-type': 'text/event-stream' });
      res.write('event: message_start\ndata: {"type":"message_start"}\n\n');
    });

    const clientGoneAt = await new Promise<number>((resolve, reject) => {
      const req = postMessages(proxy);
      req.once('error', () => {});
      req.once('response', (res) => {
        res.once('data', () => {
          req.destroy();
          resolve(performance.now());
        });
      });
      req.once('error', reject);
      req.end('{"stream":true}');
    });

    const closedAt = await upstreamClosed;
    expect(closedAt - clientGoneAt).toBeLessThan(CANCEL_BOUND_MS);

    const { record } = await proxy.sink.next();
    expect(record.status).toBe('aborted');
    expect(record.http_status).toBe(200);
    expect(captureEnds).toEqual([{ kind: 'client_aborted' }]);
  });

  it('cancels the upstream before headers', async () => {
    const { proxy, upstreamClosed } = await setUp(() => {});

    await new Promise<void>((resolve) => {
      const req = postMessages(proxy);
      req.once('error', () => {});
      req.end('{}', () =>
        setTimeout(() => {
          req.destroy();
          resolve();
        }, 50),
      );
    });

    await upstreamClosed;
    const { record } = await proxy.sink.next();
    expect(record.status).toBe('aborted');
    expect(record.http_status).toBeNull();
    expect(captureEnds).toEqual([{ kind: 'client_aborted' }]);
    expect(proxy.handler.stats().liveRequests).toBe(0);
  });
});

describe('upstream reset mid-stream', () => {
  for (const framing of ['chunked', 'content-length'] as const) {
    it(`breaks the client stream (${framing})`, async () => {
      const firstEvent = 'event: message_start\ndata: {"type":"message_start"}\n\n';
      const { proxy } = await setUp((res) => {
        const headers: Record<string, string> = { 'content-type': 'text/event-stream' };
        if (framing === 'content-length') headers['content-length'] = '100000';
        res.writeHead(200, headers);
        res.write(firstEvent, () => setTimeout(() => res.socket?.destroy(), 20));
      });

      const received = await new Promise<{ body: string; complete: boolean; errored: boolean }>((resolve, reject) => {
        const req = postMessages(proxy);
        req.once('error', reject);
        req.once('response', (res) => {
          let body = '';
          let errored = false;
          res.setEncoding('utf8');
          res.on('data', (chunk: string) => {
            body += chunk;
          });
          res.on('error', () => {
            errored = true;
          });
          res.once('close', () => resolve({ body, complete: res.complete, errored }));
        });
        req.end('{"stream":true}');
      });

      expect(received.body).toBe(firstEvent);
      expect(received.complete).toBe(false);
      expect(received.errored).toBe(true);

      await proxy.sink.next();
      expect(captureEnds).toHaveLength(1);
      expect(captureEnds[0]!.kind).toBe('upstream_closed');
    });
  }
});

describe('unreachable upstream', () => {
  it('ends the capture as unreachable', async () => {
    const upstream = await startUpstream(() => {});
    const url = upstream.url;
    await upstream.close();
    const proxy = await startTestProxy({ upstreams: { anthropic: url } });
    cleanup.push(() => proxy.close());

    await new Promise<void>((resolve, reject) => {
      const req = postMessages(proxy);
      req.once('error', reject);
      req.once('response', (res) => {
        res.resume();
        res.once('end', () => resolve());
      });
      req.end('{}');
    });

    await proxy.sink.next();
    expect(captureEnds).toHaveLength(1);
    expect(captureEnds[0]!.kind).toBe('upstream_unreachable');
    expect((captureEnds[0] as { message: string }).message).toContain(url);
  });
});

describe('response head', () => {
  it('reaches the client before any body byte', async () => {
    let releaseBody: () => void = () => {};
    const { proxy } = await setUp((res) => {
      res.writeHead(200, { 'content-type': 'text/event-stream' });
      res.flushHeaders();
      // The body starts only once the client has the head: a proxy that held the head back until the
      // first body byte would leave this test waiting until the bound below fails it.
      releaseBody = () => res.end('event: message_stop\ndata: {"type":"message_stop"}\n\n');
    });

    const outcome = await new Promise<{ status: number; body: string }>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error('no response head within 5 s of the upstream sending it')), 5_000);
      const req = postMessages(proxy);
      req.once('error', reject);
      req.once('response', (res) => {
        clearTimeout(timer);
        let body = '';
        res.setEncoding('utf8');
        res.on('data', (piece: string) => {
          body += piece;
        });
        res.once('end', () => resolve({ status: res.statusCode ?? 0, body }));
        releaseBody();
      });
      req.end('{"stream":true}');
    });

    expect(outcome.status).toBe(200);
    expect(outcome.body).toContain('message_stop');
    const { record } = await proxy.sink.next();
    expect(record.status).toBe('success');
  });
});
