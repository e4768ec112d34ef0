export interface ServerSentEvent {
  id: string | null;
  event: string;
  data: string;
}

/**
 * Read server-sent events from a response body as the WHATWG HTML spec parses them. Lines end in LF, CR
 * or CRLF, and a blank line dispatches an event. A line starting with `:` is a comment, one space after
 * the colon is dropped, and `data` lines join with LF. Events without data are not dispatched.
 */
export async function* readServerSentEvents(body: ReadableStream<Uint8Array>): AsyncGenerator<ServerSentEvent> {
  const decoder = new TextDecoder();
  const parser = createLineParser();

  for await (const chunk of body as unknown as AsyncIterable<Uint8Array>) {
    yield* parser.push(decoder.decode(chunk, { stream: true }), false);
  }
  yield* parser.push(decoder.decode(), true);
}

function createLineParser() {
  let buffer = '';
  let id: string | null = null;
  let eventType = '';
  let data: string[] = [];

  function* takeLine(line: string): Generator<ServerSentEvent> {
    if (line === '') {
      if (data.length > 0) yield { id, event: eventType || 'message', data: data.join('\n') };
      eventType = '';
      data = [];
      return;
    }
    if (line.startsWith(':')) return;

    const colon = line.indexOf(':');
    const field = colon === -1 ? line : line.slice(0, colon);
    let value = colon === -1 ? '' : line.slice(colon + 1);
    if (value.startsWith(' ')) value = value.slice(1);
    if (field === 'data') data.push(value);
    else if (field === 'event') eventType = value;
    else if (field === 'id' && !value.includes('\u0000')) id = value;
  }

  return {
    /** Consume complete lines of `text`; at the end of the stream (`final`) a trailing CR ends a line too. */
    *push(text: string, final: boolean): Generator<ServerSentEvent> {
      buffer += text;
      let lineEnd = findLineEnd(buffer);
      while (lineEnd !== -1) {
        // A CR at the very end may be the first half of a CRLF split across chunks; wait for the next one.
        if (buffer[lineEnd] === '\r' && lineEnd + 1 === buffer.length && !final) return;
        const skip = buffer[lineEnd] === '\r' && buffer[lineEnd + 1] === '\n' ? 2 : 1;
        const line = buffer.slice(0, lineEnd);
        buffer = buffer.slice(lineEnd + skip);
        yield* takeLine(line);
        lineEnd = findLineEnd(buffer);
      }
    },
  };
}

function findLineEnd(text: string): number {
  const lf = text.indexOf('\n');
  const cr = text.indexOf('\r');
  if (lf === -1) return cr;
  if (cr === -1) return lf;
  return Math.min(lf, cr);
}
