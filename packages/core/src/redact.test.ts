import { describe, expect, it } from 'vitest';
import { isSecretHeader, redactHeaders, redactSecrets } from './redact.js';

describe('redactSecrets', () => {
  it.each([
    ['Anthropic API key', 'key sk-ant-api03-FAKEabcdefghijklmnop_-0123 end', 'key [REDACTED:anthropic-key] end'],
    ['Anthropic OAuth token', '"sk-ant-oat01-FAKE-TOKEN-0000000000"', '"[REDACTED:anthropic-key]"'],
    ['OpenAI project key', 'OPENAI_API_KEY=sk-proj-FAKE0000000000000000000000', 'OPENAI_API_KEY=[REDACTED:openai-key]'],
    ['OpenRouter key', 'sk-or-v1-0123456789abcdef0123456789abcdef', '[REDACTED:openai-key]'],
    ['Google API key', '?key=AIzaSyFAKE-TEST-KEY-DO-NOT-USE-000000', '?key=[REDACTED:google-api-key]'],
    ['Google OAuth token', 'token ya29.a0FAKE_token-value.x', 'token [REDACTED:google-oauth-token]'],
    ['JWT', 'jwt eyJhbGciOiJub25lIn0.eyJzdWIiOiJ4In0. done', 'jwt [REDACTED:jwt] done'],
    ['bearer token', 'Authorization: Bearer abcDEF0123456789xyz', 'Authorization: Bearer [REDACTED:bearer-token]'],
    ['lowercase bearer', 'bearer 0123456789abcdef01', 'bearer [REDACTED:bearer-token]'],
  ])('masks a %s', (_kind, input, expected) => {
    expect(redactSecrets(input)).toBe(expected);
  });

  it('masks a bearer token that is also a known key once', () => {
    expect(redactSecrets('Bearer sk-ant-oat01-FAKE-TOKEN-0000')).toBe('Bearer [REDACTED:anthropic-key]');
  });

  it('leaves ordinary words alone', () => {
    const prose = 'Use Bearer authentication; the task-queue-processing-worker and sk-learn are fine. AIza is short.';
    expect(redactSecrets(prose)).toBe(prose);
  });

  it('masks every occurrence', () => {
    expect(redactSecrets('sk-ant-api03-FAKEFAKEFAKE and sk-ant-api03-FAKEFAKEFAKE')).toBe(
      '[REDACTED:anthropic-key] and [REDACTED:anthropic-key]',
    );
  });
});

describe('isSecretHeader', () => {
  it.each([
    'authorization',
    'Proxy-Authorization',
    'x-api-key',
    'api-key',
    'x-goog-api-key',
    'cookie',
    'set-cookie',
    'chatgpt-account-id',
    'x-auth-token',
    'x-client-secret',
    'x-session-cookie',
    'anthropic-organization-id',
    'openai-organization',
    'openai-project',
  ])('drops %s', (name) => {
    expect(isSecretHeader(name)).toBe(true);
  });

  it.each([
    'x-claude-code-session-id',
    'session-id',
    'anthropic-ratelimit-input-tokens-limit',
    'x-ratelimit-remaining-tokens',
    'user-agent',
    'anthropic-beta',
  ])('keeps %s', (name) => {
    expect(isSecretHeader(name)).toBe(false);
  });
});

describe('redactHeaders', () => {
  it('drops credentials and masks secrets inside kept values', () => {
    expect(
      redactHeaders({
        Authorization: 'Bearer sk-proj-FAKE0000000000000000000000',
        'X-Custom': 'token=sk-proj-FAKE0000000000000000000000',
        'user-agent': 'claude-cli/2.1.197',
      }),
    ).toEqual({ 'x-custom': 'token=[REDACTED:openai-key]', 'user-agent': 'claude-cli/2.1.197' });
  });
});
