import type { ProviderId } from './routes/route-descriptor.js';

/**
 * The normalized call record. Field names and meanings follow the llm-wire fixture format (nested
 * snake_case) so that `tokenwise calls --json`, the store and the fixtures agree. `null` always means
 * "not reported", never zero.
 */

export type ApiShape =
  | 'anthropic.messages'
  | 'anthropic.count_tokens'
  | 'openai.chat_completions'
  | 'openai.responses'
  | 'gemini.generate_content'
  | 'gemini.stream_generate_content'
  /** Ollama's native `/api/chat` and `/api/generate`. */
  | 'ollama.chat'
  | 'ollama.generate';

/** `aborted`: the client hung up before the response ended. */
export type CallStatus = 'success' | 'error' | 'truncated' | 'aborted';

export type StopReasonNormalized =
  | 'end'
  | 'max_tokens'
  | 'tool_use'
  | 'stop_sequence'
  | 'content_filter'
  | 'refusal'
  | 'pause'
  | 'context_window';

/**
 * How `cost.usd` was obtained: `exact` (all usage known), `partial` (a lower bound from the usage seen),
 * `api_equivalent` (billed to a subscription; the API price of the same call), `unknown` (no usage),
 * `none` (nothing billable, or a model run on the person's own machine, such as Ollama's), `unpriced` (usage
 * known, no price for the model).
 */
export type CostBasis = 'exact' | 'partial' | 'api_equivalent' | 'unknown' | 'none' | 'unpriced';

export type ToolId =
  | 'claude-code'
  | 'claude-cli'
  | 'codex'
  | 'gemini-cli'
  | 'cursor'
  | 'ollama'
  | 'anthropic-sdk'
  | 'openai-sdk'
  | 'google-genai-sdk'
  /** Tokenwise's own LLM judge, which grades sampled calls through the proxy. */
  | 'tokenwise-judge'
  | 'unknown';

export interface Usage {
  /** Every prompt-side token, including cache reads and writes. */
  input_tokens: number | null;
  uncached_input_tokens: number | null;
  cache_read_tokens: number | null;
  cache_write_tokens: number | null;
  cache_write_5m_tokens: number | null;
  cache_write_1h_tokens: number | null;
  /** Every generated token billed as output, including reasoning. */
  output_tokens: number | null;
  /** Part of output_tokens; never added to it. */
  reasoning_tokens: number | null;
  web_search_requests: number | null;
}

export interface CallError {
  /** The provider's error type, code or status string; `http_<status>` for non-JSON bodies. */
  type: string;
  message: string | null;
  source: 'http' | 'stream_event' | 'non_json' | 'transport';
  retry_after_s: number | null;
}

export type CostComponent = 'input' | 'cache_read' | 'cache_write_5m' | 'cache_write_1h' | 'output' | 'web_search';

export interface Cost {
  /** USD, rounded to 9 decimal places; null when unknown or unpriced. */
  usd: number | null;
  basis: CostBasis;
  /** Price row used: the answered (else requested) model with its date suffix removed. */
  price_key: string | null;
  /** USD per component; zero components are omitted. */
  breakdown: Partial<Record<CostComponent, number>>;
  /** Version of the price data that produced the figures (e.g. `@pydantic/genai-prices@0.1.8`). */
  price_data_version: string | null;
  /**
   * Where the price came from when it is not the bundled price data: `custom:<price id>` for a workspace's
   * custom price. `bundled` marks a call re-priced with the bundled data; absent on calls never re-priced.
   */
  price_source?: string;
}

export interface Timing {
  /** ms from the start of forwarding to the read that completed the first output event; null without output. */
  ttft_ms: number | null;
  /** ms from the start of forwarding to the last byte (or the end of the exchange). */
  total_ms: number;
  /** ms from the start of forwarding until the upstream's status line and headers arrived; null if never. */
  headers_ms: number | null;
  /**
   * ms the proxy spent on the request before forwarding it (route and token checks). Present only where
   * the proxy measured it (the Node proxy's HTTP calls).
   */
  proxy_before_ms?: number;
  /** ms from the last upstream byte until the proxy ended the response to the client; present like `proxy_before_ms`. */
  proxy_after_ms?: number;
  /**
   * The model server's own timings, present only where it reports them (Ollama's `load_duration`,
   * `prompt_eval_duration` and `eval_duration`, converted from ns to ms).
   */
  model_load_ms?: number;
  prompt_eval_ms?: number;
  eval_ms?: number;
}

