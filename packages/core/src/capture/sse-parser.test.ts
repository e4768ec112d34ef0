import { describe, expect, it } from 'vitest';
import { SseParser } from './sse-parser.js';

interface Dispatched {
  name: string;
  data: string;
}

/** Feed `input` split at the given byte offsets and collect the dispatched events. */
function parse(input: string | Uint8Array, splits: number[] = []): Dispatched[] {
  const bytes = typeof input === 'string' ? new TextEncoder().encode(input) : input;
  const events: Dispatched[] = [];
  let pieces: Uint8Array[] = [];
  const parser = new SseParser({
    data: (piece) => pieces.push(piece.slice()),
    dispatch: (name) => {
      const total = pieces.reduce((sum, piece) => sum + piece.length, 0);
      const joined = new Uint8Array(total);
      let offset = 0;
      for (const piece of pieces) {
        joined.set(piece, offset);
        offset += piece.length;
      }
      events.push({ name, data: new TextDecoder().decode(joined) });
      pieces = [];
    },
  });
  let start = 0;
  for (const split of [...splits, bytes.length]) {
    parser.push(bytes.subarray(start, split));
    start = split;
  }
  return events;
}

/** Every way of cutting the input in two must give the same events as the whole input. */
function expectSameAtEverySplit(input: string, expected: Dispatched[]): void {
  const length = new TextEncoder().encode(input).length;
  for (let split = 0; split <= length; split++) {
    expect(parse(input, [split]), `split at byte ${split}`).toEqual(expected);
  }
}

describe('SseParser', () => {
  it('dispatches named events at blank lines', () => {
    expect(parse('event: message_start\ndata: {"a":1}\n\nevent: ping\ndata: {}\n\n')).toEqual([
      { name: 'message_start', data: '{"a":1}' },
      { name: 'ping', data: '{}' },
    ]);
  });

  it('decodes event names that are not ASCII', () => {
    expectSameAtEverySplit('event: réponse\ndata: 1\n\nevent: delta\ndata: 2\n\n', [
      { name: 'réponse', data: '1' },
      { name: 'delta', data: '2' },
    ]);
  });

  it('defaults the event name to message', () => {
    expect(parse('data: x\n\n')).toEqual([{ name: 'message', data: 'x' }]);
  });

  it('accepts CR, LF and CRLF line ends', () => {
    const expected = [
      { name: 'a', data: '1' },
      { name: 'b', data: '2' },
      { name: 'c', data: '3' },
    ];
    expect(parse('event: a\rdata: 1\r\revent: b\ndata: 2\n\nevent: c\r\ndata: 3\r\n\r\n')).toEqual(expected);
  });

  it('strips exactly one space after the colon', () => {
    expect(parse('data:x\n\ndata:  two spaces\n\n')).toEqual([
      { name: 'message', data: 'x' },
      { name: 'message', data: ' two spaces' },
    ]);
  });

  it('joins data lines with a line feed', () => {
    expect(parse('data: first\ndata: second\ndata\n\n')).toEqual([{ name: 'message', data: 'first\nsecond\n' }]);
  });

  it('ignores comments, ids, retries and unknown fields', () => {
    expect(parse(': keep-alive\nid: 7\nretry: 1000\nfoo: bar\ndata: x\n\n')).toEqual([{ name: 'message', data: 'x' }]);
  });

  it('skips events without data', () => {
    expect(parse('event: ping\n\n\n\ndata: x\n\n')).toEqual([{ name: 'message', data: 'x' }]);
  });

  it('drops an event cut off by the end of the stream', () => {
    expect(parse('data: complete\n\ndata: {"half":')).toEqual([{ name: 'message', data: 'complete' }]);
  });

  it('drops a leading byte order mark only', () => {
    expect(parse('\uFEFFdata: x\n\n')).toEqual([{ name: 'message', data: 'x' }]);
    expect(parse('\uFEFFdata: x\n\n', [1, 2])).toEqual([{ name: 'message', data: 'x' }]);
  });

  it('keeps a data value that is a field name', () => {
    expect(parse('data: event: not a field\n\n')).toEqual([{ name: 'message', data: 'event: not a field' }]);
  });

  it('gives the same events at every split point (LF)', () => {
    expectSameAtEverySplit('event: e\ndata: {"t":"héllo"}\n\n: c\ndata:x\n\n', [
      { name: 'e', data: '{"t":"héllo"}' },
      { name: 'message', data: 'x' },
    ]);
  });

  it('gives the same events at every split point (CRLF)', () => {
    expectSameAtEverySplit('data: {"a": 1}\r\n\r\ndata: 2\r\n\r\n', [
      { name: 'message', data: '{"a": 1}' },
      { name: 'message', data: '2' },
    ]);
  });

  it('gives the same events when fed one byte at a time', () => {
    const input = 'event: x\r\ndata: ünïcödé\r\n\r\nevent:y\rdata:z\r\r';
    const everyByte = Array.from({ length: new TextEncoder().encode(input).length }, (_, index) => index);
    expect(parse(input, everyByte)).toEqual([
      { name: 'x', data: 'ünïcödé' },
      { name: 'y', data: 'z' },
    ]);
  });
});
