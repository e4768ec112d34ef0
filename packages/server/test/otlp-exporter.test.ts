import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { createOtlpExporter } from '../src/export/otlp-exporter.js';
import { createLogCapture } from './helpers/log-capture.js';
import { sampleRecord } from './helpers/sample-record.js';
import { createServerLoggerForTest } from './helpers/test-logger.js';

/** A server logger whose lines the test can read. */
function createTestLogger() {
  const logs = createLogCapture();
  return { logger: createServerLoggerForTest(logs), lines: () => logs.text().split('\n') };
}

type Handler = (req: IncomingMessage, res: ServerResponse, body: string) => void;

let closeCollector: (() => Promise<void>) | null = null;

afterEach(async () => {
  await closeCollector?.();
  closeCollector = null;
});

/** A collector on 127.0.0.1 that hands every request to `handler`. */
async function startCollector(handler: Handler): Promise<string> {
  const server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (chunk: Buffer) => chunks.push(chunk));
    req.on('end', () => handler(req, res, Buffer.concat(chunks).toString('utf8')));
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', () => resolve()));
  closeCollector = () =>
    new Promise((resolve) => {
      server.close(() => resolve());
      server.closeAllConnections();
    });
  return `http://127.0.0.1:${(server.address() as AddressInfo).port}/v1/traces`;
}

function spansIn(body: string): number {
  const request = JSON.parse(body) as { resourceSpans: { scopeSpans: { spans: unknown[] }[] }[] };
  return request.resourceSpans[0]!.scopeSpans[0]!.spans.length;
}

describe('createOtlpExporter', () => {
  it('drops and counts spans beyond the queue', async () => {
    const received: number[] = [];
    const tracesUrl = await startCollector((_req, res, body) => {
      received.push(spansIn(body));
      res.end('{}');
    });
    const exporter = createOtlpExporter({
      tracesUrl,
      upstreamOf: () => null,
      logger: createTestLogger().logger,
      maxQueueSize: 3,
      flushIntervalMs: 60_000,
    });

    for (let index = 0; index < 5; index += 1) exporter.write(sampleRecord(), null);
    expect(exporter.stats()).toMatchObject({ queued: 3, dropped: 2 });

    await exporter.flush();
    expect(received).toEqual([3]);
    expect(exporter.stats()).toMatchObject({ queued: 0, exported: 3, dropped: 2, failed: 0 });
    await exporter.close();
  });

  it('sends full batches without waiting for the timer', async () => {
    const received: number[] = [];
    const tracesUrl = await startCollector((_req, res, body) => {
      received.push(spansIn(body));
      res.end('{}');
    });
    const exporter = createOtlpExporter({
      tracesUrl,
      upstreamOf: () => null,
      logger: createTestLogger().logger,
      maxBatchSize: 2,
      flushIntervalMs: 60_000,
    });

    for (let index = 0; index < 4; index += 1) exporter.write(sampleRecord(), null);
    await expect.poll(() => received.reduce((total, count) => total + count, 0)).toBe(4);
    expect(received.every((count) => count <= 2)).toBe(true);
    await exporter.close();
  });

  it('counts spans the collector rejects', async () => {
    const tracesUrl = await startCollector((_req, res) => {
      res.setHeader('content-type', 'application/json');
      res.end(JSON.stringify({ partialSuccess: { rejectedSpans: '1', errorMessage: 'span too large' } }));
    });
    const { logger, lines } = createTestLogger();
    const exporter = createOtlpExporter({ tracesUrl, upstreamOf: () => null, logger, flushIntervalMs: 60_000 });

    exporter.write(sampleRecord(), null);
    exporter.write(sampleRecord(), null);
    await exporter.flush();

    expect(exporter.stats()).toMatchObject({ exported: 1, failed: 1 });
    expect(lines().some((line) => line.includes('rejected some spans') && line.includes('span too large'))).toBe(true);
    await exporter.close();
  });

  it('gives a 400 up at once', async () => {
    let requests = 0;
    const tracesUrl = await startCollector((_req, res) => {
      requests += 1;
      res.statusCode = 400;
      res.end('{"message":"bad request"}');
    });
    const exporter = createOtlpExporter({ tracesUrl, upstreamOf: () => null, logger: createTestLogger().logger, flushIntervalMs: 60_000 });

    exporter.write(sampleRecord(), null);
    await exporter.flush();

    expect(requests).toBe(1);
    expect(exporter.stats()).toMatchObject({ exported: 0, failed: 1, requestFailures: 1 });
    await exporter.close();
  });

  it('closes within its timeout when the collector hangs', async () => {
    const tracesUrl = await startCollector(() => {
      // Never answers.
    });
    const exporter = createOtlpExporter({
      tracesUrl,
      upstreamOf: () => null,
      logger: createTestLogger().logger,
      flushIntervalMs: 60_000,
      timeoutMs: 300,
    });

    exporter.write(sampleRecord(), null);
    await exporter.close();

    // The request under way ends by its timeout and counts its span as failed, once.
    await expect.poll(() => exporter.stats().failed).toBe(1);
    expect(exporter.stats()).toMatchObject({ exported: 0, dropped: 0 });
    exporter.write(sampleRecord(), null);
    expect(exporter.stats()).toMatchObject({ dropped: 1, queued: 0 });
  });

  it('skips records that are not model calls', async () => {
    const exporter = createOtlpExporter({
      tracesUrl: 'http://127.0.0.1:9/v1/traces',
      upstreamOf: () => null,
      logger: createTestLogger().logger,
      flushIntervalMs: 60_000,
    });
    exporter.write(sampleRecord({ api_shape: null, method: 'GET', path: '/v1/models' }), null);
    expect(exporter.stats()).toMatchObject({ queued: 0, dropped: 0 });
  });
});
