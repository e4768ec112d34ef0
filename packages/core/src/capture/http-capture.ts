import { type CallBodies, type CallRecord, emptyUsage } from '../call-record.js';
import { redactHeaders } from '../redact.js';
import { detectApiShape, type ShapeInfo } from './api-shape.js';
import { CaptureWarnings, resolveCaptureSettings } from './capture-settings.js';
import type { CaptureEnd, CaptureOptions, CaptureRequest, CaptureResult, HttpCapture } from './capture-types.js';
import { isRedirect, upgradeRefusedError } from './http-error.js';
import { pickRateLimitHeaders } from './rate-limit-headers.js';
import { buildCallRecord, type ResponseSummary } from './record-builder.js';
import { RequestObserver } from './request-observer.js';
import { ResponseObserver } from './response-observer.js';
import { uuidV7 } from './uuid-v7.js';

export { DEFAULT_BODY_CAP_BYTES } from './capture-settings.js';

/**
 * Observe one HTTP exchange from copies of its bytes. Each method catches its own failures: a bug or an
 * odd body degrades the record (the failure is listed in `CaptureResult.warnings`) and never reaches
 * the forwarding path.
 */
export function createHttpCapture(request: CaptureRequest, options: CaptureOptions = {}): HttpCapture {
  return createExchangeCapture(request, options, false);
}

/**
 * Observe a WebSocket upgrade that the upstream did not accept: the response it sent instead of
 * `101 Switching Protocols`, or the failure to reach it (finish with `upstream_unreachable` or
 * `upstream_invalid_response`). The response's status, headers and body are fed as for HTTP. The record
 * is an unbilled `error`, like the same failure of an HTTP call, under the API shape of the upgrade's
 * path (Codex's `GET …/responses` is `openai.responses`). An accepted upgrade goes to
 * `createWebSocketCapture` instead.
 */
export function createWebSocketHandshakeCapture(request: CaptureRequest, options: CaptureOptions = {}): HttpCapture {
  return createExchangeCapture(request, options, true);
}

function createExchangeCapture(request: CaptureRequest, options: CaptureOptions, upgrade: boolean): HttpCapture {
  const settings = resolveCaptureSettings(options);
  const startedMs = settings.clock();
  const startedUnixMs = settings.wallClock();
  const warnings = new CaptureWarnings();
  const guard = <T>(step: string, action: () => T): T | undefined => warnings.attempt(step, action);

  // An upgrade is a GET whose messages carry the requests, so its shape comes from the path alone.
  const method = upgrade ? 'POST' : request.method;
  const info: ShapeInfo = guard('setup', () => detectApiShape(request.route, method, request.target)) ?? {
    shape: null,
    wrapped: false,
    pathModel: null,
    pathStream: false,
    altSse: false,
    path: request.target.split('?')[0] ?? '',
  };
  // A refused upgrade's body is read only for a provider error (status >= 400), never as an API response.
  const responseInfo: ShapeInfo = upgrade ? { ...info, shape: null } : info;
  const requestSide = guard('setup', () => new RequestObserver(request.headers, settings)) ?? null;
  let responseSide: ResponseObserver | null = null;
  let headersMs: number | null = null;
  let result: CaptureResult | null = null;
  const elapsed = () => settings.clock() - startedMs;

  const finish = (end: CaptureEnd): CaptureResult => {
    const nowMs = elapsed();
    guard('request end', () => requestSide?.end());
    guard('response end', () => responseSide?.end(nowMs));

    const lastReadMs = responseSide?.lastReadMs ?? null;
    const noResponse = end.kind === 'upstream_unreachable' || end.kind === 'upstream_invalid_response';
    const totalMs = end.kind === 'client_aborted' || noResponse ? nowMs : (lastReadMs ?? headersMs ?? nowMs);
    const timing = {
      ttft_ms: roundMs(responseSide?.firstOutputMs ?? null),
      total_ms: Math.max(0, Math.round(totalMs)),
      headers_ms: roundMs(headersMs),
    };

    const record = guard('record', () =>
      buildCallRecord(
        request,
        {
          info,
          requestFields: requestSide?.fields,
          ...(upgrade ? { streamRequested: true } : {}),
          response: responseSide ? summarize(responseSide, startedUnixMs + nowMs, upgrade) : null,
          end,
          timing,
          requestBytes: requestSide?.wireBytes ?? 0,
          responseBytes: responseSide?.wireBytes ?? 0,
        },
        { id: uuidV7(startedUnixMs), startedUnixMs },
      ),
    );
    const bodies = settings.keepBodies ? (guard('bodies', () => collectBodies(request, requestSide, responseSide)) ?? null) : null;

    const problems = [requestSide?.decodingError ?? null, requestSide?.parseProblem ?? null, ...(responseSide?.problems() ?? [])].filter(
      (problem) => problem !== null,
    );
    const built = record ?? fallbackRecord(request, info, timing, startedUnixMs, responseSide);
    const rateLimits = responseSide ? guard('rate limits', () => pickRateLimitHeaders(responseSide!.headers)) : null;
    return {
      record: rateLimits ? { ...built, rate_limits: rateLimits } : built,
      bodies,
      outputText: responseSide?.outputText() ?? null,
      warnings: [...warnings.list, ...problems],
    };
  };

  return {
    requestChunk(chunk) {
      guard('request chunk', () => requestSide?.push(chunk));
    },
    requestEnd() {
      guard('request end', () => requestSide?.end());
    },
    responseHead(status, headers) {
      if (responseSide) return;
      headersMs = elapsed();
      responseSide = guard('response head', () => new ResponseObserver(responseInfo, status, headers, settings)) ?? null;
    },
    responseChunk(chunk) {
      const readMs = elapsed();
      guard('response chunk', () => responseSide?.push(chunk, readMs));
    },
    finish(end) {
      result ??= finish(end);
      return result;
    },
  };
}

