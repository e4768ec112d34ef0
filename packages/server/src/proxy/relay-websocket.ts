import type { ClientRequest, IncomingMessage } from 'node:http';
import type { Duplex } from 'node:stream';
import type { CaptureEnd, ErrorFormat, WebSocketCapture } from '@tokenwise/core';
import WebSocket, { WebSocketServer } from 'ws';
import type { GuardedHttpCapture } from './capture-guard.js';
import { writeProxyErrorToSocket } from './error-response.js';
import { captureHeaders, forwardRawResponseHeaders, forwardUpgradeHeaders, forwardUpgradeResponseHeaders } from './forward-headers.js';
import { describeUpstreamFailure, type UpstreamFailure } from './upstream-failure.js';

/** Pause reading from one side while more than this many bytes wait to be sent to the other. */
const HIGH_WATER_BYTES = 1024 * 1024;
/** Resume reading once the other side's send buffer has drained below this. */
const LOW_WATER_BYTES = 256 * 1024;
/** Largest message relayed, in bytes; a Responses `response.create` carries the whole conversation. */
const MAX_MESSAGE_BYTES = 64 * 1024 * 1024;

export interface WebSocketTarget {
  /** The upstream URL in http(s) form; the scheme becomes ws(s). */
  upstreamUrl: URL;
  errorFormat: ErrorFormat;
  /** Created only once both sides are connected. */
  createCapture(): WebSocketCapture;
  /**
   * Records an upgrade the upstream did not accept, as the same failure of an HTTP call is recorded. The
   * capture is fed the upstream's refusal, and `onEnd` is called once, only when the upgrade failed. An
   * upgrade the client abandons before the upstream replied is not recorded: no request was made on it.
   */
  handshake: { capture: GuardedHttpCapture; onEnd(end: CaptureEnd): void };
}

export interface WebSocketRelayer {
  relay(req: IncomingMessage, socket: Duplex, head: Buffer, target: WebSocketTarget): void;
  liveRelays(): number;
  /** Terminates every relayed connection and every upstream handshake still in progress. */
  closeAll(): void;
}

interface LiveRelay {
  terminate(): void;
}

/**
 * Create the relay for WebSocket upgrades (Codex's Responses WebSocket). The client's handshake completes
 * only after the upstream accepted its own, so a refusal reaches the client with the upstream's status
 * and body. Once both sides are open, messages flow both ways with backpressure and close codes pass through.
 */
