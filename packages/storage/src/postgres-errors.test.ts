import { TokenwiseError } from '@tokenwise/core';
import { describe, expect, it } from 'vitest';
import { describePostgresFailure, isPostgresUnavailable } from './postgres-errors.js';

function withCode(message: string, code: string): Error {
  return Object.assign(new Error(message), { code });
}

describe('isPostgresUnavailable', () => {
  it.each([
    ['a refused connection', withCode('connect ECONNREFUSED 127.0.0.1:5999', 'ECONNREFUSED')],
    ['a fast shutdown', withCode('terminating connection due to administrator command', '57P01')],
    ['a server starting up', withCode('the database system is starting up', '57P03')],
    ['a connection exception', withCode('connection failure', '08006')],
    ['too many connections', withCode('sorry, too many clients already', '53300')],
    ['a dropped connection', new Error('Connection terminated unexpectedly')],
    ['a pool timeout', new Error('timeout exceeded when trying to connect')],
    ['a wrapped refusal', new Error('Connection terminated due to connection timeout', { cause: withCode('x', 'ECONNREFUSED') })],
    ['every address refused', Object.assign(new AggregateError([withCode('a', 'ECONNREFUSED')], ''), {})],
  ])('is true for %s', (_name, error) => {
    expect(isPostgresUnavailable(error)).toBe(true);
  });

  it.each([
    ['a unique violation', withCode('duplicate key value violates unique constraint', '23505')],
    ['a syntax error', withCode('syntax error at or near "SELEC"', '42601')],
    ['wrong credentials', withCode('password authentication failed for user "x"', '28P01')],
    ['a plain error', new Error('something else')],
  ])('is false for %s', (_name, error) => {
    expect(isPostgresUnavailable(error)).toBe(false);
  });
});

describe('describePostgresFailure', () => {
  it('names the server and the retry', () => {
    const described = describePostgresFailure('postgres://tokenwise@db:5432/tokenwise', withCode('refused', 'ECONNREFUSED'));
    expect(described).toBeInstanceOf(TokenwiseError);
    expect(described).toMatchObject({ code: 'store_unavailable' });
    expect((described as Error).message).toBe(
      'PostgreSQL at postgres://tokenwise@db:5432/tokenwise is unavailable (ECONNREFUSED): the write is retried; check that the server runs and accepts connections',
    );
  });

  it('returns other errors unchanged', () => {
    const error = withCode('duplicate key', '23505');
    expect(describePostgresFailure('postgres://db/x', error)).toBe(error);
  });
});
