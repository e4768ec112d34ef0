import { describe, expect, it } from 'vitest';
import { isAbsoluteFormTarget, joinUpstreamUrl, parseProxyPath, redactRouteToken } from './proxy-path.js';

const TOKEN = 'tw_abcdefghijklmnop';

describe('parseProxyPath', () => {
  it('splits token, route and rest with the query kept', () => {
    expect(parseProxyPath(`/r/${TOKEN}/anthropic/v1/messages?beta=true`)).toEqual({
      ok: true,
      token: TOKEN,
      route: 'anthropic',
      rest: '/v1/messages?beta=true',
    });
  });

  it('accepts a route root with no rest', () => {
    expect(parseProxyPath(`/r/${TOKEN}/gemini`)).toEqual({ ok: true, token: TOKEN, route: 'gemini', rest: '' });
  });

  it('keeps a Gemini model path with a colon', () => {
    const parsed = parseProxyPath(`/r/${TOKEN}/gemini/v1beta/models/gemini-2.5-flash:streamGenerateContent?alt=sse`);
    expect(parsed).toMatchObject({ ok: true, rest: '/v1beta/models/gemini-2.5-flash:streamGenerateContent?alt=sse' });
  });

  it('leaves dots inside the query alone', () => {
    expect(parseProxyPath(`/r/${TOKEN}/openai/v1/models?next=../x`)).toMatchObject({ ok: true, rest: '/v1/models?next=../x' });
  });

  it.each([
    ['dot-dot segment', `/r/${TOKEN}/chatgpt/../../admin`],
    ['single dot segment', `/r/${TOKEN}/chatgpt/./responses`],
    ['encoded dot-dot', `/r/${TOKEN}/chatgpt/%2e%2e/admin`],
    ['mixed-case encoded dot-dot', `/r/${TOKEN}/chatgpt/.%2E/admin`],
    ['encoded slash', `/r/${TOKEN}/openai/v1%2F..%2Fadmin`],
    ['backslash', `/r/${TOKEN}/openai/v1\\admin`],
    ['encoded backslash', `/r/${TOKEN}/openai/v1%5cadmin`],
    ['encoded NUL', `/r/${TOKEN}/openai/v1%00`],
  ])('rejects a %s', (_name, target) => {
    expect(parseProxyPath(target)).toMatchObject({ ok: false, reason: 'invalid_path' });
  });

  it.each([
    ['absolute-form target', 'http://evil.example/r/x/anthropic'],
    ['asterisk-form target', '*'],
    ['another path', '/api/v1/calls'],
  ])('marks an %s as not a proxy path', (_name, target) => {
    expect(parseProxyPath(target)).toMatchObject({ ok: false, reason: 'not_proxy_path' });
  });

  it.each([
    ['empty token', '/r//anthropic/v1/messages'],
    ['oversized token', `/r/${'x'.repeat(257)}/anthropic/v1/messages`],
    ['missing route', `/r/${TOKEN}`],
    ['uppercase route', `/r/${TOKEN}/Anthropic/v1/messages`],
    ['empty route', `/r/${TOKEN}//v1/messages`],
  ])('rejects a %s', (_name, target) => {
    expect(parseProxyPath(target)).toMatchObject({ ok: false, reason: 'invalid_path' });
  });

  it('leaves a mangled token to the token lookup', () => {
    expect(parseProxyPath('/r/abc.def/anthropic/v1/messages')).toMatchObject({ ok: true, token: 'abc.def', route: 'anthropic' });
  });

  it('rejects an absolute-form target without quoting it', () => {
    const parsed = parseProxyPath(`http://127.0.0.1:4747/r/${TOKEN}/anthropic/v1/messages`);
    expect(parsed).toMatchObject({ ok: false, reason: 'not_proxy_path' });
    if (!parsed.ok) {
      expect(parsed.message).toMatch(/^absolute-form request targets .* are not supported/);
      expect(parsed.message).not.toContain(TOKEN);
      expect(parsed.message).not.toContain('127.0.0.1');
    }
  });

  it('masks route tokens in a quoted target', () => {
    const parsed = parseProxyPath(`/v1/r/${TOKEN}/anthropic`);
    expect(parsed.ok).toBe(false);
    if (!parsed.ok) expect(parsed.message).toBe('not a proxy path: expected /r/{token}/{route}/..., got "/v1/r/{token}/anthropic"');
  });

  it('never quotes the query, which may carry a key', () => {
    const parsed = parseProxyPath('/v1beta/models/gemini-2.5-flash:generateContent?key=AIzaFAKE-TEST-KEY-000000000000');
    expect(parsed.ok).toBe(false);
    if (!parsed.ok) {
      expect(parsed.message).toContain('"/v1beta/models/gemini-2.5-flash:generateContent"');
      expect(parsed.message).not.toContain('AIza');
    }
  });

  it('quotes no route segment that may be a token', () => {
    const parsed = parseProxyPath(`/r/anthropic/${TOKEN}/v1/messages`);
    expect(parsed.ok).toBe(false);
    if (!parsed.ok) expect(parsed.message).toBe('invalid route name in the URL: expected lowercase letters, digits and dashes');
  });

  it('quotes a route name in the wrong case', () => {
    const parsed = parseProxyPath(`/r/${TOKEN}/Anthropic/v1/messages`);
    expect(parsed.ok).toBe(false);
    if (!parsed.ok) expect(parsed.message).toContain('"Anthropic"');
  });

  it('never echoes the token in an error message', () => {
    const parsed = parseProxyPath(`/r/${TOKEN}/Anthropic/v1/messages`);
    expect(parsed.ok).toBe(false);
    if (!parsed.ok) expect(parsed.message).not.toContain(TOKEN);
  });
});

describe('isAbsoluteFormTarget', () => {
  it.each([
    ['http://host/r/x/anthropic', true],
    ['HTTPS://host/', true],
    ['api.anthropic.com:443', true],
    ['/r/x/anthropic', false],
    ['*', false],
  ])('classifies %s', (target, expected) => {
    expect(isAbsoluteFormTarget(target)).toBe(expected);
  });
});

describe('redactRouteToken', () => {
  it('masks every token segment and keeps the rest', () => {
    expect(redactRouteToken(`http://h/r/${TOKEN}/openai/r/${TOKEN}?q=1`)).toBe('http://h/r/{token}/openai/r/{token}?q=1');
  });
});

describe('joinUpstreamUrl', () => {
  it('appends the rest to a base path', () => {
    expect(joinUpstreamUrl('https://chatgpt.com/backend-api/codex', '/responses').href).toBe(
      'https://chatgpt.com/backend-api/codex/responses',
    );
  });

  it('keeps the query string byte for byte', () => {
    expect(joinUpstreamUrl('https://api.anthropic.com', '/v1/messages?beta=true').href).toBe(
      'https://api.anthropic.com/v1/messages?beta=true',
    );
  });

  it('keeps the origin when the rest starts with two slashes', () => {
    const url = joinUpstreamUrl('https://api.openai.com', '//evil.example/v1/chat');
    expect(url.origin).toBe('https://api.openai.com');
    expect(url.pathname).toBe('//evil.example/v1/chat');
  });

  it('keeps the origin for a rest that looks like an authority', () => {
    expect(joinUpstreamUrl('http://127.0.0.1:9000', '@evil.example/x').origin).toBe('http://127.0.0.1:9000');
  });

  it('maps an empty rest to the base path', () => {
    expect(joinUpstreamUrl('https://openrouter.ai/api', '').href).toBe('https://openrouter.ai/api');
  });
});
