import { resolveServeConfig } from '@tokenwise/server';
import { describe, expect, it } from 'vitest';

describe('serve config for PostgreSQL and roles', () => {
  it('leaves the database, role and token cache unset by default', () => {
    const config = resolveServeConfig({}, {});

    expect(config.databaseUrl).toBeUndefined();
    expect(config.role).toBeUndefined();
    expect(config.tokenCacheMs).toBeUndefined();
  });

  it('reads the variables', () => {
    const config = resolveServeConfig(
      {},
      {
        TOKENWISE_DATABASE_URL: 'postgres://tokenwise:secret@db:5432/tokenwise',
        TOKENWISE_ROLE: 'proxy',
        TOKENWISE_TOKEN_CACHE_SECONDS: '2',
      },
    );

    expect(config.databaseUrl).toBe('postgres://tokenwise:secret@db:5432/tokenwise');
    expect(config.role).toBe('proxy');
    expect(config.tokenCacheMs).toBe(2000);
  });

  it('prefers the flags', () => {
    const config = resolveServeConfig(
      { databaseUrl: 'postgresql://db/flag', role: 'app', tokenCacheSeconds: '0' },
      { TOKENWISE_DATABASE_URL: 'postgres://db/env', TOKENWISE_ROLE: 'proxy', TOKENWISE_TOKEN_CACHE_SECONDS: '9' },
    );

    expect(config.databaseUrl).toBe('postgresql://db/flag');
    expect(config.role).toBe('app');
    expect(config.tokenCacheMs).toBe(0);
  });

  it('rejects a database URL that is not PostgreSQL without repeating it', () => {
    const attempt = () => resolveServeConfig({}, { TOKENWISE_DATABASE_URL: 'mysql://root:hunter2@db/tokenwise' });

    expect(attempt).toThrow('invalid TOKENWISE_DATABASE_URL: invalid PostgreSQL URL scheme "mysql:"');
    expect(attempt).not.toThrow(/hunter2/);
  });

  it('rejects a malformed database URL', () => {
    expect(() => resolveServeConfig({ databaseUrl: 'not a url' }, {})).toThrow(
      'invalid --database-url: invalid PostgreSQL URL: expected postgres://user:password@host:5432/database',
    );
  });

  it.each([
    ['--role', { role: 'worker' }, 'invalid --role "worker": expected one of proxy, app, both'],
    ['--token-cache-seconds', { tokenCacheSeconds: '301' }, 'invalid --token-cache-seconds "301": expected whole seconds from 0 to 300'],
    ['--token-cache-seconds', { tokenCacheSeconds: '1.5' }, 'invalid --token-cache-seconds "1.5": expected whole seconds from 0 to 300'],
  ])('rejects a bad %s', (_flag, flags, message) => {
    expect(() => resolveServeConfig(flags, {})).toThrow(message);
  });
});
