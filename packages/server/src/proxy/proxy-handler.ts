import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Duplex } from 'node:stream';
import { brotliDecompressSync } from 'node:zlib';
import {
  type CallRecord,
  type CaptureEnd,
  type CaptureOptions,
  type CaptureRequest,
  type CaptureResult,
  createHttpCapture,
  createWebSocketCapture,
  createWebSocketHandshakeCapture,
  type RouteDescriptor,
} from '@tokenwise/core';
import { type GuardedHttpCapture, guardHttpCapture, guardWebSocketCapture } from './capture-guard.js';
import { type ProxyError, sendProxyError, writeProxyErrorToSocket } from './error-response.js';
import { createFaultLog } from './fault-log.js';
import { captureHeaders } from './forward-headers.js';
import { forwardHttp } from './forward-http.js';
import type { BudgetAdmission, ProxyHandler, ProxyOptions, RouteAuthorization } from './proxy-options.js';
import { createWebSocketRelayer } from './relay-websocket.js';
import { errorFormatFor, resolveTarget } from './resolve-target.js';
import { UpstreamPool } from './upstream-pool.js';

const DEFAULT_BODY_CAP_BYTES = 4 * 1024 * 1024;
/** Anthropic's and OpenAI's SDKs wait up to 10 minutes for a non-streamed response (`x-stainless-timeout: 600`). */
const DEFAULT_UPSTREAM_TIMEOUT_MS = 10 * 60 * 1000;

/** Core decodes gzip, deflate and zstd itself; Brotli it leaves to a whole-body decoder the runtime injects. */
const NODE_DECODERS: CaptureOptions['decoders'] = { br: (bytes) => brotliDecompressSync(bytes) };

/**
 * Create the Node proxy listener. It forwards `/r/{token}/{route}/{rest}` to the route's upstream with
 * undici (one keep-alive pool per upstream origin), relays WebSocket upgrades, and hands every finished
 * exchange to the capture and then to the record sink. Logs only its own faults and degradations; the
 * one-line-per-call log belongs to the sink's wrapper in the app.
 */
