import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { CallBodies, CallRecord } from '@tokenwise/core';
import { FAKE_CREDENTIALS, type FakeProvider, startFakeProvider } from '@tokenwise/testkit';
import { afterAll, afterEach, beforeAll, describe, expect, it, vi } from 'vitest';
import { anthropicCall, startTestServer, type TestServer } from './helpers/test-server.js';

/** One attribute as OTLP/JSON encodes it. */
interface KeyValue {
  key: string;
  value: {
    stringValue?: string;
    intValue?: string;
    doubleValue?: number;
    boolValue?: boolean;
    arrayValue?: { values: { stringValue: string }[] };
  };
}
interface ReceivedSpan {
  traceId: string;
  spanId: string;
  name: string;
  kind: number;
  startTimeUnixNano: string;
  endTimeUnixNano: string;
  attributes: KeyValue[];
  status: { code: number; message?: string };
}
interface ExportRequest {
  resourceSpans: { resource: { attributes: KeyValue[] }; scopeSpans: { scope: { name: string }; spans: ReceivedSpan[] }[] }[];
}

/**
 * A minimal OTLP/HTTP receiver on 127.0.0.1: it accepts `POST /v1/traces` with `application/json`, keeps
 * each decoded ExportTraceServiceRequest, and responds with the statuses queued in `failNext` first.
 */
