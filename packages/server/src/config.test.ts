import { describe, expect, it } from 'vitest';
import { DEFAULT_PORT, resolveServeConfig } from './config.js';

describe('resolveServeConfig', () => {
  it('uses the defaults', () => {
    const config = resolveServeConfig({}, {});

    expect(config.host).toBe('127.0.0.1');
    expect(config.port).toBe(DEFAULT_PORT);
    expect(config.dataDir).toMatch(/\.tokenwise$/);
    expect(config.upstreams).toEqual({});
    expect(config.logLevel).toBe('info');
    expect(config.bodyCapBytes).toBeUndefined();
  });

  it('reads TOKENWISE_* variables', () => {
    const config = resolveServeConfig(
      {},
      {
        TOKENWISE_HOST: '0.0.0.0',
        TOKENWISE_PORT: '0',
        TOKENWISE_DATA_DIR: '/tmp/tw',
        TOKENWISE_UPSTREAM_ANTHROPIC: 'http://127.0.0.1:9000',
        TOKENWISE_LOG_LEVEL: 'warn',
        TOKENWISE_BODY_CAP_BYTES: '1024',
      },
    );

    expect(config).toEqual({
      host: '0.0.0.0',
      port: 0,
      dataDir: '/tmp/tw',
      upstreams: { anthropic: 'http://127.0.0.1:9000' },
      logLevel: 'warn',
      bodyCapBytes: 1024,
    });
  });

  it('prefers flags over variables, per upstream name', () => {
    const config = resolveServeConfig(
      { port: '5000', upstream: ['anthropic=http://127.0.0.1:1'] },
      { TOKENWISE_PORT: '6000', TOKENWISE_UPSTREAM_ANTHROPIC: 'http://127.0.0.1:2', TOKENWISE_UPSTREAM_OPENAI: 'http://127.0.0.1:3' },
    );

    expect(config.port).toBe(5000);
    expect(config.upstreams).toEqual({ anthropic: 'http://127.0.0.1:1', openai: 'http://127.0.0.1:3' });
  });

  it('maps underscores in upstream variable names to dashes', () => {
    expect(resolveServeConfig({}, { TOKENWISE_UPSTREAM_MY_ROUTE: 'http://x' }).upstreams).toEqual({ 'my-route': 'http://x' });
  });

  it.each([
    [{ port: 'abc' }, {}, 'invalid --port "abc": expected a port number from 0 to 65535'],
    [{}, { TOKENWISE_PORT: '70000' }, 'invalid TOKENWISE_PORT "70000"'],
    [{ logLevel: 'loud' }, {}, 'invalid --log-level "loud": expected one of fatal, error, warn, info, debug, trace, silent'],
    [{}, { TOKENWISE_BODY_CAP_BYTES: '4MB' }, 'invalid TOKENWISE_BODY_CAP_BYTES "4MB"'],
    [{ upstream: ['anthropic'] }, {}, 'invalid --upstream "anthropic": expected NAME=URL'],
  ])('rejects %j %j naming the source', (flags, env, message) => {
    expect(() => resolveServeConfig(flags, env)).toThrow(message);
  });
});
