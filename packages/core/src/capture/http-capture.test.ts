import zlib from 'node:zlib';
import { describe, expect, it } from 'vitest';
import { createRouteRegistry } from '../routes/registry.js';
import type { CaptureOptions, CaptureRequest } from './capture-types.js';
import { createHttpCapture, createWebSocketHandshakeCapture } from './http-capture.js';

const routes = createRouteRegistry();
const encode = (text: string) => new TextEncoder().encode(text);
const API_KEY = 'sk-ant-api03-FAKE-TEST-KEY-DO-NOT-USE-0000000000000000000000000000';

function request(overrides: Partial<CaptureRequest> & { routeName?: string } = {}): CaptureRequest {
  const { routeName = 'anthropic', ...rest } = overrides;
  return {
    route: routes.get(routeName)!,
    method: 'POST',
    target: '/v1/messages',
    headers: { 'content-type': 'application/json', 'x-api-key': API_KEY, 'user-agent': 'Anthropic/JS 0.68.0' },
    workspaceId: 'ws1',
    deviceId: 'dev1',
    ...rest,
  };
}

/** Create a capture on a scripted clock. `at(ms)` sets the time the next call sees. */
function scripted(req: CaptureRequest, options: CaptureOptions = {}) {
  let now = 0;
  const capture = createHttpCapture(req, { clock: () => now, wallClock: () => Date.parse('2026-11-03T14:05:09Z'), ...options });
  return {
    capture,
    at(ms: number) {
      now = ms;
      return capture;
    },
  };
}

const messageBody = JSON.stringify({
  model: 'claude-haiku-4-5',
  max_tokens: 100,
  stream: true,
  messages: [{ role: 'user', content: 'hi' }],
});
const sseHeaders = { 'content-type': 'text/event-stream', 'request-id': 'req_1' };
const anthropicStream = [
  'event: message_start\ndata: {"type":"message_start","message":{"id":"msg_1","model":"claude-haiku-4-5-20251001","usage":{"input_tokens":10,"output_tokens":1}}}\n\n',
  'event: content_block_start\ndata: {"type":"content_block_start","index":0,"content_block":{"type":"text","text":""}}\n\n',
  'event: content_block_delta\ndata: {"type":"content_block_delta","index":0,"delta":{"type":"text_delta","text":"Hello"}}\n\n',
  'event: message_delta\ndata: {"type":"message_delta","delta":{"stop_reason":"end_turn"},"usage":{"output_tokens":5}}\n\n',
  'event: message_stop\ndata: {"type":"message_stop"}\n\n',
];

/** Gzip `parts` as a server that flushes after each part does: one read per part, the last one ending the stream. */
async function gzipFlushedReads(parts: string[]): Promise<Uint8Array[]> {
  const gzip = zlib.createGzip();
  const reads: Uint8Array[] = [];
  let pending: Buffer[] = [];
  gzip.on('data', (data: Buffer) => pending.push(data));
  for (const [index, part] of parts.entries()) {
    if (index < parts.length - 1) {
      gzip.write(part);
      await new Promise<void>((resolve) => gzip.flush(zlib.constants.Z_SYNC_FLUSH, () => resolve()));
    } else {
      const ended = new Promise((resolve) => gzip.on('end', resolve));
      gzip.end(part);
      await ended;
    }
    reads.push(new Uint8Array(Buffer.concat(pending)));
    pending = [];
  }
  return reads;
}

