import { once } from 'node:events';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';

/** Interval of the slow upstream's stream events, in ms. */
export const EVENT_INTERVAL_MS = 100;

export interface SlowUpstream {
  url: string;
  close(): Promise<void>;
}

/**
 * Start an Anthropic upstream: a non-streamed request gets a JSON message at once, a streamed one gets an event
 * every EVENT_INTERVAL_MS for `x-stream-ms` milliseconds.
 */
export async function startSlowUpstream(): Promise<SlowUpstream> {
  const server: Server = createServer((req: IncomingMessage, res: ServerResponse) => {
    const chunks: Buffer[] = [];
    req.on('data', (chunk: Buffer) => chunks.push(chunk));
    req.on('end', () => {
      const body = JSON.parse(Buffer.concat(chunks).toString('utf8')) as { stream?: boolean };
      if (!body.stream) {
        res.writeHead(200, { 'content-type': 'application/json' });
        res.end(
          JSON.stringify({
            id: 'msg_quick',
            type: 'message',
            role: 'assistant',
            model: 'claude-sonnet-4-5',
            content: [{ type: 'text', text: 'hi' }],
            stop_reason: 'end_turn',
            usage: { input_tokens: 5, output_tokens: 1 },
          }),
        );
        return;
      }

      res.writeHead(200, { 'content-type': 'text/event-stream' });
      const event = (type: string, data: object) => res.write(`event: ${type}\ndata: ${JSON.stringify({ type, ...data })}\n\n`);
      event('message_start', {
        message: {
          id: 'msg_slow',
          type: 'message',
          role: 'assistant',
          model: 'claude-sonnet-4-5',
          content: [],
          usage: { input_tokens: 5, output_tokens: 0 },
        },
      });
      event('content_block_start', { index: 0, content_block: { type: 'text', text: '' } });
      const endAt = Date.now() + Number(req.headers['x-stream-ms'] ?? 1000);
      const timer = setInterval(() => {
        if (Date.now() < endAt) {
          event('content_block_delta', { index: 0, delta: { type: 'text_delta', text: '.' } });
          return;
        }
        clearInterval(timer);
        event('content_block_stop', { index: 0 });
        event('message_delta', { delta: { stop_reason: 'end_turn' }, usage: { output_tokens: 9 } });
        event('message_stop', {});
        res.end();
      }, EVENT_INTERVAL_MS);
      res.on('close', () => clearInterval(timer));
    });
  });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    close: () =>
      new Promise((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      }),
  };
}
