import { describe, expect, it } from 'vitest';
import { createRouteRegistry } from '../routes/registry.js';
import type { CaptureOptions, CaptureRequest } from './capture-types.js';
import { createHttpCapture } from './http-capture.js';
import { createOllamaParser } from './shapes/ollama.js';

const routes = createRouteRegistry();
const encode = (text: string) => new TextEncoder().encode(text);

function request(target: string, body: unknown): { req: CaptureRequest; body: string } {
  return {
    req: {
      route: routes.get('ollama')!,
      method: 'POST',
      target,
      headers: { 'content-type': 'application/json', 'user-agent': 'ollama/0.12.6 (amd64 linux) Go/go1.24.1' },
      workspaceId: 'ws1',
      deviceId: null,
    },
    body: JSON.stringify(body),
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

const NDJSON = { 'content-type': 'application/x-ndjson' };
const FINAL_COUNTS = {
  total_duration: 4353619900,
  load_duration: 63915300,
  prompt_eval_count: 10,
  prompt_eval_duration: 246847000,
  eval_count: 17,
  eval_duration: 4032296000,
};
const chatLines = [
  { model: 'gemma2:2b', created_at: '2026-11-03T14:05:09.1Z', message: { role: 'assistant', content: 'Hello' }, done: false },
  { model: 'gemma2:2b', created_at: '2026-11-03T14:05:09.2Z', message: { role: 'assistant', content: '!' }, done: false },
  {
    model: 'gemma2:2b',
    created_at: '2026-11-03T14:05:09.3Z',
    message: { role: 'assistant', content: '' },
    done_reason: 'stop',
    done: true,
    ...FINAL_COUNTS,
  },
].map((line) => `${JSON.stringify(line)}\n`);

describe('Ollama capture', () => {
  it('records a streamed /api/chat from its NDJSON lines', () => {
    const { req, body } = request('/api/chat', { model: 'gemma2:2b', messages: [{ role: 'user', content: 'hi' }] });
    const { capture, at } = scripted(req);
    capture.requestChunk(encode(body));
    capture.requestEnd();
    at(50).responseHead(200, NDJSON);
    at(120).responseChunk(encode(chatLines[0]!));
    at(200).responseChunk(encode(chatLines[1]! + chatLines[2]!));
    const { record, warnings } = capture.finish({ kind: 'complete' });

    expect(warnings).toEqual([]);
    expect(record.api_shape).toBe('ollama.chat');
    expect(record.provider).toBe('ollama');
    expect(record.stream_requested).toBe(true);
    expect(record.streaming).toBe(true);
    expect(record.stream_format).toBe('ndjson');
    expect(record.status).toBe('success');
    expect(record.model_requested).toBe('gemma2:2b');
    expect(record.model_answered).toBe('gemma2:2b');
    expect(record.usage.input_tokens).toBe(10);
    expect(record.usage.output_tokens).toBe(17);
    expect(record.usage.cache_read_tokens).toBeNull();
    expect(record.stop_reason).toBe('stop');
    expect(record.stop_reason_normalized).toBe('end');
    expect(record.timing.ttft_ms).toBe(120);
    expect(record.timing.total_ms).toBe(200);
    expect(record.timing.model_load_ms).toBe(63.915);
    expect(record.timing.prompt_eval_ms).toBe(246.847);
    expect(record.timing.eval_ms).toBe(4032.296);
    expect(record.cost).toEqual({ usd: 0, basis: 'none', price_key: null, breakdown: {}, price_data_version: null });
  });

  it('joins a line split across reads and skips CR and blank lines', () => {
    const { req, body } = request('/api/chat', { model: 'gemma2:2b', messages: [] });
    const { capture, at } = scripted(req);
    capture.requestChunk(encode(body));
    at(10).responseHead(200, NDJSON);
    const whole = `${chatLines[0]!.replace('\n', '\r\n')}\n${chatLines[1]}${chatLines[2]!.trimEnd()}`;
    const cut = whole.indexOf('"done_reason"');
    at(30).responseChunk(encode(whole.slice(0, cut)));
    at(40).responseChunk(encode(whole.slice(cut)));
    const { record, warnings } = capture.finish({ kind: 'complete' });

    expect(warnings).toEqual([]);
    expect(record.status).toBe('success');
    expect(record.usage.output_tokens).toBe(17);
  });

  it('records a non-streamed /api/generate', () => {
    const { req, body } = request('/api/generate', { model: 'llama3.2', prompt: 'Why is the sky blue?', stream: false });
    const { capture, at } = scripted(req, { keepBodies: true });
    capture.requestChunk(encode(body));
    at(80).responseHead(200, { 'content-type': 'application/json; charset=utf-8' });
    const answer = {
      model: 'llama3.2',
      response: 'Rayleigh scattering.',
      done: true,
      done_reason: 'stop',
      context: [1, 2, 3],
      ...FINAL_COUNTS,
    };
    at(90).responseChunk(encode(JSON.stringify(answer)));
    const { record, bodies } = capture.finish({ kind: 'complete' });

    expect(record.api_shape).toBe('ollama.generate');
    expect(record.stream_requested).toBe(false);
    expect(record.streaming).toBe(false);
    expect(record.stream_format).toBeNull();
    expect(record.status).toBe('success');
    expect(record.usage.input_tokens).toBe(10);
    expect(record.usage.output_tokens).toBe(17);
    expect(bodies?.response?.text).toContain('Rayleigh scattering.');
  });

  it('records a missing model as an error with its message', () => {
    const { req, body } = request('/api/chat', { model: 'nope', messages: [] });
    const { capture, at } = scripted(req);
    capture.requestChunk(encode(body));
    at(5).responseHead(404, { 'content-type': 'application/json; charset=utf-8' });
    at(6).responseChunk(encode('{"error":"model \\"nope\\" not found, try pulling it first"}'));
    const { record } = capture.finish({ kind: 'complete' });

    expect(record.http_status).toBe(404);
    expect(record.status).toBe('error');
    expect(record.error).toEqual({
      type: 'http_404',
      message: 'model "nope" not found, try pulling it first',
      source: 'http',
      retry_after_s: null,
    });
    // An error response ran no model, so its usage is a known zero, as for every provider.
    expect(record.billable).toBe(false);
    expect(record.usage.input_tokens).toBe(0);
  });

  it('records an error line in the stream as an error', () => {
    const { req, body } = request('/api/generate', { model: 'llama3.2', prompt: 'hi' });
    const { capture, at } = scripted(req);
    capture.requestChunk(encode(body));
    at(5).responseHead(200, NDJSON);
    at(6).responseChunk(
      encode(
        `${JSON.stringify({ model: 'llama3.2', response: 'Hel', done: false })}\n{"error":"an error was encountered while running the model"}\n`,
      ),
    );
    const { record } = capture.finish({ kind: 'complete' });

    expect(record.status).toBe('error');
    expect(record.error?.message).toBe('an error was encountered while running the model');
    expect(record.error?.source).toBe('stream_event');
  });

  it('records a stream cut before done as truncated', () => {
    const { req, body } = request('/api/chat', { model: 'gemma2:2b', messages: [] });
    const { capture, at } = scripted(req);
    capture.requestChunk(encode(body));
    at(5).responseHead(200, NDJSON);
    at(6).responseChunk(encode(chatLines[0]!));
    const { record } = capture.finish({ kind: 'upstream_closed', message: 'socket hang up' });

    expect(record.status).toBe('truncated');
    expect(record.usage.output_tokens).toBeNull();
  });
});

describe('createOllamaParser', () => {
  it('counts tool calls and reports tool_use for a stop', () => {
    const parser = createOllamaParser({ text: null });
    const call = { function: { name: 'get_weather', arguments: { city: 'Paris' } } };
    expect(parser.event({ model: 'qwen3', message: { role: 'assistant', content: '', tool_calls: [call] }, done: false }, null)).toBe(true);
    parser.event({ model: 'qwen3', message: { role: 'assistant', content: '' }, done: true, done_reason: 'stop', eval_count: 3 }, null);
    const outcome = parser.outcome();

    expect(outcome.toolCalls).toBe(1);
    expect(outcome.stopReasonNormalized).toBe('tool_use');
    expect(outcome.terminal).toBe(true);
  });

  it('maps length to max_tokens and load to no normalized reason', () => {
    const length = createOllamaParser({ text: null });
    length.document({ model: 'm', response: 'x', done: true, done_reason: 'length', prompt_eval_count: 1, eval_count: 2 });
    expect(length.outcome().stopReasonNormalized).toBe('max_tokens');

    // An empty prompt only loads the model; Ollama answers with done_reason "load".
    const load = createOllamaParser({ text: null });
    load.document({ model: 'm', response: '', done: true, done_reason: 'load' });
    expect(load.outcome()).toMatchObject({
      stopReason: 'load',
      stopReasonNormalized: null,
      usage: { input_tokens: null, output_tokens: null },
    });
  });

  it('treats thinking as the first output', () => {
    const parser = createOllamaParser({ text: null });
    expect(parser.event({ model: 'qwen3', message: { role: 'assistant', content: '', thinking: 'Let me see' }, done: false }, null)).toBe(
      true,
    );
    expect(parser.event({ model: 'qwen3', response: '', thinking: 'hm', done: false }, null)).toBe(true);
    expect(parser.event({ model: 'qwen3', message: { role: 'assistant', content: '' }, done: false }, null)).toBe(false);
  });

  it('ignores durations that are not non-negative numbers', () => {
    const parser = createOllamaParser({ text: null });
    parser.document({
      model: 'm',
      done: true,
      done_reason: 'stop',
      load_duration: -1,
      prompt_eval_duration: '5',
      eval_duration: 2_500_000,
    });
    expect(parser.outcome().modelTiming).toEqual({ eval_ms: 2.5 });
  });

  it('reports a count of the wrong type as a usage problem', () => {
    const parser = createOllamaParser({ text: null });
    parser.document({ model: 'm', done: true, done_reason: 'stop', prompt_eval_count: 'ten', eval_count: 4 });
    const outcome = parser.outcome();
    expect(outcome.usage?.input_tokens).toBeNull();
    expect(outcome.usage?.output_tokens).toBe(4);
    expect(outcome.usageProblems).toEqual([expect.stringContaining('prompt_eval_count')]);
  });
});