async function startReceiver() {
  const requests: { path: string; headers: Record<string, string | string[] | undefined>; body: ExportRequest }[] = [];
  const failNext: number[] = [];
  const server: Server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (chunk: Buffer) => chunks.push(chunk));
    req.on('end', () => {
      const status = failNext.shift();
      if (status !== undefined) {
        res.writeHead(status, { 'content-type': 'application/json', 'retry-after': '0' });
        res.end('{"code":14,"message":"unavailable"}');
        return;
      }
      if (req.method !== 'POST' || req.url !== '/v1/traces' || req.headers['content-type'] !== 'application/json') {
        res.writeHead(415);
        res.end();
        return;
      }
      requests.push({ path: req.url, headers: req.headers, body: JSON.parse(Buffer.concat(chunks).toString('utf8')) as ExportRequest });
      res.writeHead(200, { 'content-type': 'application/json' });
      res.end('{}');
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', () => resolve()));
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}`,
    requests,
    failNext,
    spans: () =>
      requests.flatMap((request) => request.body.resourceSpans.flatMap((resource) => resource.scopeSpans.flatMap((scope) => scope.spans))),
    close: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      }),
  };
}

type Receiver = Awaited<ReturnType<typeof startReceiver>>;

function attribute(span: ReceivedSpan, key: string): KeyValue['value'] | undefined {
  return span.attributes.find((entry) => entry.key === key)?.value;
}

async function listCalls(running: TestServer) {
  const response = await running.api('/api/v1/calls?limit=50');
  return ((await response.json()) as { calls: CallRecord[] }).calls;
}

function openaiChat(serverUrl: string, routeToken: string): Promise<Response> {
  return fetch(`${serverUrl}/r/${routeToken}/openai/v1/chat/completions`, {
    method: 'POST',
    headers: {
      'content-type': 'application/json',
      authorization: `Bearer ${FAKE_CREDENTIALS.openaiApiKey}`,
      'user-agent': 'OpenAI/JS 5.1.0',
    },
    body: JSON.stringify({ model: 'gpt-5-mini', messages: [{ role: 'user', content: 'say hi' }] }),
  });
}

let upstream: FakeProvider;
let receiver: Receiver;
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
  await receiver?.close();
});

describe('OTLP export', () => {
  it('sends each call as a GenAI span', async () => {
    receiver = await startReceiver();
    running = await startTestServer({
      upstreams: { anthropic: upstream.url, openai: upstream.url },
      otlp: { tracesUrl: `${receiver.url}/v1/traces`, headers: { 'x-collector-key': 'k-123' }, includeBodies: false },
      otlpBatching: { flushIntervalMs: 50 },
    });

    await (await anthropicCall(running.server.url, running.server.routeToken, { stream: true })).text();
    await (await openaiChat(running.server.url, running.server.routeToken)).text();
    await vi.waitFor(() => expect(receiver.spans()).toHaveLength(2), { timeout: 10_000 });
    await vi.waitFor(() => expect(running!.server.stats().sink.stored).toBe(2));

    const calls = await listCalls(running);
    const anthropic = calls.find((call) => call.route === 'anthropic')!;
    const openai = calls.find((call) => call.route === 'openai')!;
    const spans = receiver.spans();
    const anthropicSpan = spans.find((span) => attribute(span, 'tokenwise.call.id')?.stringValue === anthropic.id)!;
    const openaiSpan = spans.find((span) => attribute(span, 'tokenwise.call.id')?.stringValue === openai.id)!;

    expect(receiver.requests[0]!.headers['x-collector-key']).toBe('k-123');
    expect(receiver.requests[0]!.body.resourceSpans[0]!.resource.attributes).toContainEqual({
      key: 'service.name',
      value: { stringValue: 'tokenwise' },
    });

    expect(anthropicSpan.name).toBe(`chat ${anthropic.model_requested}`);
    expect(anthropicSpan.kind).toBe(3);
    expect(anthropicSpan.traceId).toMatch(/^[0-9a-f]{32}$/);
    expect(anthropicSpan.spanId).toMatch(/^[0-9a-f]{16}$/);
    expect(anthropicSpan.status.code).toBe(0);
    expect(attribute(anthropicSpan, 'gen_ai.operation.name')).toEqual({ stringValue: 'chat' });
    expect(attribute(anthropicSpan, 'gen_ai.provider.name')).toEqual({ stringValue: 'anthropic' });
    expect(attribute(anthropicSpan, 'gen_ai.system')).toBeUndefined();
    expect(attribute(anthropicSpan, 'gen_ai.request.model')).toEqual({ stringValue: anthropic.model_requested });
    expect(attribute(anthropicSpan, 'gen_ai.response.model')).toEqual({ stringValue: anthropic.model_answered });
    expect(attribute(anthropicSpan, 'gen_ai.response.id')).toEqual({ stringValue: anthropic.response_id });
    expect(attribute(anthropicSpan, 'gen_ai.usage.input_tokens')).toEqual({ intValue: String(anthropic.usage.input_tokens) });
    expect(attribute(anthropicSpan, 'gen_ai.usage.output_tokens')).toEqual({ intValue: String(anthropic.usage.output_tokens) });
    expect(attribute(anthropicSpan, 'gen_ai.response.finish_reasons')).toEqual({
      arrayValue: { values: [{ stringValue: anthropic.stop_reason }] },
    });
    expect(attribute(anthropicSpan, 'server.address')).toEqual({ stringValue: '127.0.0.1' });
    expect(attribute(anthropicSpan, 'server.port')).toEqual({ intValue: String(upstream.port) });
    expect(attribute(anthropicSpan, 'tokenwise.tool')).toEqual({ stringValue: 'claude-code' });
    expect(attribute(anthropicSpan, 'tokenwise.cost.usd')).toEqual({ doubleValue: anthropic.cost.usd });
    expect(attribute(anthropicSpan, 'tokenwise.request.body')).toBeUndefined();

    const startNs = BigInt(anthropicSpan.startTimeUnixNano);
    expect(startNs / 1_000_000n).toBe(BigInt(Date.parse(anthropic.started_at)));
    expect(BigInt(anthropicSpan.endTimeUnixNano) - startNs).toBe(BigInt(anthropic.timing.total_ms) * 1_000_000n);

    expect(attribute(openaiSpan, 'gen_ai.provider.name')).toEqual({ stringValue: 'openai' });
    expect(attribute(openaiSpan, 'gen_ai.usage.input_tokens')).toEqual({ intValue: String(openai.usage.input_tokens) });
    expect(attribute(openaiSpan, 'tokenwise.streaming')).toEqual({ boolValue: false });
    // The receiver has the spans before the exporter has read its answer and counted them.
    await vi.waitFor(() => expect(running!.server.stats().export).toMatchObject({ exported: 2, dropped: 0, failed: 0, queued: 0 }));
  });

  it('marks a failed call as an error span', async () => {
    receiver = await startReceiver();
    running = await startTestServer({
      upstreams: { anthropic: 'http://127.0.0.1:9' },
      otlp: { tracesUrl: `${receiver.url}/v1/traces`, headers: {}, includeBodies: false },
      otlpBatching: { flushIntervalMs: 50 },
    });

    expect((await anthropicCall(running.server.url, running.server.routeToken)).status).toBe(502);
    await vi.waitFor(() => expect(receiver.spans()).toHaveLength(1), { timeout: 10_000 });

    const span = receiver.spans()[0]!;
    expect(span.status.code).toBe(2);
    expect(attribute(span, 'error.type')).toEqual({ stringValue: 'upstream_unreachable' });
  });

  it('sends a batch again after a 503', async () => {
    receiver = await startReceiver();
    receiver.failNext.push(503);
    running = await startTestServer({
      upstreams: { anthropic: upstream.url },
      otlp: { tracesUrl: `${receiver.url}/v1/traces`, headers: {}, includeBodies: false },
      otlpBatching: { flushIntervalMs: 50 },
    });

    await (await anthropicCall(running.server.url, running.server.routeToken)).text();
    await vi.waitFor(() => expect(receiver.spans()).toHaveLength(1), { timeout: 15_000 });

    await vi.waitFor(() => expect(running!.server.stats().export).toMatchObject({ exported: 1, failed: 0, requestFailures: 1 }));
  });

  it('keeps serving calls while the collector is down', async () => {
    receiver = await startReceiver();
    const deadUrl = receiver.url;
    await receiver.close();
    running = await startTestServer({
      upstreams: { anthropic: upstream.url },
      otlp: { tracesUrl: `${deadUrl}/v1/traces`, headers: {}, includeBodies: false },
      otlpBatching: { flushIntervalMs: 50 },
    });

    const response = await anthropicCall(running.server.url, running.server.routeToken);
    await response.text();
    expect(response.status).toBe(200);
    await vi.waitFor(() => expect(running!.server.stats().sink.stored).toBe(1));
    await vi.waitFor(() => expect(running!.server.stats().export?.failed).toBe(1), { timeout: 20_000 });
    expect(running.logs.text()).toContain('OTLP export failed');
  });

  it('adds bodies only when asked and the workspace keeps them', async () => {
    receiver = await startReceiver();
    running = await startTestServer({
      upstreams: { anthropic: upstream.url },
      otlp: { tracesUrl: `${receiver.url}/v1/traces`, headers: {}, includeBodies: true },
      otlpBatching: { flushIntervalMs: 50 },
    });

    await (await anthropicCall(running.server.url, running.server.routeToken)).text();
    await vi.waitFor(() => expect(receiver.spans()).toHaveLength(1), { timeout: 10_000 });
    const withBodies = receiver.spans()[0]!;
    expect(attribute(withBodies, 'tokenwise.request.body')?.stringValue).toContain('say hi');
    expect(attribute(withBodies, 'tokenwise.response.body')?.stringValue).toContain('"type":"message"');

    const me = (await (await running.api('/api/v1/me')).json()) as { workspaces: { id: string }[] };
    const patched = await running.api(`/api/v1/workspaces/${me.workspaces[0]!.id}`, {
      method: 'PATCH',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ privacy_mode: true }),
    });
    expect(patched.status).toBe(200);

    await (await anthropicCall(running.server.url, running.server.routeToken)).text();
    await vi.waitFor(() => expect(receiver.spans()).toHaveLength(2), { timeout: 10_000 });
    const private_ = receiver.spans()[1]!;
    expect(attribute(private_, 'gen_ai.usage.input_tokens')).toBeDefined();
    expect(attribute(private_, 'tokenwise.request.body')).toBeUndefined();
    expect(attribute(private_, 'tokenwise.response.body')).toBeUndefined();
  });

  it('exports and stores a body large enough to be packed during the write', async () => {
    receiver = await startReceiver();
    const server = await startTestServer({
      upstreams: { anthropic: upstream.url },
      otlp: { tracesUrl: `${receiver.url}/v1/traces`, headers: {}, includeBodies: true },
      otlpBatching: { flushIntervalMs: 50 },
    });
    running = server;
    // Over the sink's default part of 256 Ki characters, so the sink transfers the raw request bytes to
    // the packer's thread inside its `write`, before the exporter reads them.
    const prompt = `DB_PASSWORD=hunter2hunter2 déjà 😀 ${'lorem ipsum '.repeat(30_000)}`;
    const sent = await fetch(`${server.server.url}/r/${server.server.routeToken}/anthropic/v1/messages`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', 'x-api-key': FAKE_CREDENTIALS.anthropicApiKey, 'anthropic-version': '2023-06-01' },
      body: JSON.stringify({ model: 'claude-sonnet-4-5', max_tokens: 64, messages: [{ role: 'user', content: prompt }] }),
    });
    expect(sent.status).toBe(200);
    await sent.text();

    await vi.waitFor(() => expect(receiver.spans()).toHaveLength(1), { timeout: 10_000 });
    const exported = attribute(receiver.spans()[0]!, 'tokenwise.request.body')?.stringValue ?? '';
    expect(exported).toContain('DB_PASSWORD=[REDACTED:env-secret] déjà 😀 lorem ipsum');
    expect(exported).toHaveLength(16 * 1024);

    await vi.waitFor(async () => expect(await listCalls(server)).toHaveLength(1), { timeout: 10_000 });
    const [listed] = await listCalls(server);
    const found = (await (await server.api(`/api/v1/calls/${listed!.id}`)).json()) as { bodies: CallBodies | null };
    const stored = JSON.parse(found.bodies!.request!.text!) as { messages: { content: string }[] };
    expect(stored.messages[0]!.content).toBe(prompt.replace('hunter2hunter2', '[REDACTED:env-secret]'));
  });

  it('never sends credentials or the route token', async () => {
    receiver = await startReceiver();
    running = await startTestServer({
      upstreams: { anthropic: upstream.url },
      otlp: { tracesUrl: `${receiver.url}/v1/traces`, headers: {}, includeBodies: true },
      otlpBatching: { flushIntervalMs: 50 },
    });

    await (await anthropicCall(running.server.url, running.server.routeToken)).text();
    await vi.waitFor(() => expect(receiver.spans()).toHaveLength(1), { timeout: 10_000 });

    const sent = JSON.stringify(receiver.requests.map((request) => request.body));
    expect(sent).not.toContain(running.server.routeToken);
    expect(sent).not.toContain(FAKE_CREDENTIALS.anthropicApiKey);
  });
});