describe('createHttpCapture', () => {
  it('records an unreachable upstream as a transport error', () => {
    const { capture, at } = scripted(request());
    capture.requestChunk(encode(messageBody));
    capture.requestEnd();
    const { record } = at(3000).finish({ kind: 'upstream_unreachable', message: 'connect ECONNREFUSED 127.0.0.1:9' });

    expect(record.http_status).toBeNull();
    expect(record.status).toBe('error');
    expect(record.error).toEqual({
      type: 'upstream_unreachable',
      message: 'connect ECONNREFUSED 127.0.0.1:9',
      source: 'transport',
      retry_after_s: null,
    });
    expect(record.billable).toBe(false);
    expect(record.cost).toMatchObject({ usd: 0, basis: 'none' });
    expect(record.timing).toEqual({ ttft_ms: null, total_ms: 3000, headers_ms: null });
    expect(record.model_requested).toBe('claude-haiku-4-5');
  });

  it('records an invalid upstream response as its own error type', () => {
    const { capture, at } = scripted(request());
    capture.requestChunk(encode(messageBody));
    capture.requestEnd();
    const message = 'upstream http://127.0.0.1:9 sent an invalid HTTP response: invalid status code';
    const { record } = at(40).finish({ kind: 'upstream_invalid_response', message });

    expect(record.http_status).toBeNull();
    expect(record.status).toBe('error');
    expect(record.error).toEqual({ type: 'upstream_invalid_response', message, source: 'transport', retry_after_s: null });
    expect(record.billable).toBe(false);
    expect(record.timing.total_ms).toBe(40);
  });

  it('records a client abort before the headers as aborted with unknown usage', () => {
    const { capture, at } = scripted(request());
    capture.requestChunk(encode(messageBody));
    const { record } = at(1500).finish({ kind: 'client_aborted' });

    expect(record.status).toBe('aborted');
    expect(record.billable).toBe(true);
    expect(record.usage.input_tokens).toBeNull();
    expect(record.cost.basis).toBe('unknown');
    expect(record.timing.total_ms).toBe(1500);
  });

  it('keeps success when the client hangs up after the terminal event', () => {
    const { capture, at } = scripted(request());
    capture.requestChunk(encode(messageBody));
    at(100).responseHead(200, sseHeaders);
    at(200).responseChunk(encode(anthropicStream.join('')));
    const { record } = at(250).finish({ kind: 'client_aborted' });

    expect(record.status).toBe('success');
    expect(record.usage.output_tokens).toBe(5);
  });

  it('times the first token on the read that completes it, through gzip', async () => {
    const reads = await gzipFlushedReads([
      anthropicStream[0]!,
      anthropicStream[1]! + anthropicStream[2]!,
      anthropicStream[3]! + anthropicStream[4]!,
    ]);
    const { capture, at } = scripted(request());
    capture.requestChunk(encode(messageBody));
    at(100).responseHead(200, { ...sseHeaders, 'content-encoding': 'gzip' });
    at(300).responseChunk(reads[0]!);
    at(450).responseChunk(reads[1]!);
    at(500).responseChunk(reads[2]!);
    const { record, warnings } = capture.finish({ kind: 'complete' });

    expect(warnings).toEqual([]);
    expect(record.status).toBe('success');
    expect(record.usage.output_tokens).toBe(5);
    expect(record.timing).toEqual({ ttft_ms: 450, total_ms: 500, headers_ms: 100 });
  });

  it('never throws on bodies that are not what the path promises', () => {
    const { capture, at } = scripted(request({ headers: { 'content-encoding': 'gzip' } }), { keepBodies: true });
    expect(() => {
      capture.responseChunk(encode('before any head'));
      capture.requestChunk(encode('not gzip at all'));
      capture.requestEnd();
      at(10).responseHead(200, { 'content-type': 'text/event-stream' });
      at(20).responseChunk(new Uint8Array([0xff, 0xfe, 0x00, 0x0a, 0x0a, 0x64, 0x61, 0x74, 0x61, 0x3a, 0x7b, 0x0a, 0x0a]));
      at(30).responseHead(500, {});
    }).not.toThrow();
    const result = capture.finish({ kind: 'complete' });

    expect(result.record.http_status).toBe(200);
    expect(result.record.status).toBe('truncated');
    expect(result.record.model_requested).toBeNull();
    expect(result.warnings?.some((warning) => warning.startsWith('gzip decoding failed'))).toBe(true);
    expect(result.bodies?.request?.encoding_error).toMatch(/^gzip decoding failed/);
  });

  it('returns the same result from a second finish', () => {
    const { capture } = scripted(request());
    const first = capture.finish({ kind: 'complete' });
    expect(capture.finish({ kind: 'client_aborted' })).toBe(first);
  });

  it('keeps no bodies unless asked', () => {
    const { capture } = scripted(request());
    capture.requestChunk(encode(messageBody));
    expect(capture.finish({ kind: 'complete' }).bodies).toBeNull();
  });

  it('caps kept bodies without splitting a character and masks secrets', () => {
    const body = JSON.stringify({
      model: 'claude-haiku-4-5',
      messages: [{ role: 'user', content: `my key is ${API_KEY} ${'é'.repeat(100)}` }],
    });
    const { capture, at } = scripted(request(), { keepBodies: true, bodyCapBytes: 150 });
    capture.requestChunk(encode(body));
    capture.requestEnd();
    at(10).responseHead(200, { 'content-type': 'application/json', 'set-cookie': 'session=FAKE', 'anthropic-organization-id': 'FAKE-org' });
    const { bodies, record } = capture.finish({ kind: 'complete' });

    const captured = bodies!.request!;
    expect(captured.truncated).toBe(true);
    expect(captured.bytes).toBe(encode(body).length);
    expect(captured.text).toContain('[REDACTED:anthropic-key]');
    expect(captured.text).not.toContain('\uFFFD');
    expect(encode(captured.text!.replace('[REDACTED:anthropic-key]', API_KEY)).length).toBeLessThanOrEqual(150);
    expect(bodies!.request_headers).toEqual({ 'content-type': 'application/json', 'user-agent': 'Anthropic/JS 0.68.0' });
    expect(bodies!.response_headers).toEqual({ 'content-type': 'application/json' });
    expect(JSON.stringify(record)).not.toContain(API_KEY);
  });

  it('drops the query string from the recorded path', () => {
    const { capture } = scripted(
      request({
        routeName: 'gemini',
        target: '/v1beta/models/gemini-2.5-flash:generateContent?key=AIzaSyFAKE-TEST-KEY-DO-NOT-USE-000000',
        headers: {},
      }),
    );
    const { record } = capture.finish({ kind: 'complete' });
    expect(record.path).toBe('/v1beta/models/gemini-2.5-flash:generateContent');
    expect(JSON.stringify(record)).not.toContain('AIzaSyFAKE');
  });

  it('records other exchanges as not billable', () => {
    const { capture, at } = scripted(
      request({ routeName: 'openai', method: 'GET', target: '/v1/models', headers: { 'user-agent': 'OpenAI/JS 6.9.1' } }),
    );
    at(50).responseHead(200, { 'content-type': 'application/json', 'x-request-id': 'req_models' });
    at(60).responseChunk(encode('{"object":"list","data":[]}'));
    const { record } = capture.finish({ kind: 'complete' });

    expect(record.api_shape).toBeNull();
    expect(record.status).toBe('success');
    expect(record.billable).toBe(false);
    expect(record.usage.input_tokens).toBe(0);
    expect(record.cost).toMatchObject({ usd: 0, basis: 'none' });
    expect(record.upstream_request_id).toBe('req_models');
  });

  it('reads Google error details and retry hints', () => {
    const { capture, at } = scripted(
      request({ routeName: 'gemini', target: '/v1beta/models/gemini-2.5-pro:streamGenerateContent', headers: {} }),
    );
    at(80).responseHead(429, { 'content-type': 'application/json; charset=UTF-8' });
    const error = {
      error: {
        code: 429,
        message: 'Resource has been exhausted (e.g. check quota).',
        status: 'RESOURCE_EXHAUSTED',
        details: [{ '@type': 'type.googleapis.com/google.rpc.RetryInfo', retryDelay: '23s' }],
      },
    };
    at(90).responseChunk(encode(JSON.stringify([error])));
    const { record } = capture.finish({ kind: 'complete' });

    expect(record.error).toEqual({
      type: 'RESOURCE_EXHAUSTED',
      message: 'Resource has been exhausted (e.g. check quota).',
      source: 'http',
      retry_after_s: 23,
    });
    expect(record.streaming).toBe(false);
    expect(record.model_requested).toBe('gemini-2.5-pro');
  });

  it('reads retry-after given as an HTTP date', () => {
    const { capture, at } = scripted(request({ routeName: 'openai', target: '/v1/chat/completions' }));
    at(10).responseHead(503, { 'retry-after': 'Tue, 03 Nov 2026 14:06:09 GMT', 'content-type': 'text/plain' });
    at(11).responseChunk(encode('upstream connect error'));
    const { record } = capture.finish({ kind: 'complete' });
    expect(record.error).toEqual({ type: 'http_503', message: null, source: 'non_json', retry_after_s: 60 });
  });

  it('parses a non-streamed body with a multi-megabyte string', () => {
    const text = 'x'.repeat(3 * 1024 * 1024);
    const body = JSON.stringify({
      id: 'msg_big',
      type: 'message',
      model: 'claude-haiku-4-5-20251001',
      content: [{ type: 'text', text }],
      stop_reason: 'max_tokens',
      usage: { input_tokens: 12, output_tokens: 64000 },
    });
    const { capture, at } = scripted(request());
    at(10).responseHead(200, { 'content-type': 'application/json' });
    const bytes = encode(body);
    for (let offset = 0; offset < bytes.length; offset += 16 * 1024) at(20).responseChunk(bytes.subarray(offset, offset + 16 * 1024));
    const { record } = capture.finish({ kind: 'complete' });

    expect(record.usage.output_tokens).toBe(64000);
    expect(record.stop_reason_normalized).toBe('max_tokens');
  });

  it('records a redirect as an unbilled error', () => {
    const { capture, at } = scripted(request());
    at(10).responseHead(307, { location: 'https://elsewhere.example.org/v1/messages', 'retry-after': '5' });
    const { record } = capture.finish({ kind: 'complete' });

    expect(record.status).toBe('error');
    expect(record.error).toMatchObject({ type: 'http_307', source: 'http', retry_after_s: 5 });
    expect(record.billable).toBe(false);
    expect(record.cost.basis).toBe('none');
  });

  it('keeps 304 Not Modified a success', () => {
    const { capture, at } = scripted(request({ method: 'GET', target: '/v1/models' }));
    at(10).responseHead(304, { etag: '"v1"' });
    const { record } = capture.finish({ kind: 'complete' });

    expect(record.status).toBe('success');
    expect(record.error).toBeNull();
  });

  it('marks a non-streamed body cut by the upstream as truncated', () => {
    const { capture, at } = scripted(request());
    at(10).responseHead(200, { 'content-type': 'application/json' });
    at(20).responseChunk(encode('{"id":"msg_cut","type":"message","content":[{"type":"text","text":"par'));
    const { record, warnings } = capture.finish({ kind: 'upstream_closed' });

    expect(warnings?.[0]).toMatch(/^response body is not JSON: /);
    expect(record.status).toBe('truncated');
    expect(record.usage.output_tokens).toBeNull();
    expect(record.cost.basis).toBe('unknown');
  });
});

