import type { CallError, StopReasonNormalized, Timing, Usage } from '../../call-record.js';
import type { TextCollector } from '../body-copy.js';
import { asObject, asString } from '../json-access.js';

/** Facts one API shape's parser read from a response body. */
export interface ShapeOutcome {
  modelAnswered: string | null;
  responseId: string | null;
  /** Null when the response never reported usage; single fields are null when not reported or invalid. */
  usage: Usage | null;
  /** One message per usage field whose value was not a valid count (see `CountReader`). */
  usageProblems?: string[];
  /** The upstream began its response (`message_start`, `response.created`, a first chunk, a whole body). */
  started: boolean;
  /** The shape's terminal event arrived (or a complete non-streamed body). */
  terminal: boolean;
  /** An error reported inside a 200 response. */
  error: CallError | null;
  stopReason: string | null;
  /** One raw value per choice or candidate, only when there were several. */
  stopReasons?: (string | null)[];
  stopReasonNormalized: StopReasonNormalized | null;
  toolCalls: number;
  serverToolCalls: Record<string, number>;
  /** Timings the model server reported about itself, in ms (Ollama); absent elsewhere. */
  modelTiming?: Pick<Timing, 'model_load_ms' | 'prompt_eval_ms' | 'eval_ms'>;
}

/**
 * Parser for the body of one API shape. Stream events and whole bodies arrive already parsed as JSON, so
 * a parser only interprets values. It must not throw on a value of an unexpected shape.
 */
export interface ShapeParser {
  /** One streamed event; returns true when it carried model output (for time to first token). */
  event(value: unknown, name: string | null): boolean;
  /** The whole JSON body of a non-streamed 2xx response. */
  document(value: unknown): void;
  /** The `[DONE]` line of Chat Completions streams. */
  sentinel(): void;
  outcome(): ShapeOutcome;
}

export interface ShapeParserOptions {
  /** Receives the visible output text when the caller asked for it. */
  text: TextCollector | null;
}

/** Convert an error object in a provider's own shape, as found in a stream event or a 200 body. */
export function streamError(error: unknown, fallbackType: string): CallError {
  const object = asObject(error);
  const type = asString(object?.type) ?? asString(object?.code) ?? asString(object?.status) ?? fallbackType;
  return { type, message: asString(object?.message), source: 'stream_event', retry_after_s: null };
}

export function increment(counts: Record<string, number>, name: string): void {
  counts[name] = (counts[name] ?? 0) + 1;
}

/** Raw values of several choices, in index order; undefined for a single choice. */
export function stopReasonsByIndex(reasons: ReadonlyMap<number, string | null>): (string | null)[] | undefined {
  if (reasons.size < 2) return undefined;
  const highest = Math.max(...reasons.keys());
  return Array.from({ length: highest + 1 }, (_, index) => reasons.get(index) ?? null);
}
