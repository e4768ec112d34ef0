import { createServer, type Server } from 'node:http';
import type { AddressInfo, Socket } from 'node:net';
import type { ProxyAttempt } from './sandbox-protocol.js';

export interface RefusingProxy {
  readonly url: string;
  attempts(): ProxyAttempt[];
  close(): Promise<void>;
}

/**
 * An HTTP proxy that forwards nothing: it records every `CONNECT` and every absolute-URL request and
 * answers 403. Clients in the sandbox get it as HTTPS_PROXY/HTTP_PROXY/ALL_PROXY, so any traffic that
 * bypasses the base URL they were given shows up here instead of leaving the machine.
 */
export async function startRefusingProxy(): Promise<RefusingProxy> {
  const attempts: ProxyAttempt[] = [];
  const note = (method: string, target: string, userAgent: string | undefined) =>
    attempts.push({ method, target, userAgent: userAgent ?? null, at: new Date().toISOString() });

  const server: Server = createServer((request, response) => {
    note(request.method ?? 'GET', request.url ?? '', request.headers['user-agent']);
    request.resume();
    response.writeHead(403, { 'content-type': 'text/plain', connection: 'close' });
    response.end('refused by the Tokenwise test sandbox: only 127.0.0.1 is reachable\n');
  });
  server.on('connect', (request, socket: Socket) => {
    note('CONNECT', request.url ?? '', request.headers['user-agent']);
    socket.end('HTTP/1.1 403 Forbidden\r\nContent-Length: 0\r\nConnection: close\r\n\r\n');
  });

  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => resolve());
  });
  const { port } = server.address() as AddressInfo;

  return {
    url: `http://127.0.0.1:${port}`,
    attempts: () => attempts.map((attempt) => ({ ...attempt })),
    close: () =>
      new Promise((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      }),
  };
}
