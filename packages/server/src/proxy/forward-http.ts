import type { IncomingMessage, ServerResponse } from 'node:http';
import { Transform } from 'node:stream';
import type { CaptureEnd, ErrorFormat } from '@tokenwise/core';
import type { Dispatcher } from 'undici';
import type { GuardedHttpCapture } from './capture-guard.js';
import { sendProxyError } from './error-response.js';
import { captureHeaders, forwardRequestHeaders, forwardResponseHeaders, hasRequestBody } from './forward-headers.js';
import { ReplayableBody } from './replayable-body.js';
import { describeUpstreamFailure, errorCode, invalidResponse, type UpstreamFailure } from './upstream-failure.js';
import { isReusedConnection, type UpstreamPool } from './upstream-pool.js';

/** Response headers as undici hands them over: lowercase names, repeated fields as arrays. */
type UpstreamHeaders = Record<string, string | string[] | undefined>;

/** Largest request body kept for a retry, in bytes; a larger body is never sent twice. */
const MAX_REPLAY_BYTES = 8 * 1024 * 1024;
/**
 * How long after its request was written a connection close still counts as the close of a stale
 * connection, in ms. An idle close that crossed the request on the wire arrives within one round trip.
 */
const STALE_CLOSE_WINDOW_MS = 1_000;
/** Errors of a connection that the upstream closed or reset. */
const CONNECTION_CLOSED_CODES = new Set(['UND_ERR_SOCKET', 'ECONNRESET', 'EPIPE']);

export interface HttpCall {
  /** The connections to the upstream's origin. */
  upstream: UpstreamPool;
  upstreamUrl: URL;
  errorFormat: ErrorFormat;
  capture: GuardedHttpCapture;
  headersTimeoutMs: number;
  bodyIdleTimeoutMs: number;
  /** Called once, when the exchange has ended however it ended (the handler's `#ended` flag guards it). */
  onEnd(end: CaptureEnd): void;
  /** Called when a request is sent again on a new connection, with the code of the error that closed the first one. */
  onRetry(code: string): void;
}

/**
 * Forward one request to the upstream and stream the response back. Both bodies flow chunk by chunk
 * with backpressure: the upstream read pauses while the client's socket buffer is full, and the client's
 * request is read only as fast as the upstream takes it. The capture receives a copy of every chunk.
 */
export function forwardHttp(req: IncomingMessage, res: ServerResponse, call: HttpCall): void {
  let body: ReplayableBody | null = null;
  if (hasRequestBody(req.headers)) {
    const tap = tapRequestBody(call.capture);
    req.pipe(tap);
    body = new ReplayableBody(tap, MAX_REPLAY_BYTES);
  } else {
    call.capture.requestEnd();
  }

  const request: Omit<Dispatcher.DispatchOptions, 'body'> = {
    origin: call.upstreamUrl.origin,
    path: `${call.upstreamUrl.pathname}${call.upstreamUrl.search}`,
    method: req.method ?? 'GET',
    headers: forwardRequestHeaders(req.rawHeaders),
    headersTimeout: call.headersTimeoutMs,
    bodyTimeout: call.bodyIdleTimeoutMs,
  };
  const handler = new ForwardingHandler(res, call, request, body);
  res.once('close', () => handler.clientClosed());
  handler.send();
}

/**
 * Create a pass-through stream that hands the capture a copy of each request chunk. The request is piped
 * into it rather than given to undici directly, because undici destroys a body it stops reading (after an
 * early response), and destroying the request itself would also close the client's socket.
 */
function tapRequestBody(capture: GuardedHttpCapture): Transform {
  return new Transform({
    transform(chunk: Buffer, _encoding, callback) {
      capture.requestChunk(chunk);
      callback(null, chunk);
    },
    flush(callback) {
      capture.requestEnd();
      callback();
    },
  });
}

