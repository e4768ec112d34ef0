import type { StopReasonNormalized, Usage } from '../../call-record.js';
import { asArray, asCount, asObject, asString, CountReader, type JsonObject, nonEmptyString } from '../json-access.js';
import { uncachedTokens } from './openai-chat.js';
import { increment, type ShapeOutcome, type ShapeParser, type ShapeParserOptions, streamError } from './shape-parser.js';

/** Output items the client executes: the model requests the call and the tool (Codex, an SDK app) runs it. */
const CLIENT_TOOL_ITEMS = new Set([
  'function_call',
  'custom_tool_call',
  'local_shell_call',
  'shell_call',
  'apply_patch_call',
  'computer_call',
]);
/** Output items the provider executes, named as in `server_tool_calls`. */
const SERVER_TOOL_ITEMS: Record<string, string> = {
  web_search_call: 'web_search',
  file_search_call: 'file_search',
  code_interpreter_call: 'code_interpreter',
  image_generation_call: 'image_generation',
  mcp_call: 'mcp',
};
/** Streamed deltas of model output: visible text, refusals, reasoning text and tool input. */
const OUTPUT_DELTAS = new Set([
  'response.output_text.delta',
  'response.refusal.delta',
  'response.reasoning_summary_text.delta',
  'response.reasoning_text.delta',
  'response.function_call_arguments.delta',
  'response.custom_tool_call_input.delta',
]);
const TERMINAL_EVENTS = new Set(['response.completed', 'response.incomplete', 'response.failed', 'response.cancelled']);
const INCOMPLETE_REASONS: Record<string, StopReasonNormalized> = { max_output_tokens: 'max_tokens', content_filter: 'content_filter' };

/**
 * OpenAI Responses over SSE or WebSocket (same event JSON), or as one body. Usage arrives only with the
 * terminal event (`response.completed`, `response.incomplete`; `response.failed` has none). There is no
 * tool-call finish reason, so the normalized reason is `tool_use` when the output contains client tool calls.
 */