function summarize(response: ResponseObserver, nowUnixMs: number, upgrade: boolean): ResponseSummary {
  const httpError = response.httpError(nowUnixMs);
  return {
    status: response.status,
    headers: response.headers,
    accepted: !upgrade && response.status >= 200 && response.status < 300,
    streaming: response.streaming,
    streamFormat: response.streamFormat,
    outcome: response.outcome(),
    bodyComplete: response.bodyComplete,
    httpError: upgrade ? (httpError ?? upgradeRefusedError(response.status, response.headers, nowUnixMs)) : httpError,
  };
}

function collectBodies(request: CaptureRequest, requestSide: RequestObserver | null, responseSide: ResponseObserver | null): CallBodies {
  return {
    request: requestSide?.capturedBody() ?? null,
    response: responseSide?.capturedBody() ?? null,
    request_headers: redactHeaders(request.headers),
    response_headers: responseSide ? redactHeaders(responseSide.headers) : {},
  };
}

function roundMs(ms: number | null): number | null {
  return ms === null ? null : Math.max(0, Math.round(ms));
}

/** Build the record when building the real one failed, from transport facts only and with usage unknown. */
function fallbackRecord(
  request: CaptureRequest,
  info: ShapeInfo,
  timing: CallRecord['timing'],
  startedUnixMs: number,
  response: ResponseObserver | null,
): CallRecord {
  const status = response?.status ?? null;
  return {
    id: uuidV7(startedUnixMs),
    started_at: new Date(startedUnixMs).toISOString(),
    workspace_id: request.workspaceId,
    device_id: request.deviceId,
    route: request.route.name,
    provider: request.route.provider,
    api_shape: info.shape,
    method: request.method.toUpperCase(),
    path: info.path,
    tool: 'unknown',
    tool_version: null,
    user_agent: null,
    session_id: null,
    stream_requested: false,
    streaming: false,
    stream_format: null,
    model_requested: null,
    model_answered: null,
    http_status: status,
    status: status !== null && (status >= 400 || isRedirect(status)) ? 'error' : 'success',
    error: null,
    billable: info.shape !== null,
    usage: emptyUsage(),
    stop_reason: null,
    stop_reason_normalized: null,
    tool_calls: 0,
    server_tool_calls: {},
    timing,
    upstream_request_id: null,
    response_id: null,
    cost: { usd: null, basis: 'unknown', price_key: null, breakdown: {}, price_data_version: null },
    request_bytes: 0,
    response_bytes: response?.wireBytes ?? 0,
  };
}
