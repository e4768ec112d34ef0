import {
  type ApiShape,
  type CallRecord,
  type CallStatus,
  type CostBasis,
  type CostComponent,
  type ProviderId,
  type StopReasonNormalized,
  TokenwiseError,
  type ToolId,
} from '@tokenwise/core';

/**
 * A call record flattened into the columns of the `calls` table, shared by every store. Nested objects
 * become prefixed columns; the three open-ended maps and lists are JSON text. `toCallRow` and
 * `fromCallRow` are exact inverses for every record the core produces, which the store contract checks.
 */
export interface CallRow {
  id: string;
  started_at: string;
  started_at_ms: number;
  workspace_id: string | null;
  device_id: string | null;
  route: string;
  provider: string;
  api_shape: string | null;
  method: string;
  path: string;
  tool: string;
  tool_version: string | null;
  user_agent: string | null;
  session_id: string | null;
  stream_requested: boolean;
  streaming: boolean;
  stream_format: string | null;
  model_requested: string | null;
  model_answered: string | null;
  http_status: number | null;
  status: string;
  error_type: string | null;
  error_message: string | null;
  error_source: string | null;
  error_retry_after_s: number | null;
  billable: boolean;
  input_tokens: number | null;
  uncached_input_tokens: number | null;
  cache_read_tokens: number | null;
  cache_write_tokens: number | null;
  cache_write_5m_tokens: number | null;
  cache_write_1h_tokens: number | null;
  output_tokens: number | null;
  reasoning_tokens: number | null;
  web_search_requests: number | null;
  stop_reason: string | null;
  /** JSON array, or null when the record has no `stop_reasons` key. */
  stop_reasons: string | null;
  stop_reason_normalized: string | null;
  tool_calls: number;
  /** JSON object of call counts by tool name. */
  server_tool_calls: string;
  ttft_ms: number | null;
  total_ms: number;
  headers_ms: number | null;
  upstream_request_id: string | null;
  response_id: string | null;
  cost_usd: number | null;
  cost_basis: string;
  cost_price_key: string | null;
  /** JSON object of USD by cost component. */
  cost_breakdown: string;
  price_data_version: string | null;
  request_bytes: number;
  response_bytes: number;
  proxy_before_ms: number | null;
  proxy_after_ms: number | null;
  price_source: string | null;
  model_load_ms: number | null;
  prompt_eval_ms: number | null;
  eval_ms: number | null;
}

export const callColumns = [
  'id',
  'started_at',
  'started_at_ms',
  'workspace_id',
  'device_id',
  'route',
  'provider',
  'api_shape',
  'method',
  'path',
  'tool',
  'tool_version',
  'user_agent',
  'session_id',
  'stream_requested',
  'streaming',
  'stream_format',
  'model_requested',
  'model_answered',
  'http_status',
  'status',
  'error_type',
  'error_message',
  'error_source',
  'error_retry_after_s',
  'billable',
  'input_tokens',
  'uncached_input_tokens',
  'cache_read_tokens',
  'cache_write_tokens',
  'cache_write_5m_tokens',
  'cache_write_1h_tokens',
  'output_tokens',
  'reasoning_tokens',
  'web_search_requests',
  'stop_reason',
  'stop_reasons',
  'stop_reason_normalized',
  'tool_calls',
  'server_tool_calls',
  'ttft_ms',
  'total_ms',
  'headers_ms',
  'upstream_request_id',
  'response_id',
  'cost_usd',
  'cost_basis',
  'cost_price_key',
  'cost_breakdown',
  'price_data_version',
  'request_bytes',
  'response_bytes',
  'proxy_before_ms',
  'proxy_after_ms',
  'price_source',
  'model_load_ms',
  'prompt_eval_ms',
  'eval_ms',
] as const satisfies readonly (keyof CallRow)[];