export interface CallRecord {
  /** Time-ordered unique id (UUIDv7). */
  id: string;
  /** ISO 8601 time the proxy received the request. */
  started_at: string;
  workspace_id: string | null;
  device_id: string | null;
  route: string;
  provider: ProviderId;
  api_shape: ApiShape | null;
  method: string;
  /** Path after `/r/{token}/{route}`, without the query string (the query may carry keys, e.g. Gemini's `?key=`). */
  path: string;
  tool: ToolId;
  tool_version: string | null;
  /** Raw user agent, kept so an `unknown` tool can be identified later. */
  user_agent: string | null;
  session_id: string | null;
  stream_requested: boolean;
  streaming: boolean;
  /** `ndjson`: one JSON object per line (Ollama's native streams). */
  stream_format: 'sse' | 'json-array' | 'ndjson' | 'websocket' | null;
  model_requested: string | null;
  model_answered: string | null;
  /** Upstream status; null when no response arrived (unreachable upstream, abort before headers). */
  http_status: number | null;
  status: CallStatus;
  error: CallError | null;
  billable: boolean;
  usage: Usage;
  stop_reason: string | null;
  /** One raw value per choice, only when the response had several choices. */
  stop_reasons?: (string | null)[];
  stop_reason_normalized: StopReasonNormalized | null;
  tool_calls: number;
  server_tool_calls: Record<string, number>;
  timing: Timing;
  upstream_request_id: string | null;
  response_id: string | null;
  cost: Cost;
  /** Bytes as they crossed the wire (before content decoding). */
  request_bytes: number;
  response_bytes: number;
  /**
   * The provider's rate-limit and plan-usage response headers (`anthropic-ratelimit-*`, `x-ratelimit-*`,
   * `x-codex-*`, `retry-after`), lowercase names, values as sent; present only when the response had any.
   */
  rate_limits?: Record<string, string>;
}

/** A captured body: decoded text (or base64 for binary), capped. */
export interface CapturedBody {
  /**
   * Decoded body text, or null when the body could not be decoded (then `encoding_error` gives the reason).
   * Also null while `raw` is present, because the text is not decoded yet.
   */
  text: string | null;
  /**
   * The kept bytes of the decoded body, not yet turned into text: present only when the capture ran with
   * `decodeBodies: false`. The bytes are cut at a UTF-8 character boundary when `truncated`, secrets are
   * still in them, and the array owns its whole ArrayBuffer, so it can be transferred to another thread.
   * `decodeCapturedBody` returns the decoded form. Absent from stored and serialized bodies.
   */
  raw?: Uint8Array;
  /** Bytes of the decoded body seen, including bytes beyond the cap. */
  bytes: number;
  truncated: boolean;
  content_type: string | null;
  encoding_error: string | null;
}

/** Request and response bodies of one call; never produced when the workspace is in privacy mode. */
export interface CallBodies {
  request: CapturedBody | null;
  response: CapturedBody | null;
  /** Request headers with every credential removed. */
  request_headers: Record<string, string>;
  response_headers: Record<string, string>;
}

/** Where finished records go. `write` must not throw and must not block: it is called on the proxy's path. */
export interface RecordSink {
  write(record: CallRecord, bodies: CallBodies | null): void;
}

export function emptyUsage(): Usage {
  return {
    input_tokens: null,
    uncached_input_tokens: null,
    cache_read_tokens: null,
    cache_write_tokens: null,
    cache_write_5m_tokens: null,
    cache_write_1h_tokens: null,
    output_tokens: null,
    reasoning_tokens: null,
    web_search_requests: null,
  };
}
