import type { StopReasonNormalized, Usage } from '../../call-record.js';
import { asArray, asObject, asString, CountReader, type JsonObject, nonEmptyString } from '../json-access.js';
import { increment, type ShapeOutcome, type ShapeParser, type ShapeParserOptions, streamError } from './shape-parser.js';

const STOP_REASONS: Record<string, StopReasonNormalized> = {
  end_turn: 'end',
  max_tokens: 'max_tokens',
  stop_sequence: 'stop_sequence',
  tool_use: 'tool_use',
  pause_turn: 'pause',
  refusal: 'refusal',
  model_context_window_exceeded: 'context_window',
};

/**
 * Anthropic Messages, streamed or not. In a stream, `message_start` carries the input side and a
 * placeholder output count. `message_delta.usage` carries cumulative totals, so every count it repeats
 * overwrites the earlier one and is never added.
 */
export function createAnthropicMessagesParser(options: ShapeParserOptions): ShapeParser {
  const state = {
    model: null as string | null,
    id: null as string | null,
    started: false,
    terminal: false,
    error: null as ShapeOutcome['error'],
    stopReason: null as string | null,
    toolCalls: 0,
    serverToolCalls: {} as Record<string, number>,
  };
  const usage = new AnthropicUsage();

  const onBlock = (block: JsonObject | undefined): boolean => {
    const type = asString(block?.type);
    if (type === 'tool_use') state.toolCalls++;
    if (type === 'server_tool_use') increment(state.serverToolCalls, asString(block?.name) ?? 'unknown');
    if (type === 'tool_use' || type === 'server_tool_use') return nonEmptyString(block?.name);
    if (type === 'text' && nonEmptyString(block?.text)) {
      options.text?.append(block!.text as string);
      return true;
    }
    return type === 'thinking' && nonEmptyString(block?.thinking);
  };

  const onDelta = (delta: JsonObject | undefined): boolean => {
    switch (asString(delta?.type)) {
      case 'text_delta':
        if (!nonEmptyString(delta?.text)) return false;
        options.text?.append(delta!.text as string);
        return true;
      case 'thinking_delta':
        return nonEmptyString(delta?.thinking);
      case 'input_json_delta':
        return nonEmptyString(delta?.partial_json);
      default:
        return false;
    }
  };

  const onMessage = (message: JsonObject | undefined) => {
    state.started = true;
    state.model = asString(message?.model) ?? state.model;
    state.id = asString(message?.id) ?? state.id;
  };

  return {
    event(value, name) {
      const event = asObject(value);
      switch (asString(event?.type) ?? name) {
        case 'message_start': {
          const message = asObject(event?.message);
          onMessage(message);
          usage.apply(asObject(message?.usage), false);
          return false;
        }
        case 'content_block_start':
          return onBlock(asObject(event?.content_block));
        case 'content_block_delta':
          return onDelta(asObject(event?.delta));
        case 'message_delta':
          state.stopReason = asString(asObject(event?.delta)?.stop_reason) ?? state.stopReason;
          usage.apply(asObject(event?.usage), true);
          return false;
        case 'message_stop':
          state.terminal = true;
          return false;
        case 'error':
          state.error = streamError(event?.error, 'error');
          return false;
        default:
          return false;
      }
    },

    document(value) {
      const body = asObject(value);
      if (asString(body?.type) === 'error') {
        state.error = streamError(body?.error, 'error');
        return;
      }
      onMessage(body);
      for (const block of asArray(body?.content)) onBlock(asObject(block));
      state.stopReason = asString(body?.stop_reason);
      usage.apply(asObject(body?.usage), true);
      state.terminal = true;
    },

    sentinel() {},

    outcome() {
      return {
        modelAnswered: state.model,
        responseId: state.id,
        usage: usage.normalized(),
        usageProblems: usage.problems(),
        started: state.started,
        terminal: state.terminal,
        error: state.error,
        stopReason: state.stopReason,
        stopReasonNormalized: state.stopReason === null ? null : (STOP_REASONS[state.stopReason] ?? null),
        toolCalls: state.toolCalls,
        serverToolCalls: state.serverToolCalls,
      };
    },
  };
}

/** Anthropic usage counts as last reported; `final` marks the body's or `message_delta`'s totals. */
class AnthropicUsage {
  #uncached: number | null = null;
  /** Undefined until reported: a report that omits a cache count means no cache use. */
  #cacheRead: number | null | undefined;
  #cacheWrite: number | null | undefined;
  #cacheWrite5m: number | null = null;
  #cacheWrite1h: number | null = null;
  #output: number | null = null;
  #reasoning: number | null = null;
  #webSearches: number | null = null;
  #finalSeen = false;
  readonly #counts = new CountReader();

  /** Apply one usage report. A count it omits keeps the earlier value, and an invalid count becomes unknown. */
  apply(usage: JsonObject | undefined, final: boolean): void {
    if (!usage) return;
    const counts = this.#counts;
    this.#uncached = counts.read(usage.input_tokens, 'input_tokens', this.#uncached);
    this.#cacheRead = counts.read(usage.cache_read_input_tokens, 'cache_read_input_tokens', this.#cacheRead);
    this.#cacheWrite = counts.read(usage.cache_creation_input_tokens, 'cache_creation_input_tokens', this.#cacheWrite);

    const split = asObject(usage.cache_creation);
    if (split) {
      this.#cacheWrite5m = counts.read(split.ephemeral_5m_input_tokens, 'cache_creation.ephemeral_5m_input_tokens', 0);
      this.#cacheWrite1h = counts.read(split.ephemeral_1h_input_tokens, 'cache_creation.ephemeral_1h_input_tokens', 0);
    }
    if (!final) return;

    // message_start's output_tokens is a placeholder; only a final count is output.
    this.#finalSeen = true;
    this.#output = counts.read(usage.output_tokens, 'output_tokens', this.#output);
    this.#reasoning = counts.read(
      asObject(usage.output_tokens_details)?.thinking_tokens,
      'output_tokens_details.thinking_tokens',
      this.#reasoning,
    );
    const webSearches = asObject(usage.server_tool_use)?.web_search_requests;
    this.#webSearches = counts.read(webSearches, 'server_tool_use.web_search_requests', this.#webSearches ?? 0);
  }

  problems(): string[] {
    return this.#counts.problems();
  }

  normalized(): Usage | null {
    if (this.#uncached === null && !this.#finalSeen) return null;

    const inputKnown = this.#uncached !== null;
    const cacheRead = inputKnown ? zeroUnlessReported(this.#cacheRead) : null;
    const cacheWrite = inputKnown ? zeroUnlessReported(this.#cacheWrite) : null;
    const splitKnown = this.#cacheWrite5m !== null && this.#cacheWrite1h !== null;
    // Without a split from the provider, only "no writes at all" gives a known split.
    const unsplit = cacheWrite === 0 ? 0 : null;

    return {
      input_tokens: inputKnown ? this.#counts.sum('input_tokens', this.#uncached, cacheRead, cacheWrite) : null,
      uncached_input_tokens: this.#uncached,
      cache_read_tokens: cacheRead,
      cache_write_tokens: cacheWrite,
      cache_write_5m_tokens: splitKnown ? this.#cacheWrite5m : unsplit,
      cache_write_1h_tokens: splitKnown ? this.#cacheWrite1h : unsplit,
      output_tokens: this.#output,
      reasoning_tokens: this.#finalSeen ? this.#reasoning : null,
      web_search_requests: this.#finalSeen ? this.#webSearches : null,
    };
  }
}

function zeroUnlessReported(count: number | null | undefined): number | null {
  return count === undefined ? 0 : count;
}
