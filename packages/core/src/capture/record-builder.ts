import { type CallError, type CallRecord, type CallStatus, emptyUsage, type Timing, type Usage } from '../call-record.js';
import { computeCost } from '../cost/compute-cost.js';
import { detectSession } from '../detect/session.js';
import { isSubscriptionBilled } from '../detect/subscription.js';
import { detectTool } from '../detect/tool.js';
import { redactSecrets } from '../redact.js';
import type { ShapeInfo } from './api-shape.js';
import type { CaptureEnd, CaptureRequest } from './capture-types.js';
import { asString, type JsonObject } from './json-access.js';
import type { ShapeOutcome } from './shapes/shape-parser.js';

/** Result of the response side of an exchange, whatever transport carried it. */
export interface ResponseSummary {
  status: number;
  headers: Readonly<Record<string, string>>;
  /** The upstream accepted the request: HTTP 2xx, or any message on an open WebSocket. */
  accepted: boolean;
  streaming: boolean;
  streamFormat: CallRecord['stream_format'];
  /** Parser results; null when the body was not parsed for usage. */
  outcome: ShapeOutcome | null;
  /** A non-streamed body ended as a whole document, or a streamed JSON array closed. */
  bodyComplete: boolean;
  /** Set for status >= 400 and for redirects (3xx but 304), which end the call without a model answer. */
  httpError: CallError | null;
}

export interface ExchangeSummary {
  info: ShapeInfo;
  requestFields: JsonObject | undefined;
  /** Overrides the stream flag of the path and body, because a Responses WebSocket always streams. */
  streamRequested?: boolean;
  /** Null when no status line arrived. */
  response: ResponseSummary | null;
  end: CaptureEnd;
  timing: Timing;
  requestBytes: number;
  responseBytes: number;
}

export interface RecordIdentity {
  id: string;
  startedUnixMs: number;
}

/** Assemble the immutable call record of one exchange. */
export function buildCallRecord(request: CaptureRequest, summary: ExchangeSummary, identity: RecordIdentity): CallRecord {
  const { info, requestFields, response } = summary;
  const identityOfTool = detectTool(request.headers);
  const outcome = response?.outcome ?? null;
  const result = classify(summary);
  const modelRequested = asString(requestFields?.model) ?? info.pathModel;
  const modelAnswered = outcome?.modelAnswered ?? null;

  const record: CallRecord = {
    id: identity.id,
    started_at: new Date(identity.startedUnixMs).toISOString(),
    workspace_id: request.workspaceId,
    device_id: request.deviceId,
    route: request.route.name,
    provider: request.route.provider,
    api_shape: info.shape,
    method: request.method.toUpperCase(),
    path: info.path,
    tool: identityOfTool.tool,
    tool_version: identityOfTool.version,
    user_agent: identityOfTool.userAgent === null ? null : redactSecrets(identityOfTool.userAgent),
    session_id: detectSession(request.headers, requestFields, identityOfTool.tool),
    stream_requested: summary.streamRequested ?? streamRequested(info, requestFields),
    streaming: response?.streaming ?? false,
    stream_format: response?.streamFormat ?? null,
    model_requested: modelRequested,
    model_answered: modelAnswered,
    http_status: response?.status ?? null,
    status: result.status,
    error: result.error,
    billable: result.billable,
    usage: result.usage,
    stop_reason: outcome?.stopReason ?? null,
    stop_reason_normalized: outcome?.stopReasonNormalized ?? null,
    tool_calls: outcome?.toolCalls ?? 0,
    server_tool_calls: outcome?.serverToolCalls ?? {},
    timing: outcome?.modelTiming ? { ...summary.timing, ...outcome.modelTiming } : summary.timing,
    upstream_request_id: response?.headers['request-id'] ?? response?.headers['x-request-id'] ?? null,
    response_id: outcome?.responseId ?? null,
    cost: request.route.localModels
      ? localModelCost()
      : computeCost({
          usage: result.usage,
          billable: result.billable,
          modelRequested,
          modelAnswered,
          priceProviderId: request.route.priceProviderId,
          subscriptionBilled: isSubscriptionBilled(request.route, request.headers),
          at: new Date(identity.startedUnixMs),
        }),
    request_bytes: summary.requestBytes,
    response_bytes: summary.responseBytes,
  };
  if (outcome?.stopReasons) record.stop_reasons = outcome.stopReasons;
  return record;
}

