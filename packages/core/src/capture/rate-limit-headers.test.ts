import { describe, expect, it } from 'vitest';
import { MAX_RATE_LIMIT_HEADERS, MAX_RATE_LIMIT_VALUE_CHARS, pickRateLimitHeaders } from './rate-limit-headers.js';

describe('pickRateLimitHeaders', () => {
  it('keeps the providers rate-limit headers only', () => {
    const picked = pickRateLimitHeaders({
      'Anthropic-Ratelimit-Unified-5h-Utilization': '0.42',
      'x-ratelimit-remaining-tokens': '9000',
      'x-codex-primary-used-percent': '12',
      'retry-after': '30',
      'x-api-key': 'never',
      'content-type': 'application/json',
    });

    expect(picked).toEqual({
      'anthropic-ratelimit-unified-5h-utilization': '0.42',
      'retry-after': '30',
      'x-codex-primary-used-percent': '12',
      'x-ratelimit-remaining-tokens': '9000',
    });
  });

  it('returns null without any', () => {
    expect(pickRateLimitHeaders({ 'content-type': 'text/event-stream' })).toBeNull();
  });

  it('bounds the number of headers and their length', () => {
    const headers: Record<string, string> = {};
    for (let index = 0; index < MAX_RATE_LIMIT_HEADERS + 5; index += 1)
      headers[`x-ratelimit-h${String(index).padStart(2, '0')}`] = 'v'.repeat(500);

    const picked = pickRateLimitHeaders(headers)!;

    expect(Object.keys(picked)).toHaveLength(MAX_RATE_LIMIT_HEADERS);
    expect(Object.values(picked).every((value) => value.length === MAX_RATE_LIMIT_VALUE_CHARS)).toBe(true);
  });
});
