import { describe, expect, it } from 'vitest';
import { TokenwiseError } from '../errors.js';
import { builtinRoutes, createRouteRegistry, parseUpstreamOverrides } from './registry.js';

describe('createRouteRegistry', () => {
  it('contains every built-in route with an https base URL', () => {
    const registry = createRouteRegistry();
    expect(registry.names()).toEqual(
      expect.arrayContaining([
        'anthropic',
        'openai',
        'chatgpt',
        'gemini',
        'codeassist',
        'openrouter',
        'groq',
        'deepseek',
        'mistral',
        'xai',
        'together',
        'fireworks',
        'ollama',
      ]),
    );
    for (const route of builtinRoutes.filter((route) => !route.localModels)) {
      expect(route.baseUrl).toMatch(/^https:\/\/[^/]+(\/[^/]+)*$/);
    }
  });

  it('sends the local-model route to loopback only', () => {
    const ollama = createRouteRegistry().get('ollama');
    expect(ollama?.baseUrl).toBe('http://127.0.0.1:11434');
    expect(ollama?.localModels).toBe(true);
    expect(ollama?.errorFormat).toBe('ollama');
  });

  it('names the company behind each route', () => {
    const registry = createRouteRegistry();
    expect(registry.get('chatgpt')?.provider).toBe('openai');
    expect(registry.get('codeassist')?.provider).toBe('google');
    expect(registry.get('chatgpt')?.subscriptionBilled).toBe(true);
  });

  it('applies an upstream override and drops a trailing slash', () => {
    const registry = createRouteRegistry({ anthropic: 'http://127.0.0.1:9000/' });
    expect(registry.get('anthropic')?.baseUrl).toBe('http://127.0.0.1:9000');
    expect(registry.get('openai')?.baseUrl).toBe('https://api.openai.com');
  });

  it('keeps a base path in an override', () => {
    expect(createRouteRegistry({ chatgpt: 'http://127.0.0.1:9000/backend-api/codex' }).get('chatgpt')?.baseUrl).toBe(
      'http://127.0.0.1:9000/backend-api/codex',
    );
  });

  it.each([
    ['unknown route', { nosuch: 'http://127.0.0.1:1' }, /unknown route "nosuch".*known routes: anthropic/],
    ['non-http scheme', { anthropic: 'file:///etc/passwd' }, /must use http or https/],
    ['credentials', { anthropic: 'http://user:pw@127.0.0.1:1' }, /must not carry credentials/],
    ['query', { anthropic: 'http://127.0.0.1:1/?x=1' }, /must not carry credentials, a query/],
    ['unparseable URL', { anthropic: 'not a url' }, /invalid URL "not a url"/],
  ])('rejects an override with %s', (_name, overrides, message) => {
    expect(() => createRouteRegistry(overrides)).toThrow(TokenwiseError);
    expect(() => createRouteRegistry(overrides)).toThrow(message);
  });
});

describe('parseUpstreamOverrides', () => {
  it('parses NAME=URL pairs and lowercases the name', () => {
    expect(parseUpstreamOverrides(['Anthropic=http://127.0.0.1:1', 'gemini=http://127.0.0.1:2/x=y'])).toEqual({
      anthropic: 'http://127.0.0.1:1',
      gemini: 'http://127.0.0.1:2/x=y',
    });
  });

  it('rejects a pair without a name', () => {
    expect(() => parseUpstreamOverrides(['=http://x'])).toThrow(/expected NAME=URL/);
  });
});
