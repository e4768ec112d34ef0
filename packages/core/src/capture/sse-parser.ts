/**
 * Server-sent events parser over raw bytes, following the WHATWG HTML "event stream interpretation".
 * Lines end in CR, LF or CRLF. One optional space after `field:` is dropped, and lines starting with ":"
 * are comments. A blank line dispatches the event, and an event cut off by the end of the stream is dropped.
 *
 * Data is not buffered: each data line's bytes go to the sink as they arrive, with "\n" between the lines
 * of one event (the spec's joining rule), so a consumer can parse an event of any size incrementally.
 * Working on bytes also means a read boundary inside a multi-byte character needs no care here.
 */

import { decodeUtf8 } from './utf8.js';

export interface SseSink {
  /** A piece of the current event's data. */
  data(piece: Uint8Array): void;
  /** A blank line ended an event that had at least one data line. `name` defaults to "message". */
  dispatch(name: string): void;
}

enum Line {
  Start,
  Field,
  Space,
  Value,
  Skip,
}

enum Field {
  Data,
  Event,
  Other,
}

const NEWLINE = new Uint8Array([0x0a]);
const BOM = [0xef, 0xbb, 0xbf];
const MAX_EVENT_NAME_BYTES = 128;

export class SseParser {
  readonly #sink: SseSink;
  #line = Line.Start;
  #field = Field.Other;
  #fieldName = '';
  #afterCarriageReturn = false;
  #bomBytesSeen = 0;
  #dataLines = 0;
  #eventName: number[] = [];
  /** Index of the next LF and CR in the chunk being pushed: -1 when none is left, -2 before the first search. */
  #nextLineFeed = -2;
  #nextCarriageReturn = -2;

  constructor(sink: SseSink) {
    this.#sink = sink;
  }

  push(chunk: Uint8Array): void {
    let i = this.#skipByteOrderMark(chunk);
    this.#nextLineFeed = -2;
    this.#nextCarriageReturn = -2;

    while (i < chunk.length) {
      const byte = chunk[i]!;
      if (this.#afterCarriageReturn) {
        this.#afterCarriageReturn = false;
        if (byte === 0x0a) {
          i++;
          continue;
        }
      }
      if (byte === 0x0d || byte === 0x0a) {
        this.#endLine();
        this.#afterCarriageReturn = byte === 0x0d;
        i++;
        continue;
      }
      i = this.#consume(chunk, i);
    }
  }

  /** Only a BOM at the very start of the stream is dropped; a partial match is replayed as data. */
  #skipByteOrderMark(chunk: Uint8Array): number {
    let i = 0;
    while (this.#bomBytesSeen >= 0 && this.#bomBytesSeen < BOM.length && i < chunk.length) {
      if (chunk[i] !== BOM[this.#bomBytesSeen]) {
        const replay = new Uint8Array(BOM.slice(0, this.#bomBytesSeen));
        this.#bomBytesSeen = -1;
        if (replay.length > 0) this.push(replay);
        return i;
      }
      this.#bomBytesSeen++;
      i++;
    }
    if (this.#bomBytesSeen === BOM.length) this.#bomBytesSeen = -1;
    return i;
  }

  /** Consume bytes of the current line up to (not including) the next line terminator. */
  #consume(chunk: Uint8Array, start: number): number {
    let i = start;
    switch (this.#line) {
      case Line.Start:
        if (chunk[i] === 0x3a) {
          this.#line = Line.Skip;
          return i + 1;
        }
        this.#fieldName = '';
        this.#line = Line.Field;
        return i;

      case Line.Field:
        while (i < chunk.length && !isLineEnd(chunk[i]!)) {
          const byte = chunk[i]!;
          i++;
          if (byte === 0x3a) {
            this.#beginValue();
            this.#line = Line.Space;
            return i;
          }
          // Names longer than "event" cannot be a field this parser acts on.
          if (this.#fieldName.length <= 5) this.#fieldName += String.fromCharCode(byte);
        }
        return i;

      case Line.Space:
        this.#line = Line.Value;
        return chunk[i] === 0x20 ? i + 1 : i;

      case Line.Value: {
        const end = this.#lineEnd(chunk, i);
        if (this.#field === Field.Data && end > i) this.#sink.data(chunk.subarray(i, end));
        if (this.#field === Field.Event) {
          for (let j = i; j < end && this.#eventName.length < MAX_EVENT_NAME_BYTES; j++) this.#eventName.push(chunk[j]!);
        }
        return end;
      }

      case Line.Skip:
        return this.#lineEnd(chunk, i);
    }
  }

  /**
   * Find the index of the first CR or LF at or after `from`, or the chunk's length. Both searches are kept
   * between calls, so the scans over one chunk stay linear in its length however many lines it holds.
   */
  #lineEnd(chunk: Uint8Array, from: number): number {
    if (this.#nextLineFeed !== -1 && this.#nextLineFeed < from) this.#nextLineFeed = chunk.indexOf(0x0a, from);
    if (this.#nextCarriageReturn !== -1 && this.#nextCarriageReturn < from) this.#nextCarriageReturn = chunk.indexOf(0x0d, from);
    const lineFeed = this.#nextLineFeed === -1 ? chunk.length : this.#nextLineFeed;
    const carriageReturn = this.#nextCarriageReturn === -1 ? chunk.length : this.#nextCarriageReturn;
    return Math.min(lineFeed, carriageReturn);
  }

  #beginValue(): void {
    this.#field = Field.Other;
    if (this.#fieldName === 'data') this.#field = Field.Data;
    if (this.#fieldName === 'event') this.#field = Field.Event;
    if (this.#field === Field.Data) {
      if (this.#dataLines > 0) this.#sink.data(NEWLINE);
      this.#dataLines++;
    }
    if (this.#field === Field.Event) this.#eventName = [];
  }

  #endLine(): void {
    if (this.#line === Line.Start) {
      this.#dispatch();
      return;
    }
    // A line with no colon is a field name with an empty value, e.g. a bare "data" line.
    if (this.#line === Line.Field) this.#beginValue();
    this.#line = Line.Start;
  }

  #dispatch(): void {
    const name = this.#eventName.length > 0 ? eventNameText(this.#eventName) : 'message';
    const hadData = this.#dataLines > 0;
    this.#dataLines = 0;
    this.#eventName = [];
    if (hadData) this.#sink.dispatch(name);
  }
}

/** Decode an event name; names are ASCII in every provider's streams, which skips the decoder. */
function eventNameText(bytes: number[]): string {
  for (const byte of bytes) if (byte >= 0x80) return decodeUtf8(new Uint8Array(bytes));
  return String.fromCharCode(...bytes);
}

function isLineEnd(byte: number): boolean {
  return byte === 0x0a || byte === 0x0d;
}
