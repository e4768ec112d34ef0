import { FAKE_ANSWER_TEXT, FAKE_MODELS, FAKE_PREWARM_USAGE, FAKE_TOOL_COMMAND, FAKE_USAGE } from './fake-provider-answers.js';
import {
  type FakeAnswer,
  type FakeReply,
  type FakeTurnBehavior,
  fakeId,
  isRecord,
  jsonReply,
  namedSseEvent,
  nowSeconds,
  offeredToolNames,
  parseJsonBody,
  splitText,
} from './fake-provider-reply.js';

/** Codex's shell tool (0.171.0) and the argument it takes; a tool-call answer uses it only when offered. */
const RESPONSES_SHELL_TOOL = 'exec_command';
const RESPONSES_SHELL_ARGUMENTS = JSON.stringify({ cmd: FAKE_TOOL_COMMAND });
/** Chat Completions clients name their tools freely; the fake calls one named `shell` when offered. */
const CHAT_SHELL_TOOL = 'shell';
const CHAT_SHELL_ARGUMENTS = JSON.stringify({ command: FAKE_TOOL_COMMAND });

/** A Responses API event: the SSE `data:` payload, and the text of one WebSocket frame. */
export type ResponsesEvent = { type: string } & Record<string, unknown>;

/**
 * The answer to one `response.create` over the Responses WebSocket: one text frame per event, each the
 * JSON object an SSE `data:` line would carry. Undefined `events` means the message was not a
 * `response.create` and gets no answer.
 */
export interface WebSocketAnswer {
  events: ResponsesEvent[];
  answer: FakeAnswer;
}

/** Answer `POST …/chat/completions`: JSON, or SSE chunks ending in `data: [DONE]`, usage only with `include_usage`. */
export function answerChatCompletions(bodyText: string, behavior: FakeTurnBehavior): FakeReply {
  const body = parseJsonBody(bodyText);
  if (!isRecord(body) || !Array.isArray(body.messages)) {
    return openaiError(400, 'invalid_request_error', "Missing required parameter: 'messages'.");
  }

  const requestId = fakeId('req_fake', 32);
  const completionId = fakeId('chatcmpl-fake', 24);
  const lastMessage = body.messages.at(-1);
  const continuesTurn = isRecord(lastMessage) && lastMessage.role === 'tool';
  const useTool = behavior.toolCallFirst && !continuesTurn && offeredToolNames(body.tools).has(CHAT_SHELL_TOOL);
  const stream = body.stream === true;
  const answer: FakeAnswer = {
    endpoint: 'openai.chat_completions',
    kind: useTool ? 'tool_call' : 'text',
    status: 200,
    stream: stream ? 'sse' : null,
    responseId: completionId,
    upstreamRequestId: requestId,
    model: FAKE_MODELS.openai,
  };
  const headers = { 'x-request-id': requestId, 'openai-processing-ms': '1' };
  const toolCall = { id: fakeId('call_fake', 24), type: 'function', function: { name: CHAT_SHELL_TOOL, arguments: CHAT_SHELL_ARGUMENTS } };
  const finishReason = useTool ? 'tool_calls' : 'stop';

  if (!stream) {
    const message = useTool
      ? { role: 'assistant', content: null, tool_calls: [toolCall], refusal: null, annotations: [] }
      : { role: 'assistant', content: behavior.answerText ?? FAKE_ANSWER_TEXT, refusal: null, annotations: [] };
    return jsonReply(
      200,
      headers,
      {
        id: completionId,
        object: 'chat.completion',
        created: nowSeconds(),
        model: FAKE_MODELS.openai,
        choices: [{ index: 0, message, logprobs: null, finish_reason: finishReason }],
        usage: chatUsage(),
        service_tier: 'default',
        system_fingerprint: null,
      },
      answer,
    );
  }

  const includeUsage = isRecord(body.stream_options) && body.stream_options.include_usage === true;
  const created = nowSeconds();
  const chunk = (choices: unknown[], usage?: unknown) =>
    `data: ${JSON.stringify({
      id: completionId,
      object: 'chat.completion.chunk',
      created,
      model: FAKE_MODELS.openai,
      service_tier: 'default',
      system_fingerprint: null,
      choices,
      ...(includeUsage ? { usage: usage ?? null } : {}),
    })}\n\n`;

  const chunks = [chunk([{ index: 0, delta: { role: 'assistant', content: '', refusal: null }, logprobs: null, finish_reason: null }])];
  if (useTool) {
    const [first, second] = splitText(CHAT_SHELL_ARGUMENTS);
    chunks.push(
      chunk([
        {
          index: 0,
          delta: { tool_calls: [{ index: 0, id: toolCall.id, type: 'function', function: { name: CHAT_SHELL_TOOL, arguments: first } }] },
          logprobs: null,
          finish_reason: null,
        },
      ]),
      chunk([{ index: 0, delta: { tool_calls: [{ index: 0, function: { arguments: second } }] }, logprobs: null, finish_reason: null }]),
    );
  } else {
    for (const piece of splitText(behavior.answerText ?? FAKE_ANSWER_TEXT)) {
      chunks.push(chunk([{ index: 0, delta: { content: piece }, logprobs: null, finish_reason: null }]));
    }
  }
  chunks.push(chunk([{ index: 0, delta: {}, logprobs: null, finish_reason: finishReason }]));
  if (includeUsage) chunks.push(chunk([], chatUsage()));
  chunks.push('data: [DONE]\n\n');

  return { status: 200, headers: { 'content-type': 'text/event-stream; charset=utf-8', ...headers }, chunks, answer };
}

