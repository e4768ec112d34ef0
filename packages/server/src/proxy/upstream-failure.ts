import type { ProxyErrorKind } from '@tokenwise/core';

/** The error response the proxy sends when the upstream never responded. */
export interface UpstreamFailure {
  status: number;
  kind: ProxyErrorKind;
  /** Names the upstream origin and the cause in words an AI tool can show; never a stack or internal state. */
  message: string;
}

/** Failures of a connection the upstream accepted: it was reachable, and then closed or reset the connection. */
const CLOSES: Record<string, string> = {
  ECONNRESET: 'reset the connection',
  UND_ERR_SOCKET: 'closed the connection',
  EPIPE: 'closed the connection while the request was being sent',
};

const CAUSES: Record<string, string> = {
  ECONNREFUSED: 'connection refused',
  ENOTFOUND: 'host name not found',
  EAI_AGAIN: 'host name lookup failed temporarily',
  EHOSTUNREACH: 'host unreachable',
  ENETUNREACH: 'network unreachable',
};

const TIMEOUTS: Record<string, string> = {
  UND_ERR_CONNECT_TIMEOUT: 'connection timed out',
  ETIMEDOUT: 'connection timed out',
  UND_ERR_HEADERS_TIMEOUT: 'no response headers in time',
};

/** Map an undici or socket error raised before any response headers to a status and a message. */
export function describeUpstreamFailure(error: unknown, upstreamOrigin: string): UpstreamFailure {
  const parserReason = httpParserReason(error);
  if (parserReason !== null) return invalidResponse(upstreamOrigin, parserReason);

  const code = errorCode(error);

  if (code === 'UND_ERR_INVALID_ARG') {
    // undici validates the method and headers it is handed; Node's parser has already accepted them,
    // so this is a request undici cannot express rather than an upstream fault.
    const detail = error instanceof Error ? error.message : 'invalid request';
    return { status: 400, kind: 'invalid_request', message: `request cannot be forwarded to ${upstreamOrigin}: ${detail}` };
  }

  const timeout = code === undefined ? undefined : TIMEOUTS[code];
  if (timeout) {
    return {
      status: 504,
      kind: 'upstream_timeout',
      message: `upstream ${upstreamOrigin} timed out: ${timeout} (${code}); retry, or check the network or the --upstream setting`,
    };
  }

  const closed = code === undefined ? undefined : CLOSES[code];
  if (closed) {
    return {
      status: 502,
      kind: 'upstream_unreachable',
      message: `upstream ${upstreamOrigin} ${closed} before responding (${code}); retry, or check the --upstream setting`,
    };
  }

  const cause = code === undefined ? 'request failed' : (CAUSES[code] ?? tlsCause(code) ?? 'request failed');
  const suffix = code === undefined ? '' : ` (${code})`;
  return {
    status: 502,
    kind: 'upstream_unreachable',
    message: `upstream ${upstreamOrigin} unreachable: ${cause}${suffix}; check the network or the --upstream setting`,
  };
}

/**
 * Describe an upstream that responded with bytes that are not a valid HTTP response. It was reachable,
 * so the message points at what the URL leads to rather than at the network. The usual cause is a scheme
 * or port of something other than an HTTP server (an `http://` URL on a TLS port, another protocol).
 */
export function invalidResponse(upstreamOrigin: string, reason: string): UpstreamFailure {
  return {
    status: 502,
    kind: 'upstream_invalid_response',
    message: `upstream ${upstreamOrigin} sent an invalid HTTP response: ${reason}; check that the --upstream URL's scheme and port lead to an HTTP server`,
  };
}

/**
 * Return the reason of an HTTP parser error, or null for any other error: undici's HTTPParserError
 * ("Response does not match the HTTP/1.1 protocol (Invalid header value char)", as of undici 7.30) or
 * the `HPE_*` error of Node's client, which `ws` uses (its `reason`, e.g. "Expected HTTP/"). Only
 * llhttp's fixed reason text is kept, because both errors also carry the upstream's raw bytes
 * (`data`, `rawPacket`), which must not reach a message.
 */
function httpParserReason(error: unknown): string | null {
  if (!(error instanceof Error)) return null;
  if (error.name === 'HTTPParserError') {
    const detail = /\(([^()]{1,100})\)$/.exec(error.message)?.[1];
    return detail ? detail.toLowerCase() : 'not an HTTP/1.1 response';
  }
  const { code, reason } = error as { code?: unknown; reason?: unknown };
  if (typeof code !== 'string' || !code.startsWith('HPE_')) return null;
  return typeof reason === 'string' && reason.length <= 100 ? reason.toLowerCase() : code;
}

/** Find the error's code, looking through `cause` and the AggregateError Node raises when every address failed. */
export function errorCode(error: unknown): string | undefined {
  const seen = new Set<unknown>();
  let current: unknown = error;
  while (current && typeof current === 'object' && !seen.has(current)) {
    seen.add(current);
    const { code, errors, cause } = current as { code?: unknown; errors?: unknown; cause?: unknown };
    if (typeof code === 'string' && code !== 'UND_ERR') return code;
    current = Array.isArray(errors) && errors.length > 0 ? errors[0] : cause;
  }
  return undefined;
}

function tlsCause(code: string): string | undefined {
  if (code.startsWith('ERR_TLS_') || code.startsWith('ERR_SSL_') || code.includes('CERT') || code.includes('SIGNATURE')) {
    return 'TLS handshake failed';
  }
  return undefined;
}
