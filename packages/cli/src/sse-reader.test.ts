import { describe, expect, it } from 'vitest';
import { readServerSentEvents, type ServerSentEvent } from './sse-reader.js';

async function readAll(chunks: string[]): Promise<ServerSentEvent[]> {
  const encoder = new TextEncoder();
  const body = new ReadableStream<Uint8Array>({
    start(controller) {
      for (const chunk of chunks) controller.enqueue(encoder.encode(chunk));
      controller.close();
    },
  });
  const events: ServerSentEvent[] = [];
  for await (const event of readServerSentEvents(body)) events.push(event);
  return events;
}

describe('readServerSentEvents', () => {
  it('reads id, event and data, skipping comments', async () => {
    const events = await readAll([': hello\nretry: 2000\n\n', 'id: 7\nevent: call\ndata: {"a":1}\n\n']);

    expect(events).toEqual([{ id: '7', event: 'call', data: '{"a":1}' }]);
  });

  it('joins data lines and keeps the last id', async () => {
    const events = await readAll(['id: 1\ndata: one\ndata: two\n\n', 'data: three\n\n']);

    expect(events).toEqual([
      { id: '1', event: 'message', data: 'one\ntwo' },
      { id: '1', event: 'message', data: 'three' },
    ]);
  });

  it('handles CRLF and CR split across chunks', async () => {
    const events = await readAll(['event: call\r', '\ndata: x\r\n\r', '\nevent: call\rdata:y\r\r']);

    expect(events).toEqual([
      { id: null, event: 'call', data: 'x' },
      { id: null, event: 'call', data: 'y' },
    ]);
  });

  it('decodes UTF-8 split inside a character', async () => {
    const bytes = new TextEncoder().encode('data: héllo\n\n');
    const body = new ReadableStream<Uint8Array>({
      start(controller) {
        controller.enqueue(bytes.slice(0, 8));
        controller.enqueue(bytes.slice(8));
        controller.close();
      },
    });
    const events: ServerSentEvent[] = [];
    for await (const event of readServerSentEvents(body)) events.push(event);

    expect(events[0]?.data).toBe('héllo');
  });
});