describe('createHttpCapture warnings', () => {
  it('never quote body text from a JSON error', () => {
    const { capture, at } = scripted(request());
    at(10).responseHead(200, { 'content-type': 'application/json' });
    at(20).responseChunk(encode('{"id": SECRET-MARKER-9c1e}'));
    const { warnings } = capture.finish({ kind: 'complete' });

    expect(warnings).toEqual(['response body is not JSON: unexpected byte 0x53 where a value should start at offset 7']);
  });

  it('never quote body text from a stream event', () => {
    const { capture, at } = scripted(request());
    at(10).responseHead(200, sseHeaders);
    at(20).responseChunk(encode('event: content_block_delta\ndata: {not json SECRET-MARKER-9c1e}\n\n'));
    const { warnings } = capture.finish({ kind: 'upstream_closed' });

    expect(warnings).toHaveLength(1);
    expect(warnings?.join('\n')).not.toContain('SECRET-MARKER');
  });
});

describe('createHttpCapture with large payloads', () => {
  it('reads an SSE event larger than the parse buffer', () => {
    const image = 'A'.repeat(2 * 1024 * 1024);
    const completed = {
      type: 'response.completed',
      response: {
        id: 'resp_big',
        model: 'gpt-5',
        status: 'completed',
        output: [{ id: 'ig_1', type: 'image_generation_call', result: image }],
        usage: { input_tokens: 50, output_tokens: 1200 },
      },
    };
    const { capture, at } = scripted(request({ routeName: 'openai', target: '/v1/responses', headers: {} }));
    capture.requestChunk(encode('{"model":"gpt-5","stream":true}'));
    at(10).responseHead(200, { 'content-type': 'text/event-stream' });
    const bytes = encode(`event: response.completed\ndata: ${JSON.stringify(completed)}\n\n`);
    for (let offset = 0; offset < bytes.length; offset += 64 * 1024) at(20).responseChunk(bytes.subarray(offset, offset + 64 * 1024));
    const { record, warnings } = capture.finish({ kind: 'complete' });

    expect(warnings).toEqual([]);
    expect(record.status).toBe('success');
    expect(record.usage.output_tokens).toBe(1200);
    expect(record.server_tool_calls).toEqual({ image_generation: 1 });
  });

  it('reads a streamed JSON array element larger than the parse buffer', () => {
    const element = (text: string, finish?: string) =>
      JSON.stringify({
        candidates: [{ content: { parts: [{ text }] }, ...(finish ? { finishReason: finish } : {}) }],
        usageMetadata: { promptTokenCount: 3, candidatesTokenCount: 900 },
        modelVersion: 'gemini-2.5-flash',
      });
    const body = encode(`[${element('x'.repeat(512 * 1024))}\n,\r\n${element('done', 'STOP')}\n]`);
    const { capture, at } = scripted(
      request({ routeName: 'gemini', target: '/v1beta/models/gemini-2.5-flash:streamGenerateContent', headers: {} }),
    );
    at(10).responseHead(200, { 'content-type': 'application/json' });
    for (let offset = 0; offset < body.length; offset += 32 * 1024) at(20).responseChunk(body.subarray(offset, offset + 32 * 1024));
    const { record } = capture.finish({ kind: 'complete' });

    expect(record.stream_format).toBe('json-array');
    expect(record.status).toBe('success');
    expect(record.usage.output_tokens).toBe(900);
    expect(record.timing.ttft_ms).toBe(20);
  });
});

