import { describe, expect, it } from 'vitest';
import { TextCollector } from '../body-copy.js';
import { createAnthropicMessagesParser } from './anthropic-messages.js';
import { createGeminiParser } from './gemini.js';
import { createOpenAiChatParser } from './openai-chat.js';
import { createOpenAiResponsesParser } from './openai-responses.js';

describe('Anthropic Messages parser', () => {
  it('reads thinking tokens when the usage reports them', () => {
    const parser = createAnthropicMessagesParser({ text: null });
    parser.document({
      id: 'msg_1',
      type: 'message',
      model: 'claude-opus-4-8',
      content: [
        { type: 'thinking', thinking: 'hm' },
        { type: 'text', text: 'ok' },
      ],
      stop_reason: 'refusal',
      usage: { input_tokens: 5, output_tokens: 40, output_tokens_details: { thinking_tokens: 30 } },
    });
    const outcome = parser.outcome();
    expect(outcome.usage).toMatchObject({
      input_tokens: 5,
      cache_read_tokens: 0,
      output_tokens: 40,
      reasoning_tokens: 30,
      web_search_requests: 0,
    });
    expect(outcome.stopReasonNormalized).toBe('refusal');
  });

  it('leaves the TTL split unknown when writes are not split', () => {
    const parser = createAnthropicMessagesParser({ text: null });
    parser.document({ type: 'message', usage: { input_tokens: 1, cache_creation_input_tokens: 100, output_tokens: 2 } });
    expect(parser.outcome().usage).toMatchObject({ cache_write_tokens: 100, cache_write_5m_tokens: null, cache_write_1h_tokens: null });
  });

  it('treats an error event before message_start as not started', () => {
    const parser = createAnthropicMessagesParser({ text: null });
    parser.event({ type: 'error', error: { type: 'overloaded_error', message: 'Overloaded' } }, 'error');
    expect(parser.outcome()).toMatchObject({ started: false, usage: null, error: { type: 'overloaded_error', source: 'stream_event' } });
  });
});

describe('OpenAI Chat parser', () => {
  it('keeps one stop reason per streamed choice', () => {
    const parser = createOpenAiChatParser({ text: null });
    parser.event(
      {
        id: 'c1',
        choices: [
          { index: 0, delta: { content: 'a' } },
          { index: 1, delta: { content: 'b' } },
        ],
      },
      null,
    );
    parser.event({ id: 'c1', choices: [{ index: 1, delta: {}, finish_reason: 'length' }] }, null);
    parser.event({ id: 'c1', choices: [{ index: 0, delta: {}, finish_reason: 'stop' }] }, null);
    parser.sentinel();
    expect(parser.outcome()).toMatchObject({
      stopReason: 'stop',
      stopReasons: ['stop', 'length'],
      stopReasonNormalized: 'end',
      terminal: true,
    });
  });

  it('counts reasoning deltas and legacy function calls as output', () => {
    const parser = createOpenAiChatParser({ text: null });
    expect(parser.event({ choices: [{ index: 0, delta: { role: 'assistant', content: '' } }] }, null)).toBe(false);
    expect(parser.event({ choices: [{ index: 0, delta: { reasoning_content: 'think' } }] }, null)).toBe(true);
    expect(parser.event({ choices: [{ index: 0, delta: { function_call: { name: 'f', arguments: '' } } }] }, null)).toBe(true);
    expect(parser.outcome().toolCalls).toBe(1);
  });

  it('records an error chunk in the stream', () => {
    const parser = createOpenAiChatParser({ text: null });
    parser.event({ id: 'c1', choices: [{ index: 0, delta: { content: 'par' } }] }, null);
    parser.event(
      { id: 'c1', error: { message: 'Provider returned error', code: 502 }, choices: [{ index: 0, delta: {}, finish_reason: 'error' }] },
      null,
    );
    expect(parser.outcome().error).toEqual({
      type: 'error',
      message: 'Provider returned error',
      source: 'stream_event',
      retry_after_s: null,
    });
  });

  it('reads DeepSeek cache hits', () => {
    const parser = createOpenAiChatParser({ text: null });
    parser.document({
      choices: [],
      usage: { prompt_tokens: 100, completion_tokens: 5, prompt_cache_hit_tokens: 64, prompt_cache_miss_tokens: 36 },
    });
    expect(parser.outcome().usage).toMatchObject({
      input_tokens: 100,
      uncached_input_tokens: 36,
      cache_read_tokens: 64,
      reasoning_tokens: null,
    });
  });
});