/** Answer `POST …/responses` (OpenAI API and the ChatGPT backend): JSON, or the typed SSE events. */
export function answerResponses(bodyText: string, behavior: FakeTurnBehavior, endpoint = 'openai.responses'): FakeReply {
  const body = parseJsonBody(bodyText);
  if (!isRecord(body)) {
    return openaiError(400, 'invalid_request_error', 'The request body is not valid JSON.');
  }

  const requestId = fakeId('req_fake', 32);
  const stream = body.stream === true;
  const { events, answer } = responsesEvents(body, behavior, endpoint, stream ? 'sse' : null);
  answer.upstreamRequestId = requestId;
  const headers = { 'x-request-id': requestId, 'openai-processing-ms': '1' };

  if (!stream) {
    const completed = events.at(-1) as ResponsesEvent;
    return jsonReply(200, headers, completed.response, answer);
  }
  return {
    status: 200,
    headers: { 'content-type': 'text/event-stream; charset=utf-8', ...headers },
    chunks: events.map((event) => namedSseEvent(event.type, event)),
    answer,
  };
}

/** Answer one WebSocket message; only `response.create` gets events back. */
export function answerResponsesWebSocketMessage(
  messageText: string,
  behavior: FakeTurnBehavior,
  endpoint: string,
): WebSocketAnswer | undefined {
  const message = parseJsonBody(messageText);
  if (!isRecord(message) || message.type !== 'response.create') return undefined;
  return responsesEvents(message, behavior, endpoint, 'websocket');
}

/**
 * Answer `GET …/models`. Codex adds `?client_version=…` and reads `{"models":[…]}` (an empty list makes it
 * fall back to built-in model metadata); other clients get the OpenAI list shape.
 */
export function answerModels(query: URLSearchParams, endpoint: string): FakeReply {
  const answer: FakeAnswer = {
    endpoint,
    kind: 'metadata',
    status: 200,
    stream: null,
    responseId: null,
    upstreamRequestId: null,
    model: null,
  };
  if (query.has('client_version')) return jsonReply(200, {}, { models: [] }, answer);
  return jsonReply(
    200,
    {},
    { object: 'list', data: [{ id: FAKE_MODELS.openai, object: 'model', created: 1754524800, owned_by: 'system' }] },
    answer,
  );
}

export function openaiError(status: number, type: string, message: string): FakeReply {
  return jsonReply(
    status,
    {},
    { error: { message, type, param: null, code: null } },
    { endpoint: 'openai.error', kind: 'error', status, stream: null, responseId: null, upstreamRequestId: null, model: null },
  );
}

function chatUsage() {
  const wire = FAKE_USAGE.openai;
  return {
    prompt_tokens: wire.input_tokens,
    completion_tokens: wire.output_tokens,
    total_tokens: wire.input_tokens + wire.output_tokens,
    prompt_tokens_details: { cached_tokens: wire.cached_tokens, audio_tokens: 0 },
    completion_tokens_details: {
      reasoning_tokens: wire.reasoning_tokens,
      audio_tokens: 0,
      accepted_prediction_tokens: 0,
      rejected_prediction_tokens: 0,
    },
  };
}

function responsesUsage(wire: { input_tokens: number; cached_tokens: number; output_tokens: number; reasoning_tokens: number }) {
  return {
    input_tokens: wire.input_tokens,
    input_tokens_details: { cached_tokens: wire.cached_tokens },
    output_tokens: wire.output_tokens,
    output_tokens_details: { reasoning_tokens: wire.reasoning_tokens },
    total_tokens: wire.input_tokens + wire.output_tokens,
  };
}

