import { type CaptureEnd, type ErrorFormat, formatProviderError, type HttpCapture, type ProxyErrorKind } from '@tokenwise/core';
import { forwardResponseHeaders, headerRecord } from './forward-headers.js';
import { describeError } from './token-verifier.js';

export interface HttpForward {
  request: Request;
  upstreamUrl: URL;
  /** The client's fields to send upstream (see `forwardRequestHeaders`). */
  headers: Record<string, string>;
  errorFormat: ErrorFormat;
  capture: HttpCapture;
  /** Called once, when the exchange has ended however it ended. */
  onEnd(end: CaptureEnd): void;
  ctx: ExecutionContext;
}

/** Statuses whose response has no body (RFC 9110 sections 6.4.1, 15.3.5, 15.4.5). */
const NO_BODY_STATUSES = new Set([204, 205, 304]);

/**
 * Forward one request with `fetch` and stream the response back. Both bodies pass through a
 * TransformStream that hands each chunk to the capture and enqueues it at once, so the capture never
 * delays a byte. The response body is fetched with `encodeResponseBody: "manual"` and returned with
 * `encodeBody: "manual"`, so compressed bytes reach the client exactly as the upstream sent them, and
 * only the capture's copy is decoded.
 */
export async function forwardHttp(call: HttpForward): Promise<Response> {
  const { request, capture } = call;
  let ended = false;
  const end = (how: CaptureEnd) => {
    if (ended) return;
    ended = true;
    call.onEnd(how);
  };

  let response: Response;
  try {
    response = await fetch(call.upstreamUrl, {
      method: request.method,
      headers: call.headers,
      body: requestBody(request, capture),
      redirect: 'manual',
      encodeResponseBody: 'manual',
    });
  } catch (error) {
    const message = `upstream ${call.upstreamUrl.origin} unreachable: ${describeError(error)}; check the network or the TOKENWISE_UPSTREAM_* setting`;
    end({ kind: 'upstream_unreachable', message });
    return errorResponse(call.errorFormat, 502, 'upstream_unreachable', message);
  }

  capture.responseHead(response.status, headerRecord(response.headers));
  const headers = forwardResponseHeaders(response.headers);
  const init: ResponseInit = { status: response.status, statusText: response.statusText, headers, encodeBody: 'manual' };
  if (!response.body || request.method === 'HEAD' || NO_BODY_STATUSES.has(response.status)) {
    await response.body?.cancel();
    end({ kind: 'complete' });
    return new Response(null, init);
  }

  // The pipe resolves when the body ended or the client went away (the runtime cancels our readable),
  // and rejects when the upstream's connection failed mid-body.
  let finished = false;
  const tap = new TransformStream<Uint8Array, Uint8Array>({
    transform(chunk, controller) {
      controller.enqueue(chunk);
      capture.responseChunk(chunk);
    },
    flush() {
      finished = true;
    },
  });
  const piping = response.body.pipeTo(tap.writable).then(
    () => end(finished ? { kind: 'complete' } : { kind: 'client_aborted' }),
    (error: unknown) =>
      end({
        kind: 'upstream_closed',
        message: `upstream ${call.upstreamUrl.origin} closed the connection mid-response (${describeError(error)})`,
      }),
  );
  call.ctx.waitUntil(piping);

  // With the upstream's length declared, the runtime sends `content-length` too, and a body that breaks
  // off reaches the client visibly short. A chunked body that breaks off may reach the client as a
  // clean end; the record still says `upstream_closed`.
  const length = declaredLength(response.headers);
  const body = length === null ? tap.readable : tap.readable.pipeThrough(new FixedLengthStream(length));
  return new Response(body, init);
}

/** The request body with a tap for the capture, or null; a declared length is kept for the upstream. */
function requestBody(request: Request, capture: HttpCapture): ReadableStream<Uint8Array> | null {
  if (!request.body) {
    capture.requestEnd();
    return null;
  }
  const tapped = request.body.pipeThrough(
    new TransformStream<Uint8Array, Uint8Array>({
      transform(chunk, controller) {
        controller.enqueue(chunk);
        capture.requestChunk(chunk);
      },
      flush() {
        capture.requestEnd();
      },
    }),
  );
  const length = declaredLength(request.headers);
  return length === null ? tapped : tapped.pipeThrough(new FixedLengthStream(length));
}

function declaredLength(headers: Headers): number | null {
  const value = headers.get('content-length');
  if (value === null || !/^\d{1,15}$/.test(value.trim())) return null;
  return Number(value.trim());
}

export function errorResponse(format: ErrorFormat, status: number, kind: ProxyErrorKind, message: string): Response {
  return new Response(formatProviderError(format, status, kind, message), {
    status,
    headers: { 'content-type': 'application/json' },
  });
}
