import type { HttpCapture } from '@tokenwise/core';
import { afterAll, beforeAll, beforeEach, describe, expect, it, vi } from 'vitest';
import { createMemorySink, sendRequest, startTestProxy, startUpstream, type TestProxy, type TestUpstream } from './proxy-harness.js';

/** Text that appears only in bodies; it must never reach the log. */
const BODY_MARKER = 'BODY-MARKER-7f3a';

/** Which capture step throws in the next call, if any; the real capture runs otherwise. */
let failingStep: keyof HttpCapture | 'create' | null = null;

vi.mock('@tokenwise/core', async (importOriginal) => {
  const core = await importOriginal<typeof import('@tokenwise/core')>();
  return {
    ...core,
    createHttpCapture: (...args: Parameters<typeof core.createHttpCapture>): HttpCapture => {
      // The message quotes body text, as V8's JSON.parse errors do.
      const fault = () => new SyntaxError(`Unexpected token in JSON at position 3: "${BODY_MARKER}"`);
      if (failingStep === 'create') throw fault();
      const capture = core.createHttpCapture(...args);
      const step = failingStep;
      const wrap =
        <K extends keyof HttpCapture>(name: K) =>
        (...stepArgs: Parameters<HttpCapture[K]>) => {
          if (step === name) throw fault();
          return (capture[name] as (...a: Parameters<HttpCapture[K]>) => ReturnType<HttpCapture[K]>)(...stepArgs);
        };
      return {
        requestChunk: wrap('requestChunk'),
        requestEnd: wrap('requestEnd'),
        responseHead: wrap('responseHead'),
        responseChunk: wrap('responseChunk'),
        finish: wrap('finish'),
      };
    },
  };
});

let upstream: TestUpstream;

beforeAll(async () => {
  upstream = await startUpstream((_req, res) => {
    res.writeHead(200, { 'content-type': 'application/json' });
    res.end(`{"text":"${BODY_MARKER}"}`);
  });
});

afterAll(() => upstream.close());

beforeEach(() => {
  failingStep = null;
});

async function call(proxy: TestProxy) {
  return sendRequest(proxy.port, {
    method: 'POST',
    path: proxy.pathFor('openai', '/v1/chat/completions'),
    body: `{"prompt":"${BODY_MARKER}"}`,
  });
}

describe('throwing sink', () => {
  let proxy: TestProxy;

  beforeAll(async () => {
    const sink = createMemorySink();
    sink.write = () => {
      throw new Error('store is full');
    };
    proxy = await startTestProxy({ upstreams: { openai: upstream.url }, sink });
  });

  afterAll(() => proxy.close());

  it('does not break the call', async () => {
    const response = await call(proxy);
    expect(response.status).toBe(200);
    expect(response.body.toString()).toBe(`{"text":"${BODY_MARKER}"}`);
    expect(response.complete).toBe(true);
  });

  it('counts every failure and warns once', async () => {
    await call(proxy);
    await call(proxy);
    expect(proxy.handler.stats().sinkFailures).toBe(3);
    const warnings = proxy.log.lines.filter((line) => line.level === 40);
    expect(warnings).toHaveLength(1);
    expect(warnings[0]!.fault).toBe('sink_failed');
    expect(JSON.stringify(warnings[0])).toContain('store is full');
  });
});

describe('throwing capture', () => {
  let proxy: TestProxy;

  beforeAll(async () => {
    proxy = await startTestProxy({ upstreams: { openai: upstream.url } });
  });

  afterAll(() => proxy.close());

  const steps = ['create', 'requestChunk', 'requestEnd', 'responseHead', 'responseChunk', 'finish'] as const;

  it.each(steps)('in %s does not break the call', async (step) => {
    failingStep = step;
    const before = proxy.handler.stats().captureFailures;
    const response = await call(proxy);
    expect(response.status).toBe(200);
    expect(response.body.toString()).toBe(`{"text":"${BODY_MARKER}"}`);
    expect(response.complete).toBe(true);
    expect(proxy.handler.stats().captureFailures).toBe(before + 1);
  });

  it('still records after a failed chunk', async () => {
    failingStep = 'responseChunk';
    const records = proxy.sink.entries.length;
    await call(proxy);
    expect(proxy.sink.entries.length).toBe(records + 1);
    expect(proxy.sink.entries.at(-1)!.record.http_status).toBe(200);
  });

  it('writes no record when finish throws', async () => {
    failingStep = 'finish';
    const records = proxy.sink.entries.length;
    await call(proxy);
    expect(proxy.sink.entries.length).toBe(records);
  });

  it('warns without body text', async () => {
    failingStep = 'responseChunk';
    await call(proxy);
    const warnings = proxy.log.lines.filter((line) => line.level === 40);
    expect(warnings.length).toBeGreaterThan(0);
    expect(warnings[0]!.fault).toBe('capture_failed');
    expect(proxy.log.text()).not.toContain(BODY_MARKER);
  });
});

describe('capture warnings', () => {
  let proxy: TestProxy;
  let invalidUsage: TestUpstream;

  beforeAll(async () => {
    invalidUsage = await startUpstream((_req, res) => {
      res.writeHead(200, { 'content-type': 'application/json' });
      res.end(
        `{"id":"chatcmpl-1","model":"gpt-4o","choices":[],"usage":{"prompt_tokens":1e300,"completion_tokens":3},"note":"${BODY_MARKER}"}`,
      );
    });
    proxy = await startTestProxy({ upstreams: { openai: invalidUsage.url } });
  });

  afterAll(async () => {
    await proxy.close();
    await invalidUsage.close();
  });

  it('logs them once per interval with the call id', async () => {
    await call(proxy);
    const { record } = await proxy.sink.next();
    await call(proxy);
    await proxy.sink.next();

    const degraded = proxy.log.lines.filter((line) => line.fault === 'capture_degraded');
    expect(degraded).toHaveLength(1);
    expect(degraded[0]!.level).toBe(40);
    expect(degraded[0]!.call_id).toBe(record.id);
    expect(degraded[0]!.warnings).toEqual([
      'usage field prompt_tokens is beyond 2^53 - 1, not a non-negative integer: recorded as unknown',
    ]);
    expect(proxy.log.text()).not.toContain(BODY_MARKER);
  });
});