/** True when the input ends with a function call's output, i.e. this call continues a turn. */
function endsWithFunctionOutput(input: unknown): boolean {
  if (!Array.isArray(input)) return false;
  const last = input.at(-1);
  return isRecord(last) && last.type === 'function_call_output';
}

/**
 * Build the events of one Responses answer: response.created, response.in_progress, the output item
 * events and response.completed with usage. A Codex prewarm (`generate: false`) gets only the first two
 * and response.completed.
 */
function responsesEvents(
  body: Record<string, unknown>,
  behavior: FakeTurnBehavior,
  endpoint: string,
  stream: FakeAnswer['stream'],
): { events: ResponsesEvent[]; answer: FakeAnswer } {
  const responseId = fakeId('resp_fake', 48);
  const prewarm = body.generate === false;
  const useTool =
    !prewarm && behavior.toolCallFirst && !endsWithFunctionOutput(body.input) && offeredToolNames(body.tools).has(RESPONSES_SHELL_TOOL);
  const answer: FakeAnswer = {
    endpoint,
    kind: prewarm ? 'prewarm' : useTool ? 'tool_call' : 'text',
    status: 200,
    stream,
    responseId,
    upstreamRequestId: null,
    model: FAKE_MODELS.openai,
  };

  const base = {
    id: responseId,
    object: 'response',
    created_at: nowSeconds(),
    status: 'in_progress',
    background: false,
    error: null,
    incomplete_details: null,
    instructions: null,
    max_output_tokens: null,
    model: FAKE_MODELS.openai,
    output: [] as unknown[],
    parallel_tool_calls: false,
    previous_response_id: typeof body.previous_response_id === 'string' ? body.previous_response_id : null,
    prompt_cache_key: typeof body.prompt_cache_key === 'string' ? body.prompt_cache_key : null,
    reasoning: { effort: null, summary: null },
    store: false,
    temperature: 1,
    text: { format: { type: 'text' } },
    tool_choice: 'auto',
    tools: [],
    top_p: 1,
    truncation: 'disabled',
    usage: null as unknown,
    user: null,
    metadata: {},
  };

  let sequence = 0;
  const event = (type: string, fields: Record<string, unknown>): ResponsesEvent => ({ type, sequence_number: sequence++, ...fields });
  const events: ResponsesEvent[] = [event('response.created', { response: base }), event('response.in_progress', { response: base })];

  let output: unknown[] = [];
  if (useTool) {
    const itemId = fakeId('fc_fake', 48);
    const item = {
      id: itemId,
      type: 'function_call',
      status: 'in_progress',
      arguments: '',
      call_id: fakeId('call_fake', 24),
      name: RESPONSES_SHELL_TOOL,
    };
    const done = { ...item, status: 'completed', arguments: RESPONSES_SHELL_ARGUMENTS };
    const [first, second] = splitText(RESPONSES_SHELL_ARGUMENTS);
    events.push(
      event('response.output_item.added', { output_index: 0, item }),
      event('response.function_call_arguments.delta', { item_id: itemId, output_index: 0, delta: first }),
      event('response.function_call_arguments.delta', { item_id: itemId, output_index: 0, delta: second }),
      event('response.function_call_arguments.done', { item_id: itemId, output_index: 0, arguments: RESPONSES_SHELL_ARGUMENTS }),
      event('response.output_item.done', { output_index: 0, item: done }),
    );
    output = [done];
  } else if (!prewarm) {
    const itemId = fakeId('msg_fake', 48);
    const emptyPart = { type: 'output_text', annotations: [], logprobs: [], text: '' };
    const text = behavior.answerText ?? FAKE_ANSWER_TEXT;
    const part = { ...emptyPart, text };
    const item = { id: itemId, type: 'message', status: 'in_progress', content: [] as unknown[], role: 'assistant' };
    const done = { ...item, status: 'completed', content: [part] };
    const position = { item_id: itemId, output_index: 0, content_index: 0 };
    events.push(
      event('response.output_item.added', { output_index: 0, item }),
      event('response.content_part.added', { ...position, part: emptyPart }),
      ...splitText(text).map((delta) => event('response.output_text.delta', { ...position, delta, logprobs: [] })),
      event('response.output_text.done', { ...position, text, logprobs: [] }),
      event('response.content_part.done', { ...position, part }),
      event('response.output_item.done', { output_index: 0, item: done }),
    );
    output = [done];
  }

  const usage = responsesUsage(prewarm ? FAKE_PREWARM_USAGE : FAKE_USAGE.openai);
  events.push(event('response.completed', { response: { ...base, status: 'completed', output, usage } }));
  return { events, answer };
}