/** Select expression of a call's rate-limit headers (JSON text or null), for `fromCallRow`'s second argument. */
export const RATE_LIMITS_SUBQUERY = '(SELECT r.headers FROM call_rate_limits r WHERE r.call_id = calls.id) AS rate_limits_json';

export const booleanCallColumns = ['stream_requested', 'streaming', 'billable'] as const satisfies readonly (keyof CallRow)[];

/** Flatten a record into its row; throws `invalid_argument` when `started_at` is not a valid time. */
export function toCallRow(record: CallRecord): CallRow {
  const startedAtMs = Date.parse(record.started_at);
  if (Number.isNaN(startedAtMs)) {
    throw new TokenwiseError(
      'invalid_argument',
      `call ${record.id} has an invalid started_at "${record.started_at}": expected an ISO 8601 time`,
    );
  }

  return {
    id: record.id,
    started_at: record.started_at,
    started_at_ms: startedAtMs,
    workspace_id: record.workspace_id,
    device_id: record.device_id,
    route: record.route,
    provider: record.provider,
    api_shape: record.api_shape,
    method: record.method,
    path: record.path,
    tool: record.tool,
    tool_version: record.tool_version,
    user_agent: record.user_agent,
    session_id: record.session_id,
    stream_requested: record.stream_requested,
    streaming: record.streaming,
    stream_format: record.stream_format,
    model_requested: record.model_requested,
    model_answered: record.model_answered,
    http_status: record.http_status,
    status: record.status,
    error_type: record.error?.type ?? null,
    error_message: record.error?.message ?? null,
    error_source: record.error?.source ?? null,
    error_retry_after_s: record.error?.retry_after_s ?? null,
    billable: record.billable,
    input_tokens: record.usage.input_tokens,
    uncached_input_tokens: record.usage.uncached_input_tokens,
    cache_read_tokens: record.usage.cache_read_tokens,
    cache_write_tokens: record.usage.cache_write_tokens,
    cache_write_5m_tokens: record.usage.cache_write_5m_tokens,
    cache_write_1h_tokens: record.usage.cache_write_1h_tokens,
    output_tokens: record.usage.output_tokens,
    reasoning_tokens: record.usage.reasoning_tokens,
    web_search_requests: record.usage.web_search_requests,
    stop_reason: record.stop_reason,
    stop_reasons: record.stop_reasons === undefined ? null : JSON.stringify(record.stop_reasons),
    stop_reason_normalized: record.stop_reason_normalized,
    tool_calls: record.tool_calls,
    server_tool_calls: JSON.stringify(record.server_tool_calls),
    ttft_ms: record.timing.ttft_ms,
    total_ms: record.timing.total_ms,
    headers_ms: record.timing.headers_ms,
    upstream_request_id: record.upstream_request_id,
    response_id: record.response_id,
    cost_usd: record.cost.usd,
    cost_basis: record.cost.basis,
    cost_price_key: record.cost.price_key,
    cost_breakdown: JSON.stringify(record.cost.breakdown),
    price_data_version: record.cost.price_data_version,
    request_bytes: record.request_bytes,
    response_bytes: record.response_bytes,
    proxy_before_ms: record.timing.proxy_before_ms ?? null,
    proxy_after_ms: record.timing.proxy_after_ms ?? null,
    price_source: record.cost.price_source ?? null,
    model_load_ms: record.timing.model_load_ms ?? null,
    prompt_eval_ms: record.timing.prompt_eval_ms ?? null,
    eval_ms: record.timing.eval_ms ?? null,
  };
}

/**
 * Rebuild the nested record from its row, keys in the order `CallRecord` declares them. Optional keys
 * (`stop_reasons`, the proxy and model server timings, `price_source`, `rate_limits`) are present only when stored; the
 * rate-limit headers live in `call_rate_limits` and come in as `rateLimits`, that table's JSON text.
 */
