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
    ['AWS access key id', 'id AKIAIOSFODNN7EXAMPLE,', 'id [REDACTED:aws-access-key-id],'],
    [
      'AWS secret access key',
      'aws_secret_access_key = wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY',
      'aws_secret_access_key = [REDACTED:aws-secret-key]',
    ],
    [
      'GitHub token',
      'origin https://ghp_FAKE0123456789abcdefghijklmnopqrstuv@github.com',
      'origin https://[REDACTED:github-token]@github.com',
    ],
    ['GitLab token', 'PRIVATE-TOKEN: glpat-FAKE0123456789abcdef', 'PRIVATE-TOKEN: [REDACTED:gitlab-token]'],
    ['Slack token', '"xoxb-0000-1111-FAKEfakeFAKEfake"', '"[REDACTED:slack-token]"'],
    ['.env value', 'DEBUG=1\nDB_PASSWORD=hunter2hunter2\n', 'DEBUG=1\nDB_PASSWORD=[REDACTED:env-secret]\n'],
    ['quoted assignment', "secret_key = 'not-for-your-eyes'", "secret_key = '[REDACTED:env-secret]'"],
    ['URL password', 'postgres://app:s3cretpass@db:5432/app', 'postgres://app:[REDACTED:url-password]@db:5432/app'],
    ['JSON password', '{"password": "hunter2"}', '{"password": "[REDACTED:json-secret]"}'],
    ['YAML password', 'user: app\npassword: hunter2\n', 'user: app\npassword: [REDACTED:yaml-secret]\n'],
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

  it('masks a PEM private key whole, also inside a JSON string', () => {
    const key = '-----BEGIN PRIVATE KEY-----\nMIIEvQIBADANBgkqhkiG9w0BAQEFAASC\n-----END PRIVATE KEY-----';

    expect(redactSecrets(`key:\n${key}\nend`)).toBe('key:\n[REDACTED:private-key]\nend');
    expect(redactSecrets(JSON.stringify({ private_key: key }))).toBe('{"private_key":"[REDACTED:private-key]"}');
  });

  it('masks a private key cut off before its END line', () => {
    expect(redactSecrets('-----BEGIN RSA PRIVATE KEY-----\nMIIEpAIBAAKCAQEA7')).toBe('[REDACTED:private-key]');
  });

  it('leaves references and secret-named settings alone', () => {
    const reference = '$' + '{DB_PASSWORD}';
    const text = `PASSWORD_MIN_LENGTH=12\nMAX_TOKENS=4096\nDB_PASSWORD=${reference}\nSECRET_KEY = os.environ["SECRET_KEY"]`;
    expect(redactSecrets(text)).toBe(text);
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
