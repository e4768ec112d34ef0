import { JsonDocument } from './json-document.js';
import { JsonReader } from './json-reader.js';
import { SseParser } from './sse-parser.js';
import { decodeUtf8 } from './utf8.js';

/** Receives the events of a streamed response, each at the moment its last byte arrives. */
export interface StreamEventHandler {
  /** One event payload parsed as JSON (an SSE data field or an element of a streamed JSON array). */
  event(value: unknown, name: string | null): void;
  /** The `data: [DONE]` line that ends OpenAI Chat Completions streams. */
  sentinel(): void;
  /** An event whose payload is not JSON. The stream goes on. */
  invalid(reason: string): void;
}

/** Limits for one event: text deltas are small, while a terminal event may repeat a whole output. */
const EVENT_LIMITS = { maxStringBytes: 64 * 1024, maxRetainedBytes: 4 * 1024 * 1024 };
/** Events up to this size are parsed with JSON.parse, larger ones incrementally. */
const MAX_BUFFERED_EVENT_BYTES = 256 * 1024;
const DONE = '[DONE]';

/**
 * SSE whose data payloads are JSON documents. An event whose data is one piece of the pushed chunk (the
 * usual case) is parsed straight from that piece. Data still open when the chunk ends is copied into a
 * JsonDocument, because the caller may reuse the chunk's memory after `push` returns.
 */
export class SseJsonEvents {
  readonly #handler: StreamEventHandler;
  readonly #parser: SseParser;
  /** The current event's only data piece so far, a view of the chunk being pushed. */
  #piece: Uint8Array | null = null;
  #document: JsonDocument | null = null;

  constructor(handler: StreamEventHandler) {
    this.#handler = handler;
    this.#parser = new SseParser({
      data: (piece) => {
        if (this.#piece === null && this.#document === null) {
          this.#piece = piece;
          return;
        }
        this.#toDocument().push(piece);
      },
      dispatch: (name) => {
        const piece = this.#piece;
        this.#piece = null;
        if (piece !== null && piece.length <= MAX_BUFFERED_EVENT_BYTES) {
          this.#parsePiece(piece, name);
          return;
        }
        const document = piece === null ? this.#document : this.#toDocument(piece);
        this.#document = null;
        if (document) this.#dispatchDocument(document, name);
        else handler.invalid(`event "${name}" has empty data`);
      },
    });
  }

  push(chunk: Uint8Array): void {
    this.#parser.push(chunk);
    if (this.#piece !== null) this.#toDocument();
  }

  /** Move the pending piece (or `piece`) into the current document, copying it, and return the document. */
  #toDocument(piece: Uint8Array | null = this.#piece): JsonDocument {
    this.#document ??= new JsonDocument(MAX_BUFFERED_EVENT_BYTES, EVENT_LIMITS);
    if (piece !== null) this.#document.push(piece);
    this.#piece = null;
    return this.#document;
  }

  #parsePiece(piece: Uint8Array, name: string): void {
    const text = decodeUtf8(piece);
    // "[DONE]" is the only payload short enough to be worth comparing as text first.
    if (piece.length <= 16 && text.trim() === DONE) {
      this.#handler.sentinel();
      return;
    }
    let value: unknown;
    try {
      value = JSON.parse(text);
    } catch {
      // The document reads the bytes again for an error that gives the offset rather than quoting the text.
      const document = new JsonDocument(MAX_BUFFERED_EVENT_BYTES, EVENT_LIMITS);
      document.push(piece);
      this.#dispatchDocument(document, name);
      return;
    }
    this.#handler.event(value, name);
  }

  #dispatchDocument(document: JsonDocument, name: string): void {
    const size = document.bufferedBytes;
    if (size >= 0 && size <= 16 && document.bufferedText()?.trim() === DONE) {
      this.#handler.sentinel();
      return;
    }
    const result = document.end();
    if (result.complete) this.#handler.event(result.value, name);
    else this.#handler.invalid(`event "${name}" data is not JSON: ${result.error}`);
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

/**
 * Newline-delimited JSON (Ollama's native streams, `application/x-ndjson`): each line is one event as soon
 * as its newline arrives. Blank lines are skipped, and a last line without a newline is an event when the
 * body ends. Lines are parsed with the same bounds as SSE events.
 */
export class NdjsonEvents {
  readonly #handler: StreamEventHandler;
  #document: JsonDocument | null = null;
  #lineBytes = 0;

  constructor(handler: StreamEventHandler) {
    this.#handler = handler;
  }

  push(chunk: Uint8Array): void {
    let start = 0;
    for (let i = 0; i < chunk.length; i++) {
      if (chunk[i] !== 0x0a) continue;
      this.#append(chunk.subarray(start, i));
      this.#dispatch();
      start = i + 1;
    }
    this.#append(chunk.subarray(start));
  }

  end(): void {
    this.#dispatch();
  }

  #append(piece: Uint8Array): void {
    if (piece.length === 0) return;
    this.#document ??= new JsonDocument(MAX_BUFFERED_EVENT_BYTES, EVENT_LIMITS);
    this.#document.push(piece);
    this.#lineBytes += piece.length;
  }

  #dispatch(): void {
    const document = this.#document;
    const lineBytes = this.#lineBytes;
    this.#document = null;
    this.#lineBytes = 0;
    if (!document || lineBytes === 0) return;
    // A line of only whitespace (a CR before the LF, blank keep-alive lines) is no event.
    if (lineBytes <= 16 && document.bufferedText()?.trim() === '') return;

    const result = document.end();
    if (result.complete) this.#handler.event(result.value, null);
    else this.#handler.invalid(`NDJSON line is not JSON: ${result.error}`);
  }
}
