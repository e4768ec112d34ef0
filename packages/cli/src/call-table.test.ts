import type { CallRecord } from '@tokenwise/core';
import { describe, expect, it } from 'vitest';
import { formatHeader, formatRow, needsCostFootnote } from './call-table.js';

function record(overrides: Partial<CallRecord> = {}): CallRecord {
  return {
    id: 'call-1',
    started_at: '2026-12-04T10:00:00.000Z',
    workspace_id: null,
    device_id: null,
    route: 'anthropic',
    provider: 'anthropic',
    api_shape: 'anthropic.messages',
    method: 'POST',
    path: '/v1/messages',
    tool: 'claude-code',
    tool_version: '2.1.197',
    user_agent: null,
    session_id: null,
    stream_requested: true,
    streaming: true,
    stream_format: 'sse',
    model_requested: 'claude-sonnet-4-5',
    model_answered: 'claude-sonnet-4-5-20250929',
    http_status: 200,
    status: 'success',
    error: null,
    billable: true,
    usage: {
      input_tokens: 12_345,
      uncached_input_tokens: 345,
      cache_read_tokens: 12_000,
      cache_write_tokens: 0,
      cache_write_5m_tokens: null,
      cache_write_1h_tokens: null,
      output_tokens: 67,
      reasoning_tokens: null,
      web_search_requests: null,
    },
    stop_reason: 'end_turn',
    stop_reason_normalized: 'end',
    tool_calls: 0,
    server_tool_calls: {},
    timing: { ttft_ms: 300, total_ms: 1534, headers_ms: 200 },
    upstream_request_id: null,
    response_id: null,
    cost: { usd: 0.0046385, basis: 'exact', price_key: 'claude-sonnet-4-5', breakdown: {}, price_data_version: null },
    request_bytes: 1,
    response_bytes: 1,
    ...overrides,
  };
}

const cells = (row: string) => row.split(/\s{2,}/);

describe('call table', () => {
  it('lines the header up with the rows', () => {
    const header = formatHeader(false);
    const row = formatRow(record(), false);

    expect(header.indexOf('MODEL')).toBe(row.indexOf('claude-sonnet-4-5-20250929'));
    expect(header.indexOf('LATENCY') + 'LATENCY'.length).toBe(row.length);
  });

  it('formats tokens, cost and latency', () => {
    const [, tool, model, status, input, cached, output, cost, latency] = cells(formatRow(record(), false));

    expect([tool, model, status, input, cached, output, cost, latency]).toEqual([
      'claude-code',
      'claude-sonnet-4-5-20250929',
      'success',
      '12,345',
      '12,000',
      '67',
      '$0.0046',
      '1.5s',
    ]);
  });

  it('shows unknown values as a dash, never zero', () => {
    const sparse = record({
      model_answered: null,
      model_requested: null,
      usage: { ...record().usage, input_tokens: null, cache_read_tokens: null, output_tokens: null },
      cost: { usd: null, basis: 'unknown', price_key: null, breakdown: {}, price_data_version: null },
      timing: { ttft_ms: null, total_ms: 80, headers_ms: null },
    });

    const [, , model, , input, cached, output, cost, latency] = cells(formatRow(sparse, false));

    expect([model, input, cached, output, cost, latency]).toEqual(['-', '-', '-', '-', '-', '80ms']);
  });

  it.each([
    [{ usd: 0.5, basis: 'api_equivalent' }, '$0.5000*', true],
    [{ usd: 0.01, basis: 'partial' }, '>=$0.0100', true],
    [{ usd: null, basis: 'unpriced' }, 'unpriced', false],
    [{ usd: 0, basis: 'none' }, '$0.0000', false],
  ] as const)('marks cost %j as %s', (cost, shown, footnote) => {
    const row = record({ cost: { ...record().cost, ...cost } });

    expect(cells(formatRow(row, false))[7]).toBe(shown);
    expect(needsCostFootnote(row)).toBe(footnote);
  });

  it('shows the HTTP status of an error and colors it', () => {
    const failed = record({ status: 'error', http_status: 429 });

    expect(cells(formatRow(failed, false))[3]).toBe('error 429');
    expect(formatRow(failed, true)).toContain('\u001b[31merror 429');
    expect(formatRow(failed, false)).not.toContain('\u001b[');
  });

  // Regression: model names were printed raw, so a request's `model` or an upstream's response could send
  // escape sequences to the terminal (colours, window title) or split a row with CR/LF.
  it('escapes control characters in every text cell', () => {
    const evil = record({
      model_answered: 'evil\u001b[31mRED\u001b]0;TITLE\u0007\r\nFAKE ROW',
      tool: 'tool\u009b2J' as CallRecord['tool'],
      started_at: 'not a time\u202e',
    });

    const row = formatRow(evil, false);

    // biome-ignore lint/suspicious/noControlCharactersInRegex: the check looks for control characters.
    expect(row).not.toMatch(/[\u0000-\u001f\u007f-\u009f\u202e]/);
    expect(row.split('\n')).toHaveLength(1);
    expect(row).toContain('evil\\x1b[31mRED\\x1b]0;TITLE\\x…');
    expect(row).toContain('not a time\\u202e');
    expect(row).toContain('tool\\x9b2J');
  });
});
