import { type CallRecord, emptyUsage } from '../call-record.js';
import type { CaptureEnd, CaptureOptions, CaptureRequest, CaptureResult, HttpCapture, WebSocketCapture } from './capture-types.js';

// TODO: placeholder that records only status and timing; the parsers for each API shape replace it.
export function createHttpCapture(request: CaptureRequest, options: CaptureOptions = {}): HttpCapture {
  const clock = options.clock ?? (() => performance.now());
  const wallClock = options.wallClock ?? Date.now;
  const startedMs = clock();
  const startedAt = new Date(wallClock()).toISOString();
  let status: number | null = null;
  let headersMs: number | null = null;
  let requestBytes = 0;
  let responseBytes = 0;
  let result: CaptureResult | null = null;

  return {
    requestChunk(chunk) {
      requestBytes += chunk.byteLength;
    },
    requestEnd() {},
    responseHead(httpStatus) {
      status = httpStatus;
      headersMs = clock() - startedMs;
    },
    responseChunk(chunk) {
      responseBytes += chunk.byteLength;
    },
    finish(end: CaptureEnd) {
      if (result) return result;
      const record: CallRecord = {
        id: crypto.randomUUID(),
        started_at: startedAt,
        workspace_id: request.workspaceId,
        device_id: request.deviceId,
        route: request.route.name,
        provider: request.route.provider,
        api_shape: null,
        method: request.method,
        path: request.target.split('?')[0] ?? request.target,
        tool: 'unknown',
        tool_version: null,
        user_agent: request.headers['user-agent'] ?? null,
        session_id: null,
        stream_requested: false,
        streaming: false,
        stream_format: null,
        model_requested: null,
        model_answered: null,
        http_status: status,
        status:
          end.kind === 'complete'
            ? status !== null && status >= 400
              ? 'error'
              : 'success'
            : end.kind === 'client_aborted'
              ? 'aborted'
              : 'error',
        error: null,
        billable: false,
        usage: emptyUsage(),
        stop_reason: null,
        stop_reason_normalized: null,
        tool_calls: 0,
        server_tool_calls: {},
        timing: { ttft_ms: null, total_ms: Math.round(clock() - startedMs), headers_ms: headersMs === null ? null : Math.round(headersMs) },
        upstream_request_id: null,
        response_id: null,
        cost: { usd: null, basis: 'unknown', price_key: null, breakdown: {}, price_data_version: null },
        request_bytes: requestBytes,
        response_bytes: responseBytes,
      };
      result = { record, bodies: null };
      return result;
    },
  };
}

// TODO: placeholder; the Responses WebSocket parser replaces it.
export function createWebSocketCapture(
  _request: CaptureRequest,
  _options: CaptureOptions,
  _onRecord: (result: CaptureResult) => void,
): WebSocketCapture {
  return { clientMessage() {}, serverMessage() {}, close() {} };
}
