import type { CallBodies, CallRecord } from '@tokenwise/core';

/** Build a record with every field filled in, including the optional `stop_reasons`, so a lost column shows. */
export function fullRecord(overrides: Partial<CallRecord> = {}): CallRecord {
  return {
    id: '0190a1b2-c3d4-7e5f-8a9b-0c1d2e3f4a5b',
    started_at: '2026-12-04T10:00:00.123Z',
    workspace_id: 'ws-1',
    device_id: 'dev-1',
    route: 'anthropic',
    provider: 'anthropic',
    api_shape: 'anthropic.messages',
    method: 'POST',
    path: '/v1/messages',
    tool: 'claude-code',
    tool_version: '2.1.197',
    user_agent: 'claude-cli/2.1.197 (external, sdk-cli)',
    session_id: '06f4309d-adfa-4bfa-ae69-cd5c87c019c1',
    stream_requested: true,
    streaming: true,
    stream_format: 'sse',
    model_requested: 'claude-sonnet-4-5',
    model_answered: 'claude-sonnet-4-5-20250929',
    http_status: 200,
    status: 'error',
    error: { type: 'overloaded_error', message: 'Overloaded', source: 'stream_event', retry_after_s: 2.5 },
    billable: true,
    usage: {
      input_tokens: 3200,
      uncached_input_tokens: 100,
      cache_read_tokens: 2000,
      cache_write_tokens: 1100,
      cache_write_5m_tokens: 600,
      cache_write_1h_tokens: 500,
      output_tokens: 420,
      reasoning_tokens: 120,
      web_search_requests: 2,
    },
    stop_reason: 'stop',
    stop_reasons: ['stop', null],
    stop_reason_normalized: 'end',
    tool_calls: 2,
    server_tool_calls: { web_search: 2 },
    timing: { ttft_ms: 812.5, total_ms: 4210, headers_ms: 301 },
    upstream_request_id: 'req_011CFAKE',
    response_id: 'msg_01FAKE',
    cost: {
      usd: 0.018345,
      basis: 'exact',
      price_key: 'claude-sonnet-4-5',
      breakdown: { input: 0.0003, cache_read: 0.0006, cache_write_5m: 0.00225, cache_write_1h: 0.003, output: 0.0063, web_search: 0.02 },
      price_data_version: '@pydantic/genai-prices@0.1.8',
    },
    request_bytes: 76_543,
    response_bytes: 2_345,
    ...overrides,
  };
}

/** Build a record as the capture makes it when little is known: nulls wherever allowed, no `stop_reasons`. */
export function sparseRecord(overrides: Partial<CallRecord> = {}): CallRecord {
  return {
    id: '0190a1b2-c3d4-7e5f-8a9b-000000000001',
    started_at: '2026-12-04T10:00:00.000Z',
    workspace_id: null,
    device_id: null,
    route: 'gemini',
    provider: 'google',
    api_shape: null,
    method: 'GET',
    path: '/v1beta/models',
    tool: 'unknown',
    tool_version: null,
    user_agent: null,
    session_id: null,
    stream_requested: false,
    streaming: false,
    stream_format: null,
    model_requested: null,
    model_answered: null,
    http_status: null,
    status: 'aborted',
    error: null,
    billable: false,
    usage: {
      input_tokens: null,
      uncached_input_tokens: null,
      cache_read_tokens: null,
      cache_write_tokens: null,
      cache_write_5m_tokens: null,
      cache_write_1h_tokens: null,
      output_tokens: null,
      reasoning_tokens: null,
      web_search_requests: null,
    },
    stop_reason: null,
    stop_reason_normalized: null,
    tool_calls: 0,
    server_tool_calls: {},
    timing: { ttft_ms: null, total_ms: 0, headers_ms: null },
    upstream_request_id: null,
    response_id: null,
    cost: { usd: null, basis: 'unknown', price_key: null, breakdown: {}, price_data_version: null },
    request_bytes: 0,
    response_bytes: 0,
    ...overrides,
  };
}

/** Build `count` sparse records that started one second apart, ids in start order. */
export function recordSeries(count: number, startMs = Date.parse('2026-12-04T09:00:00.000Z')): CallRecord[] {
  return Array.from({ length: count }, (_, index) =>
    sparseRecord({
      id: `0190a1b2-0000-7000-8000-${String(index).padStart(12, '0')}`,
      started_at: new Date(startMs + index * 1000).toISOString(),
    }),
  );
}

export function sampleBodies(overrides: Partial<CallBodies> = {}): CallBodies {
  return {
    request: {
      text: '{"model":"claude-sonnet-4-5","messages":[{"role":"user","content":"héllo ✓"}]}',
      bytes: 78,
      truncated: false,
      content_type: 'application/json',
      encoding_error: null,
    },
    response: {
      text: null,
      bytes: 5_000_000,
      truncated: true,
      content_type: 'text/event-stream',
      encoding_error: 'zstd frame is corrupt',
    },
    request_headers: { 'anthropic-version': '2023-06-01', 'user-agent': 'claude-cli/2.1.197' },
    response_headers: { 'content-type': 'text/event-stream', 'request-id': 'req_011CFAKE' },
    ...overrides,
  };
}