export function createWebSocketRelayer(options: { handshakeTimeoutMs: number }): WebSocketRelayer {
  const live = new Set<LiveRelay>();
  const pending = new WeakMap<IncomingMessage, { protocol: string; headers: string[] }>();
  const server = new WebSocketServer({
    noServer: true,
    // Compression is negotiated per hop; between the proxy and a local client it only costs CPU.
    perMessageDeflate: false,
    maxPayload: MAX_MESSAGE_BYTES,
    handleProtocols: (_offered, request) => pending.get(request)?.protocol || false,
  });
  server.on('headers', (headers, request) => {
    headers.push(...(pending.get(request)?.headers ?? []));
  });

  return {
    relay(req, socket, head, target) {
      const upstreamUrl = new URL(target.upstreamUrl);
      upstreamUrl.protocol = upstreamUrl.protocol === 'https:' ? 'wss:' : 'ws:';
      const upstream = new WebSocket(upstreamUrl, offeredProtocols(req), {
        headers: forwardUpgradeHeaders(req.rawHeaders),
        followRedirects: false,
        maxPayload: MAX_MESSAGE_BYTES,
      });

      let phase: 'connecting' | 'relaying' | 'done' = 'connecting';
      const handshake: LiveRelay = { terminate: () => upstream.terminate() };
      live.add(handshake);
      target.handshake.capture.requestEnd();

      const giveUp = () => {
        phase = 'done';
        live.delete(handshake);
        clearTimeout(timer);
      };
      const fail = (failure: UpstreamFailure) => {
        writeProxyErrorToSocket(socket, { ...failure, format: target.errorFormat });
        const kind = failure.kind === 'upstream_invalid_response' ? 'upstream_invalid_response' : 'upstream_unreachable';
        target.handshake.onEnd({ kind, message: failure.message });
      };
      const timer = setTimeout(() => {
        if (phase !== 'connecting') return;
        giveUp();
        upstream.terminate();
        fail(describeUpstreamFailure({ code: 'UND_ERR_HEADERS_TIMEOUT' }, target.upstreamUrl.origin));
      }, options.handshakeTimeoutMs);

      // The client hung up while the upstream handshake was in progress, or our own handshake failed.
      // Node's server sockets allow half-open connections, so a client's FIN shows only as `end`, and
      // only while the socket is read. RFC 6455 section 4.1 bars data frames before the 101, and any
      // bytes read meanwhile are kept and handed to our handshake with `head`.
      const early: Buffer[] = [];
      const keepEarlyBytes = (chunk: Buffer) => early.push(chunk);
      const onClientGone = () => {
        if (phase !== 'connecting') return;
        giveUp();
        upstream.terminate();
        socket.destroy();
      };
      socket.on('data', keepEarlyBytes);
      socket.once('end', onClientGone);
      socket.once('close', onClientGone);

      upstream.on('error', (error) => {
        if (phase !== 'connecting') return;
        giveUp();
        fail(describeUpstreamFailure(error, target.upstreamUrl.origin));
      });

      upstream.on('unexpected-response', (request, response) => {
        if (phase !== 'connecting') return;
        giveUp();
        relayRefusal(socket, request, response, target.handshake);
      });

      // Messages the upstream sends right after its 101, before the client side is attached.
      const earlyMessages: { data: WebSocket.RawData; isBinary: boolean }[] = [];
      const keepEarlyMessage = (data: WebSocket.RawData, isBinary: boolean) => earlyMessages.push({ data, isBinary });
      upstream.on('message', keepEarlyMessage);

      upstream.once('upgrade', (response) => {
        pending.set(req, { protocol: '', headers: forwardUpgradeResponseHeaders(response.headers) });
      });

      upstream.once('open', () => {
        if (phase !== 'connecting') {
          upstream.terminate();
          return;
        }
        const accepted = pending.get(req);
        pending.set(req, { protocol: upstream.protocol, headers: accepted?.headers ?? [] });

        // `handleUpgrade` attaches its own `data` listener synchronously, so no bytes fall in between.
        socket.off('data', keepEarlyBytes);
        socket.off('end', onClientGone);
        server.handleUpgrade(req, socket, Buffer.concat([head, ...early]), (client) => {
          giveUp();
          socket.off('close', onClientGone);
          pending.delete(req);
          upstream.off('message', keepEarlyMessage);
          phase = 'relaying';

          const relay = startRelay(client, upstream, target.createCapture(), () => live.delete(relay));
          live.add(relay);
          for (const message of earlyMessages) relay.fromUpstream(message.data, message.isBinary);
        });
      });
    },
    liveRelays: () => live.size,
    closeAll() {
      for (const relay of live) relay.terminate();
      live.clear();
    },
  };
}

interface StartedRelay extends LiveRelay {
  fromUpstream(data: WebSocket.RawData, isBinary: boolean): void;
}

function startRelay(client: WebSocket, upstream: WebSocket, capture: WebSocketCapture, onClosed: () => void): StartedRelay {
  let closed = false;
  const finish = (end: CaptureEnd) => {
    if (closed) return;
    closed = true;
    capture.close(end);
    onClosed();
  };

  const fromUpstream = (data: WebSocket.RawData, isBinary: boolean) => {
    capture.serverMessage(forCapture(data, isBinary));
    pipeMessage(upstream, client, data, isBinary);
  };
  upstream.on('message', fromUpstream);
  client.on('message', (data, isBinary) => {
    capture.clientMessage(forCapture(data, isBinary));
    pipeMessage(client, upstream, data, isBinary);
  });

  // The side that closes first decides how the capture ends. The client leaving aborts any open response.
  // The upstream closing with 1000 is a normal end, and with any other code a broken connection.
  client.once('close', (code, reason) => {
    finish({ kind: 'client_aborted' });
    passClose(upstream, code, reason);
  });
  upstream.once('close', (code, reason) => {
    finish(code === 1000 ? { kind: 'complete' } : { kind: 'upstream_closed', message: `upstream closed the WebSocket with code ${code}` });
    passClose(client, code, reason);
  });

  // `ws` emits `close` after `error`, so the handlers above do the bookkeeping.
  client.on('error', () => upstream.terminate());
  upstream.on('error', () => client.terminate());

  return {
    fromUpstream,
    terminate() {
      finish({ kind: 'upstream_closed', message: 'proxy shut down' });
      client.terminate();
      upstream.terminate();
    },
  };
}