describe('createHttpCapture with a 200 MB body', () => {
  it('reads usage after 200 MB of long strings (regression: usage and model lost)', () => {
    // 200 strings of 1 MiB before the fields that matter, fed as the upstream's reads would come; the
    // body is generated on the fly and never held whole.
    const padding = new Uint8Array(1024 * 1024).fill(0x78);
    const tail = JSON.stringify({
      id: 'msg_big',
      type: 'message',
      model: 'claude-sonnet-4-5-20250929',
      content: [{ type: 'text', text: 'hello' }],
      stop_reason: 'end_turn',
      usage: { input_tokens: 100, output_tokens: 12 },
    });
    const { capture, at } = scripted(request());
    at(10).responseHead(200, { 'content-type': 'application/json' });
    capture.responseChunk(encode('{"pad":['));
    for (let i = 0; i < 200; i++) {
      capture.responseChunk(encode(i === 0 ? '"' : ',"'));
      capture.responseChunk(padding);
      capture.responseChunk(encode('"'));
    }
    at(900).responseChunk(encode(`],${tail.slice(1)}`));
    const { record, warnings } = capture.finish({ kind: 'complete' });

    expect(warnings).toEqual([]);
    expect(record.status).toBe('success');
    expect(record.model_answered).toBe('claude-sonnet-4-5-20250929');
    expect(record.response_id).toBe('msg_big');
    expect(record.usage.input_tokens).toBe(100);
    expect(record.usage.output_tokens).toBe(12);
    expect(record.cost.basis).toBe('exact');
    expect(record.response_bytes).toBe(200 * (1024 * 1024 + 3) - 1 + 8 + tail.length + 1);
  });

  it('warns when a body has more values than it keeps', () => {
    // 2 million small numbers exceed the retained-bytes budget, so values after them are not read.
    const { capture, at } = scripted(request());
    at(10).responseHead(200, { 'content-type': 'application/json' });
    capture.responseChunk(encode('{"numbers":['));
    const block = encode(Array.from({ length: 10_000 }, () => '7').join(','));
    for (let i = 0; i < 200; i++) capture.responseChunk(i === 0 ? block : concatWithComma(block));
    at(20).responseChunk(encode('],"usage":{"input_tokens":1,"output_tokens":1}}'));
    const { record, warnings } = capture.finish({ kind: 'complete' });

    expect(record.usage.output_tokens).toBeNull();
    expect(warnings).toHaveLength(1);
    expect(warnings?.[0]).toMatch(/^response body has more values than the capture keeps/);
  });
});

