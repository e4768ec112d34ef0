import type { StopReasonNormalized, Usage } from '../../call-record.js';
import { asArray, asCount, asObject, asString, CountReader, type JsonObject, nonEmptyString } from '../json-access.js';
import { type ShapeOutcome, type ShapeParser, type ShapeParserOptions, stopReasonsByIndex, streamError } from './shape-parser.js';

const FINISH_REASONS: Record<string, StopReasonNormalized> = {
  stop: 'end',
  length: 'max_tokens',
  tool_calls: 'tool_use',
  function_call: 'tool_use',
  content_filter: 'content_filter',
};

/**
 * OpenAI Chat Completions and the hosts that copy it. A stream reports usage only in a last chunk
 * with `choices: []` when the request set `stream_options.include_usage`, and ends with `[DONE]`.
 * Tool calls stream as fragments keyed by `tool_calls[].index`, so calls are counted by distinct index.
 */
export function createOpenAiChatParser(options: ShapeParserOptions): ShapeParser {
  const state = {
    model: null as string | null,
    id: null as string | null,
    started: false,
    terminal: false,
    error: null as ShapeOutcome['error'],
    usage: undefined as JsonObject | undefined,
  };
  const finishReasons = new Map<number, string | null>();
  const toolCallIndexes = new Map<number, Set<number>>();

  const onChunk = (chunk: JsonObject) => {
    state.started = true;
    state.model = asString(chunk.model) ?? state.model;
    state.id = asString(chunk.id) ?? state.id;
    state.usage = asObject(chunk.usage) ?? state.usage;
    if (chunk.error !== undefined && chunk.error !== null) state.error = streamError(chunk.error, 'error');
  };

  const noteChoice = (choice: JsonObject): number => {
    const index = asCount(choice.index) ?? 0;
    const reason = asString(choice.finish_reason);
    if (reason !== null || !finishReasons.has(index)) finishReasons.set(index, reason);
    return index;
  };

  const noteToolCalls = (choiceIndex: number, calls: unknown[], legacyFunctionCall: unknown): void => {
    const indexes = toolCallIndexes.get(choiceIndex) ?? new Set<number>();
    for (const [position, call] of calls.entries()) indexes.add(asCount(asObject(call)?.index) ?? position);
    // The deprecated `function_call` field is one call per choice.
    if (asObject(legacyFunctionCall)) indexes.add(-1);
    toolCallIndexes.set(choiceIndex, indexes);
  };

  return {
    event(value) {
      const chunk = asObject(value);
      if (!chunk) return false;
      onChunk(chunk);

      let output = false;
      for (const item of asArray(chunk.choices)) {
        const choice = asObject(item);
        if (!choice) continue;
        const index = noteChoice(choice);
        const delta = asObject(choice.delta);
        if (!delta) continue;

        const calls = asArray(delta.tool_calls);
        noteToolCalls(index, calls, delta.function_call);
        if (nonEmptyString(delta.content)) {
          if (index === 0) options.text?.append(delta.content as string);
          output = true;
        }
        if (nonEmptyString(delta.refusal) || nonEmptyString(delta.reasoning_content) || nonEmptyString(delta.reasoning)) output = true;
        if (calls.some(carriesToolOutput) || carriesToolOutput({ function: delta.function_call })) output = true;
      }
      return output;
    },

    document(value) {
      const body = asObject(value);
      if (!body) return;
      onChunk(body);
      for (const item of asArray(body.choices)) {
        const choice = asObject(item);
        if (!choice) continue;
        const index = noteChoice(choice);
        const message = asObject(choice.message);
        noteToolCalls(index, asArray(message?.tool_calls), message?.function_call);
        if (index === 0 && typeof message?.content === 'string') options.text?.append(message.content);
      }
      state.terminal = true;
    },

    sentinel() {
      state.terminal = true;
    },

    outcome() {
      const stopReason = finishReasons.get(0) ?? null;
      let toolCalls = 0;
      for (const indexes of toolCallIndexes.values()) toolCalls += indexes.size;
      const counts = new CountReader();
      const outcome: ShapeOutcome = {
        modelAnswered: state.model,
        responseId: state.id,
        usage: state.usage ? chatUsage(state.usage, counts) : null,
        usageProblems: counts.problems(),
        started: state.started,
        terminal: state.terminal,
        error: state.error,
        stopReason,
        stopReasonNormalized: stopReason === null ? null : (FINISH_REASONS[stopReason] ?? null),
        toolCalls,
        serverToolCalls: {},
      };
      const stopReasons = stopReasonsByIndex(finishReasons);
      if (stopReasons) outcome.stopReasons = stopReasons;
      return outcome;
    },
  };
}

/** A tool-call fragment is output once it names the function or carries argument text. */
function carriesToolOutput(call: unknown): boolean {
  const fn = asObject(asObject(call)?.function);
  return nonEmptyString(fn?.name) || nonEmptyString(fn?.arguments);
}

/**
 * `prompt_tokens` includes cached tokens and `completion_tokens` includes reasoning. A missing
 * `cached_tokens` means no cache hit was reported (DeepSeek reports `prompt_cache_hit_tokens` instead).
 */
export function chatUsage(usage: JsonObject, counts: CountReader): Usage {
  const prompt = counts.read(usage.prompt_tokens, 'prompt_tokens', null);
  const promptDetails = asObject(usage.prompt_tokens_details);
  const noneReported = prompt === null ? null : 0;
  const hitTokens = counts.read(usage.prompt_cache_hit_tokens, 'prompt_cache_hit_tokens', noneReported);
  const cacheRead = counts.read(promptDetails?.cached_tokens, 'prompt_tokens_details.cached_tokens', hitTokens);
  const cacheWrite = counts.read(promptDetails?.cache_write_tokens, 'prompt_tokens_details.cache_write_tokens', noneReported);

  return {
    input_tokens: prompt,
    uncached_input_tokens: uncachedTokens(prompt, cacheRead, cacheWrite),
    cache_read_tokens: cacheRead,
    cache_write_tokens: cacheWrite,
    cache_write_5m_tokens: cacheWrite === 0 ? 0 : null,
    cache_write_1h_tokens: cacheWrite === 0 ? 0 : null,
    output_tokens: counts.read(usage.completion_tokens, 'completion_tokens', null),
    reasoning_tokens: counts.read(
      asObject(usage.completion_tokens_details)?.reasoning_tokens,
      'completion_tokens_details.reasoning_tokens',
      null,
    ),
    web_search_requests: 0,
  };
}

/** Prompt tokens billed at the base input price; unknown when any part is. */
export function uncachedTokens(input: number | null, cacheRead: number | null, cacheWrite: number | null): number | null {
  if (input === null || cacheRead === null || cacheWrite === null) return null;
  return Math.max(0, input - cacheRead - cacheWrite);
}