export function fromCallRow(row: CallRow, rateLimits: string | null = null): CallRecord {
  const timing: CallRecord['timing'] = { ttft_ms: row.ttft_ms, total_ms: row.total_ms, headers_ms: row.headers_ms };
  if (row.proxy_before_ms !== null && row.proxy_before_ms !== undefined) timing.proxy_before_ms = row.proxy_before_ms;
  if (row.proxy_after_ms !== null && row.proxy_after_ms !== undefined) timing.proxy_after_ms = row.proxy_after_ms;
  if (row.model_load_ms !== null && row.model_load_ms !== undefined) timing.model_load_ms = row.model_load_ms;
  if (row.prompt_eval_ms !== null && row.prompt_eval_ms !== undefined) timing.prompt_eval_ms = row.prompt_eval_ms;
  if (row.eval_ms !== null && row.eval_ms !== undefined) timing.eval_ms = row.eval_ms;

  const record: CallRecord = {
    id: row.id,
    started_at: row.started_at,
    workspace_id: row.workspace_id,
    device_id: row.device_id,
    route: row.route,
    provider: row.provider as ProviderId,
    api_shape: row.api_shape as ApiShape | null,
    method: row.method,
    path: row.path,
    tool: row.tool as ToolId,
    tool_version: row.tool_version,
    user_agent: row.user_agent,
    session_id: row.session_id,
    stream_requested: row.stream_requested,
    streaming: row.streaming,
    stream_format: row.stream_format as CallRecord['stream_format'],
    model_requested: row.model_requested,
    model_answered: row.model_answered,
    http_status: row.http_status,
    status: row.status as CallStatus,
    error:
      row.error_type === null
        ? null
        : {
            type: row.error_type,
            message: row.error_message,
            source: row.error_source as NonNullable<CallRecord['error']>['source'],
            retry_after_s: row.error_retry_after_s,
          },
    billable: row.billable,
    usage: {
      input_tokens: row.input_tokens,
      uncached_input_tokens: row.uncached_input_tokens,
      cache_read_tokens: row.cache_read_tokens,
      cache_write_tokens: row.cache_write_tokens,
      cache_write_5m_tokens: row.cache_write_5m_tokens,
      cache_write_1h_tokens: row.cache_write_1h_tokens,
      output_tokens: row.output_tokens,
      reasoning_tokens: row.reasoning_tokens,
      web_search_requests: row.web_search_requests,
    },
    stop_reason: row.stop_reason,
    stop_reason_normalized: row.stop_reason_normalized as StopReasonNormalized | null,
    tool_calls: row.tool_calls,
    server_tool_calls: JSON.parse(row.server_tool_calls) as Record<string, number>,
    timing,
    upstream_request_id: row.upstream_request_id,
    response_id: row.response_id,
    cost: {
      usd: row.cost_usd,
      basis: row.cost_basis as CostBasis,
      price_key: row.cost_price_key,
      breakdown: JSON.parse(row.cost_breakdown) as Partial<Record<CostComponent, number>>,
      price_data_version: row.price_data_version,
      ...(row.price_source === null || row.price_source === undefined ? {} : { price_source: row.price_source }),
    },
    request_bytes: row.request_bytes,
    response_bytes: row.response_bytes,
  };
  if (rateLimits !== null) record.rate_limits = JSON.parse(rateLimits) as Record<string, string>;

  if (row.stop_reasons !== null) {
    // `stop_reasons` exists only for multi-choice responses; keep its key position next to stop_reason.
    return insertAfter(record, 'stop_reason', 'stop_reasons', JSON.parse(row.stop_reasons) as (string | null)[]);
  }
  return record;
}

function insertAfter(record: CallRecord, anchor: keyof CallRecord, key: 'stop_reasons', value: (string | null)[]): CallRecord {
  const entries: [string, unknown][] = [];
  for (const [name, field] of Object.entries(record)) {
    entries.push([name, field]);
    if (name === anchor) entries.push([key, value]);
  }
  return Object.fromEntries(entries) as unknown as CallRecord;
}
