import { FAKE_ANSWER_TEXT, FAKE_MODELS, FAKE_TOOL_COMMAND, FAKE_USAGE } from './fake-provider-answers.js';
import {
  type FakeReply,
  type FakeTurnBehavior,
  fakeId,
  isRecord,
  jsonReply,
  namedSseEvent,
  offeredToolNames,
  parseJsonBody,
  splitText,
} from './fake-provider-reply.js';

/** Claude Code's shell tool; a tool-call answer uses it only when the request offers it. */
const SHELL_TOOL = 'Bash';

/**
 * Answer `POST /v1/messages` as the Messages API does: a JSON message, or with `stream: true` the SSE
 * sequence message_start, content_block_start, ping, content_block_delta…, content_block_stop,
 * message_delta, message_stop (the minimal sequence Claude Code 2.1.197 accepts).
 */
export function answerAnthropicMessages(bodyText: string, behavior: FakeTurnBehavior): FakeReply {
  const body = parseJsonBody(bodyText);
  if (!isRecord(body) || !Array.isArray(body.messages)) {
    return anthropicError(400, 'invalid_request_error', 'messages: field required (the fake provider expects a Messages API body)');
  }

  const requestId = fakeId('req_fake', 24);
  const messageId = fakeId('msg_fake', 24);
  const useTool = behavior.toolCallFirst && !endsWithToolResult(body.messages) && offeredToolNames(body.tools).has(SHELL_TOOL);
  const answer = {
    endpoint: 'anthropic.messages',
    kind: useTool ? 'tool_call' : 'text',
    status: 200,
    stream: body.stream === true ? 'sse' : null,
    responseId: messageId,
    upstreamRequestId: requestId,
    model: FAKE_MODELS.anthropic,
  } as const;
  const headers = { 'request-id': requestId };

  if (body.stream !== true) {
    return jsonReply(200, headers, completeMessage(messageId, useTool, behavior.answerText ?? FAKE_ANSWER_TEXT), answer);
  }
  return {
    status: 200,
    headers: { 'content-type': 'text/event-stream; charset=utf-8', 'cache-control': 'no-cache', ...headers },
    chunks: streamEvents(messageId, useTool, behavior.answerText ?? FAKE_ANSWER_TEXT),
    answer,
  };
}

/** Answer `POST /v1/messages/count_tokens` with the fixed count. */
export function answerAnthropicCountTokens(bodyText: string): FakeReply {
  const body = parseJsonBody(bodyText);
  if (!isRecord(body) || !Array.isArray(body.messages)) {
    return anthropicError(400, 'invalid_request_error', 'messages: field required (the fake provider expects a count_tokens body)');
  }
  const requestId = fakeId('req_fake', 24);
  return jsonReply(
    200,
    { 'request-id': requestId },
    { input_tokens: FAKE_USAGE.countTokens },
    {
      endpoint: 'anthropic.count_tokens',
      kind: 'metadata',
      status: 200,
      stream: null,
      responseId: null,
      upstreamRequestId: requestId,
      model: null,
    },
  );
}

export function anthropicError(status: number, type: string, message: string): FakeReply {
  return jsonReply(
    status,
    {},
    { type: 'error', error: { type, message } },
    { endpoint: 'anthropic.error', kind: 'error', status, stream: null, responseId: null, upstreamRequestId: null, model: null },
  );
}

/** True when the last user message carries a tool result, i.e. this call continues a turn. */
function endsWithToolResult(messages: unknown[]): boolean {
  const last = messages.at(-1);
  if (!isRecord(last) || last.role !== 'user' || !Array.isArray(last.content)) return false;
  return last.content.some((block) => isRecord(block) && block.type === 'tool_result');
}

function usage(outputTokens: number) {
  const wire = FAKE_USAGE.anthropic;
  return {
    input_tokens: wire.input_tokens,
    cache_creation_input_tokens: wire.cache_creation_input_tokens,
    cache_read_input_tokens: wire.cache_read_input_tokens,
    cache_creation: {
      ephemeral_5m_input_tokens: wire.ephemeral_5m_input_tokens,
      ephemeral_1h_input_tokens: wire.ephemeral_1h_input_tokens,
    },
    output_tokens: outputTokens,
    service_tier: 'standard',
  };
}

function toolUseBlock() {
  return { type: 'tool_use', id: fakeId('toolu_fake', 24), name: SHELL_TOOL, input: { command: FAKE_TOOL_COMMAND } };
}

function completeMessage(messageId: string, useTool: boolean, text: string) {
  return {
    id: messageId,
    type: 'message',
    role: 'assistant',
    model: FAKE_MODELS.anthropic,
    content: useTool ? [toolUseBlock()] : [{ type: 'text', text }],
    stop_reason: useTool ? 'tool_use' : 'end_turn',
    stop_sequence: null,
    usage: usage(FAKE_USAGE.anthropic.output_tokens),
  };
}

function streamEvents(messageId: string, useTool: boolean, text: string): string[] {
  const wire = FAKE_USAGE.anthropic;
  const events = [
    namedSseEvent('message_start', {
      type: 'message_start',
      message: {
        id: messageId,
        type: 'message',
        role: 'assistant',
        model: FAKE_MODELS.anthropic,
        content: [],
        stop_reason: null,
        stop_sequence: null,
        // message_start carries a small placeholder output count; message_delta has the final one.
        usage: usage(1),
      },
    }),
  ];

  if (useTool) {
    const block = toolUseBlock();
    const argumentsJson = JSON.stringify(block.input);
    const [first, second] = splitText(argumentsJson);
    events.push(
      namedSseEvent('content_block_start', { type: 'content_block_start', index: 0, content_block: { ...block, input: {} } }),
      namedSseEvent('ping', { type: 'ping' }),
      namedSseEvent('content_block_delta', {
        type: 'content_block_delta',
        index: 0,
        delta: { type: 'input_json_delta', partial_json: first },
      }),
      namedSseEvent('content_block_delta', {
        type: 'content_block_delta',
        index: 0,
        delta: { type: 'input_json_delta', partial_json: second },
      }),
    );
  } else {
    const [first, second] = splitText(text);
    events.push(
      namedSseEvent('content_block_start', { type: 'content_block_start', index: 0, content_block: { type: 'text', text: '' } }),
      namedSseEvent('ping', { type: 'ping' }),
      namedSseEvent('content_block_delta', { type: 'content_block_delta', index: 0, delta: { type: 'text_delta', text: first } }),
      namedSseEvent('content_block_delta', { type: 'content_block_delta', index: 0, delta: { type: 'text_delta', text: second } }),
    );
  }

  events.push(
    namedSseEvent('content_block_stop', { type: 'content_block_stop', index: 0 }),
    // Current API versions repeat the input and cache counts in message_delta; all values are cumulative.
    namedSseEvent('message_delta', {
      type: 'message_delta',
      delta: { stop_reason: useTool ? 'tool_use' : 'end_turn', stop_sequence: null },
      usage: {
        input_tokens: wire.input_tokens,
        cache_creation_input_tokens: wire.cache_creation_input_tokens,
        cache_read_input_tokens: wire.cache_read_input_tokens,
        output_tokens: wire.output_tokens,
      },
    }),
    namedSseEvent('message_stop', { type: 'message_stop' }),
  );
  return events;
}
