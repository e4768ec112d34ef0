import type { StopReasonNormalized, Timing, Usage } from '../../call-record.js';
import { asArray, asObject, asString, CountReader, type JsonObject, nonEmptyString } from '../json-access.js';
import type { ShapeOutcome, ShapeParser, ShapeParserOptions } from './shape-parser.js';

const DONE_REASONS: Record<string, StopReasonNormalized> = { stop: 'end', length: 'max_tokens' };

/**
 * Ollama's native `/api/chat` and `/api/generate`. A stream is NDJSON: one object per line, each with a
 * piece of `message.content` (chat) or `response` (generate), and a last one with `done: true` carrying
 * `done_reason`, the token counts (`prompt_eval_count`, `eval_count`) and durations in nanoseconds. A
 * non-streamed response is that last object with the whole output. Errors come as `{"error": "..."}`.
 * Ollama reports no cache counts, so the cache fields stay unknown.
 */
export function createOllamaParser(options: ShapeParserOptions): ShapeParser {
  const state = {
    model: null as string | null,
    started: false,
    terminal: false,
    error: null as ShapeOutcome['error'],
    final: undefined as JsonObject | undefined,
    doneReason: null as string | null,
    toolCalls: 0,
  };

  const onObject = (object: JsonObject): boolean => {
    const message = asString(object.error);
    if (message !== null) {
      state.error = { type: 'error', message, source: 'stream_event', retry_after_s: null };
      return false;
    }
    state.started = true;
    state.model = asString(object.model) ?? state.model;

    const chatMessage = asObject(object.message);
    const text = asString(chatMessage?.content) ?? asString(object.response);
    if (text !== null && text.length > 0) options.text?.append(text);
    const calls = asArray(chatMessage?.tool_calls).length;
    state.toolCalls += calls;

    if (object.done === true) {
      state.terminal = true;
      state.final = object;
      state.doneReason = asString(object.done_reason);
    }
    return (text !== null && text.length > 0) || nonEmptyString(chatMessage?.thinking) || nonEmptyString(object.thinking) || calls > 0;
  };

  return {
    event(value) {
      const object = asObject(value);
      return object ? onObject(object) : false;
    },

    document(value) {
      const object = asObject(value);
      if (object) onObject(object);
    },

    sentinel() {},

    outcome() {
      const counts = new CountReader();
      const outcome: ShapeOutcome = {
        modelAnswered: state.model,
        responseId: null,
        usage: state.final ? ollamaUsage(state.final, counts) : null,
        usageProblems: counts.problems(),
        started: state.started,
        terminal: state.terminal,
        error: state.error,
        stopReason: state.doneReason,
        stopReasonNormalized: normalizeDoneReason(state.doneReason, state.toolCalls),
        toolCalls: state.toolCalls,
        serverToolCalls: {},
      };
      if (state.final) outcome.modelTiming = ollamaTiming(state.final);
      return outcome;
    },
  };
}

function normalizeDoneReason(reason: string | null, toolCalls: number): StopReasonNormalized | null {
  if (reason === null) return null;
  // Ollama ends a turn that asked for tools with `stop`, like any other finished answer.
  if (reason === 'stop' && toolCalls > 0) return 'tool_use';
  return DONE_REASONS[reason] ?? null;
}

/** `prompt_eval_count` is the prompt tokens Ollama evaluated; it leaves out a prefix reused from its cache. */
function ollamaUsage(final: JsonObject, counts: CountReader): Usage {
  const input = counts.read(final.prompt_eval_count, 'prompt_eval_count', null);
  return {
    input_tokens: input,
    uncached_input_tokens: input,
    cache_read_tokens: null,
    cache_write_tokens: null,
    cache_write_5m_tokens: null,
    cache_write_1h_tokens: null,
    output_tokens: counts.read(final.eval_count, 'eval_count', null),
    reasoning_tokens: null,
    web_search_requests: 0,
  };
}

function ollamaTiming(final: JsonObject): Pick<Timing, 'model_load_ms' | 'prompt_eval_ms' | 'eval_ms'> {
  const timing: Pick<Timing, 'model_load_ms' | 'prompt_eval_ms' | 'eval_ms'> = {};
  const load = nanosToMs(final.load_duration);
  const promptEval = nanosToMs(final.prompt_eval_duration);
  const evaluation = nanosToMs(final.eval_duration);
  if (load !== null) timing.model_load_ms = load;
  if (promptEval !== null) timing.prompt_eval_ms = promptEval;
  if (evaluation !== null) timing.eval_ms = evaluation;
  return timing;
}

/** Nanoseconds to ms, rounded to the microsecond; null for anything but a non-negative number. */
function nanosToMs(value: unknown): number | null {
  if (typeof value !== 'number' || !Number.isFinite(value) || value < 0) return null;
  return Math.round(value / 1000) / 1000;
}
