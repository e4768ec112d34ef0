import type { CallBodies, CallRecord } from '../call-record.js';
import type { RouteDescriptor } from '../routes/route-descriptor.js';

/** What the runtime knows about a request when it starts forwarding it. */
export interface CaptureRequest {
  route: RouteDescriptor;
  method: string;
  /** Upstream path and query exactly as forwarded (after the `/r/{token}/{route}` prefix). */
  target: string;
  /**
   * Request headers as received, lowercase names. The capture reads credentials only to classify the
   * call (an OAuth bearer means subscription billing) and never copies them into a record or a body.
   */
  headers: Readonly<Record<string, string>>;
  workspaceId: string | null;
  deviceId: string | null;
}

/** Synchronous whole-body decoder for a content coding core cannot decode in a streaming way. */
export type BodyDecoder = (bytes: Uint8Array) => Uint8Array;

export interface CaptureOptions {
  /** Monotonic clock in ms (e.g. `performance.now`); tests pass a scripted clock. */
  clock?: () => number;
  /** Wall clock for `started_at`; defaults to `Date.now`. */
  wallClock?: () => number;
  /** Keep request and response bodies (false in privacy mode). */
  keepBodies?: boolean;
  /**
   * Mask secrets in the kept body text (default true). Credential headers are removed, and secrets in
   * error messages and the user agent are masked, whatever this says.
   */
  redactBodies?: boolean;
  /**
   * Decode the kept bodies to text (default true). False leaves each `CapturedBody` with its kept bytes in
   * `raw`, undecoded and unmasked whatever `redactBodies` is, for a runtime that decodes them later off
   * its event loop with `decodeCapturedBody`.
   */
  decodeBodies?: boolean;
  /** Largest decoded body kept, in bytes; default 4 MiB. Bytes beyond it are counted, not kept. */
  bodyCapBytes?: number;
  /** Decoders the runtime adds, e.g. `br` on Node through `zlib.brotliDecompressSync`. */
  decoders?: Partial<Record<string, BodyDecoder>>;
  /** Gather the visible output text (capped at `bodyCapBytes` characters) into `CaptureResult.outputText`. */
  collectOutputText?: boolean;
}

/** How an HTTP exchange ended, as the forwarding runtime saw it. */
export type CaptureEnd =
  | { kind: 'complete' }
  /** The client hung up before the response ended; the upstream request was cancelled. */
  | { kind: 'client_aborted' }
  /** The upstream closed or reset the connection before the body ended. */
  | { kind: 'upstream_closed'; message?: string }
  /** No response arrived: connection refused, DNS failure, timeout before headers. */
  | { kind: 'upstream_unreachable'; message: string }
  /** The upstream was reached but sent bytes that are not a valid HTTP response (a garbage status line, an invalid header). */
  | { kind: 'upstream_invalid_response'; message: string };

export interface CaptureResult {
  record: CallRecord;
  /** Null when bodies are not kept. Credentials are already removed. */
  bodies: CallBodies | null;
  /** The model's visible output text when `collectOutputText` was set; null otherwise. */
  outputText?: string | null;
  /**
   * Facts for the runtime to log and count, never secrets: a body that could not be decoded, events
   * that were not JSON, a capture step that failed. Each one degraded the record; none failed the call.
   */
  warnings?: string[];
}

/**
 * Observes one HTTP exchange from copies of its bytes. Every method is cheap, synchronous and never
 * throws: the runtime calls it on the forwarding path, so a parse failure only degrades the record.
 */
export interface HttpCapture {
  requestChunk(chunk: Uint8Array): void;
  requestEnd(): void;
  responseHead(status: number, headers: Readonly<Record<string, string>>): void;
  responseChunk(chunk: Uint8Array): void;
  /** Close the capture and build the record. Call once; later calls return the same result. */
  finish(end: CaptureEnd): CaptureResult;
}

/**
 * Observes a relayed Responses WebSocket (Codex). One connection carries several `response.create`
 * requests in turn; `onRecord` receives one record per response as soon as its terminal event arrives,
 * and `close` flushes a response still open when the connection ends.
 */
export interface WebSocketCapture {
  clientMessage(data: string | Uint8Array): void;
  serverMessage(data: string | Uint8Array): void;
  close(end: CaptureEnd): void;
}
