/**
 * Describe why `fetch` failed, in words a person can act on. Node's fetch (undici) throws a bare
 * `TypeError: fetch failed` and puts the reason in `cause`: a socket error with a `code`, or an Error such
 * as "bad port" for the ports the Fetch standard blocks (1, 22, 25, …).
 */
export function describeFetchFailure(error: unknown): string {
  if (error instanceof Error && (error.name === 'TimeoutError' || error.name === 'AbortError')) {
    return 'the server did not answer in time';
  }
  const cause = error instanceof Error ? (error.cause as (Error & { code?: string }) | undefined) : undefined;
  const code = cause?.code ?? (cause instanceof AggregateError ? (cause.errors[0] as { code?: string } | undefined)?.code : undefined);
  switch (code) {
    case 'ECONNREFUSED':
      return 'connection refused, so nothing listens on that port';
    case 'ENOTFOUND':
    case 'EAI_AGAIN':
      return 'the host name was not found';
    case 'ECONNRESET':
      return 'the connection was reset';
    case 'ETIMEDOUT':
    case 'UND_ERR_CONNECT_TIMEOUT':
      return 'the connection timed out';
    case 'EHOSTUNREACH':
    case 'ENETUNREACH':
      return 'no route to the host';
    case 'DEPTH_ZERO_SELF_SIGNED_CERT':
    case 'SELF_SIGNED_CERT_IN_CHAIN':
    case 'UNABLE_TO_VERIFY_LEAF_SIGNATURE':
    case 'CERT_HAS_EXPIRED':
    case 'ERR_TLS_CERT_ALTNAME_INVALID':
      return `the server's TLS certificate was rejected (${code})`;
  }
  if (cause?.message === 'bad port') return 'fetch blocks this port as unsafe, so use another port';
  if (code !== undefined) return code;
  if (cause?.message) return cause.message;
  return error instanceof Error ? error.message : String(error);
}