/**
 * Streams one upstream response to the client, and sends the request a second time when a stale pooled
 * connection lost it. An upstream may close an idle keep-alive connection at the moment the proxy writes
 * a request on it, or while the proxy's event loop stalls so that the close is processed late. The
 * request then fails with the connection closed before any response byte. RFC 9112 section 9.3.1 allows a retry of a
 * non-idempotent request only when the original is known not to have been processed. The proxy retries
 * once, on a new connection, when all of these hold, which together make the lost request one the
 * upstream never read:
 * - the connection had already carried a complete response (a new connection that closes is a real failure);
 * - the error is a close or reset, and no byte of the response arrived;
 * - it came within STALE_CLOSE_WINDOW_MS of writing the request, faster than any model produces a response;
 * - every request byte sent is still kept (bodies up to MAX_REPLAY_BYTES are, for that window only).
 * Otherwise the client gets the 502, and its SDK's own retry decides.
 */
class ForwardingHandler implements Dispatcher.DispatchHandler {
  readonly #res: ServerResponse;
  readonly #call: HttpCall;
  readonly #request: Omit<Dispatcher.DispatchOptions, 'body'>;
  readonly #body: ReplayableBody | null;
  #controller: Dispatcher.DispatchController | null = null;
  #ended = false;
  #clientGone = false;
  #headersSent = false;
  #bodyWritten = false;
  #waitingForDrain = false;
  #retried = false;
  #connectionReused = false;
  #requestStartMs: number | null = null;
  #releaseTimer: NodeJS.Timeout | null = null;

  constructor(res: ServerResponse, call: HttpCall, request: Omit<Dispatcher.DispatchOptions, 'body'>, body: ReplayableBody | null) {
    this.#res = res;
    this.#call = call;
    this.#request = request;
    this.#body = body;
  }

  /** Send the request on a pooled connection. */
  send(): void {
    this.#call.upstream.dispatch({ ...this.#request, body: this.#body?.open() ?? null }, this);
  }

