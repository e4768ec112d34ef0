import { createServer, request as httpRequest, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { CallRecord } from '@tokenwise/core';
import { type FakeProvider, startFakeProvider } from '@tokenwise/testkit';
import { afterAll, beforeAll, expect, it } from 'vitest';
import WebSocket from 'ws';
import { sendRequest } from './helpers/http-client.js';
import { INGEST_SECRET, type IngestServer, startIngestServer } from './helpers/ingest-server.js';
import { describeWithWorkerd, type RunningWorker, startWorker } from './helpers/workerd.js';

/**
 * The Worker against the Node proxy: the same calls through both must be recorded alike, field by field.
 * Also the Worker's own duties: route tokens checked against the server, records sent again after a
 * lost answer without doubling, and bodies past the Worker's cap passed through whole but stored truncated.
 */

/**
 * Record fields that differ between any two calls: our id, the fake provider's fresh response and request
 * ids, and wall-clock times. Timings are compared apart, and the provider's ids must be present in both.
 */
const PER_CALL_FIELDS = new Set(['id', 'started_at', 'timing', 'response_id', 'upstream_request_id']);
/** Two proxies on one machine answer within this much of each other, in ms; generous because the Worker runs in workerd. */
const TIMING_TOLERANCE_MS = 500;
/** The Worker's default body cap (1 MiB), as documented in wrangler.toml and docs/deploy.md. */
const WORKER_BODY_CAP_BYTES = 1024 * 1024;

const ANTHROPIC_HEADERS = {
  'content-type': 'application/json',
  'x-api-key': 'sk-ant-api03-FAKE-worker-test',
  'anthropic-version': '2023-06-01',
  'user-agent': 'claude-cli/2.1.197 (external, sdk-cli)',
};
const CODEX_HEADERS = {
  authorization: 'Bearer sk-proj-FAKE-TEST-KEY-0000',
  'openai-beta': 'responses_websockets=2026-02-06',
  originator: 'codex_exec',
  'user-agent': 'codex_exec/0.171.0 (Linux; x86_64) FAKE',
  'session-id': '0199a000-0000-7000-8000-000000000002',
};

describeWithWorkerd('Worker proxy', () => {
  let provider: FakeProvider;
  let server: IngestServer;
  let worker: RunningWorker;

  beforeAll(async () => {
    provider = await startFakeProvider({ websocket: 'accept' });
    server = await startIngestServer({ upstreams: { anthropic: provider.url, openai: provider.url } });
    worker = await startWorker({
      TOKENWISE_SERVER_URL: server.server.url,
      TOKENWISE_INGEST_SECRET: INGEST_SECRET,
      TOKENWISE_UPSTREAM_ANTHROPIC: provider.url,
      TOKENWISE_UPSTREAM_OPENAI: provider.url,
      TOKENWISE_TOKEN_CACHE_SECONDS: '1',
    });
  });

  afterAll(async () => {
    await worker?.dispose();
    await server?.dispose();
    await provider?.close();
  });

  /** Run `call` through the Node proxy and then the Worker; return both records, Node's first. */
  async function throughBoth(call: (origin: string) => Promise<void>): Promise<[CallRecord, CallRecord]> {
    const before = (await server.calls()).length;
    await call(server.server.url);
    await server.waitForCalls(before + 1);
    await call(worker.url);
    const stored = await server.waitForCalls(before + 2);
    return [stored[before]!, stored[before + 1]!];
  }

  function expectRecordedAlike(node: CallRecord, viaWorker: CallRecord): void {
    const nodeFields = node as unknown as Record<string, unknown>;
    const workerFields = viaWorker as unknown as Record<string, unknown>;
    expect(Object.keys(workerFields).sort()).toEqual(Object.keys(nodeFields).sort());
    for (const field of Object.keys(nodeFields)) {
      if (!PER_CALL_FIELDS.has(field)) expect.soft(workerFields[field], field).toEqual(nodeFields[field]);
    }
    for (const id of ['response_id', 'upstream_request_id'] as const) {
      expect.soft(viaWorker[id] === null, `${id} is null`).toBe(node[id] === null);
    }
    for (const timing of ['ttft_ms', 'total_ms', 'headers_ms'] as const) {
      const expected = node.timing[timing];
      if (expected === null) expect.soft(viaWorker.timing[timing], `timing.${timing}`).toBeNull();
      else expect.soft(Math.abs(viaWorker.timing[timing]! - expected), `timing.${timing}`).toBeLessThanOrEqual(TIMING_TOLERANCE_MS);
    }
  }

  it('records a streamed Anthropic call as the Node proxy does', async () => {
    const bodies: string[] = [];
    const [node, viaWorker] = await throughBoth(async (origin) => {
      const response = await fetch(`${origin}/r/${server.server.routeToken}/anthropic/v1/messages?beta=true`, {
        method: 'POST',
        headers: ANTHROPIC_HEADERS,
        body: JSON.stringify({ model: 'claude-sonnet-4-5', max_tokens: 64, stream: true, messages: [{ role: 'user', content: 'say hi' }] }),
      });
      expect(response.status).toBe(200);
      bodies.push(await response.text());
    });

    expect(node.streaming).toBe(true);
    expect(node.usage.output_tokens).not.toBeNull();
    expect(bodies[1]).toContain('event: message_stop');
    expectRecordedAlike(node, viaWorker);
  });

  it('records a Codex Responses WebSocket call as the Node proxy does', async () => {
    const [node, viaWorker] = await throughBoth(async (origin) => {
      const events = await runResponsesWebSocket(`${origin.replace('http', 'ws')}/r/${server.server.routeToken}/openai/v1/responses`);
      expect(events.at(-1)).toBe('response.completed');
    });

    expect(node.stream_format).toBe('websocket');
    expect(node.api_shape).toBe('openai.responses');
    expectRecordedAlike(node, viaWorker);
  });

  it('answers 401 invalid route for an unknown token', async () => {
    const response = await sendRequest(worker.url, { method: 'POST', path: '/r/twr_unknown_token/anthropic/v1/messages', body: '{}' });
    expect(response.status).toBe(401);
    expect(JSON.parse(response.body.toString()).error.message).toMatch(/^invalid route/);
  });

  it('refuses a revoked token once the cache expires', async () => {
    const created = (await (await server.api('/api/v1/route-tokens', { method: 'POST', body: '{"name":"worker"}' })).json()) as {
      id: string;
      token: string;
    };
    const call = () =>
      sendRequest(worker.url, {
        method: 'POST',
        path: `/r/${created.token}/anthropic/v1/messages`,
        headers: ANTHROPIC_HEADERS,
        body: JSON.stringify({ model: 'claude-sonnet-4-5', max_tokens: 16, messages: [{ role: 'user', content: 'hi' }] }),
      });
    expect((await call()).status).toBe(200);

    await server.api(`/api/v1/route-tokens/${created.id}`, { method: 'DELETE' });
    // The Worker trusts a verified token for TOKENWISE_TOKEN_CACHE_SECONDS (1 s here), the documented bound.
    await new Promise((resolve) => setTimeout(resolve, 1100));
    const refused = await call();
    expect(refused.status).toBe(401);
    expect(JSON.parse(refused.body.toString()).error.type).toBe('authentication_error');
    expect(JSON.parse(refused.body.toString()).error.message).toMatch(/^invalid route/);
  });

  it('sends a batch again after a lost answer without doubling the call', async () => {
    const lossy = await startLossyIngestProxy(server.server.url);
    const lossyWorker = await startWorker({
      TOKENWISE_SERVER_URL: lossy.url,
      TOKENWISE_INGEST_SECRET: INGEST_SECRET,
      TOKENWISE_UPSTREAM_ANTHROPIC: provider.url,
    });
    try {
      const before = (await server.calls()).length;
      const response = await fetch(`${lossyWorker.url}/r/${server.server.routeToken}/anthropic/v1/messages`, {
        method: 'POST',
        headers: ANTHROPIC_HEADERS,
        body: JSON.stringify({ model: 'claude-sonnet-4-5', max_tokens: 16, messages: [{ role: 'user', content: 'hi' }] }),
      });
      expect(response.status).toBe(200);

      await expect.poll(() => lossy.ingestAnswers.length, { timeout: 10_000 }).toBe(2);
      expect(lossy.ingestAnswers[0]).toEqual({ received: 1, stored: 1, duplicates: 0 });
      expect(lossy.ingestAnswers[1]).toEqual({ received: 1, stored: 0, duplicates: 1 });
      expect(await server.calls()).toHaveLength(before + 1);
    } finally {
      await lossyWorker.dispose();
      await lossy.close();
    }
  });

  it('passes a body past the cap through whole and stores it truncated', async () => {
    const bigBody = JSON.stringify({ model: 'gpt-5', input: 'x'.repeat(WORKER_BODY_CAP_BYTES + 512 * 1024) });
    const bigAnswer = Buffer.alloc(WORKER_BODY_CAP_BYTES + 256 * 1024, 'y');
    const received: Buffer[] = [];
    const upstream = createServer((req, res) => {
      const chunks: Buffer[] = [];
      req.on('data', (chunk: Buffer) => chunks.push(chunk));
      req.on('end', () => {
        received.push(Buffer.concat(chunks));
        res.writeHead(200, { 'content-type': 'text/plain' }).end(bigAnswer);
      });
    });
    const upstreamUrl = await listen(upstream);
    const capWorker = await startWorker({
      TOKENWISE_SERVER_URL: server.server.url,
      TOKENWISE_INGEST_SECRET: INGEST_SECRET,
      TOKENWISE_UPSTREAM_OPENAI: upstreamUrl,
    });
    try {
      const before = (await server.calls()).length;
      const response = await sendRequest(capWorker.url, {
        method: 'POST',
        path: `/r/${server.server.routeToken}/openai/v1/responses`,
        headers: { 'content-type': 'application/json', authorization: 'Bearer sk-FAKE-cap-test' },
        body: bigBody,
      });
      expect(response.status).toBe(200);
      expect(response.body.equals(bigAnswer)).toBe(true);
      expect(received[0]?.toString()).toBe(bigBody);

      const record = (await server.waitForCalls(before + 1))[before]!;
      const { bodies } = await server.call(record.id);
      expect(bodies?.request?.truncated).toBe(true);
      expect(bodies?.request?.bytes).toBe(Buffer.byteLength(bigBody));
      expect(bodies?.request?.text?.length).toBeLessThanOrEqual(WORKER_BODY_CAP_BYTES);
      expect(bodies?.response?.truncated).toBe(true);
      expect(bodies?.response?.bytes).toBe(bigAnswer.length);
      expect(bodies?.response?.text?.length).toBeLessThanOrEqual(WORKER_BODY_CAP_BYTES);
      expect(record.request_bytes).toBe(Buffer.byteLength(bigBody));
      expect(record.response_bytes).toBe(bigAnswer.length);
    } finally {
      await capWorker.dispose();
      await new Promise<void>((resolve) => upstream.close(() => resolve()));
    }
  });
});

/** Send one `response.create` over a Responses WebSocket and return the event types up to the terminal one. */
function runResponsesWebSocket(url: string): Promise<string[]> {
  return new Promise((resolve, reject) => {
    const socket = new WebSocket(url, { headers: CODEX_HEADERS });
    const types: string[] = [];
    socket.on('error', reject);
    socket.on('open', () => {
      socket.send(
        JSON.stringify({
          type: 'response.create',
          model: 'gpt-5',
          instructions: 'You are a test.',
          input: [{ type: 'message', role: 'user', content: [{ type: 'input_text', text: 'say hi' }] }],
          stream: true,
        }),
      );
    });
    socket.on('message', (data) => {
      const type = (JSON.parse(String(data)) as { type: string }).type;
      types.push(type);
      if (type === 'response.completed' || type === 'response.failed') socket.close(1000);
    });
    socket.on('close', () => resolve(types));
  });
}

interface LossyIngestProxy {
  url: string;
  /** The server's answers to each ingest request, in order; the first never reached the Worker. */
  ingestAnswers: unknown[];
  close(): Promise<void>;
}

/**
 * Start a proxy in front of the server that passes every request on, but answers the first ingest request
 * with a 502 after the server has stored it: the case of an answer lost on the way back.
 */
async function startLossyIngestProxy(target: string): Promise<LossyIngestProxy> {
  const ingestAnswers: unknown[] = [];
  const targetUrl = new URL(target);
  const proxy = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (chunk: Buffer) => chunks.push(chunk));
    req.on('end', () => {
      const forwarded = httpRequest(
        { host: targetUrl.hostname, port: targetUrl.port, method: req.method, path: req.url, headers: req.headers },
        (answer) => {
          const answerChunks: Buffer[] = [];
          answer.on('data', (chunk: Buffer) => answerChunks.push(chunk));
          answer.on('end', () => {
            const body = Buffer.concat(answerChunks);
            if (req.url === '/api/v1/ingest') {
              ingestAnswers.push(JSON.parse(body.toString()));
              if (ingestAnswers.length === 1) {
                res.writeHead(502, { 'content-type': 'text/plain' }).end('answer lost');
                return;
              }
            }
            res.writeHead(answer.statusCode ?? 502, answer.headers).end(body);
          });
        },
      );
      forwarded.end(Buffer.concat(chunks));
    });
  });
  const url = await listen(proxy);
  return { url, ingestAnswers, close: () => new Promise<void>((resolve) => proxy.close(() => resolve())) };
}

async function listen(server: Server): Promise<string> {
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', () => resolve()));
  return `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
}
