import type { ApiShape, CallBodies, CallRecord } from '@tokenwise/core';

/**
 * One span in the OTLP/JSON encoding (opentelemetry-proto `trace/v1`, JSON mapping): ids are hex strings,
 * 64-bit integers are decimal strings, enums are numbers.
 */
export interface OtlpSpan {
  traceId: string;
  spanId: string;
  name: string;
  kind: number;
  startTimeUnixNano: string;
  endTimeUnixNano: string;
  attributes: OtlpKeyValue[];
  status: { code: number; message?: string };
}

export interface OtlpKeyValue {
  key: string;
  value: OtlpAnyValue;
}

export type OtlpAnyValue =
  | { stringValue: string }
  | { intValue: string }
  | { doubleValue: number }
  | { boolValue: boolean }
  | { arrayValue: { values: OtlpAnyValue[] } };

const SPAN_KIND_CLIENT = 3;
const STATUS_UNSET = 0;
const STATUS_ERROR = 2;

/**
 * `gen_ai.operation.name` per API shape, from the OpenTelemetry GenAI semantic conventions' well-known
 * values. `anthropic.count_tokens` has none, so it gets a name of its own in the same style.
 */
const OPERATIONS: Record<ApiShape, string> = {
  'anthropic.messages': 'chat',
  'anthropic.count_tokens': 'count_tokens',
  'openai.chat_completions': 'chat',
  'openai.responses': 'chat',
  'gemini.generate_content': 'generate_content',
  'gemini.stream_generate_content': 'generate_content',
  'ollama.chat': 'chat',
  'ollama.generate': 'text_completion',
};

/**
 * `gen_ai.provider.name` per route: the conventions' well-known value where one exists (`gcp.gemini` for
 * the Gemini API, `gcp.gen_ai` for Code Assist, whose backend is not one of the listed ones, `x_ai`,
 * `mistral_ai`), else the route's provider id.
 */
const PROVIDER_NAMES: Record<string, string> = {
  anthropic: 'anthropic',
  openai: 'openai',
  chatgpt: 'openai',
  gemini: 'gcp.gemini',
  codeassist: 'gcp.gen_ai',
  groq: 'groq',
  deepseek: 'deepseek',
  mistral: 'mistral_ai',
  xai: 'x_ai',
};

/** Longest body text put on a span, in UTF-16 code units; the rest is cut and `…truncated` attributes say so. */
export const MAX_SPAN_BODY_CHARS = 16 * 1024;

export interface SpanBodies {
  request: string | null;
  response: string | null;
  requestTruncated: boolean;
  responseTruncated: boolean;
}

/** Cut the captured bodies to what a span carries; null when the capture kept none (privacy mode). */
export function spanBodies(bodies: CallBodies | null): SpanBodies | null {
  if (!bodies) return null;
  const cut = (text: string | null | undefined) => (text == null ? null : text.slice(0, MAX_SPAN_BODY_CHARS));
  const requestText = bodies.request?.text ?? null;
  const responseText = bodies.response?.text ?? null;
  return {
    request: cut(requestText),
    response: cut(responseText),
    requestTruncated: (bodies.request?.truncated ?? false) || (requestText?.length ?? 0) > MAX_SPAN_BODY_CHARS,
    responseTruncated: (bodies.response?.truncated ?? false) || (responseText?.length ?? 0) > MAX_SPAN_BODY_CHARS,
  };
}

/** True for a record of a model call (a known API shape); model lists and side methods are not spans. */
export function isModelCall(record: CallRecord): boolean {
  return record.api_shape !== null;
}

/**
 * Build the inference span of one call, following the OpenTelemetry GenAI semantic conventions for client
 * inference spans: name `{gen_ai.operation.name} {gen_ai.request.model}`, kind CLIENT, `gen_ai.provider.name`
 * (not the deprecated `gen_ai.system`), `gen_ai.usage.*`, `gen_ai.response.*`, `error.type` and
 * `server.address`. Facts the conventions do not name go under `tokenwise.*`. The trace id is the call id
 * (a UUIDv7 is 128 bits, like a trace id), so a span sent twice is the same span.
 */