function concatWithComma(bytes: Uint8Array): Uint8Array {
  const joined = new Uint8Array(bytes.length + 1);
  joined[0] = 0x2c;
  joined.set(bytes, 1);
  return joined;
}

describe('createWebSocketHandshakeCapture', () => {
  const upgrade = (): CaptureRequest =>
    request({
      routeName: 'openai',
      method: 'GET',
      target: '/v1/responses',
      headers: { originator: 'codex_cli_rs', 'user-agent': 'codex_cli_rs/0.46.0 (Linux 6.8; x86_64)', 'session-id': 'sess-ws-1' },
    });

  it('records a refused upgrade as an unbilled error', () => {
    let now = 0;
    const capture = createWebSocketHandshakeCapture(upgrade(), { clock: () => now, wallClock: () => Date.parse('2026-11-03T14:05:09Z') });
    capture.requestEnd();
    now = 30;
    capture.responseHead(429, { 'content-type': 'application/json', 'retry-after': '7' });
    now = 31;
    capture.responseChunk(encode('{"error":{"message":"Rate limit reached","type":"rate_limit_error"}}'));
    const { record } = capture.finish({ kind: 'complete' });

    expect(record.api_shape).toBe('openai.responses');
    expect(record.method).toBe('GET');
    expect(record.status).toBe('error');
    expect(record.http_status).toBe(429);
    expect(record.error).toEqual({ type: 'rate_limit_error', message: 'Rate limit reached', source: 'http', retry_after_s: 7 });
    expect(record.stream_requested).toBe(true);
    expect(record.billable).toBe(false);
    expect(record.tool).toBe('codex');
    expect(record.session_id).toBe('sess-ws-1');
    expect(record.timing).toEqual({ ttft_ms: null, total_ms: 31, headers_ms: 30 });
  });

  it('reads no usage from a 200 sent in place of 101', () => {
    const capture = createWebSocketHandshakeCapture(upgrade(), { clock: () => 0 });
    capture.responseHead(200, { 'content-type': 'application/json' });
    capture.responseChunk(encode('{"id":"resp_1","status":"completed","model":"gpt-5","usage":{"input_tokens":5,"output_tokens":5}}'));
    const { record } = capture.finish({ kind: 'complete' });

    expect(record.status).toBe('error');
    expect(record.error).toMatchObject({ type: 'http_200', source: 'http' });
    expect(record.usage.input_tokens).toBe(0);
    expect(record.model_answered).toBeNull();
    expect(record.cost.basis).toBe('none');
  });
});

