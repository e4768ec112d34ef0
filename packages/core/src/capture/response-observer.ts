import type { CallError, CallRecord, CapturedBody } from '../call-record.js';
import type { ShapeInfo } from './api-shape.js';
import { BodyCopy, TextCollector } from './body-copy.js';
import type { BodyDecoder } from './capture-types.js';
import { type ContentDecoder, createContentDecoder } from './content-decoder.js';
import { httpErrorFromBody, isRedirect, redirectError } from './http-error.js';
import { JsonDocument } from './json-document.js';
import { createShapeParser } from './shapes/create-shape-parser.js';
import type { ShapeOutcome, ShapeParser } from './shapes/shape-parser.js';
import { JsonArrayEvents, NdjsonEvents, SseJsonEvents, type StreamEventHandler } from './stream-events.js';

export interface ResponseObserverOptions {
  keepBodies: boolean;
  /** Mask secrets in the kept copy; true when omitted. */
  redactBodies?: boolean;
  /** Decode the kept copy to text; true when omitted. See `CaptureOptions.decodeBodies`. */
  decodeBodies?: boolean;
  bodyCapBytes: number;
  decoders: Partial<Record<string, BodyDecoder>>;
  collectOutputText: boolean;
}

/** Body reading mode: stream events, one JSON document, an error document, or a byte count only. */
type Framing = 'sse' | 'json-array' | 'ndjson' | 'json' | 'error' | 'none';

/** A whole JSON body up to this size is parsed at its end; a larger one while it arrives. */
const MAX_BUFFERED_DOCUMENT_BYTES = 1024 * 1024;
/**
 * Limits for a larger body: strings beyond `maxStringBytes` keep a prefix, and once long strings have
 * kept `maxLongStringBytes`, later strings keep only a short prefix (see JsonReader).
 */
const DOCUMENT_LIMITS = { maxStringBytes: 1024 * 1024, maxLongStringBytes: 8 * 1024 * 1024, maxRetainedBytes: 16 * 1024 * 1024 };

/**
 * Reads one response body from the bytes the proxy forwards. The framing is chosen from the status and
 * `content-type`, never from what the request asked for: a rejected streaming request gets plain JSON.
 * Every event is parsed during the read that completed it, so that read's time is the event's time.
 */
export class ResponseObserver {
  readonly status: number;
  readonly headers: Readonly<Record<string, string>>;
  readonly framing: Framing;
  readonly #parser: ShapeParser | null;
  readonly #decoder: ContentDecoder;
  readonly #copy: BodyCopy | null;
  readonly #text: TextCollector | null;
  #events: SseJsonEvents | JsonArrayEvents | NdjsonEvents | null = null;
  #document: JsonDocument | null = null;
  #documentResult: { value: unknown; complete: boolean } = { value: undefined, complete: false };
  #wireBytes = 0;
  #readMs: number | null = null;
  #lastReadMs: number | null = null;
  #firstOutputMs: number | null = null;
  #invalidEvents: string[] = [];
  #ended = false;