export function createProxyHandler(options: ProxyOptions): ProxyHandler {
  const { registry, authorize, sink, logger, budgets } = options;
  const headersTimeoutMs = options.upstreamHeadersTimeoutMs ?? DEFAULT_UPSTREAM_TIMEOUT_MS;
  const bodyIdleTimeoutMs = options.upstreamBodyIdleTimeoutMs ?? DEFAULT_UPSTREAM_TIMEOUT_MS;
  const bodyCapBytes = options.bodyCapBytes ?? DEFAULT_BODY_CAP_BYTES;

  const faults = createFaultLog(logger);
  const pools = new Map<string, UpstreamPool>();
  const relayer = createWebSocketRelayer({ handshakeTimeoutMs: headersTimeoutMs });
  let liveHttpRequests = 0;
  let closed = false;

  const poolFor = (origin: string): UpstreamPool => {
    let pool = pools.get(origin);
    if (!pool) {
      pool = new UpstreamPool(origin, { headersTimeoutMs, bodyIdleTimeoutMs });
      pools.set(origin, pool);
    }
    return pool;
  };

  const captureRequestFor = (
    req: IncomingMessage,
    route: RouteDescriptor,
    rest: string,
    authorization: RouteAuthorization,
  ): CaptureRequest => ({
    route,
    method: req.method ?? 'GET',
    target: rest,
    headers: captureHeaders(req.headers),
    workspaceId: authorization.workspaceId,
    deviceId: authorization.deviceId,
  });

  const captureOptions = (authorization: RouteAuthorization): CaptureOptions => ({
    keepBodies: authorization.keepBodies,
    // The capture keeps the body bytes as sent, undecoded. The sink decodes them and masks the secrets
    // later, in a batch on a worker thread, because doing so here would stall every stream this process
    // serves, and handing bytes to that thread costs less than cloning text.
    redactBodies: false,
    decodeBodies: false,
    bodyCapBytes,
    decoders: NODE_DECODERS,
  });

  const record = (result: CaptureResult | null, authorization: RouteAuthorization, route: string) => {
    if (!result) return;
    if (result.warnings && result.warnings.length > 0) faults.degraded({ route, callId: result.record.id }, result.warnings);
    try {
      sink.write(result.record, authorization.keepBodies ? result.bodies : null, { redactBodies: authorization.redactBodies ?? true });
    } catch (error) {
      faults.report('sink_failed', error, { route, step: 'write' });
    }
  };

  /** Check the blocking budgets of a model call. Other GET requests (model lists, quotas) pass unchecked. */
  const admitBudget = (
    req: IncomingMessage,
    route: RouteDescriptor,
    authorization: RouteAuthorization,
    isUpgrade: boolean,
  ): BudgetAdmission | Promise<BudgetAdmission> => {
    if (!budgets || (!isUpgrade && req.method !== 'POST')) return { ok: true, ticket: null };
    return budgets.admit({ authorization, route, authorizationHeader: req.headers.authorization });
  };

  const shuttingDown = (target: string): ProxyError => ({
    status: 503,
    kind: 'internal',
    format: errorFormatFor(target, registry),
    message: 'the Tokenwise proxy is shutting down; retry in a moment',
  });

  const internalError = (target: string): ProxyError => ({
    status: 500,
    kind: 'internal',
    format: errorFormatFor(target, registry),
    message: 'the Tokenwise proxy failed to handle this request; see the tokenwise serve log',
  });

  async function serveRequest(req: IncomingMessage, res: ServerResponse, isClientGone: () => boolean): Promise<void> {
    const receivedMs = performance.now();
    const target = req.url ?? '';
    if (closed) {
      sendProxyError(res, shuttingDown(target));
      return;
    }

    const resolved = await resolveTarget(target, registry, authorize);
    if (!resolved.ok) {
      sendProxyError(res, resolved.error);
      return;
    }
    if (isClientGone()) return;

    const { route, rest, upstreamUrl, authorization } = resolved;
    const admission = await admitBudget(req, route, authorization, false);
    if (!admission.ok) {
      sendProxyError(res, { ...admission.refusal, format: route.errorFormat });
      return;
    }
    const ticket = admission.ticket;
    if (isClientGone()) {
      ticket?.settle(null);
      return;
    }

    const captureRequest = captureRequestFor(req, route, rest, authorization);
    const capture = guardHttpCapture(() => createHttpCapture(captureRequest, captureOptions(authorization)), faults, route.name);
    const overhead = measureOverhead(capture, receivedMs);

    forwardHttp(req, res, {
      upstream: poolFor(upstreamUrl.origin),
      upstreamUrl,
      errorFormat: route.errorFormat,
      capture: overhead.capture,
      headersTimeoutMs,
      bodyIdleTimeoutMs,
      onEnd: (end) => {
        const timing = overhead.end(end);
        const result = withProxyTiming(capture.finish(end), timing);
        ticket?.settle(result?.record ?? null);
        record(result, authorization, route.name);
      },
      onRetry: (code) =>
        logger.info(
          { route: route.name, upstream: upstreamUrl.origin, code },
          'upstream closed a reused connection before responding; request sent again on a new connection',
        ),
    });
  }

  async function serveUpgrade(req: IncomingMessage, socket: Duplex, head: Buffer): Promise<void> {
    const target = req.url ?? '';
    if (closed) {
      writeProxyErrorToSocket(socket, shuttingDown(target));
      return;
    }

    const handshakeProblem = checkWebSocketHandshake(req);
    if (handshakeProblem) {
      writeProxyErrorToSocket(socket, {
        status: 400,
        kind: 'invalid_request',
        format: errorFormatFor(target, registry),
        message: handshakeProblem,
      });
      return;
    }

    const resolved = await resolveTarget(target, registry, authorize);
    if (!resolved.ok) {
      writeProxyErrorToSocket(socket, resolved.error);
      return;
    }
    if (socket.destroyed) return;

    const { route, rest, upstreamUrl, authorization } = resolved;
    const admission = await admitBudget(req, route, authorization, true);
    if (!admission.ok) {
      writeProxyErrorToSocket(socket, { ...admission.refusal, format: route.errorFormat });
      return;
    }
    // The reservation covers the handshake; each response over the connection is charged as it ends.
    const ticket = admission.ticket;
    if (socket.destroyed) {
      ticket?.settle(null);
      return;
    }

    const captureRequest = captureRequestFor(req, route, rest, authorization);
    const handshakeCapture = guardHttpCapture(
      () => createWebSocketHandshakeCapture(captureRequest, captureOptions(authorization)),
      faults,
      route.name,
    );
    relayer.relay(req, socket, head, {
      upstreamUrl,
      errorFormat: route.errorFormat,
      handshake: {
        capture: handshakeCapture,
        onEnd: (end) => {
          const result = handshakeCapture.finish(end);
          ticket?.settle(result?.record ?? null);
          record(result, authorization, route.name);
        },
      },
      createCapture: () =>
        guardWebSocketCapture(
          () =>
            createWebSocketCapture(captureRequest, captureOptions(authorization), (result) => {
              if (result) ticket?.charge(result.record);
              record(result, authorization, route.name);
            }),
          faults,
          route.name,
        ),
    });
  }

  return {
    handleRequest(req, res) {
      liveHttpRequests += 1;
      let clientGone = false;
      res.once('close', () => {
        liveHttpRequests -= 1;
        clientGone = !res.writableFinished;
      });

      serveRequest(req, res, () => clientGone).catch((error: unknown) => {
        logger.error({ err: error, method: req.method }, 'proxy failed to handle a request');
        if (!clientGone) sendProxyError(res, internalError(req.url ?? ''));
      });
    },

    handleUpgrade(req, socket, head) {
      // A socket handed over by the `upgrade` event has no error listener; without one a reset crashes the process.
      socket.on('error', () => socket.destroy());
      serveUpgrade(req, socket, head).catch((error: unknown) => {
        logger.error({ err: error }, 'proxy failed to handle a WebSocket upgrade');
        writeProxyErrorToSocket(socket, internalError(req.url ?? ''));
      });
    },

    async close() {
      closed = true;
      relayer.closeAll();
      const destroying = [...pools.values()].map((pool) => pool.destroy());
      pools.clear();
      await Promise.all(destroying);
    },

    stats() {
      const liveRelays = relayer.liveRelays();
      return {
        liveRequests: liveHttpRequests + liveRelays,
        liveRelays,
        sinkFailures: faults.count('sink_failed'),
        captureFailures: faults.count('capture_failed'),
      };
    },
  };
}