/** Ollama's native API streams unless the body sets `"stream": false`; other APIs stream only when asked. */
function streamRequested(info: ShapeInfo, requestFields: JsonObject | undefined): boolean {
  if (info.shape === 'ollama.chat' || info.shape === 'ollama.generate') return requestFields?.stream !== false;
  return info.pathStream || requestFields?.stream === true;
}

/** A model run on the person's own machine bills nothing: a known 0, whatever its usage. */
function localModelCost(): CallRecord['cost'] {
  return { usd: 0, basis: 'none', price_key: null, breakdown: {}, price_data_version: null };
}

interface Classification {
  status: CallStatus;
  error: CallError | null;
  billable: boolean;
  usage: Usage;
}

/**
 * Derive status, error, billability and usage. A model call is billable once the upstream accepted it.
 * A rejection (status >= 400, a redirect, or an in-band error before the response began) bills nothing,
 * so its usage is a known zero. Usage the upstream never reported stays null.
 */
function classify(summary: ExchangeSummary): Classification {
  const { response, end, info } = summary;
  const modelCall = info.shape !== null && info.shape !== 'anthropic.count_tokens';

  if (!response) {
    // NOTE: an invalid response counts as no model call. A provider that ran the model and then sent a
    // malformed header would be billed without a record of it, but no provider is known to do that.
    if (end.kind === 'upstream_unreachable' || end.kind === 'upstream_invalid_response') {
      return { status: 'error', error: transportError(end.kind, end.message), billable: false, usage: zeroUsage() };
    }
    const usage = modelCall ? emptyUsage() : zeroUsage();
    if (end.kind === 'client_aborted') return { status: 'aborted', error: null, billable: modelCall, usage };
    const message = end.kind === 'upstream_closed' ? (end.message ?? null) : 'the exchange ended before a response arrived';
    return { status: 'error', error: transportError('upstream_closed', message), billable: modelCall, usage };
  }

  if (response.httpError) return { status: 'error', error: response.httpError, billable: false, usage: zeroUsage() };

  if (!modelCall || !response.accepted)
    return { status: endStatus(end, end.kind === 'complete'), error: null, billable: false, usage: zeroUsage() };

  const outcome = response.outcome;
  if (outcome?.error) {
    const billable = outcome.started;
    return { status: 'error', error: outcome.error, billable, usage: billable ? (outcome.usage ?? emptyUsage()) : zeroUsage() };
  }

  const finished = response.streaming
    ? (outcome?.terminal ?? false) || response.bodyComplete
    : response.bodyComplete || end.kind === 'complete';
  return { status: endStatus(end, finished), error: null, billable: true, usage: outcome?.usage ?? emptyUsage() };
}

function endStatus(end: CaptureEnd, finished: boolean): CallStatus {
  if (finished) return 'success';
  return end.kind === 'client_aborted' ? 'aborted' : 'truncated';
}

function transportError(type: string, message: string | null): CallError {
  return { type, message: message === null ? null : redactSecrets(message), source: 'transport', retry_after_s: null };
}

function zeroUsage(): Usage {
  return {
    input_tokens: 0,
    uncached_input_tokens: 0,
    cache_read_tokens: 0,
    cache_write_tokens: 0,
    cache_write_5m_tokens: 0,
    cache_write_1h_tokens: 0,
    output_tokens: 0,
    reasoning_tokens: 0,
    web_search_requests: 0,
  };
}
