import { describe, expect, it } from 'vitest';
import { resolveServeConfig } from '../config.js';

describe('export settings', () => {
  it('appends /v1/traces to a base endpoint', () => {
    expect(resolveServeConfig({ otlpEndpoint: 'http://127.0.0.1:4318' }, {}).otlp?.tracesUrl).toBe('http://127.0.0.1:4318/v1/traces');
    expect(resolveServeConfig({ otlpEndpoint: 'https://otlp.example.com/otlp/' }, {}).otlp?.tracesUrl).toBe(
      'https://otlp.example.com/otlp/v1/traces',
    );
    expect(resolveServeConfig({}, { TOKENWISE_OTLP_ENDPOINT: 'http://c:4318/v1/traces' }).otlp?.tracesUrl).toBe('http://c:4318/v1/traces');
  });

  it('reads headers from flags and the variable', () => {
    const fromFlags = resolveServeConfig({ otlpEndpoint: 'http://c:4318', otlpHeader: ['X-Api-Key=abc=def', 'x-team= ops '] }, {});
    expect(fromFlags.otlp?.headers).toEqual({ 'x-api-key': 'abc=def', 'x-team': 'ops' });

    const fromVariable = resolveServeConfig({}, { TOKENWISE_OTLP_ENDPOINT: 'http://c:4318', TOKENWISE_OTLP_HEADERS: 'a=1%2C2,b=x' });
    expect(fromVariable.otlp?.headers).toEqual({ a: '1,2', b: 'x' });
  });

  it('keeps bodies off unless asked', () => {
    expect(resolveServeConfig({ otlpEndpoint: 'http://c:4318' }, {}).otlp?.includeBodies).toBe(false);
    expect(resolveServeConfig({ otlpEndpoint: 'http://c:4318', otlpBodies: true }, {}).otlp?.includeBodies).toBe(true);
    expect(resolveServeConfig({}, { TOKENWISE_OTLP_ENDPOINT: 'http://c:4318', TOKENWISE_OTLP_BODIES: 'yes' }).otlp?.includeBodies).toBe(
      true,
    );
  });

  it('rejects bad OTLP settings with the fix', () => {
    expect(() => resolveServeConfig({ otlpEndpoint: 'collector:4318' }, {})).toThrow(
      /invalid --otlp-endpoint "collector:4318": expected the http\(s\) URL/,
    );
    expect(() => resolveServeConfig({ otlpEndpoint: 'http://user:secret@c:4318' }, {})).toThrow(/pass them with --otlp-header/);
    expect(() => resolveServeConfig({ otlpEndpoint: 'http://user:secret@c:4318' }, {})).not.toThrow(/secret/);
    expect(() => resolveServeConfig({ otlpEndpoint: 'http://c:4318', otlpHeader: ['novalue'] }, {})).toThrow(/expected NAME=VALUE/);
    expect(() => resolveServeConfig({ otlpBodies: true }, {})).toThrow(/without --otlp-endpoint/);
    expect(() => resolveServeConfig({}, { TOKENWISE_OTLP_ENDPOINT: 'http://c:4318', TOKENWISE_OTLP_BODIES: 'maybe' })).toThrow(
      /invalid TOKENWISE_OTLP_BODIES "maybe"/,
    );
  });

  it('checks the metrics token without printing it', () => {
    expect(resolveServeConfig({ metricsToken: '0123456789abcdef' }, {}).metricsToken).toBe('0123456789abcdef');
    expect(() => resolveServeConfig({ metricsToken: 'short-secret' }, {})).toThrow(/invalid --metrics-token \(12 characters\)/);
    expect(() => resolveServeConfig({}, { TOKENWISE_METRICS_TOKEN: 'short-secret' })).not.toThrow(/short-secret/);
  });

  it('reads the Ollama listen address', () => {
    expect(resolveServeConfig({ ollamaListen: '127.0.0.1:11434' }, {}).ollamaListen).toEqual({ host: '127.0.0.1', port: 11434 });
    expect(resolveServeConfig({}, { TOKENWISE_OLLAMA_LISTEN: '0.0.0.0' }).ollamaListen).toEqual({ host: '0.0.0.0', port: 11434 });
    expect(() => resolveServeConfig({ ollamaListen: 'ftp://x:1' }, {})).toThrow(/invalid --ollama-listen "ftp:\/\/x:1"/);
  });
});
