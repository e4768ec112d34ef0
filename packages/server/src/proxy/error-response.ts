import { type ServerResponse, STATUS_CODES } from 'node:http';
import type { Duplex } from 'node:stream';
import { type ErrorFormat, formatProviderError, type ProxyErrorKind } from '@tokenwise/core';

/** An error response the proxy sends itself, rendered in the route's provider shape. */
export interface ProxyError {
  status: number;
  kind: ProxyErrorKind;
  format: ErrorFormat;
  message: string;
  /** Extra response headers, such as `retry-after`. */
  headers?: Record<string, string>;
}

export function sendProxyError(res: ServerResponse, error: ProxyError): void {
  if (res.headersSent) {
    res.destroy();
    return;
  }
  const body = formatProviderError(error.format, error.status, error.kind, error.message);
  res.writeHead(error.status, { ...error.headers, 'content-type': 'application/json', 'content-length': Buffer.byteLength(body) });
  res.end(body);
}

/** Write an error response to an upgrade request's raw socket and close the connection after the body. */
export function writeProxyErrorToSocket(socket: Duplex, error: ProxyError): void {
  const body = formatProviderError(error.format, error.status, error.kind, error.message);
  const head = [
    `HTTP/1.1 ${error.status} ${STATUS_CODES[error.status] ?? ''}`,
    'content-type: application/json',
    `content-length: ${Buffer.byteLength(body)}`,
    'connection: close',
    ...Object.entries(error.headers ?? {}).map(([name, value]) => `${name}: ${value}`),
  ];
  if (!socket.writable) {
    socket.destroy();
    return;
  }
  socket.end(`${head.join('\r\n')}\r\n\r\n${body}`);
}
