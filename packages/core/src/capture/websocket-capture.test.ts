import { describe, expect, it } from 'vitest';
import { chatgptRoute } from '../routes/chatgpt.js';
import { openaiRoute } from '../routes/openai.js';
import type { RouteDescriptor } from '../routes/route-descriptor.js';
import type { CaptureResult } from './capture-types.js';
import { createWebSocketCapture } from './websocket-capture.js';

const SESSION = '01a24287-986d-75e2-a56d-212f9a23adf9';
const codexHeaders = {
  authorization: 'Bearer eyJhbGciOiJub25lIn0.eyJGQUtFIjoiY2hhdGdwdCJ9.',
  'chatgpt-account-id': 'acct-FAKE-0000',
  originator: 'codex_exec',
  'user-agent': 'codex_exec/0.171.0 (Debian 12.0.0; x86_64) xterm (codex_exec; 0.171.0)',
  'session-id': SESSION,
  'thread-id': SESSION,
  'openai-beta': 'responses_websockets=2026-02-06',
  upgrade: 'websocket',
};

function open(route: RouteDescriptor = chatgptRoute, target = '/responses') {
  let now = 0;
  const results: CaptureResult[] = [];
  const capture = createWebSocketCapture(
    { route, method: 'GET', target, headers: codexHeaders, workspaceId: 'ws1', deviceId: 'dev1' },
    { clock: () => now, wallClock: () => Date.parse('2026-11-03T14:05:09Z'), keepBodies: true, collectOutputText: true },
    (result) => results.push(result),
  );
  const at = (ms: number) => {
    now = ms;
  };
  return { capture, results, at };
}

const create = (fields: Record<string, unknown>) => JSON.stringify({ type: 'response.create', model: 'gpt-5-codex', ...fields });
const event = (type: string, fields: Record<string, unknown> = {}) => JSON.stringify({ type, ...fields });
const response = (status: string, extra: Record<string, unknown> = {}) => ({
  id: 'resp_ws_1',
  object: 'response',
  model: 'gpt-5-codex',
  status,
  output: [],
  usage: null,
  ...extra,
});
const usage = {
  input_tokens: 5210,
  input_tokens_details: { cached_tokens: 4864 },
  output_tokens: 188,
  output_tokens_details: { reasoning_tokens: 128 },
};