/**
 * Send one message on and keep the sender in step with the receiver: reading from `from` pauses while
 * `to` has more than HIGH_WATER_BYTES queued, and each send's callback resumes it once the queue is
 * below LOW_WATER_BYTES. Every send registers the callback, so the last callback runs with the queue drained.
 */
function pipeMessage(from: WebSocket, to: WebSocket, data: WebSocket.RawData, isBinary: boolean): void {
  if (to.readyState !== WebSocket.OPEN) return;
  to.send(data, { binary: isBinary }, (error) => {
    if (!error && from.isPaused && to.bufferedAmount < LOW_WATER_BYTES) from.resume();
  });
  if (to.bufferedAmount > HIGH_WATER_BYTES) from.pause();
}

/**
 * Pass a close on to the other side. 1005 (no code given) becomes a close without a code and 1006
 * (connection dropped) a dropped connection, because RFC 6455 section 7.4.1 forbids sending either.
 */
function passClose(peer: WebSocket, code: number, reason: Buffer): void {
  if (peer.readyState === WebSocket.CLOSED) return;
  if (code === 1006) {
    peer.terminate();
  } else if (isSendableCloseCode(code)) {
    peer.close(code, reason);
  } else {
    peer.close();
  }
}

/** Close codes an endpoint may send (RFC 6455 section 7.4, as `ws` validates them). */
function isSendableCloseCode(code: number): boolean {
  return (code >= 1000 && code <= 1014 && code !== 1004 && code !== 1005 && code !== 1006) || (code >= 3000 && code <= 4999);
}

function forCapture(data: WebSocket.RawData, isBinary: boolean): string | Uint8Array {
  const bytes = Array.isArray(data) ? Buffer.concat(data) : Buffer.isBuffer(data) ? data : Buffer.from(data);
  return isBinary ? bytes : bytes.toString('utf8');
}

function offeredProtocols(req: IncomingMessage): string[] {
  const header = req.headers['sec-websocket-protocol'];
  if (!header) return [];
  return header
    .split(',')
    .map((protocol) => protocol.trim())
    .filter((protocol) => protocol !== '');
}

/**
 * Send the client the upstream's refusal (status, headers and body as they came), and show it to the
 * handshake capture. The body is streamed and ends with the connection unless the upstream gave its length.
 */
function relayRefusal(socket: Duplex, request: ClientRequest, response: IncomingMessage, handshake: WebSocketTarget['handshake']): void {
  const headerLines: string[] = [];
  const raw = forwardRawResponseHeaders(response.rawHeaders);
  for (let i = 0; i + 1 < raw.length; i += 2) headerLines.push(`${raw[i]}: ${raw[i + 1]}`);
  headerLines.push('connection: close');

  const status = response.statusCode ?? 0;
  handshake.capture.responseHead(status, captureHeaders(response.headers));
  let ended = false;
  const end = (captureEnd: CaptureEnd) => {
    if (ended) return;
    ended = true;
    handshake.onEnd(captureEnd);
  };

  socket.write(`HTTP/1.1 ${status} ${response.statusMessage ?? ''}\r\n${headerLines.join('\r\n')}\r\n\r\n`);
  response.on('data', (chunk: Buffer) => handshake.capture.responseChunk(chunk));
  response.pipe(socket);
  response.once('end', () => end({ kind: 'complete' }));
  response.once('error', () => {
    end({ kind: 'upstream_closed', message: 'upstream closed the connection while sending its refusal' });
    socket.destroy();
  });
  socket.once('close', () => {
    end({ kind: 'client_aborted' });
    request.destroy();
  });
}
