import type { CapturedBody } from '../call-record.js';
import { BodyCopy } from './body-copy.js';
import type { BodyDecoder } from './capture-types.js';
import { type ContentDecoder, createContentDecoder } from './content-decoder.js';
import { asObject, type JsonObject } from './json-access.js';
import { type JsonPathKey, JsonReader } from './json-reader.js';

/** Objects of a request body whose scalar fields identify the call; everything else is only scanned. */
const KEPT_OBJECTS = new Set(['metadata', 'stream_options', 'request', 'response']);
const REQUEST_LIMITS = { maxStringBytes: 4 * 1024, maxRetainedBytes: 256 * 1024 };

/** Keep top-level scalars (model, stream, prompt_cache_key, …) and the scalars of KEPT_OBJECTS. */
export function keepRequestField(path: readonly JsonPathKey[], isContainer: boolean): boolean {
  if (path.length === 0) return true;
  if (path.length === 1) return !isContainer || KEPT_OBJECTS.has(String(path[0]));
  return path.length === 2 && !isContainer;
}

export interface RequestObserverOptions {
  keepBodies: boolean;
  /** Mask secrets in the kept copy; true when omitted. */
  redactBodies?: boolean;
  /** Decode the kept copy to text; true when omitted. See `CaptureOptions.decodeBodies`. */
  decodeBodies?: boolean;
  bodyCapBytes: number;
  decoders: Partial<Record<string, BodyDecoder>>;
}

/**
 * Reads the request body as it is forwarded: decodes its content coding, keeps the capped copy, and
 * pulls out the few fields that classify the call without building the (possibly huge) prompt.
 */
export class RequestObserver {
  readonly #decoder: ContentDecoder;
  readonly #reader = new JsonReader({ ...REQUEST_LIMITS, keep: keepRequestField });
  readonly #copy: BodyCopy | null;
  readonly #contentType: string | null;
  #wireBytes = 0;
  #decodedBytes = 0;
  #fields: JsonObject | undefined;
  #parseProblem: string | null = null;
  #ended = false;

  constructor(headers: Readonly<Record<string, string>>, options: RequestObserverOptions) {
    this.#contentType = headers['content-type'] ?? null;
    this.#copy = options.keepBodies ? new BodyCopy(options.bodyCapBytes, options.redactBodies, options.decodeBodies) : null;
    this.#decoder = createContentDecoder(
      headers['content-encoding'],
      (bytes) => {
        this.#decodedBytes += bytes.length;
        this.#copy?.append(bytes);
        this.#reader.push(bytes);
      },
      options.decoders,
    );
  }

  get wireBytes(): number {
    return this.#wireBytes;
  }

  push(chunk: Uint8Array): void {
    this.#wireBytes += chunk.length;
    this.#decoder.push(chunk);
  }

  end(): void {
    if (this.#ended) return;
    this.#ended = true;
    this.#decoder.end();
    if (this.#decodedBytes === 0) return;

    const result = this.#reader.end();
    this.#fields = asObject(result.value);
    // Only a body that claims to be JSON is expected to parse. The reader's message is left out because
    // it may quote the body.
    const claimsJson = this.#contentType === null || /\bjson\b/i.test(this.#contentType);
    if (result.error !== null && claimsJson && this.#decoder.error === null) {
      this.#parseProblem = 'request body is not valid JSON; the record may lack its request fields (model, stream)';
    }
  }

  /** Reason a body sent as JSON could not be read, or null when it parsed (or is not JSON). */
  get parseProblem(): string | null {
    return this.#parseProblem;
  }

  /** Top-level fields of a JSON object body, or undefined when there is none or it does not parse. */
  get fields(): JsonObject | undefined {
    return this.#fields;
  }

  get decodingError(): string | null {
    return this.#decoder.error;
  }

  capturedBody(): CapturedBody | null {
    if (!this.#copy || (this.#wireBytes === 0 && this.#decoder.error === null)) return null;
    return this.#copy.toCapturedBody(this.#contentType, this.#decoder.error);
  }
}