describe('createWebSocketCapture', () => {
  it('records each response.create as its own call', () => {
    const { capture, results, at } = open();

    at(0);
    capture.clientMessage(create({ generate: false, input: [], prompt_cache_key: SESSION }));
    at(40);
    capture.serverMessage(event('response.created', { response: response('in_progress') }));
    at(45);
    capture.serverMessage(
      event('response.completed', {
        response: response('completed', { usage: { ...usage, output_tokens: 0, output_tokens_details: { reasoning_tokens: 0 } } }),
      }),
    );
    expect(results).toHaveLength(1);

    at(1000);
    capture.clientMessage(create({ input: [{ role: 'user', content: 'say hi' }], prompt_cache_key: SESSION }));
    at(1300);
    capture.serverMessage(event('response.created', { response: response('in_progress') }));
    at(1450);
    capture.serverMessage(event('response.output_item.added', { output_index: 0, item: { id: 'msg_1', type: 'message', content: [] } }));
    at(1500);
    capture.serverMessage(event('response.output_text.delta', { item_id: 'msg_1', output_index: 0, delta: 'hi' }));
    at(1620);
    capture.serverMessage(event('response.completed', { response: response('completed', { usage }) }));

    expect(results).toHaveLength(2);
    const prewarm = results[0]!.record;
    const turn = results[1]!.record;
    expect(prewarm.status).toBe('success');
    expect(prewarm.timing).toEqual({ ttft_ms: null, total_ms: 45, headers_ms: 40 });
    expect(turn.id).not.toBe(prewarm.id);
    expect(turn.api_shape).toBe('openai.responses');
    expect(turn.stream_format).toBe('websocket');
    expect(turn.stream_requested).toBe(true);
    expect(turn.http_status).toBe(101);
    expect(turn.tool).toBe('codex');
    expect(turn.tool_version).toBe('0.171.0');
    expect(turn.session_id).toBe(SESSION);
    expect(turn.model_requested).toBe('gpt-5-codex');
    expect(turn.model_answered).toBe('gpt-5-codex');
    expect(turn.response_id).toBe('resp_ws_1');
    expect(turn.usage).toEqual({
      input_tokens: 5210,
      uncached_input_tokens: 346,
      cache_read_tokens: 4864,
      cache_write_tokens: 0,
      cache_write_5m_tokens: 0,
      cache_write_1h_tokens: 0,
      output_tokens: 188,
      reasoning_tokens: 128,
      web_search_requests: 0,
    });
    expect(turn.timing).toEqual({ ttft_ms: 500, total_ms: 620, headers_ms: 300 });
    expect(results[1]!.outputText).toBe('hi');
  });

  it('prices ChatGPT-backend responses as api_equivalent', () => {
    const { capture, results } = open();
    capture.clientMessage(create({ input: [] }));
    capture.serverMessage(event('response.completed', { response: response('completed', { usage }) }));

    expect(results[0]!.record.cost).toEqual({
      usd: 0.0029205,
      basis: 'api_equivalent',
      price_key: 'gpt-5-codex',
      breakdown: { input: 0.0004325, cache_read: 0.000608, output: 0.00188 },
      price_data_version: '@pydantic/genai-prices@0.1.8',
    });
  });

  it('prices API-key responses as exact', () => {
    const { capture, results } = open(openaiRoute, '/v1/responses');
    capture.clientMessage(create({ input: [] }));
    capture.serverMessage(event('response.completed', { response: response('completed', { usage }) }));

    expect(results[0]!.record.cost.basis).toBe('exact');
  });

  it('records a response cut by the client as aborted', () => {
    const { capture, results, at } = open();
    at(0);
    capture.clientMessage(create({ input: [] }));
    at(200);
    capture.serverMessage(event('response.created', { response: response('in_progress') }));
    at(250);
    capture.serverMessage(event('response.output_text.delta', { output_index: 0, delta: 'par' }));
    expect(results).toHaveLength(0);

    at(900);
    capture.close({ kind: 'client_aborted' });

    expect(results).toHaveLength(1);
    const record = results[0]!.record;
    expect(record.status).toBe('aborted');
    expect(record.billable).toBe(true);
    expect(record.usage.output_tokens).toBeNull();
    expect(record.cost.basis).toBe('unknown');
    expect(record.timing).toEqual({ ttft_ms: 250, total_ms: 900, headers_ms: 200 });
  });

  it('records an error event before response.created as a rejection', () => {
    const { capture, results } = open();
    capture.clientMessage(create({ input: [] }));
    capture.serverMessage(
      event('error', { status: 429, error: { type: 'usage_limit_reached', message: 'The usage limit has been reached' } }),
    );

    const record = results[0]!.record;
    expect(record.status).toBe('error');
    expect(record.error).toEqual({
      type: 'usage_limit_reached',
      message: 'The usage limit has been reached',
      source: 'stream_event',
      retry_after_s: null,
    });
    expect(record.billable).toBe(false);
    expect(record.cost).toMatchObject({ usd: 0, basis: 'none' });
  });

  it('flushes nothing for a connection without requests', () => {
    const { capture, results } = open();
    capture.serverMessage(event('response.created', { response: response('in_progress') }));
    capture.close({ kind: 'complete' });

    expect(results).toHaveLength(0);
  });

  it('ignores frames that are not JSON without throwing', () => {
    const { capture, results } = open();
    capture.clientMessage('not json');
    capture.clientMessage(new TextEncoder().encode(create({ input: [] })));
    capture.serverMessage('{broken');
    capture.serverMessage(new TextEncoder().encode(event('response.completed', { response: response('completed', { usage }) })));

    expect(results).toHaveLength(1);
    expect(results[0]!.record.usage.output_tokens).toBe(188);
    expect(results[0]!.warnings).toEqual(['server message is not a JSON object']);
  });

  it('stores bodies without credentials', () => {
    const { capture, results } = open();
    capture.clientMessage(create({ input: [{ role: 'user', content: 'my key is sk-proj-FAKEFAKEFAKEFAKEFAKE1234' }] }));
    capture.serverMessage(event('response.completed', { response: response('completed', { usage }) }));

    const stored = JSON.stringify(results[0]);
    expect(stored).not.toContain('sk-proj-FAKEFAKEFAKEFAKEFAKE1234');
    expect(stored).not.toContain('acct-FAKE-0000');
    expect(stored).not.toContain(codexHeaders.authorization.slice('Bearer '.length));
    expect(results[0]!.bodies?.request?.text).toContain('[REDACTED:openai-key]');
    expect(results[0]!.bodies?.request_headers).toHaveProperty('session-id', SESSION);
  });
});

describe('createWebSocketCapture prewarm', () => {
  it('drops a prewarm that got no events', () => {
    const { capture, results } = open();
    capture.clientMessage(create({ generate: false, input: [] }));
    capture.clientMessage(create({ input: [{ role: 'user', content: 'hi' }] }));
    capture.serverMessage(event('response.completed', { response: response('completed', { usage }) }));
    capture.close({ kind: 'complete' });

    expect(results).toHaveLength(1);
    expect(results[0]!.record.status).toBe('success');
  });

  it('flushes an abandoned request as truncated', () => {
    const { capture, results } = open();
    capture.clientMessage(create({ input: [] }));
    capture.serverMessage(event('response.created', { response: response('in_progress') }));
    capture.clientMessage(create({ input: [] }));

    expect(results).toHaveLength(1);
    expect(results[0]!.record.status).toBe('truncated');
  });
});
