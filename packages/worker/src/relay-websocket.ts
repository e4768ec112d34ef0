import type { CaptureEnd, ErrorFormat, WebSocketCapture } from '@tokenwise/core';
import { forwardResponseHeaders } from './forward-headers.js';
import { errorResponse } from './forward-http.js';
import { describeError } from './token-verifier.js';

export interface WebSocketRelay {
  upstreamUrl: URL;
  /** The client's fields to send upstream, handshake fields already removed. */
  headers: Record<string, string>;
  errorFormat: ErrorFormat;
  capture: WebSocketCapture;
}

/**
 * Relay a WebSocket upgrade (Codex's Responses WebSocket). The upstream connection is opened first with
 * `fetch` and `Upgrade: websocket`, so a refusal (Codex falls back to SSE after a 426) reaches the client
 * with the upstream's status, headers and body. Once the upstream accepted, a `WebSocketPair` is returned
 * to the client and messages flow both ways, each one handed to the capture as it passes.
 *
 * NOTE: the Workers WebSocket API has no backpressure, so a client slower than the upstream makes the
 * runtime buffer the difference; a Responses stream is small enough for that.
 */
export async function relayWebSocket(relay: WebSocketRelay): Promise<Response> {
  let upstreamResponse: Response;
  try {
    upstreamResponse = await fetch(relay.upstreamUrl, { headers: { ...relay.headers, upgrade: 'websocket' } });
  } catch (error) {
    const message = `upstream ${relay.upstreamUrl.origin} unreachable: ${describeError(error)}; check the network or the TOKENWISE_UPSTREAM_* setting`;
    return errorResponse(relay.errorFormat, 502, 'upstream_unreachable', message);
  }

  const upstream = upstreamResponse.webSocket;
  if (upstreamResponse.status !== 101 || !upstream) return upstreamResponse;
  upstream.accept();

  const pair = new WebSocketPair();
  const client = pair[0];
  const server = pair[1];
  server.accept();

  const { capture } = relay;
  let closed = false;
  const finish = (end: CaptureEnd) => {
    if (closed) return;
    closed = true;
    capture.close(end);
  };

  upstream.addEventListener('message', (event) => {
    capture.serverMessage(messageData(event.data));
    sendIfOpen(server, event.data);
  });
  server.addEventListener('message', (event) => {
    capture.clientMessage(messageData(event.data));
    sendIfOpen(upstream, event.data);
  });

  // The side that closes first decides how the capture ends: the client leaving aborts an open
  // response, the upstream closing with 1000 is a normal end and with any other code a broken connection.
  upstream.addEventListener('close', (event) => {
    finish(
      event.code === 1000
        ? { kind: 'complete' }
        : { kind: 'upstream_closed', message: `upstream closed the WebSocket with code ${event.code}` },
    );
    passClose(server, event.code, event.reason);
  });
  server.addEventListener('close', (event) => {
    finish({ kind: 'client_aborted' });
    passClose(upstream, event.code, event.reason);
  });
  upstream.addEventListener('error', () => {
    finish({ kind: 'upstream_closed', message: 'the upstream WebSocket failed' });
    passClose(server, 1011, 'upstream WebSocket failed');
  });
  server.addEventListener('error', () => {
    finish({ kind: 'client_aborted' });
    passClose(upstream, 1011, 'client WebSocket failed');
  });

  return new Response(null, {
    status: 101,
    webSocket: client,
    headers: forwardResponseHeaders(upstreamResponse.headers, { webSocket: true }),
  });
}

function messageData(data: unknown): string | Uint8Array {
  if (typeof data === 'string') return data;
  if (data instanceof ArrayBuffer) return new Uint8Array(data);
  return ArrayBuffer.isView(data) ? new Uint8Array(data.buffer, data.byteOffset, data.byteLength) : String(data);
}

function sendIfOpen(socket: WebSocket, data: unknown): void {
  if (socket.readyState !== WebSocket.OPEN) return;
  socket.send(data as string | ArrayBuffer);
}

/**
 * Pass a close on. 1005 (no code given) and 1006 (connection dropped) must never be sent (RFC 6455
 * section 7.4.1), so the peer gets a close without a code for those.
 */
function passClose(peer: WebSocket, code: number, reason: string): void {
  if (peer.readyState === WebSocket.CLOSED || peer.readyState === WebSocket.CLOSING) return;
  try {
    if (isSendableCloseCode(code)) peer.close(code, reason);
    else peer.close();
  } catch {
    // The peer closed in the meantime; nothing is left to tell it.
  }
}

function isSendableCloseCode(code: number): boolean {
  return (code >= 1000 && code <= 1014 && code !== 1004 && code !== 1005 && code !== 1006) || (code >= 3000 && code <= 4999);
}
