import type { CallRecord } from '@tokenwise/core';
import { type FakeProvider, startFakeProvider } from '@tokenwise/testkit';
import { afterAll, afterEach, beforeAll, describe, expect, it, vi } from 'vitest';
import { createServerMetrics } from '../src/export/metrics.js';
import { sampleRecord } from './helpers/sample-record.js';
import { anthropicCall, startTestServer, type TestServer } from './helpers/test-server.js';

const METRICS_TOKEN = 'metrics-token-0123456789abcdef';

interface Sample {
  name: string;
  labels: Record<string, string>;
  value: number;
}

/** Parse the Prometheus text exposition format (version 0.0.4) into samples; comments are skipped. */
function parseExposition(text: string): Sample[] {
  const samples: Sample[] = [];
  for (const line of text.split('\n')) {
    if (line === '' || line.startsWith('#')) continue;
    const match = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})? (\S+)$/.exec(line);
    if (!match) throw new Error(`not a sample line: ${line}`);
    const labels: Record<string, string> = {};
    for (const pair of (match[2] ?? '').matchAll(/([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"/g)) labels[pair[1]!] = pair[2]!;
    samples.push({ name: match[1]!, labels, value: Number(match[3]) });
  }
  return samples;
}

function sum(samples: Sample[], name: string, labels: Record<string, string> = {}): number {
  return samples
    .filter((sample) => sample.name === name && Object.entries(labels).every(([key, value]) => sample.labels[key] === value))
    .reduce((total, sample) => total + sample.value, 0);
}

async function scrape(url: string, token: string | null = METRICS_TOKEN): Promise<Response> {
  return fetch(`${url}/metrics`, { headers: token === null ? {} : { authorization: `Bearer ${token}` } });
}

let upstream: FakeProvider;
let running: TestServer | undefined;

beforeAll(async () => {
  upstream = await startFakeProvider();
});

afterAll(async () => {
  await upstream.close();
});

afterEach(async () => {
  await running?.dispose();
  running = undefined;
});

describe('/metrics', () => {
  it('counts the calls made, by provider, model and tool', async () => {
    running = await startTestServer({ upstreams: { anthropic: upstream.url }, metricsToken: METRICS_TOKEN });
    for (const stream of [false, true, false])
      await (await anthropicCall(running.server.url, running.server.routeToken, { stream })).text();
    await vi.waitFor(() => expect(running!.server.stats().sink.stored).toBe(3));

    const response = await scrape(running.server.url);
    expect(response.status).toBe(200);
    expect(response.headers.get('content-type')).toMatch(/^text\/plain; version=0\.0\.4/);
    const text = await response.text();
    const samples = parseExposition(text);
    const calls = ((await (await running.api('/api/v1/calls')).json()) as { calls: CallRecord[] }).calls;
    const labels = { provider: 'anthropic', route: 'anthropic', model: calls[0]!.model_answered!, tool: 'claude-code' };

    expect(sum(samples, 'tokenwise_calls_total', { ...labels, status: 'success' })).toBe(3);
    const inputTokens = calls.reduce((total, call) => total + call.usage.input_tokens!, 0);
    const outputTokens = calls.reduce((total, call) => total + call.usage.output_tokens!, 0);
    expect(sum(samples, 'tokenwise_tokens_total', { ...labels, type: 'input' })).toBe(inputTokens);
    expect(sum(samples, 'tokenwise_tokens_total', { ...labels, type: 'output' })).toBe(outputTokens);
    const cost = calls.reduce((total, call) => total + call.cost.usd!, 0);
    expect(sum(samples, 'tokenwise_cost_usd_total', labels)).toBeCloseTo(cost, 9);
    expect(sum(samples, 'tokenwise_call_duration_seconds_count', labels)).toBe(3);
    // Only streamed calls have a first-token time.
    const timedFirstToken = calls.filter((call) => call.timing.ttft_ms !== null).length;
    expect(timedFirstToken).toBeGreaterThan(0);
    expect(sum(samples, 'tokenwise_time_to_first_token_seconds_count', labels)).toBe(timedFirstToken);
    expect(sum(samples, 'tokenwise_records_stored_total')).toBe(3);
    expect(samples.some((sample) => sample.name === 'tokenwise_live_requests')).toBe(true);
    expect(samples.some((sample) => sample.name === 'tokenwise_spool_records')).toBe(true);
    expect(sum(samples, 'tokenwise_records_dropped_total')).toBe(0);
    expect(samples.some((sample) => sample.name === 'tokenwise_process_resident_memory_bytes')).toBe(true);

    expect(text).not.toContain(running.server.routeToken);
    expect(text).not.toContain(calls[0]!.workspace_id!);
  });

  it('adds only what grew between scrapes', async () => {
    running = await startTestServer({ upstreams: { anthropic: upstream.url }, metricsToken: METRICS_TOKEN });
    await (await anthropicCall(running.server.url, running.server.routeToken)).text();
    await vi.waitFor(() => expect(running!.server.stats().sink.stored).toBe(1));
    expect(sum(parseExposition(await (await scrape(running.server.url)).text()), 'tokenwise_records_stored_total')).toBe(1);

    await (await anthropicCall(running.server.url, running.server.routeToken)).text();
    await vi.waitFor(() => expect(running!.server.stats().sink.stored).toBe(2));
    expect(sum(parseExposition(await (await scrape(running.server.url)).text()), 'tokenwise_records_stored_total')).toBe(2);
  });

  it('is off without a metrics token', async () => {
    running = await startTestServer();
    const response = await scrape(running.server.url, null);
    expect(response.status).toBe(404);
    expect(await response.text()).toContain('--metrics-token');
  });

  it('rejects a missing or wrong bearer token', async () => {
    running = await startTestServer({ metricsToken: METRICS_TOKEN });
    const missing = await scrape(running.server.url, null);
    expect(missing.status).toBe(401);
    expect(missing.headers.get('www-authenticate')).toContain('Bearer');
    expect((await scrape(running.server.url, `${METRICS_TOKEN}x`)).status).toBe(401);
    expect((await scrape(running.server.url, running.server.apiToken)).status).toBe(401);
  });

  it('is served by a proxy-only server', async () => {
    running = await startTestServer({ role: 'proxy', metricsToken: METRICS_TOKEN });
    const response = await scrape(running.server.url);
    expect(response.status).toBe(200);
    expect(parseExposition(await response.text()).some((sample) => sample.name === 'tokenwise_live_requests')).toBe(true);
  });
});

/** Counters of a sink that stored `stored` records and has nothing queued. */
function sinkStats(stored: number) {
  return {
    queued: 0,
    stored,
    dropped: 0,
    storeFailures: 0,
    storeUnavailable: false,
    lost: 0,
    spooled: 0,
    spoolBytes: 0,
    spoolFailures: 0,
  };
}

describe('createServerMetrics', () => {
  it('counts models past the limit as other', async () => {
    const sink = sinkStats(0);
    const metrics = createServerMetrics({
      token: METRICS_TOKEN,
      sources: { proxy: () => null, sink: () => sink, exporter: () => null },
      maxModels: 2,
    });
    for (const model of ['model-a', 'model-b', 'model-c', 'model-d', 'model-a']) {
      metrics.observe({ ...sampleRecord(), model_requested: model, model_answered: model });
    }

    const samples = parseExposition(await metrics.render()).filter((sample) => sample.name === 'tokenwise_calls_total');
    expect(samples.map((sample) => [sample.labels.model, sample.value]).sort()).toEqual([
      ['model-a', 2],
      ['model-b', 1],
      ['other', 2],
    ]);
  });

  it('counts no call when no token can scrape them', async () => {
    const sink = sinkStats(0);
    const metrics = createServerMetrics({ sources: { proxy: () => null, sink: () => sink, exporter: () => null } });
    metrics.observe(sampleRecord());
    const samples = parseExposition(await metrics.render());
    expect(samples.filter((sample) => sample.name === 'tokenwise_calls_total')).toEqual([]);
    expect(sum(samples, 'tokenwise_records_stored_total')).toBe(0);
  });

  it('reports zero for components a server does not have', async () => {
    const sink = sinkStats(5);
    const metrics = createServerMetrics({ sources: { proxy: () => null, sink: () => sink, exporter: () => null } });
    const samples = parseExposition(await metrics.render());
    expect(sum(samples, 'tokenwise_live_requests')).toBe(0);
    expect(sum(samples, 'tokenwise_otlp_spans_exported_total')).toBe(0);
    expect(sum(samples, 'tokenwise_records_stored_total')).toBe(5);
  });
});