describe('OpenAI Responses parser', () => {
  it('reports an incomplete response with its reason and usage', () => {
    const parser = createOpenAiResponsesParser({ text: null });
    parser.event(
      {
        type: 'response.incomplete',
        response: {
          id: 'r1',
          model: 'gpt-5',
          status: 'incomplete',
          incomplete_details: { reason: 'max_output_tokens' },
          usage: { input_tokens: 10, output_tokens: 100 },
        },
      },
      null,
    );
    expect(parser.outcome()).toMatchObject({
      terminal: true,
      stopReason: 'max_output_tokens',
      stopReasonNormalized: 'max_tokens',
      usage: { input_tokens: 10, output_tokens: 100, reasoning_tokens: null },
    });
  });

  it('counts provider-run tools apart from client tool calls', () => {
    const parser = createOpenAiResponsesParser({ text: null });
    parser.event({ type: 'response.output_item.added', output_index: 0, item: { id: 'ws_1', type: 'web_search_call' } }, null);
    parser.event(
      { type: 'response.output_item.done', output_index: 0, item: { id: 'ws_1', type: 'web_search_call', status: 'completed' } },
      null,
    );
    parser.event(
      { type: 'response.output_item.added', output_index: 1, item: { id: 'ct_1', type: 'custom_tool_call', name: 'apply_patch' } },
      null,
    );
    parser.event(
      { type: 'response.completed', response: { status: 'completed', output: [], usage: { input_tokens: 1, output_tokens: 1 } } },
      null,
    );
    const outcome = parser.outcome();
    expect(outcome.serverToolCalls).toEqual({ web_search: 1 });
    expect(outcome.toolCalls).toBe(1);
    expect(outcome.usage?.web_search_requests).toBe(1);
    expect(outcome.stopReasonNormalized).toBe('tool_use');
  });

  it('records an error event', () => {
    const parser = createOpenAiResponsesParser({ text: null });
    parser.event({ type: 'error', code: 'rate_limit_exceeded', message: 'Slow down', param: null }, 'error');
    expect(parser.outcome()).toMatchObject({
      terminal: true,
      error: { type: 'rate_limit_exceeded', message: 'Slow down', source: 'stream_event' },
    });
  });

  it('collects the visible text of a whole body', () => {
    const text = new TextCollector(100);
    const parser = createOpenAiResponsesParser({ text });
    parser.document({
      status: 'completed',
      output: [
        { type: 'reasoning', summary: [] },
        {
          type: 'message',
          content: [
            { type: 'output_text', text: 'Hello' },
            { type: 'refusal', refusal: 'no' },
          ],
        },
      ],
    });
    expect(text.text()).toBe('Hello');
  });
});

describe('Gemini parser', () => {
  it('normalizes a blocked prompt to content_filter', () => {
    const parser = createGeminiParser({ text: null, wrapped: false });
    parser.document({ promptFeedback: { blockReason: 'SAFETY' }, usageMetadata: { promptTokenCount: 7 } });
    expect(parser.outcome()).toMatchObject({
      stopReason: 'SAFETY',
      stopReasonNormalized: 'content_filter',
      usage: { input_tokens: 7, output_tokens: 0 },
    });
  });

  it('keeps one finish reason per candidate', () => {
    const parser = createGeminiParser({ text: null, wrapped: false });
    parser.document({
      candidates: [
        { index: 0, finishReason: 'MAX_TOKENS', content: { parts: [{ text: 'a' }] } },
        { index: 1, finishReason: 'STOP', content: { parts: [{ text: 'b' }] } },
      ],
    });
    expect(parser.outcome()).toMatchObject({
      stopReason: 'MAX_TOKENS',
      stopReasons: ['MAX_TOKENS', 'STOP'],
      stopReasonNormalized: 'max_tokens',
    });
  });

  it('adds tool-use prompt tokens to the input', () => {
    const parser = createGeminiParser({ text: null, wrapped: true });
    parser.event(
      {
        response: {
          usageMetadata: { promptTokenCount: 100, toolUsePromptTokenCount: 20, cachedContentTokenCount: 50, candidatesTokenCount: 3 },
        },
      },
      null,
    );
    expect(parser.outcome().usage).toMatchObject({
      input_tokens: 120,
      uncached_input_tokens: 70,
      cache_read_tokens: 50,
      output_tokens: 3,
      reasoning_tokens: 0,
    });
  });
});