  /** Handle the response's `close`, which before our own end means the client hung up. */
  clientClosed(): void {
    if (this.#ended) return;
    this.#clientGone = true;
    this.#controller?.abort(new Error('client closed the connection'));
    this.#end({ kind: 'client_aborted' });
  }

  onRequestStart(controller: Dispatcher.DispatchController, context?: unknown): void {
    this.#controller = controller;
    this.#connectionReused = isReusedConnection(context);
    this.#requestStartMs = performance.now();
    // The client may have hung up while the request waited for a connection.
    if (this.#clientGone) {
      controller.abort(new Error('client closed the connection'));
      return;
    }

    // The kept body is needed only while a close can still be a stale connection's.
    if (this.#body?.replayable && !this.#retried && this.#connectionReused) {
      this.#releaseTimer = setTimeout(() => this.#body?.release(), STALE_CLOSE_WINDOW_MS);
      this.#releaseTimer.unref();
    } else {
      this.#releaseBody();
    }
  }

  onResponseStart(controller: Dispatcher.DispatchController, statusCode: number, headers: UpstreamHeaders, statusMessage?: string): void {
    // 1xx interim responses are hop-by-hop; Node's server already sent its own 100 Continue.
    if (this.#ended || statusCode < 200) return;
    this.#releaseBody();

    try {
      this.#res.sendDate = false;
      const forwarded = forwardResponseHeaders(headers);
      if (statusMessage) this.#res.writeHead(statusCode, statusMessage, forwarded);
      else this.#res.writeHead(statusCode, forwarded);
      this.#headersSent = true;
      // Body bytes that came in the same read as the head go out with it in one write. Headers with no
      // body yet (a stream that has not started) are sent once this read's callbacks are done.
      setImmediate(() => {
        if (!this.#bodyWritten && !this.#ended && !this.#res.writableEnded && !this.#res.destroyed) this.#res.flushHeaders();
      });
    } catch (error) {
      // Node rejects some header names and values that undici's parser accepts; nothing has been sent yet.
      controller.abort(error instanceof Error ? error : new Error('invalid upstream response headers'));
      this.#respondWithUpstreamFailure(invalidResponse(this.#call.upstreamUrl.origin, 'a response header that cannot be forwarded'));
      return;
    }
    this.#call.capture.responseHead(statusCode, captureHeaders(headers));
  }

  onResponseData(controller: Dispatcher.DispatchController, chunk: Buffer): void {
    if (this.#ended) return;
    this.#call.capture.responseChunk(chunk);

    this.#bodyWritten = true;
    if (!this.#res.write(chunk) && !this.#waitingForDrain) {
      this.#waitingForDrain = true;
      controller.pause();
      this.#res.once('drain', () => {
        this.#waitingForDrain = false;
        controller.resume();
      });
    }
  }

  onResponseEnd(): void {
    if (this.#ended) return;
    this.#releaseBody();
    // NOTE: response trailers are dropped; none of the route registry's APIs is known to send them.
    this.#res.end();
    this.#end({ kind: 'complete' });
  }

  onResponseError(_controller: Dispatcher.DispatchController | undefined, error: Error): void {
    if (this.#ended) return;

    if (this.#clientGone) {
      this.#end({ kind: 'client_aborted' });
      return;
    }

    if (this.#mayRetry(error)) {
      this.#retry(errorCode(error) ?? 'UND_ERR_SOCKET');
      return;
    }
    this.#releaseBody();

    if (this.#headersSent) {
      const code = errorCode(error);
      const message = `upstream ${this.#call.upstreamUrl.origin} closed the connection mid-response${code ? ` (${code})` : ''}`;
      this.#ended = true;
      breakClientStream(this.#res);
      this.#call.onEnd({ kind: 'upstream_closed', message });
      return;
    }

    this.#respondWithUpstreamFailure(error);
  }

  #mayRetry(error: Error): boolean {
    if (this.#retried || this.#headersSent || !this.#connectionReused) return false;
    if (!CONNECTION_CLOSED_CODES.has(errorCode(error) ?? '')) return false;
    if (this.#requestStartMs === null || performance.now() - this.#requestStartMs > STALE_CLOSE_WINDOW_MS) return false;
    return this.#body === null || this.#body.replayable;
  }

  #retry(code: string): void {
    this.#retried = true;
    this.#controller = null;
    this.#clearReleaseTimer();
    this.#call.onRetry(code);
    this.#call.upstream.dispatchOnNewConnection({ ...this.#request, body: this.#body?.open() ?? null }, this);
  }

  #releaseBody(): void {
    this.#clearReleaseTimer();
    this.#body?.release();
  }

  #clearReleaseTimer(): void {
    if (this.#releaseTimer) clearTimeout(this.#releaseTimer);
    this.#releaseTimer = null;
  }

  #respondWithUpstreamFailure(failureOrError: UpstreamFailure | Error): void {
    const failure =
      failureOrError instanceof Error ? describeUpstreamFailure(failureOrError, this.#call.upstreamUrl.origin) : failureOrError;
    this.#ended = true;
    sendProxyError(this.#res, { ...failure, format: this.#call.errorFormat });
    const kind = failure.kind === 'upstream_invalid_response' ? 'upstream_invalid_response' : 'upstream_unreachable';
    this.#call.onEnd({ kind, message: failure.message });
  }

  #end(end: CaptureEnd): void {
    if (this.#ended) return;
    this.#ended = true;
    this.#releaseBody();
    this.#call.onEnd(end);
  }
}

/**
 * End the client's connection without the response's proper end (no final chunk, or fewer bytes than
 * `content-length`), so the client sees a broken stream rather than a clean end. The socket is ended,
 * not destroyed, so the bytes already written still reach the client before the connection closes.
 */
function breakClientStream(res: ServerResponse): void {
  const socket = res.socket;
  if (!socket || socket.destroyed) {
    res.destroy();
    return;
  }
  socket.once('finish', () => socket.destroy());
  socket.end();
}
