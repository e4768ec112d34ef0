import type { IncomingMessage, ServerResponse } from 'node:http';
import { Transform } from 'node:stream';
import type { CaptureEnd, ErrorFormat } from '@tokenwise/core';
import type { Dispatcher } from 'undici';
import type { GuardedHttpCapture } from './capture-guard.js';
import { sendProxyError } from './error-response.js';
import { captureHeaders, forwardRequestHeaders, forwardResponseHeaders, hasRequestBody } from './forward-headers.js';
import { describeUpstreamFailure, errorCode } from './upstream-failure.js';

/** Response headers as undici hands them over: lowercase names, repeated fields as arrays. */
type UpstreamHeaders = Record<string, string | string[] | undefined>;

export interface HttpCall {
  /** The keep-alive pool of the upstream's origin. */
  dispatcher: Dispatcher;
  upstreamUrl: URL;
  errorFormat: ErrorFormat;
  capture: GuardedHttpCapture;
  headersTimeoutMs: number;
  bodyIdleTimeoutMs: number;
  /** Called once, when the exchange has ended however it ended (the handler's `#ended` flag guards it). */
  onEnd(end: CaptureEnd): void;
}

/**
 * Forward one request to the upstream and stream the response back. Both bodies flow chunk by chunk
 * with backpressure: the upstream read pauses while the client's socket buffer is full, and the client's
 * request is read only as fast as the upstream takes it. The capture receives a copy of every chunk.
 */
export function forwardHttp(req: IncomingMessage, res: ServerResponse, call: HttpCall): void {
  const handler = new ForwardingHandler(res, call);
  res.once('close', () => handler.clientClosed());

  let body: Transform | null = null;
  if (hasRequestBody(req.headers)) {
    body = tapRequestBody(call.capture);
    req.pipe(body);
  } else {
    call.capture.requestEnd();
  }

  call.dispatcher.dispatch(
    {
      origin: call.upstreamUrl.origin,
      path: `${call.upstreamUrl.pathname}${call.upstreamUrl.search}`,
      method: req.method ?? 'GET',
      headers: forwardRequestHeaders(req.rawHeaders),
      body,
      headersTimeout: call.headersTimeoutMs,
      bodyTimeout: call.bodyIdleTimeoutMs,
    },
    handler,
  );
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

class ForwardingHandler implements Dispatcher.DispatchHandler {
  readonly #res: ServerResponse;
  readonly #call: HttpCall;
  #controller: Dispatcher.DispatchController | null = null;
  #ended = false;
  #clientGone = false;
  #headersSent = false;
  #waitingForDrain = false;

  constructor(res: ServerResponse, call: HttpCall) {
    this.#res = res;
    this.#call = call;
  }

  /** Handle the response's `close`, which before our own end means the client hung up. */
  clientClosed(): void {
    if (this.#ended) return;
    this.#clientGone = true;
    this.#controller?.abort(new Error('client closed the connection'));
    this.#end({ kind: 'client_aborted' });
  }

  onRequestStart(controller: Dispatcher.DispatchController): void {
    this.#controller = controller;
    // The client may have hung up while the request waited for a connection.
    if (this.#clientGone) controller.abort(new Error('client closed the connection'));
  }

  onResponseStart(controller: Dispatcher.DispatchController, statusCode: number, headers: UpstreamHeaders, statusMessage?: string): void {
    // 1xx interim responses are hop-by-hop; Node's server already sent its own 100 Continue.
    if (this.#ended || statusCode < 200) return;

    this.#call.capture.responseHead(statusCode, captureHeaders(headers));
    try {
      this.#res.sendDate = false;
      const forwarded = forwardResponseHeaders(headers);
      if (statusMessage) this.#res.writeHead(statusCode, statusMessage, forwarded);
      else this.#res.writeHead(statusCode, forwarded);
      this.#res.flushHeaders();
      this.#headersSent = true;
    } catch (error) {
      // Node rejects header names or values it considers invalid; nothing has been sent yet.
      controller.abort(error instanceof Error ? error : new Error('invalid upstream response headers'));
      this.#respondWithUpstreamFailure(error, `upstream ${this.#call.upstreamUrl.origin} sent response headers that cannot be forwarded`);
    }
  }

  onResponseData(controller: Dispatcher.DispatchController, chunk: Buffer): void {
    if (this.#ended) return;
    this.#call.capture.responseChunk(chunk);

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

  #respondWithUpstreamFailure(error: unknown, message?: string): void {
    const failure = describeUpstreamFailure(error, this.#call.upstreamUrl.origin);
    const reported = { ...failure, message: message ?? failure.message };
    this.#ended = true;
    sendProxyError(this.#res, { ...reported, format: this.#call.errorFormat });
    this.#call.onEnd({ kind: 'upstream_unreachable', message: reported.message });
  }

  #end(end: CaptureEnd): void {
    if (this.#ended) return;
    this.#ended = true;
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
