import type { IncomingMessage } from 'node:http';

/**
 * Return the address of the client that sent `req`, the key of the per-client rate limits. With
 * `trustProxy` (the server runs behind a reverse proxy that appends the address it saw to
 * `X-Forwarded-For`, as Caddy and nginx's `$proxy_add_x_forwarded_for` do), that is the header's last
 * entry: the entries before it come from the client and can be forged. Without it, the header is ignored.
 */
export function clientAddress(req: IncomingMessage, trustProxy: boolean): string {
  const socketAddress = req.socket.remoteAddress ?? 'unknown';
  if (!trustProxy) return socketAddress;
  const header = req.headers['x-forwarded-for'];
  const value = Array.isArray(header) ? header.at(-1) : header;
  const last = value?.split(',').at(-1)?.trim();
  return last ? last : socketAddress;
}
