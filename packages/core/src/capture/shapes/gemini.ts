import type { StopReasonNormalized, Usage } from '../../call-record.js';
import { asArray, asCount, asObject, asString, CountReader, type JsonObject, nonEmptyString } from '../json-access.js';
import { type ShapeOutcome, type ShapeParser, type ShapeParserOptions, stopReasonsByIndex, streamError } from './shape-parser.js';

const BLOCKED = new Set(['SAFETY', 'RECITATION', 'BLOCKLIST', 'PROHIBITED_CONTENT', 'SPII', 'IMAGE_SAFETY', 'IMAGE_PROHIBITED_CONTENT']);

export interface GeminiParserOptions extends ShapeParserOptions {
  /** Code Assist wraps every response as `{"response": {...}}`. */
  wrapped: boolean;
}

/**
 * Gemini `generateContent` and `streamGenerateContent` (SSE or a streamed JSON array). Every chunk
 * carries `usageMetadata` with running totals, so the last one wins. Responses are proto3 JSON: a
 * missing count is 0. Thinking is billed as output: output = candidates + thoughts.
 */
export function createGeminiParser(options: GeminiParserOptions): ShapeParser {
  const state = {
    model: null as string | null,
    id: null as string | null,
    started: false,
    terminal: false,
    error: null as ShapeOutcome['error'],
    usage: undefined as JsonObject | undefined,
    blockReason: null as string | null,
    toolCalls: 0,
  };
  const finishReasons = new Map<number, string | null>();

  const onChunk = (value: unknown): boolean => {
    const outer = asObject(value);
    const chunk = options.wrapped ? (asObject(outer?.response) ?? outer) : outer;
    if (!chunk) return false;
    if (chunk.error !== undefined && chunk.error !== null) {
      state.error = streamError(chunk.error, 'error');
      return false;
    }

    state.started = true;
    state.model = asString(chunk.modelVersion) ?? state.model;
    state.id = asString(chunk.responseId) ?? state.id;
    state.usage = asObject(chunk.usageMetadata) ?? state.usage;
    state.blockReason = asString(asObject(chunk.promptFeedback)?.blockReason) ?? state.blockReason;
    if (state.blockReason !== null) state.terminal = true;

    let output = false;
    for (const [position, item] of asArray(chunk.candidates).entries()) {
      const candidate = asObject(item);
      const index = asCount(candidate?.index) ?? position;
      const reason = asString(candidate?.finishReason);
      if (reason !== null || !finishReasons.has(index)) finishReasons.set(index, reason);
      if (reason !== null) state.terminal = true;
      for (const part of asArray(asObject(candidate?.content)?.parts)) {
        if (onPart(asObject(part), index)) output = true;
      }
    }
    return output;
  };

  const onPart = (part: JsonObject | undefined, candidateIndex: number): boolean => {
    if (!part) return false;
    if (asObject(part.functionCall)) {
      state.toolCalls++;
      return true;
    }
    if (nonEmptyString(part.text)) {
      // Thought summaries are model output but not part of the visible text.
      if (part.thought !== true && candidateIndex === 0) options.text?.append(part.text as string);
      return true;
    }
    return asObject(part.inlineData) !== undefined || asObject(part.executableCode) !== undefined;
  };

  return {
    event: (value) => onChunk(value),

    document(value) {
      onChunk(value);
      state.terminal = true;
    },

    sentinel() {},

    outcome() {
      const stopReason = finishReasons.get(0) ?? state.blockReason;
      const counts = new CountReader();
      const outcome: ShapeOutcome = {
        modelAnswered: state.model,
        responseId: state.id,
        usage: state.usage ? geminiUsage(state.usage, counts) : null,
        usageProblems: counts.problems(),
        started: state.started,
        terminal: state.terminal,
        error: state.error,
        stopReason,
        stopReasonNormalized: normalizedStopReason(stopReason, state.blockReason !== null && !finishReasons.has(0), state.toolCalls),
        toolCalls: state.toolCalls,
        serverToolCalls: {},
      };
      const stopReasons = stopReasonsByIndex(finishReasons);
      if (stopReasons) outcome.stopReasons = stopReasons;
      return outcome;
    },
  };
}

function normalizedStopReason(reason: string | null, promptBlocked: boolean, toolCalls: number): StopReasonNormalized | null {
  if (promptBlocked) return 'content_filter';
  if (reason === 'STOP') return toolCalls > 0 ? 'tool_use' : 'end';
  if (reason === 'MAX_TOKENS') return 'max_tokens';
  return reason !== null && BLOCKED.has(reason) ? 'content_filter' : null;
}

/** `promptTokenCount` includes cached tokens; tool-use prompts are billed as input on top of it. */
function geminiUsage(usage: JsonObject, counts: CountReader): Usage {
  // proto3 JSON omits zero values, so a missing count is 0.
  const prompt = counts.read(usage.promptTokenCount, 'promptTokenCount', 0);
  const toolUsePrompt = counts.read(usage.toolUsePromptTokenCount, 'toolUsePromptTokenCount', 0);
  const cached = counts.read(usage.cachedContentTokenCount, 'cachedContentTokenCount', 0);
  const candidates = counts.read(usage.candidatesTokenCount, 'candidatesTokenCount', 0);
  const thoughts = counts.read(usage.thoughtsTokenCount, 'thoughtsTokenCount', 0);
  const input = counts.sum('promptTokenCount + toolUsePromptTokenCount', prompt, toolUsePrompt);

  return {
    input_tokens: input,
    uncached_input_tokens: input === null || cached === null ? null : Math.max(0, input - cached),
    cache_read_tokens: cached,
    cache_write_tokens: 0,
    cache_write_5m_tokens: 0,
    cache_write_1h_tokens: 0,
    output_tokens: counts.sum('candidatesTokenCount + thoughtsTokenCount', candidates, thoughts),
    reasoning_tokens: thoughts,
    web_search_requests: 0,
  };
}