describe('createHttpCapture on Code Assist', () => {
  it('unwraps a non-streamed generateContent', () => {
    const body = { model: 'gemini-2.5-flash-lite', project: 'fake-project', request: { contents: [], session_id: 'sess-1' } };
    const { capture, at } = scripted(
      request({
        routeName: 'codeassist',
        target: '/v1internal:generateContent',
        headers: { 'user-agent': 'GeminiCLI/0.61.0/gemini-2.5-flash-lite (linux; x64)' },
      }),
    );
    capture.requestChunk(encode(JSON.stringify(body)));
    at(10).responseHead(200, { 'content-type': 'application/json' });
    const answer = {
      response: {
        candidates: [{ content: { role: 'model', parts: [{ text: '{"complexity_score": 12}' }] }, finishReason: 'STOP' }],
        usageMetadata: { promptTokenCount: 900, candidatesTokenCount: 12 },
        modelVersion: 'gemini-2.5-flash-lite',
        responseId: 'ca-1',
      },
    };
    at(40).responseChunk(encode(JSON.stringify(answer)));
    const { record } = capture.finish({ kind: 'complete' });

    expect(record.api_shape).toBe('gemini.generate_content');
    expect(record.model_requested).toBe('gemini-2.5-flash-lite');
    expect(record.model_answered).toBe('gemini-2.5-flash-lite');
    expect(record.session_id).toBe('sess-1');
    expect(record.tool).toBe('gemini-cli');
    expect(record.usage).toMatchObject({ input_tokens: 900, output_tokens: 12 });
    expect(record.response_id).toBe('ca-1');
    expect(record.cost.basis).toBe('api_equivalent');
  });
});

