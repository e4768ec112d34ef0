import {
  type CaptureOptions,
  type CaptureRequest,
  type CaptureResult,
  createHttpCapture,
  createWebSocketCapture,
  type ErrorFormat,
  joinUpstreamUrl,
  parseProxyPath,
  TokenwiseError,
} from '@tokenwise/core';
import { decodeBrotli } from './brotli-decoder.js';
import { forwardRequestHeaders } from './forward-headers.js';
import { errorResponse, forwardHttp } from './forward-http.js';
import { createIngestQueue, type IngestQueue } from './ingest-queue.js';
import { relayWebSocket } from './relay-websocket.js';
import { createTokenVerifier, type RouteGrant, type TokenVerifier } from './token-verifier.js';
import { type WorkerConfig, type WorkerEnv, workerConfig } from './worker-config.js';
import { logCall, logEvent } from './worker-log.js';

/** Error shape used when the URL names no known route: OpenAI's envelope is the one most clients parse. */
const FALLBACK_FORMAT: ErrorFormat = 'openai';

interface Services {
  config: WorkerConfig;
  verifier: TokenVerifier;
  queue: IngestQueue;
}

// One set per isolate and environment: the token cache and the record queue live as long as the isolate.
const services = new WeakMap<object, Services>();

function servicesFor(env: WorkerEnv): Services {
  let found = services.get(env);
  if (!found) {
    const config = workerConfig(env);
    found = {
      config,
      verifier: createTokenVerifier({ serverUrl: config.serverUrl, ingestSecret: config.ingestSecret, cacheMs: config.tokenCacheMs }),
      queue: createIngestQueue({ serverUrl: config.serverUrl, ingestSecret: config.ingestSecret }),
    };
    services.set(env, found);
  }
  return found;
}

/**
 * Handle one request to the Worker: `/r/{route-token}/{route}/{rest}` is forwarded like the Node proxy
 * does, `GET /healthz` answers, anything else is a 404. Errors of our own take the route's provider shape.
 */
export async function handleRequest(request: Request, env: WorkerEnv, ctx: ExecutionContext): Promise<Response> {
  const target = requestTarget(request.url);
  if (target === '/healthz') return Response.json({ status: 'ok' });
  if (!target.startsWith('/r/')) {
    return Response.json(
      { error: { code: 'not_found', message: `nothing at ${target.split('?')[0]}: the proxy is under /r/{route-token}/{route}/` } },
      { status: 404 },
    );
  }

  let found: Services;
  try {
    found = servicesFor(env);
  } catch (error) {
    const message = error instanceof TokenwiseError ? error.message : 'invalid Worker settings';
    logEvent('error', 'Worker settings are invalid', { problem: message });
    return errorResponse(FALLBACK_FORMAT, 500, 'internal', `the Tokenwise Worker is misconfigured: ${message}`);
  }
  const { config, verifier, queue } = found;

  const parsed = parseProxyPath(target);
  if (!parsed.ok) return errorResponse(FALLBACK_FORMAT, 400, 'invalid_request', parsed.message);
  const route = config.registry.get(parsed.route);
  if (!route) {
    const message = `unknown route "${parsed.route}" in the URL; known routes: ${config.registry.names().join(', ')}`;
    return errorResponse(FALLBACK_FORMAT, 404, 'not_found', message);
  }

  let grant: RouteGrant | null;
  try {
    grant = await verifier.verify(parsed.token);
  } catch (error) {
    const message = error instanceof TokenwiseError ? error.message : 'cannot check the route token with the Tokenwise server';
    logEvent('error', 'route token check failed', { route: route.name, problem: message });
    return errorResponse(route.errorFormat, 503, 'upstream_unreachable', `${message}; retry in a moment`);
  }
  if (!grant) {
    const message = 'invalid route: the route token is unknown or revoked, run tokenwise connect to pair again';
    return errorResponse(route.errorFormat, 401, 'invalid_route', message);
  }

  const isWebSocket = request.headers.get('upgrade')?.toLowerCase() === 'websocket';
  const headers = forwardRequestHeaders(request.headers, { webSocket: isWebSocket });
  const captureRequest: CaptureRequest = {
    route,
    method: request.method,
    target: parsed.rest,
    headers,
    workspaceId: grant.workspaceId,
    deviceId: grant.deviceId,
  };
  const captureOptions: CaptureOptions = {
    keepBodies: grant.keepBodies,
    redactBodies: grant.redactBodies,
    bodyCapBytes: config.bodyCapBytes,
    decoders: { br: decodeBrotli },
  };
  const keepBodies = grant.keepBodies;
  const record = (result: CaptureResult) => {
    logCall(result.record);
    if (result.warnings && result.warnings.length > 0) {
      logEvent('warn', 'capture degraded; call forwarded', { call_id: result.record.id, warnings: result.warnings });
    }
    queue.enqueue(result.record, keepBodies ? result.bodies : null, ctx);
  };
  const upstreamUrl = joinUpstreamUrl(route.baseUrl, parsed.rest);

  if (isWebSocket) {
    return relayWebSocket({
      upstreamUrl,
      headers,
      errorFormat: route.errorFormat,
      capture: createWebSocketCapture(captureRequest, captureOptions, record),
    });
  }

  const capture = createHttpCapture(captureRequest, captureOptions);
  return forwardHttp({
    request,
    upstreamUrl,
    headers,
    errorFormat: route.errorFormat,
    capture,
    ctx,
    onEnd: (end) => record(capture.finish(end)),
  });
}

/**
 * The path and query exactly as the client sent them. `new URL` would resolve dot segments before
 * `parseProxyPath` could reject them, so the target is cut from the URL string instead.
 */
function requestTarget(url: string): string {
  const pathStart = url.indexOf('/', url.indexOf('//') + 2);
  return pathStart === -1 ? '/' : url.slice(pathStart);
}
