import { join } from 'node:path';
import { type CallRecord, emptyUsage } from '@tokenwise/core';
import { fixturesRoot, loadWireFixture } from '@tokenwise/testkit';
import { describe, expect, it } from 'vitest';
import { scoreRecord } from './call-scorers.js';
import { extractReturnedToolResults } from './prompt-parts.js';

function record(overrides: Partial<CallRecord> = {}): CallRecord {
  return {
    id: '0190a1b2-0000-7000-8000-000000000001',
    started_at: '2026-12-04T10:00:00.000Z',
    workspace_id: 'ws',
    device_id: 'dev',
    route: 'anthropic',
    provider: 'anthropic',
    api_shape: 'anthropic.messages',
    method: 'POST',
    path: '/v1/messages',
    tool: 'claude-code',
    tool_version: '2.1.197',
    user_agent: null,
    session_id: 's',
    stream_requested: true,
    streaming: true,
    stream_format: 'sse',
    model_requested: 'claude-sonnet-4-5',
    model_answered: 'claude-sonnet-4-5-20250929',
    http_status: 200,
    status: 'success',
    error: null,
    billable: true,
    usage: { ...emptyUsage(), input_tokens: 10, output_tokens: 5 },
    stop_reason: 'end_turn',
    stop_reason_normalized: 'end',
    tool_calls: 0,
    server_tool_calls: {},
    timing: { ttft_ms: 400, total_ms: 2000, headers_ms: 100 },
    upstream_request_id: null,
    response_id: null,
    cost: { usd: 0.001, basis: 'exact', price_key: 'claude-sonnet-4-5', breakdown: {}, price_data_version: null },
    request_bytes: 100,
    response_bytes: 100,
    ...overrides,
  };
}

/** The record a fixture case must produce, as the capture tests check it. */
function fixtureRecord(corpus: string, name: string): CallRecord {
  const fixture = loadWireFixture(join(fixturesRoot(), corpus, name));
  return { ...record(), ...(fixture.expectedRecord as Partial<CallRecord>) };
}

const scorersOf = (call: CallRecord, targetMs = 30_000) => scoreRecord(call, targetMs).map((flag) => flag.scorer);

describe('scoreRecord', () => {
  it('passes a plain successful call', () => {
    expect(scorersOf(record())).toEqual([]);
  });

  it.each([
    ['llm-wire', 'anthropic-429-rate-limit', ['provider_error']],
    ['llm-wire', 'openai-responses-stream-failed', ['provider_error']],
    ['llm-wire', 'transport-html-502', ['provider_error']],
    ['llm-wire', 'transport-truncated-anthropic', ['stream_cut']],
    ['llm-wire-extra', 'anthropic-stream-client-abort', ['stream_cut']],
    ['llm-wire', 'anthropic-stream-tool-use', []],
  ])('flags the recorded case %s/%s', (corpus, name, expected) => {
    expect(scorersOf(fixtureRecord(corpus, name), 600_000)).toEqual(expected);
  });

  it('flags an answer cut at max tokens with its output tokens', () => {
    const flags = scoreRecord(record({ stop_reason: 'max_tokens', stop_reason_normalized: 'max_tokens' }), 30_000);

    expect(flags).toEqual([{ scorer: 'max_tokens', value: 5, detail: { stop_reason: 'max_tokens' } }]);
  });

  it.each(['refusal', 'content_filter'] as const)('flags a %s stop as a refusal', (reason) => {
    expect(scorersOf(record({ stop_reason: reason, stop_reason_normalized: reason }))).toEqual(['refusal']);
  });

  it('measures a stream by its time to first token', () => {
    const slowStart = record({ timing: { ttft_ms: 12_000, total_ms: 13_000, headers_ms: 100 } });
    const longAnswer = record({ timing: { ttft_ms: 500, total_ms: 60_000, headers_ms: 100 } });

    expect(scoreRecord(slowStart, 10_000)).toEqual([{ scorer: 'slow', value: 12_000, detail: { measured: 'ttft_ms', target_ms: 10_000 } }]);
    expect(scorersOf(longAnswer, 10_000)).toEqual([]);
  });

  it('measures a call without a stream by its total time', () => {
    const call = record({ streaming: false, stream_format: null, timing: { ttft_ms: null, total_ms: 45_000, headers_ms: 44_000 } });

    expect(scoreRecord(call, 30_000)).toEqual([{ scorer: 'slow', value: 45_000, detail: { measured: 'total_ms', target_ms: 30_000 } }]);
  });
});

describe('extractReturnedToolResults', () => {
  it('finds a failed Anthropic tool result and names its tool', () => {
    const body = {
      messages: [
        { role: 'user', content: 'run the tests' },
        { role: 'assistant', content: [{ type: 'tool_use', id: 'toolu_1', name: 'Bash', input: { command: 'npm test' } }] },
        { role: 'user', content: [{ type: 'tool_result', tool_use_id: 'toolu_1', content: 'exit 1', is_error: true }] },
      ],
    };

    expect(extractReturnedToolResults('anthropic.messages', body)).toEqual({ count: 1, failedTools: ['Bash'] });
  });

  it('passes Anthropic tool results without is_error', () => {
    const body = {
      messages: [
        { role: 'assistant', content: [{ type: 'tool_use', id: 'toolu_1', name: 'Bash', input: {} }] },
        { role: 'user', content: [{ type: 'tool_result', tool_use_id: 'toolu_1', content: 'hi-from-tool', is_error: false }] },
      ],
    };

    expect(extractReturnedToolResults('anthropic.messages', body)).toEqual({ count: 1, failedTools: [] });
  });

  it('reads a non-zero exit code in a Codex output', () => {
    const body = {
      input: [
        { type: 'message', role: 'user', content: [{ type: 'input_text', text: 'build it' }] },
        { type: 'function_call', name: 'exec_command', call_id: 'call_1', arguments: '{}' },
        { type: 'function_call_output', call_id: 'call_1', output: 'Chunk ID: 1\nProcess exited with code 2\nOutput: make: *** Error' },
        { type: 'function_call', name: 'exec_command', call_id: 'call_2', arguments: '{}' },
        { type: 'function_call_output', call_id: 'call_2', output: 'Process exited with code 0\nOutput: ok' },
      ],
    };

    expect(extractReturnedToolResults('openai.responses', body)).toEqual({ count: 2, failedTools: ['exec_command'] });
  });

  it('reads the exit code of an older Codex JSON output', () => {
    const body = {
      input: [
        { type: 'function_call', name: 'shell', call_id: 'c', arguments: '{}' },
        { type: 'function_call_output', call_id: 'c', output: '{"output":"denied","metadata":{"exit_code":1}}' },
      ],
    };

    expect(extractReturnedToolResults('openai.responses', body)).toEqual({ count: 1, failedTools: ['shell'] });
  });

  it('finds a Gemini function response with an error', () => {
    const body = {
      request: {
        contents: [
          { role: 'model', parts: [{ functionCall: { name: 'run_shell_command', args: {} } }] },
          { role: 'user', parts: [{ functionResponse: { name: 'run_shell_command', response: { error: 'Command failed' } } }] },
        ],
      },
    };

    expect(extractReturnedToolResults('gemini.stream_generate_content', body)).toEqual({ count: 1, failedTools: ['run_shell_command'] });
  });

  it('finds no results in a plain prompt', () => {
    expect(extractReturnedToolResults('anthropic.messages', { messages: [{ role: 'user', content: 'hi' }] })).toEqual({
      count: 0,
      failedTools: [],
    });
  });
});