/** Finish a non-streamed exchange on `target` whose 200 body is `body`. */
function captureDocument(routeName: string, target: string, body: unknown) {
  const { capture, at } = scripted(request({ routeName, target }));
  at(10).responseHead(200, { 'content-type': 'application/json' });
  at(20).responseChunk(encode(JSON.stringify(body)));
  return capture.finish({ kind: 'complete' });
}

describe('createHttpCapture with invalid usage counts', () => {
  it('rejects a count of 1e300 (regression: cost of $6e294)', () => {
    const { record, warnings } = captureDocument('anthropic', '/v1/messages', {
      id: 'msg_huge',
      type: 'message',
      model: 'claude-sonnet-4-5-20250929',
      content: [{ type: 'text', text: 'hi' }],
      stop_reason: 'end_turn',
      usage: { input_tokens: 1e300, output_tokens: 12 },
    });

    expect(record.usage.uncached_input_tokens).toBeNull();
    expect(record.usage.input_tokens).toBeNull();
    expect(record.usage.output_tokens).toBe(12);
    expect(record.cost.basis).toBe('partial');
    expect(record.cost.usd).toBe(0.00018);
    expect(warnings).toContain('usage field input_tokens is beyond 2^53 - 1, not a non-negative integer: recorded as unknown');
  });

  it('rejects negative and string counts (regression: partial cost of $0)', () => {
    const { record, warnings } = captureDocument('anthropic', '/v1/messages', {
      id: 'msg_neg',
      type: 'message',
      model: 'claude-sonnet-4-5-20250929',
      content: [],
      stop_reason: 'end_turn',
      usage: { input_tokens: -100, output_tokens: '12' },
    });

    expect(record.usage.input_tokens).toBeNull();
    expect(record.usage.output_tokens).toBeNull();
    expect(record.cost).toMatchObject({ usd: null, basis: 'unknown' });
    expect(warnings).toContain('usage field input_tokens is negative, not a non-negative integer: recorded as unknown');
    expect(warnings).toContain('usage field output_tokens is a string, not a non-negative integer: recorded as unknown');
  });

  it('keeps a valid count and drops an invalid cache count in Chat Completions', () => {
    const { record, warnings } = captureDocument('openai', '/v1/chat/completions', {
      id: 'chatcmpl-1',
      object: 'chat.completion',
      model: 'gpt-4o-mini-2024-07-18',
      choices: [{ index: 0, message: { role: 'assistant', content: 'hi' }, finish_reason: 'stop' }],
      usage: { prompt_tokens: 100, completion_tokens: 7, prompt_tokens_details: { cached_tokens: 2.5 } },
    });

    expect(record.usage.input_tokens).toBe(100);
    expect(record.usage.cache_read_tokens).toBeNull();
    expect(record.usage.uncached_input_tokens).toBeNull();
    expect(record.usage.output_tokens).toBe(7);
    expect(record.cost.basis).toBe('partial');
    expect(warnings).toContain(
      'usage field prompt_tokens_details.cached_tokens is fractional, not a non-negative integer: recorded as unknown',
    );
  });

  it('leaves the cost unknown when no Responses count is valid', () => {
    const { record, warnings } = captureDocument('openai', '/v1/responses', {
      id: 'resp_1',
      object: 'response',
      status: 'completed',
      model: 'gpt-5-2025-08-07',
      output: [],
      usage: { input_tokens: '10', output_tokens: -1 },
    });

    expect(record.usage.input_tokens).toBeNull();
    expect(record.usage.output_tokens).toBeNull();
    expect(record.cost).toMatchObject({ usd: null, basis: 'unknown' });
    expect(warnings).toHaveLength(2);
  });

  it('keeps an invalid Gemini count unknown instead of a proto3 zero', () => {
    const { record, warnings } = captureDocument('gemini', '/v1beta/models/gemini-2.5-flash:generateContent', {
      candidates: [{ content: { role: 'model', parts: [{ text: 'hi' }] }, finishReason: 'STOP' }],
      usageMetadata: { promptTokenCount: 40, candidatesTokenCount: 5, thoughtsTokenCount: { n: 3 } },
      modelVersion: 'gemini-2.5-flash',
    });

    expect(record.usage.input_tokens).toBe(40);
    expect(record.usage.reasoning_tokens).toBeNull();
    expect(record.usage.output_tokens).toBeNull();
    expect(warnings).toContain('usage field thoughtsTokenCount is an object, not a non-negative integer: recorded as unknown');
  });

  it('drops a total beyond 2^53 - 1 made of valid counts', () => {
    const { record, warnings } = captureDocument('anthropic', '/v1/messages', {
      id: 'msg_sum',
      type: 'message',
      model: 'claude-sonnet-4-5-20250929',
      content: [],
      stop_reason: 'end_turn',
      usage: { input_tokens: Number.MAX_SAFE_INTEGER, cache_read_input_tokens: 10, output_tokens: 1 },
    });

    expect(record.usage.uncached_input_tokens).toBe(Number.MAX_SAFE_INTEGER);
    expect(record.usage.input_tokens).toBeNull();
    expect(warnings).toContain('usage field input_tokens is a total beyond 2^53 - 1, not a non-negative integer: recorded as unknown');
  });
});