  constructor(info: ShapeInfo, status: number, headers: Readonly<Record<string, string>>, options: ResponseObserverOptions) {
    this.status = status;
    this.headers = headers;
    this.framing = chooseFraming(info, status, headers['content-type'] ?? '');
    this.#text = options.collectOutputText ? new TextCollector(options.bodyCapBytes) : null;
    this.#parser = this.framing === 'none' || this.framing === 'error' ? null : createShapeParser(info, { text: this.#text });
    this.#copy = options.keepBodies ? new BodyCopy(options.bodyCapBytes, options.redactBodies, options.decodeBodies) : null;

    const handler = this.#eventHandler();
    if (this.framing === 'sse') this.#events = new SseJsonEvents(handler);
    if (this.framing === 'json-array') this.#events = new JsonArrayEvents(handler);
    if (this.framing === 'ndjson') this.#events = new NdjsonEvents(handler);
    if (this.framing === 'json' || this.framing === 'error')
      this.#document = new JsonDocument(MAX_BUFFERED_DOCUMENT_BYTES, DOCUMENT_LIMITS);

    this.#decoder = createContentDecoder(
      headers['content-encoding'],
      (bytes) => {
        this.#copy?.append(bytes);
        this.#events?.push(bytes);
        this.#document?.push(bytes);
      },
      options.decoders,
    );
  }

  /** Feed one read; `readMs` is its arrival time, used for events it completes. */
  push(chunk: Uint8Array, readMs: number): void {
    if (chunk.length === 0) return;
    this.#wireBytes += chunk.length;
    this.#readMs = readMs;
    this.#lastReadMs = readMs;
    this.#decoder.push(chunk);
  }

  /** Close the body; a whole-body decoder runs now, so its events get `nowMs`. */
  end(nowMs: number): void {
    if (this.#ended) return;
    this.#ended = true;
    this.#readMs = this.#lastReadMs ?? nowMs;
    this.#decoder.end();

    if (this.#events instanceof NdjsonEvents) this.#events.end();
    if (this.#events instanceof JsonArrayEvents) {
      const result = this.#events.end();
      if (result.error !== null) this.#invalidEvents.push(`JSON array stream: ${result.error}`);
      this.#documentResult = { value: undefined, complete: result.complete };
    }
    if (this.#document) {
      const result = this.#document.end();
      this.#documentResult = result;
      if (this.framing === 'json' && result.complete) this.#parser?.document(result.value);
      if (this.framing === 'json' && !result.complete && this.#wireBytes > 0)
        this.#invalidEvents.push(`response body is not JSON: ${result.error}`);
      if (result.overflow)
        this.#invalidEvents.push(
          `response body has more values than the capture keeps (${DOCUMENT_LIMITS.maxRetainedBytes} bytes' worth): later ones, usage among them, were not read`,
        );
    }
  }

  get streaming(): boolean {
    return this.framing === 'sse' || this.framing === 'json-array' || this.framing === 'ndjson';
  }

  get streamFormat(): CallRecord['stream_format'] {
    return this.streaming ? (this.framing as 'sse' | 'json-array' | 'ndjson') : null;
  }

  get wireBytes(): number {
    return this.#wireBytes;
  }

  get lastReadMs(): number | null {
    return this.#lastReadMs;
  }

  get firstOutputMs(): number | null {
    return this.#firstOutputMs;
  }

  /** The body ended as a whole JSON document, or a streamed JSON array reached its closing bracket. */
  get bodyComplete(): boolean {
    return this.#documentResult.complete;
  }

  outcome(): ShapeOutcome | null {
    return this.#parser?.outcome() ?? null;
  }

  /** Describe the call's error for a status >= 400 or a redirect; null otherwise. */
  httpError(nowMs: number): CallError | null {
    if (this.framing === 'error') return httpErrorFromBody(this.status, this.headers, this.#documentResult, nowMs);
    return isRedirect(this.status) ? redirectError(this.status, this.headers, nowMs) : null;
  }

  outputText(): string | null {
    return this.#text?.text() ?? null;
  }

  capturedBody(): CapturedBody | null {
    return this.#copy?.toCapturedBody(this.headers['content-type'] ?? null, this.#decoder.error) ?? null;
  }

  /** Facts for the caller to log: decoding failures, payloads that were not JSON and invalid usage counts. */
  problems(): string[] {
    const problems = [...this.#invalidEvents];
    if (this.#decoder.error !== null) problems.push(this.#decoder.error);
    problems.push(...(this.outcome()?.usageProblems ?? []));
    return problems;
  }

  #eventHandler(): StreamEventHandler {
    return {
      event: (value, name) => {
        if (this.#parser?.event(value, name) && this.#firstOutputMs === null) this.#firstOutputMs = this.#readMs;
      },
      sentinel: () => this.#parser?.sentinel(),
      invalid: (reason) => {
        if (this.#invalidEvents.length < 5) this.#invalidEvents.push(reason);
      },
    };
  }
}

function chooseFraming(info: ShapeInfo, status: number, contentType: string): Framing {
  if (status >= 400) return 'error';
  if (info.shape === null || info.shape === 'anthropic.count_tokens' || status < 200 || status >= 300) return 'none';

  const type = contentType.toLowerCase();
  if (type.startsWith('text/event-stream')) return 'sse';
  if (info.shape === 'gemini.stream_generate_content' && !info.altSse) return 'json-array';
  // Ollama streams NDJSON unless the request set `"stream": false`, whatever content type it sends.
  if (type.startsWith('application/x-ndjson')) return 'ndjson';
  return 'json';
}