export function callSpan(record: CallRecord, upstreamBaseUrl: string | null, bodies: SpanBodies | null): OtlpSpan {
  const attributes = new AttributeList();
  const operation = record.api_shape ? OPERATIONS[record.api_shape] : 'chat';
  attributes.string('gen_ai.operation.name', operation);
  attributes.string('gen_ai.provider.name', PROVIDER_NAMES[record.route] ?? record.provider);
  attributes.string('gen_ai.request.model', record.model_requested);
  attributes.string('gen_ai.response.model', record.model_answered);
  attributes.string('gen_ai.response.id', record.response_id);
  attributes.string('gen_ai.conversation.id', record.session_id);
  const finishReasons = record.stop_reasons ?? (record.stop_reason === null ? [] : [record.stop_reason]);
  if (finishReasons.length > 0)
    attributes.stringArray(
      'gen_ai.response.finish_reasons',
      finishReasons.map((reason) => reason ?? ''),
    );

  const usage = record.usage;
  attributes.int('gen_ai.usage.input_tokens', usage.input_tokens);
  attributes.int('gen_ai.usage.output_tokens', usage.output_tokens);
  attributes.int('gen_ai.usage.cache_read.input_tokens', usage.cache_read_tokens);
  attributes.int('gen_ai.usage.cache_creation.input_tokens', usage.cache_write_tokens);
  attributes.int('gen_ai.usage.reasoning.output_tokens', usage.reasoning_tokens);

  if (upstreamBaseUrl) {
    const url = new URL(upstreamBaseUrl);
    attributes.string('server.address', url.hostname);
    attributes.int('server.port', url.port === '' ? (url.protocol === 'https:' ? 443 : 80) : Number(url.port));
  }
  attributes.int('http.response.status_code', record.http_status);
  const failed = record.status !== 'success';
  if (failed) attributes.string('error.type', record.error?.type ?? record.status);

  attributes.string('tokenwise.call.id', record.id);
  attributes.string('tokenwise.route', record.route);
  attributes.string('tokenwise.tool', record.tool);
  attributes.string('tokenwise.tool.version', record.tool_version);
  attributes.string('tokenwise.status', record.status);
  attributes.string('tokenwise.workspace.id', record.workspace_id);
  attributes.string('tokenwise.device.id', record.device_id);
  attributes.bool('tokenwise.streaming', record.streaming);
  attributes.double('tokenwise.cost.usd', record.cost.usd);
  attributes.string('tokenwise.cost.basis', record.cost.basis);
  attributes.double('tokenwise.timing.ttft_ms', record.timing.ttft_ms);
  attributes.double('tokenwise.timing.model_load_ms', record.timing.model_load_ms ?? null);
  attributes.double('tokenwise.timing.prompt_eval_ms', record.timing.prompt_eval_ms ?? null);
  attributes.double('tokenwise.timing.eval_ms', record.timing.eval_ms ?? null);
  if (bodies) {
    attributes.string('tokenwise.request.body', bodies.request);
    attributes.string('tokenwise.response.body', bodies.response);
    if (bodies.requestTruncated) attributes.bool('tokenwise.request.body.truncated', true);
    if (bodies.responseTruncated) attributes.bool('tokenwise.response.body.truncated', true);
  }

  const startMs = Date.parse(record.started_at);
  const hex = record.id.replaceAll('-', '').toLowerCase();
  return {
    traceId: hex,
    // The low 64 bits of a UUIDv7 are random apart from the variant bits, so they serve as the span id.
    spanId: hex.slice(16),
    name: record.model_requested ? `${operation} ${record.model_requested}` : operation,
    kind: SPAN_KIND_CLIENT,
    startTimeUnixNano: unixNanos(startMs),
    endTimeUnixNano: unixNanos(startMs + record.timing.total_ms),
    attributes: attributes.list,
    status: failed ? { code: STATUS_ERROR, message: record.error?.message ?? record.status } : { code: STATUS_UNSET },
  };
}

/** Milliseconds since the epoch (with a fraction) to nanoseconds as a decimal string, exact to the microsecond. */
function unixNanos(ms: number): string {
  const micros = BigInt(Math.round(ms * 1000));
  return (micros * 1000n).toString();
}

/** Attributes in OTLP form; a null or undefined value is left out, as the conventions ask for unknown values. */
class AttributeList {
  readonly list: OtlpKeyValue[] = [];

  string(key: string, value: string | null | undefined): void {
    if (value != null) this.list.push({ key, value: { stringValue: value } });
  }

  stringArray(key: string, values: string[]): void {
    this.list.push({ key, value: { arrayValue: { values: values.map((value) => ({ stringValue: value })) } } });
  }

  int(key: string, value: number | null | undefined): void {
    if (value != null && Number.isSafeInteger(value)) this.list.push({ key, value: { intValue: String(value) } });
  }

  double(key: string, value: number | null | undefined): void {
    if (value != null && Number.isFinite(value)) this.list.push({ key, value: { doubleValue: value } });
  }

  bool(key: string, value: boolean): void {
    this.list.push({ key, value: { boolValue: value } });
  }
}