export function createOpenAiResponsesParser(options: ShapeParserOptions): ShapeParser {
  const state = {
    model: null as string | null,
    id: null as string | null,
    started: false,
    terminal: false,
    error: null as ShapeOutcome['error'],
    status: null as string | null,
    incompleteReason: null as string | null,
    usage: undefined as JsonObject | undefined,
  };
  /** Items seen, by id (or output index): a streamed item appears in `added`, `done` and the final output. */
  let items = new Map<string, string>();

  const noteItem = (item: JsonObject | undefined, fallbackKey: string): void => {
    const type = asString(item?.type);
    if (type) items.set(asString(item?.id) ?? fallbackKey, type);
  };

  const onResponse = (response: JsonObject | undefined) => {
    if (!response) return;
    state.started = true;
    state.model = asString(response.model) ?? state.model;
    state.id = asString(response.id) ?? state.id;
    state.status = asString(response.status) ?? state.status;
    state.incompleteReason = asString(asObject(response.incomplete_details)?.reason) ?? state.incompleteReason;
    state.usage = asObject(response.usage) ?? state.usage;
    if (response.error !== undefined && response.error !== null) state.error = streamError(response.error, 'response_failed');

    // The final output list wins. With `store: false` it may be empty, and then the streamed items count.
    const output = asArray(response.output);
    if (output.length === 0) return;
    items = new Map();
    for (const [index, item] of output.entries()) noteItem(asObject(item), `output_${index}`);
  };

  return {
    event(value, name) {
      const event = asObject(value);
      const type = asString(event?.type) ?? name ?? '';

      if (type === 'error') {
        // SSE streams send `{type, code, message}`, while the WebSocket transport may nest `{error:{type, message}}`.
        state.error = streamError(asObject(event?.error) ?? { code: event?.code, message: event?.message }, 'error');
        state.terminal = true;
        return false;
      }
      if (type === 'response.created' || type === 'response.in_progress' || type === 'response.queued' || TERMINAL_EVENTS.has(type)) {
        onResponse(asObject(event?.response));
        if (TERMINAL_EVENTS.has(type)) state.terminal = true;
        return false;
      }
      if (type === 'response.output_item.added' || type === 'response.output_item.done') {
        const item = asObject(event?.item);
        noteItem(item, `output_${asCount(event?.output_index) ?? items.size}`);
        return type.endsWith('added') && CLIENT_TOOL_ITEMS.has(asString(item?.type) ?? '') && nonEmptyString(item?.name);
      }
      if (OUTPUT_DELTAS.has(type) && nonEmptyString(event?.delta)) {
        if (type === 'response.output_text.delta') options.text?.append(event!.delta as string);
        return true;
      }
      return false;
    },

    document(value) {
      const body = asObject(value);
      onResponse(body);
      for (const item of asArray(body?.output)) {
        const message = asObject(item);
        if (asString(message?.type) !== 'message') continue;
        for (const part of asArray(message?.content)) {
          const content = asObject(part);
          if (asString(content?.type) === 'output_text' && typeof content?.text === 'string') options.text?.append(content.text);
        }
      }
      state.terminal = true;
    },

    sentinel() {},

    outcome() {
      let toolCalls = 0;
      let webSearches = 0;
      const serverToolCalls: Record<string, number> = {};
      for (const type of items.values()) {
        if (CLIENT_TOOL_ITEMS.has(type)) toolCalls++;
        const serverTool = SERVER_TOOL_ITEMS[type];
        if (serverTool) increment(serverToolCalls, serverTool);
        if (type === 'web_search_call') webSearches++;
      }

      const stopReason = state.status === 'incomplete' ? (state.incompleteReason ?? 'incomplete') : state.status;
      const counts = new CountReader();
      return {
        modelAnswered: state.model,
        responseId: state.id,
        usage: state.usage ? responsesUsage(state.usage, webSearches, counts) : null,
        usageProblems: counts.problems(),
        started: state.started,
        terminal: state.terminal,
        error: state.error,
        stopReason: state.status === 'in_progress' || state.status === 'queued' ? null : stopReason,
        stopReasonNormalized: normalizedStopReason(state.status, state.incompleteReason, toolCalls),
        toolCalls,
        serverToolCalls,
      };
    },
  };
}

function normalizedStopReason(status: string | null, incompleteReason: string | null, toolCalls: number): StopReasonNormalized | null {
  if (status === 'completed') return toolCalls > 0 ? 'tool_use' : 'end';
  if (status === 'incomplete' && incompleteReason !== null) return INCOMPLETE_REASONS[incompleteReason] ?? null;
  return null;
}

/** `input_tokens` includes `cached_tokens`, `output_tokens` includes `reasoning_tokens`. */
function responsesUsage(usage: JsonObject, webSearches: number, counts: CountReader): Usage {
  const input = counts.read(usage.input_tokens, 'input_tokens', null);
  const inputDetails = asObject(usage.input_tokens_details);
  const noneReported = input === null ? null : 0;
  const cacheRead = counts.read(inputDetails?.cached_tokens, 'input_tokens_details.cached_tokens', noneReported);
  const cacheWrite = counts.read(inputDetails?.cache_write_tokens, 'input_tokens_details.cache_write_tokens', noneReported);

  return {
    input_tokens: input,
    uncached_input_tokens: uncachedTokens(input, cacheRead, cacheWrite),
    cache_read_tokens: cacheRead,
    cache_write_tokens: cacheWrite,
    cache_write_5m_tokens: cacheWrite === 0 ? 0 : null,
    cache_write_1h_tokens: cacheWrite === 0 ? 0 : null,
    output_tokens: counts.read(usage.output_tokens, 'output_tokens', null),
    reasoning_tokens: counts.read(asObject(usage.output_tokens_details)?.reasoning_tokens, 'output_tokens_details.reasoning_tokens', null),
    web_search_requests: webSearches,
  };
}
