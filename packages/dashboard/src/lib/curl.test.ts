import { describe, expect, it } from 'vitest';
import { buildCurl, shellQuote } from './curl.js';

describe('buildCurl', () => {
  it('uses variables for the route token and the provider key', () => {
    const command = buildCurl({
      origin: 'http://127.0.0.1:4747',
      route: 'anthropic',
      provider: 'anthropic',
      method: 'POST',
      path: '/v1/messages',
      headers: { 'content-type': 'application/json', host: '127.0.0.1:4747', 'content-length': '42' },
      body: '{"model":"claude-haiku-4-5"}',
    });

    expect(command).toBe(
      [
        'curl -X POST "http://127.0.0.1:4747/r/$TOKENWISE_ROUTE_TOKEN/anthropic/v1/messages" \\',
        '  -H "x-api-key: $ANTHROPIC_API_KEY" \\',
        "  -H 'content-type: application/json' \\",
        "  --data-binary @- <<'TOKENWISE_BODY'",
        '{"model":"claude-haiku-4-5"}',
        'TOKENWISE_BODY',
      ].join('\n'),
    );
  });

  it('leaves out the body when there is none', () => {
    const command = buildCurl({
      origin: 'http://h',
      route: 'openai',
      provider: 'openai',
      method: 'GET',
      path: '/v1/models',
      headers: {},
      body: null,
    });
    expect(command).toBe(
      'curl -X GET "http://h/r/$TOKENWISE_ROUTE_TOKEN/openai/v1/models" \\\n  -H "authorization: Bearer $OPENAI_API_KEY"',
    );
  });
});

describe('shellQuote', () => {
  it('escapes single quotes', () => {
    expect(shellQuote("it's")).toBe(`'it'\\''s'`);
  });
});
