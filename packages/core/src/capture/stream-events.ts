import { JsonReader } from './json-reader.js';
import { SseParser } from './sse-parser.js';

/** Receives the events of a streamed response, each at the moment its last byte arrives. */
export interface StreamEventHandler {
  /** One event payload parsed as JSON (an SSE data field or an element of a streamed JSON array). */
  event(value: unknown, name: string | null): void;
  /** The `data: [DONE]` line that ends OpenAI Chat Completions streams. */
  sentinel(): void;
  /** An event whose payload is not JSON; the stream goes on. */
  invalid(reason: string): void;
}

/** Limits for one event: text deltas are small, while a terminal event may repeat a whole output. */
const EVENT_LIMITS = { maxStringBytes: 64 * 1024, maxRetainedBytes: 4 * 1024 * 1024 };
const DONE = '[DONE]';

/** SSE whose data payloads are JSON documents, parsed while they arrive. */
export class SseJsonEvents {
  readonly #parser: SseParser;
  #reader: JsonReader | null = null;
  #prefix = '';

  constructor(handler: StreamEventHandler) {
    this.#parser = new SseParser({
      data: (piece) => {
        this.#reader ??= new JsonReader(EVENT_LIMITS);
        this.#reader.push(piece);
        if (this.#prefix.length <= DONE.length) this.#prefix += new TextDecoder().decode(piece.subarray(0, DONE.length + 1));
      },
      dispatch: (name) => {
        const reader = this.#reader;
        const prefix = this.#prefix;
        this.#reader = null;
        this.#prefix = '';
        if (prefix.trim() === DONE) return handler.sentinel();
        if (!reader) return handler.invalid(`event "${name}" has empty data`);

        const result = reader.end();
        if (result.complete) handler.event(result.value, name);
        else handler.invalid(`event "${name}" data is not JSON: ${result.error}`);
      },
    });
  }

  push(chunk: Uint8Array): void {
    this.#parser.push(chunk);
  }
}

/**
 * A JSON array written element by element (Gemini `streamGenerateContent` without `alt=sse`): each
 * element is an event as soon as its closing bracket arrives.
 */
export class JsonArrayEvents {
  readonly #reader: JsonReader;

  constructor(handler: StreamEventHandler) {
    this.#reader = new JsonReader({ ...EVENT_LIMITS, onRootElement: (value) => handler.event(value, null) });
  }

  push(chunk: Uint8Array): void {
    this.#reader.push(chunk);
  }

  /** True when the closing bracket of the array arrived. */
  end(): { complete: boolean; error: string | null } {
    const result = this.#reader.end();
    return { complete: result.complete, error: result.error };
  }
}
