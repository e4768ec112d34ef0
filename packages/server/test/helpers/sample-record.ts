import type { CallRecord } from '@tokenwise/core';

let counter = 0;

/** Build a minimal finished call with a fresh id, started one second after the previous one. */
export function sampleRecord(overrides: Partial<CallRecord> = {}): CallRecord {
  counter += 1;
  return {
    id: `0190a1b2-0000-7000-8000-${String(counter).padStart(12, '0')}`,
    started_at: new Date(Date.parse('2026-12-04T09:00:00.000Z') + counter * 1000).toISOString(),
    workspace_id: null,
    device_id: null,
    route: 'anthropic',
    provider: 'anthropic',
    api_shape: 'anthropic.messages',
    method: 'POST',
    path: '/v1/messages',
    tool: 'claude-code',
    tool_version: '2.1.197',
    user_agent: 'claude-cli/2.1.197 (external, sdk-cli)',
    session_id: null,
    stream_requested: false,
    streaming: false,
    stream_format: null,
    model_requested: 'claude-sonnet-4-5',
    model_answered: 'claude-sonnet-4-5-20250929',
    http_status: 200,
    status: 'success',
    error: null,
    billable: true,
    usage: {
      input_tokens: 120,
      uncached_input_tokens: 20,
      cache_read_tokens: 100,
      cache_write_tokens: 0,
      cache_write_5m_tokens: null,
      cache_write_1h_tokens: null,
      output_tokens: 30,
      reasoning_tokens: null,
      web_search_requests: null,
    },
    stop_reason: 'end_turn',
    stop_reason_normalized: 'end',
    tool_calls: 0,
    server_tool_calls: {},
    timing: { ttft_ms: null, total_ms: 1234, headers_ms: 400 },
    upstream_request_id: 'req_FAKE',
    response_id: 'msg_FAKE',
    cost: {
      usd: 0.00051,
      basis: 'exact',
      price_key: 'claude-sonnet-4-5',
      breakdown: { input: 0.00006, cache_read: 0.00003, output: 0.00045 },
      price_data_version: null,
    },
    request_bytes: 100,
    response_bytes: 200,
    ...overrides,
  };
}
