import { TokenwiseError } from '@tokenwise/core';

/**
 * SQLSTATE codes that mean the server cannot be used for now, though nothing is wrong with the query:
 * class 08 (connection exception), 57P01-57P03 (the server shuts down, crashed or is starting) and
 * 53300 (too many connections).
 */
const UNAVAILABLE_SQLSTATES = /^(08...|57P0[123]|53300)$/;

/** Socket errors of a server that is stopped, restarting or out of reach. */
const UNAVAILABLE_NETWORK_CODES = new Set(['ECONNREFUSED', 'ECONNRESET', 'ETIMEDOUT', 'EPIPE', 'EHOSTUNREACH', 'ENETUNREACH', 'EAI_AGAIN']);

/**
 * Errors that node-postgres (pg 8.23, pg-pool 3.14) raises without a code when a connection ends or cannot
 * be opened in time.
 */
const UNAVAILABLE_MESSAGES = [
  'Connection terminated',
  'Connection terminated unexpectedly',
  'Connection terminated due to connection timeout',
  'timeout exceeded when trying to connect',
  'timeout expired',
  'Client has encountered a connection error and is not queryable',
];

/** Return true when `error` means PostgreSQL is out of reach for now, so the same work may succeed later. */
export function isPostgresUnavailable(error: unknown): boolean {
  const seen = new Set<unknown>();
  let current: unknown = error;
  while (current instanceof Error && !seen.has(current)) {
    seen.add(current);
    const code = (current as { code?: unknown }).code;
    if (typeof code === 'string' && (UNAVAILABLE_SQLSTATES.test(code) || UNAVAILABLE_NETWORK_CODES.has(code))) return true;
    if (UNAVAILABLE_MESSAGES.includes(current.message)) return true;
    const errors = (current as { errors?: unknown }).errors;
    current = Array.isArray(errors) && errors.length > 0 ? errors[0] : current.cause;
  }
  return false;
}

/**
 * Turn an error that means PostgreSQL is out of reach into `store_unavailable`, so callers that can wait
 * (the record sink) keep their data and retry. Other errors come back unchanged.
 */
export function describePostgresFailure(displayUrl: string, error: unknown): unknown {
  if (error instanceof TokenwiseError || !isPostgresUnavailable(error)) return error;
  const reason = (error as { code?: unknown }).code ?? (error as Error).message;
  return new TokenwiseError(
    'store_unavailable',
    `PostgreSQL at ${displayUrl} is unavailable (${String(reason)}): the write is retried; check that the server runs and accepts connections`,
    { cause: error },
  );
}
