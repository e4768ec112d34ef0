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
    expect(() => resolveServeConfig({}, { TOKENWISE_UPSTREAM_MY_ROUTE: 'http://x' })).toThrow(
      'unknown route "my-route" in TOKENWISE_UPSTREAM_MY_ROUTE',
    );
  });

  // Regression: a bad TOKENWISE_UPSTREAM_* variable was reported as an --upstream flag the user never
  // passed, and an empty one was read as unset, sending that route to the real provider.
  it.each([
    [{ TOKENWISE_UPSTREAM_FOO: 'http://127.0.0.1:1' }, 'unknown route "foo" in TOKENWISE_UPSTREAM_FOO; known routes: anthropic, openai'],
    [
      { TOKENWISE_UPSTREAM_ANTHROPIC: 'ftp://127.0.0.1:1' },
      'invalid TOKENWISE_UPSTREAM_ANTHROPIC: upstream anthropic must use http or https',
    ],
    [{ TOKENWISE_UPSTREAM_ANTHROPIC: '' }, 'TOKENWISE_UPSTREAM_ANTHROPIC is set but empty: set it to a base URL'],
    [{ TOKENWISE_UPSTREAM_OPENAI: '  ' }, 'TOKENWISE_UPSTREAM_OPENAI is set but empty'],
  ])('rejects the upstream variables %j naming the variable', (env, message) => {
    expect(() => resolveServeConfig({}, env)).toThrow(message);
  });

  it('lets a flag replace a bad upstream variable', () => {
    const config = resolveServeConfig({ upstream: ['anthropic=http://127.0.0.1:1'] }, { TOKENWISE_UPSTREAM_ANTHROPIC: 'ftp://x' });

    expect(config.upstreams).toEqual({ anthropic: 'http://127.0.0.1:1' });
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
