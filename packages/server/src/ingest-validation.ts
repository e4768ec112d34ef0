import {
  type ApiShape,
  type CallError,
  type CallRecord,
  type CallStatus,
  type CostBasis,
  type CostComponent,
  type ProviderId,
  type StopReasonNormalized,
  TokenwiseError,
  type ToolId,
} from '@tokenwise/core';
import type { CallToStore } from '@tokenwise/storage';

/**
 * Strict validation of the call records a Worker posts to `/api/v1/ingest`. A record is stored exactly
 * as sent, so every field of `CallRecord` and `CallBodies` is checked for its type and range, and
 * unknown fields are rejected: a sender built from another Tokenwise version is caught here, not in
 * the dashboard. The first problem rejects the whole batch with its path, e.g. `calls[2].record.usage.input_tokens`.
 */

/** Maximum number of calls in one ingest request; the Worker sends at most 100. */
export const MAX_INGEST_CALLS = 500;

type Check = (value: unknown, path: string) => void;

// `Record<Union, true>` makes the compiler reject a member added to or removed from the union in core.
const PROVIDERS: Record<ProviderId, true> = {
  anthropic: true,
  openai: true,
  google: true,
  openrouter: true,
  groq: true,
  deepseek: true,
  mistral: true,
  xai: true,
  together: true,
  fireworks: true,
  ollama: true,
};
const API_SHAPES: Record<ApiShape, true> = {
  'anthropic.messages': true,
  'anthropic.count_tokens': true,
  'openai.chat_completions': true,
  'openai.responses': true,
  'gemini.generate_content': true,
  'gemini.stream_generate_content': true,
  'ollama.chat': true,
  'ollama.generate': true,
};
const TOOLS: Record<ToolId, true> = {
  'claude-code': true,
  'claude-cli': true,
  codex: true,
  'gemini-cli': true,
  cursor: true,
  ollama: true,
  'anthropic-sdk': true,
  'openai-sdk': true,
  'google-genai-sdk': true,
  'tokenwise-judge': true,
  unknown: true,
};
const STATUSES: Record<CallStatus, true> = { success: true, error: true, truncated: true, aborted: true };
const STOP_REASONS: Record<StopReasonNormalized, true> = {
  end: true,
  max_tokens: true,
  tool_use: true,
  stop_sequence: true,
  content_filter: true,
  refusal: true,
  pause: true,
  context_window: true,
};
const COST_BASES: Record<CostBasis, true> = { exact: true, partial: true, api_equivalent: true, unknown: true, none: true, unpriced: true };
const COST_COMPONENTS: Record<CostComponent, true> = {
  input: true,
  cache_read: true,
  cache_write_5m: true,
  cache_write_1h: true,
  output: true,
  web_search: true,
};
const ERROR_SOURCES: Record<CallError['source'], true> = { http: true, stream_event: true, non_json: true, transport: true };
const STREAM_FORMATS: Record<NonNullable<CallRecord['stream_format']>, true> = {
  sse: true,
  'json-array': true,
  websocket: true,
  ndjson: true,
};

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;
const ISO_TIME = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(?:\.\d{1,9})?(?:Z|[+-]\d{2}:\d{2})$/;
const ROUTE_NAME = /^[a-z0-9][a-z0-9-]{0,31}$/;
const HTTP_METHOD = /^[!#$%&'*+.^_`|~0-9A-Za-z-]{1,32}$/;

function fail(path: string, expected: string, value: unknown): never {
  throw new TokenwiseError('invalid_argument', `invalid ${path}: expected ${expected}, got ${describe(value)}`);
}

function describe(value: unknown): string {
  if (value === undefined) return 'nothing (the field is missing)';
  const text = JSON.stringify(value);
  return text.length > 60 ? `${text.slice(0, 57)}...` : text;
}

const string: Check = (value, path) => {
  if (typeof value !== 'string') fail(path, 'a string', value);
};

const boolean: Check = (value, path) => {
  if (typeof value !== 'boolean') fail(path, 'true or false', value);
};

const count: Check = (value, path) => {
  if (!Number.isSafeInteger(value) || (value as number) < 0) fail(path, 'a whole number >= 0', value);
};

const amount: Check = (value, path) => {
  if (typeof value !== 'number' || !Number.isFinite(value) || value < 0) fail(path, 'a finite number >= 0', value);
};

function matching(pattern: RegExp, expected: string): Check {
  return (value, path) => {
    if (typeof value !== 'string' || !pattern.test(value)) fail(path, expected, value);
  };
}

function oneOf(allowed: Record<string, true>): Check {
  return (value, path) => {
    if (typeof value !== 'string' || !Object.hasOwn(allowed, value)) fail(path, `one of ${Object.keys(allowed).join(', ')}`, value);
  };
}

function nullable(check: Check): Check {
  return (value, path) => {
    if (value !== null) check(value, path);
  };
}

function between(min: number, max: number): Check {
  return (value, path) => {
    if (!Number.isSafeInteger(value) || (value as number) < min || (value as number) > max) {
      fail(path, `a whole number from ${min} to ${max}`, value);
    }
  };
}

function isPlainObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

/** Build a check for an object with exactly these fields; `optional` ones may be absent. */
function object(fields: Record<string, Check>, optional: readonly string[] = []): Check {
  return (value, path) => {
    if (!isPlainObject(value)) fail(path, 'an object', value);
    for (const key of Object.keys(value)) {
      if (!Object.hasOwn(fields, key)) {
        throw new TokenwiseError('invalid_argument', `invalid ${path}: unknown field "${key}"; is the sender a newer Tokenwise version?`);
      }
    }
    for (const [key, check] of Object.entries(fields)) {
      if (!Object.hasOwn(value, key) && optional.includes(key)) continue;
      check(value[key], `${path}.${key}`);
    }
  };
}

/** Build a check for an object used as a map: keys pass `key`, values pass `check`. */
function mapOf(check: Check, key: Check = string): Check {
  return (value, path) => {
    if (!isPlainObject(value)) fail(path, 'an object', value);
    for (const [name, item] of Object.entries(value)) {
      key(name, `${path} key`);
      check(item, `${path}.${name}`);
    }
  };
}

function arrayOf(check: Check): Check {
  return (value, path) => {
    if (!Array.isArray(value)) fail(path, 'an array', value);
    for (const [index, item] of value.entries()) check(item, `${path}[${index}]`);
  };
}

const isoTime: Check = (value, path) => {
  if (typeof value !== 'string' || !ISO_TIME.test(value) || !Number.isFinite(Date.parse(value))) {
    fail(path, 'an ISO 8601 time such as 2025-01-31T12:00:00.000Z', value);
  }
};

const usage = object({
  input_tokens: nullable(count),
  uncached_input_tokens: nullable(count),
  cache_read_tokens: nullable(count),
  cache_write_tokens: nullable(count),
  cache_write_5m_tokens: nullable(count),
  cache_write_1h_tokens: nullable(count),
  output_tokens: nullable(count),
  reasoning_tokens: nullable(count),
  web_search_requests: nullable(count),
});

const callRecord = object(
  {
    id: matching(UUID, 'a lowercase UUID'),
    started_at: isoTime,
    // Ingested calls come from route tokens, and every route token belongs to a workspace.
    workspace_id: string,
    device_id: nullable(string),
    route: matching(ROUTE_NAME, 'a route name (lowercase letters, digits and dashes)'),
    provider: oneOf(PROVIDERS),
    api_shape: nullable(oneOf(API_SHAPES)),
    method: matching(HTTP_METHOD, 'an HTTP method'),
    path: string,
    tool: oneOf(TOOLS),
    tool_version: nullable(string),
    user_agent: nullable(string),
    session_id: nullable(string),
    stream_requested: boolean,
    streaming: boolean,
    stream_format: nullable(oneOf(STREAM_FORMATS)),
    model_requested: nullable(string),
    model_answered: nullable(string),
    http_status: nullable(between(100, 599)),
    status: oneOf(STATUSES),
    error: nullable(object({ type: string, message: nullable(string), source: oneOf(ERROR_SOURCES), retry_after_s: nullable(amount) })),
    billable: boolean,
    usage,
    stop_reason: nullable(string),
    stop_reasons: arrayOf(nullable(string)),
    stop_reason_normalized: nullable(oneOf(STOP_REASONS)),
    tool_calls: count,
    server_tool_calls: mapOf(count),
    timing: object(
      {
        ttft_ms: nullable(count),
        total_ms: count,
        headers_ms: nullable(count),
        proxy_before_ms: amount,
        proxy_after_ms: amount,
        model_load_ms: amount,
        prompt_eval_ms: amount,
        eval_ms: amount,
      },
      ['proxy_before_ms', 'proxy_after_ms', 'model_load_ms', 'prompt_eval_ms', 'eval_ms'],
    ),
    upstream_request_id: nullable(string),
    response_id: nullable(string),
    cost: object({
      usd: nullable(amount),
      basis: oneOf(COST_BASES),
      price_key: nullable(string),
      breakdown: mapOf(amount, oneOf(COST_COMPONENTS)),
      price_data_version: nullable(string),
    }),
    request_bytes: count,
    response_bytes: count,
    rate_limits: mapOf(string),
  },
  ['stop_reasons', 'rate_limits'],
);

const capturedBody = object({
  text: nullable(string),
  bytes: count,
  truncated: boolean,
  content_type: nullable(string),
  encoding_error: nullable(string),
});

const callBodies = object({
  request: nullable(capturedBody),
  response: nullable(capturedBody),
  request_headers: mapOf(string),
  response_headers: mapOf(string),
});

const call = object({ record: callRecord, bodies: nullable(callBodies) });

/**
 * Check an ingest request body, `{"calls": [{"record": {...}, "bodies": {...} | null}, ...]}`, and return
 * its calls. Throws `invalid_argument` naming the first invalid field; nothing of a rejected batch is stored.
 */
export function parseIngestBatch(body: unknown): CallToStore[] {
  if (!isPlainObject(body) || !Array.isArray(body.calls)) {
    throw new TokenwiseError(
      'invalid_argument',
      'invalid ingest body: expected {"calls": [{"record": {...}, "bodies": {...} | null}, ...]}',
    );
  }
  const extra = Object.keys(body).find((key) => key !== 'calls');
  if (extra !== undefined) throw new TokenwiseError('invalid_argument', `invalid ingest body: unknown field "${extra}"`);
  if (body.calls.length > MAX_INGEST_CALLS) {
    throw new TokenwiseError(
      'invalid_argument',
      `invalid ingest body: ${body.calls.length} calls in one request, at most ${MAX_INGEST_CALLS}; send smaller batches`,
    );
  }

  const seen = new Set<string>();
  return body.calls.map((item, index) => {
    const path = `calls[${index}]`;
    call(item, path);
    const parsed = item as CallToStore;
    if (seen.has(parsed.record.id)) {
      throw new TokenwiseError('invalid_argument', `invalid ${path}.record.id: ${parsed.record.id} appears twice in one batch`);
    }
    seen.add(parsed.record.id);
    return parsed;
  });
}