describe('createHttpCapture options and summaries', () => {
  it('keeps body text as sent with redaction off, still without credential headers', () => {
    const body = JSON.stringify({ model: 'claude-haiku-4-5', messages: [{ role: 'user', content: `my key is ${API_KEY}` }] });
    const { capture, at } = scripted(request(), { keepBodies: true, redactBodies: false });
    capture.requestChunk(encode(body));
    capture.requestEnd();
    at(10).responseHead(200, { 'content-type': 'application/json' });
    const { bodies } = capture.finish({ kind: 'complete' });

    expect(bodies!.request!.text).toBe(body);
    expect(bodies!.request_headers).not.toHaveProperty('x-api-key');
  });

  it('records the rate-limit headers of the response', () => {
    const { capture, at } = scripted(request());
    capture.requestChunk(encode(messageBody));
    capture.requestEnd();
    at(10).responseHead(200, {
      ...sseHeaders,
      'anthropic-ratelimit-unified-status': 'allowed',
      'anthropic-ratelimit-unified-5h-utilization': '0.2',
    });
    const { record } = at(20).finish({ kind: 'complete' });

    expect(record.rate_limits).toEqual({
      'anthropic-ratelimit-unified-5h-utilization': '0.2',
      'anthropic-ratelimit-unified-status': 'allowed',
    });
  });

  it('adds no rate_limits key without such headers', () => {
    const { at } = scripted(request());
    at(10).responseHead(200, sseHeaders);
    const { record } = at(20).finish({ kind: 'complete' });

    expect(record).not.toHaveProperty('rate_limits');
  });
});
