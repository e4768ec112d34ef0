import type { CallBodies } from '../call-record.js';
import { redactHeaders } from '../redact.js';
import type { ShapeInfo } from './api-shape.js';
import { BodyCopy, TextCollector } from './body-copy.js';
import { type CaptureSettings, CaptureWarnings, resolveCaptureSettings } from './capture-settings.js';
import type { CaptureEnd, CaptureOptions, CaptureRequest, CaptureResult, WebSocketCapture } from './capture-types.js';
import { asObject, asString, type JsonObject } from './json-access.js';
import { buildCallRecord } from './record-builder.js';
import { createOpenAiResponsesParser } from './shapes/openai-responses.js';
import type { ShapeParser } from './shapes/shape-parser.js';
import { uuidV7 } from './uuid-v7.js';

/** Server events after which a response gets no more events (the same set ends an SSE stream). */
const TERMINAL_EVENTS = new Set(['response.completed', 'response.incomplete', 'response.failed', 'response.cancelled', 'error']);
const WEBSOCKET_STATUS = 101;

/** One `response.create` and the server events sent in reply to it. */
interface PendingResponse {
  fields: JsonObject;
  startedMs: number;
  startedUnixMs: number;
  parser: ShapeParser;
  text: TextCollector | null;
  requestCopy: BodyCopy | null;
  responseCopy: BodyCopy | null;
  requestBytes: number;
  responseBytes: number;
  firstEventMs: number | null;
  firstOutputMs: number | null;
  lastEventMs: number | null;
  warnings: CaptureWarnings;
}

/**
 * Observe a relayed OpenAI Responses WebSocket, the transport Codex tries first. The client sends text
 * frames `{"type":"response.create", …}` with the fields of an HTTP request body (the first may be a
 * prewarm with `"generate": false`). The server replies to each with one text frame per event, the same
 * JSON as an SSE data payload. Each response becomes its own record, handed to `onRecord` as soon as its
 * terminal event arrives. Timings count from the `response.create` message.
 */
export function createWebSocketCapture(
  request: CaptureRequest,
  options: CaptureOptions,
  onRecord: (result: CaptureResult) => void,
): WebSocketCapture {
  const settings = resolveCaptureSettings(options);
  const connectionWarnings = new CaptureWarnings();
  const info: ShapeInfo = {
    shape: 'openai.responses',
    wrapped: false,
    pathModel: null,
    pathStream: false,
    altSse: false,
    path: request.target.split('?')[0] ?? '',
  };
  let pending: PendingResponse | null = null;

  const flush = (end: CaptureEnd) => {
    const response = pending;
    pending = null;
    if (!response) return;
    // A prewarm (`generate: false`) that got no event did nothing worth a record.
    if (response.fields.generate === false && response.firstEventMs === null) return;
    const result = response.warnings.attempt('record', () => buildResult(request, info, response, end, settings));
    if (!result) return;
    result.warnings = [...connectionWarnings.list.splice(0), ...(result.warnings ?? [])];
    try {
      onRecord(result);
    } catch {
      // The sink reports its own failures, and one must not break the relay.
    }
  };

  return {
    clientMessage(data) {
      connectionWarnings.attempt('client message', () => {
        const text = messageText(data);
        const message = parseMessage(text);
        if (asString(message?.type) !== 'response.create') return;
        // Codex waits for a terminal event before the next request, so a response still open was abandoned.
        flush({ kind: 'upstream_closed', message: 'a new response.create arrived before this response ended' });
        pending = startResponse(message!, text, settings);
      });
    },

    serverMessage(data) {
      connectionWarnings.attempt('server message', () => {
        const response = pending;
        if (!response) return;
        const nowMs = settings.clock() - response.startedMs;
        const text = messageText(data);
        response.responseBytes += new TextEncoder().encode(text).length;
        response.responseCopy?.append(new TextEncoder().encode(`${text}\n`));
        response.firstEventMs ??= nowMs;
        response.lastEventMs = nowMs;

        const event = parseMessage(text);
        if (!event) {
          response.warnings.add('server message is not a JSON object');
          return;
        }
        if (response.parser.event(event, null) && response.firstOutputMs === null) response.firstOutputMs = nowMs;
        if (TERMINAL_EVENTS.has(asString(event.type) ?? '')) flush({ kind: 'complete' });
      });
    },

    close(end) {
      connectionWarnings.attempt('close', () => flush(end));
    },
  };
}

function startResponse(message: JsonObject, text: string, settings: CaptureSettings): PendingResponse {
  const bytes = new TextEncoder().encode(text);
  const requestCopy = settings.keepBodies ? new BodyCopy(settings.bodyCapBytes, settings.redactBodies, settings.decodeBodies) : null;
  requestCopy?.append(bytes);
  const collector = settings.collectOutputText ? new TextCollector(settings.bodyCapBytes) : null;
  // Older clients nest the request as `{"type":"response.create","response":{…}}`.
  const fields = { ...message, ...(asObject(message.response) ?? {}) };

  return {
    fields,
    startedMs: settings.clock(),
    startedUnixMs: settings.wallClock(),
    parser: createOpenAiResponsesParser({ text: collector }),
    text: collector,
    requestCopy,
    responseCopy: settings.keepBodies ? new BodyCopy(settings.bodyCapBytes, settings.redactBodies, settings.decodeBodies) : null,
    requestBytes: bytes.length,
    responseBytes: 0,
    firstEventMs: null,
    firstOutputMs: null,
    lastEventMs: null,
    warnings: new CaptureWarnings(),
  };
}

function buildResult(
  request: CaptureRequest,
  info: ShapeInfo,
  response: PendingResponse,
  end: CaptureEnd,
  settings: CaptureSettings,
): CaptureResult {
  const nowMs = settings.clock() - response.startedMs;
  const ended = end.kind === 'complete' || end.kind === 'upstream_closed';
  const record = buildCallRecord(
    request,
    {
      info,
      requestFields: response.fields,
      streamRequested: true,
      response: {
        status: WEBSOCKET_STATUS,
        headers: {},
        accepted: true,
        streaming: true,
        streamFormat: 'websocket',
        outcome: response.parser.outcome(),
        bodyComplete: false,
        httpError: null,
      },
      end,
      timing: {
        ttft_ms: roundMs(response.firstOutputMs),
        total_ms: roundMs(ended ? (response.lastEventMs ?? nowMs) : nowMs) ?? 0,
        // The upgrade's status line came before this response, so its first event marks when the upstream replied.
        headers_ms: roundMs(response.firstEventMs),
      },
      requestBytes: response.requestBytes,
      responseBytes: response.responseBytes,
    },
    { id: uuidV7(response.startedUnixMs), startedUnixMs: response.startedUnixMs },
  );

  const bodies: CallBodies | null = settings.keepBodies
    ? {
        request: response.requestCopy?.toCapturedBody('application/json', null) ?? null,
        response: response.responseCopy?.toCapturedBody('application/json', null) ?? null,
        request_headers: redactHeaders(request.headers),
        response_headers: {},
      }
    : null;
  const warnings = [...response.warnings.list, ...(response.parser.outcome().usageProblems ?? [])];
  return { record, bodies, outputText: response.text?.text() ?? null, warnings };
}

function messageText(data: string | Uint8Array): string {
  return typeof data === 'string' ? data : new TextDecoder().decode(data);
}

function parseMessage(text: string): JsonObject | undefined {
  try {
    return asObject(JSON.parse(text));
  } catch {
    return undefined;
  }
}

function roundMs(ms: number | null): number | null {
  return ms === null ? null : Math.max(0, Math.round(ms));
}