/**
 * Measure the proxy's own time around one HTTP call: from receiving the request to forwarding it (route
 * and token checks, when `measureOverhead` is called), and from the last upstream byte to the end of the
 * response to the client. The second is known only for a response that completed.
 */
function measureOverhead(capture: GuardedHttpCapture, receivedMs: number) {
  const beforeMs = performance.now() - receivedMs;
  let lastUpstreamMs: number | null = null;
  const wrapped: GuardedHttpCapture = {
    ...capture,
    responseHead(status, headers) {
      lastUpstreamMs = performance.now();
      capture.responseHead(status, headers);
    },
    responseChunk(chunk) {
      lastUpstreamMs = performance.now();
      capture.responseChunk(chunk);
    },
  };
  return {
    capture: wrapped,
    end(end: CaptureEnd): { beforeMs: number; afterMs: number | null } {
      const afterMs = end.kind === 'complete' && lastUpstreamMs !== null ? performance.now() - lastUpstreamMs : null;
      return { beforeMs, afterMs };
    },
  };
}

/** Add the measured overhead to the record's timing, in ms to the microsecond. */
function withProxyTiming(result: CaptureResult | null, timing: { beforeMs: number; afterMs: number | null }): CaptureResult | null {
  if (!result) return null;
  const extra: Pick<CallRecord['timing'], 'proxy_before_ms' | 'proxy_after_ms'> = { proxy_before_ms: roundMicros(timing.beforeMs) };
  if (timing.afterMs !== null) extra.proxy_after_ms = roundMicros(timing.afterMs);
  return { ...result, record: { ...result.record, timing: { ...result.record.timing, ...extra } } };
}

function roundMicros(ms: number): number {
  return Math.round(Math.max(0, ms) * 1000) / 1000;
}

/**
 * Check a client's opening handshake the way `ws` does (RFC 6455 section 4.2.1) before the upstream is
 * contacted, so our own handshake does not fail after the upstream accepted its one. Should it fail
 * anyway, the relay notices the socket close and terminates the upstream.
 */
function checkWebSocketHandshake(req: IncomingMessage): string | null {
  if (req.headers.upgrade?.toLowerCase() !== 'websocket') return 'only WebSocket upgrades are relayed (expected "upgrade: websocket")';
  if (req.method !== 'GET') return `a WebSocket upgrade must use GET, got ${req.method}`;
  const key = req.headers['sec-websocket-key'];
  if (!key || !/^[+/0-9A-Za-z]{22}==$/.test(key)) return 'missing or invalid sec-websocket-key header';
  const version = req.headers['sec-websocket-version'];
  if (version !== '13' && version !== '8') return `unsupported sec-websocket-version "${version ?? ''}": expected 13`;
  return null;
}
