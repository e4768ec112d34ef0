import { concatBytes, decodeUtf8, utf8SafeLength } from './utf8.js';

/**
 * Incremental JSON reader over UTF-8 bytes that arrive in pieces split anywhere (inside a string, a
 * number or a multi-byte character). It builds the value as it goes and keeps memory bounded. A string
 * keeps at most `maxStringBytes`, and all strings together keep at most `maxLongStringBytes` beyond
 * their first SHORT_STRING_BYTES each. The whole value keeps at most about `maxRetainedBytes`, and a
 * `keep` filter or `onRootElement` can skip or release parts of the document. A body is never buffered whole.
 */

export type JsonPathKey = string | number;

export interface JsonReaderOptions {
  /** Strings longer than this many UTF-8 bytes keep only their prefix. */
  maxStringBytes: number;
  /**
   * Budget for the bytes strings keep beyond their first SHORT_STRING_BYTES; default half of
   * `maxRetainedBytes`. Once it is spent, every later string keeps only that short prefix, so the ids,
   * model names and counts that follow megabytes of text or base64 still fit in `maxRetainedBytes`.
   */
  maxLongStringBytes?: number;
  /** Budget for the retained value: string bytes plus a fixed charge per value. Past it, values are dropped. */
  maxRetainedBytes: number;
  /** Whether the value starting at `path` is built (true) or only scanned (false). Not asked below a skipped value. */
  keep?: (path: readonly JsonPathKey[], isContainer: boolean) => boolean;
  /** Receives each element of a top-level array once it is complete, instead of the reader retaining the array. */
  onRootElement?: (value: unknown) => void;
}

export interface JsonReadResult {
  /**
   * The root value; for an incomplete document, the part of the root container built so far. Undefined
   * when nothing was built (or the root array's elements were released through `onRootElement`).
   */
  value: unknown;
  /** True when the root value ended and nothing but whitespace followed. */
  complete: boolean;
  /** Syntax error with its byte offset, or "incomplete document" at the end; null when well-formed. */
  error: string | null;
  /** True when the retained-bytes budget ran out and later values were dropped. */
  overflow: boolean;
}

const OBJECT = 0;
const ARRAY = 1;

enum State {
  Value,
  ValueOrArrayEnd,
  AfterValue,
  KeyOrObjectEnd,
  Key,
  Colon,
  String,
  Scalar,
  Done,
  Error,
}

interface Frame {
  kind: typeof OBJECT | typeof ARRAY;
  /** The object or array being built; null when its contents are skipped or released. */
  target: Record<string, unknown> | unknown[] | null;
  keepChildren: boolean;
  key: string | null;
  index: number;
}

const VALUE_CHARGE_BYTES = 16;
/** Prefix every kept string keeps whatever the long-string budget: longer than model names, ids and tool names. */
const SHORT_STRING_BYTES = 128;
const MAX_DEPTH = 512;
const MAX_SCALAR_CHARS = 64;
const NUMBER_PATTERN = /^-?(?:0|[1-9]\d*)(?:\.\d+)?(?:[eE][+-]?\d+)?$/;

export class JsonReader {
  readonly #options: JsonReaderOptions;
  readonly #stack: Frame[] = [];
  #state = State.Value;
  #offset = 0;
  #root: unknown;
  #error: string | null = null;
  #overflow = false;
  #retainedBytes = 0;
  #longStringBytes = 0;

  #stringIsKey = false;
  #stringKept = false;
  #stringParts: Uint8Array[] = [];
  #stringBytes = 0;
  #stringLimitBytes = 0;
  #stringCut = false;
  #escaped = false;

  #scalar = '';

  constructor(options: JsonReaderOptions) {
    this.#options = options;
  }

  push(bytes: Uint8Array): void {
    let i = 0;
    while (i < bytes.length && this.#state !== State.Error) {
      if (this.#state === State.String) {
        i = this.#scanString(bytes, i);
      } else if (this.#state === State.Scalar) {
        i = this.#scanScalar(bytes, i);
      } else {
        this.#structural(bytes[i]!, this.#offset + i);
        i++;
      }
    }
    this.#offset += bytes.length;
  }

  /** Close the document: a number at the very end needs no delimiter after it. */
  end(): JsonReadResult {
    if (this.#state === State.Scalar) this.#finishScalar();
    if (this.#state !== State.Done && this.#state !== State.Error) this.#error = 'incomplete document';
    const complete = this.#state === State.Done;
    const value = complete ? this.#root : (this.#stack[0]?.target ?? undefined);
    return { value, complete, error: this.#error, overflow: this.#overflow };
  }

  #structural(byte: number, at: number): void {
    if (byte === 0x20 || byte === 0x0a || byte === 0x0d || byte === 0x09) return;

    switch (this.#state) {
      case State.Value:
      case State.ValueOrArrayEnd:
        if (byte === 0x5d && this.#state === State.ValueOrArrayEnd) this.#closeContainer(ARRAY, at);
        else this.#beginValue(byte, at);
        return;

      case State.AfterValue:
        if (byte === 0x2c) this.#state = this.#stack.at(-1)?.kind === OBJECT ? State.Key : State.Value;
        else if (byte === 0x7d) this.#closeContainer(OBJECT, at);
        else this.#closeContainer(byte === 0x5d ? ARRAY : -1, at);
        return;

      case State.KeyOrObjectEnd:
      case State.Key:
        if (byte === 0x7d && this.#state === State.KeyOrObjectEnd) this.#closeContainer(OBJECT, at);
        else if (byte === 0x22) this.#beginString(true, true);
        else this.#fail(`expected a property name at offset ${at}`);
        return;

      case State.Colon:
        if (byte === 0x3a) this.#state = State.Value;
        else this.#fail(`expected ":" at offset ${at}`);
        return;

      case State.Done:
        this.#fail(`unexpected data after the JSON value at offset ${at}`);
        return;
    }
  }

  #beginValue(byte: number, at: number): void {
    if (byte === 0x7b || byte === 0x5b) {
      this.#openContainer(byte === 0x7b ? OBJECT : ARRAY, at);
    } else if (byte === 0x22) {
      this.#beginString(false, this.#shouldKeep(false));
    } else if (byte === 0x2d || (byte >= 0x30 && byte <= 0x39) || byte === 0x74 || byte === 0x66 || byte === 0x6e) {
      this.#scalar = String.fromCharCode(byte);
      this.#state = State.Scalar;
    } else {
      this.#fail(`unexpected byte 0x${byte.toString(16)} where a value should start at offset ${at}`);
    }
  }

  #openContainer(kind: typeof OBJECT | typeof ARRAY, at: number): void {
    if (this.#stack.length >= MAX_DEPTH) {
      this.#fail(`nesting deeper than ${MAX_DEPTH} at offset ${at}`);
      return;
    }
    const releaseElements = kind === ARRAY && this.#stack.length === 0 && this.#options.onRootElement !== undefined;
    const kept = this.#shouldKeep(true);
    let target: Frame['target'] = null;
    if (kept && !releaseElements) target = kind === OBJECT ? {} : [];
    this.#stack.push({ kind, target, keepChildren: kept, key: null, index: 0 });
    this.#state = kind === OBJECT ? State.KeyOrObjectEnd : State.ValueOrArrayEnd;
  }

  #closeContainer(kind: number, at: number): void {
    const frame = this.#stack.at(-1);
    if (!frame || frame.kind !== kind) {
      this.#fail(`unbalanced bracket at offset ${at}`);
      return;
    }
    this.#stack.pop();
    this.#complete(frame.target ?? undefined, frame.keepChildren && frame.target !== null);
  }

  #shouldKeep(isContainer: boolean): boolean {
    const parent = this.#stack.at(-1);
    if (parent && !parent.keepChildren) return false;
    if (this.#overflow) return false;

    this.#retainedBytes += VALUE_CHARGE_BYTES;
    if (this.#retainedBytes > this.#options.maxRetainedBytes) {
      this.#overflow = true;
      return false;
    }
    return this.#options.keep ? this.#options.keep(this.#path(), isContainer) : true;
  }

  #path(): JsonPathKey[] {
    return this.#stack.map((frame) => (frame.kind === OBJECT ? (frame.key ?? '') : frame.index));
  }

  #complete(value: unknown, kept: boolean): void {
    const parent = this.#stack.at(-1);
    if (!parent) {
      if (kept) this.#root = value;
      this.#state = State.Done;
      return;
    }

    if (parent.kind === OBJECT) {
      // "__proto__" would replace the object's prototype instead of adding a property.
      if (kept && parent.target && parent.key !== null && parent.key !== '__proto__') {
        (parent.target as Record<string, unknown>)[parent.key] = value;
      }
    } else {
      if (this.#stack.length === 1 && this.#options.onRootElement) {
        if (kept) this.#options.onRootElement(value);
        // A released element no longer counts against the budget of the elements after it.
        this.#retainedBytes = 0;
        this.#overflow = false;
      } else if (kept && parent.target) (parent.target as unknown[]).push(value);
      parent.index++;
    }
    this.#state = State.AfterValue;
  }

  #beginString(isKey: boolean, kept: boolean): void {
    this.#stringIsKey = isKey;
    this.#stringKept = kept;
    this.#stringParts = [];
    this.#stringBytes = 0;
    this.#stringLimitBytes = this.#stringLimit();
    this.#stringCut = false;
    this.#escaped = false;
    this.#state = State.String;
  }

  /** Scan string bytes from `start`; returns the index after the closing quote, or the chunk length. */
  #scanString(bytes: Uint8Array, start: number): number {
    let i = start;
    let quote = -2;
    let backslash = -2;

    while (i < bytes.length) {
      if (this.#escaped) {
        this.#escaped = false;
        i++;
        continue;
      }
      // Cache both searches so a string with many escapes stays linear in its length.
      if (quote !== -1 && quote < i) quote = bytes.indexOf(0x22, i);
      if (backslash !== -1 && backslash < i) backslash = bytes.indexOf(0x5c, i);

      if (backslash !== -1 && (quote === -1 || backslash < quote)) {
        this.#escaped = true;
        i = backslash + 1;
        continue;
      }
      if (quote === -1) break;

      this.#appendString(bytes, start, quote);
      this.#finishString();
      return quote + 1;
    }

    this.#appendString(bytes, start, bytes.length);
    return bytes.length;
  }

  /** Bytes the next string may keep: its share of the long-string budget, and never less than a short prefix. */
  #stringLimit(): number {
    const longBudget = this.#options.maxLongStringBytes ?? this.#options.maxRetainedBytes / 2;
    const longRoom = Math.max(0, longBudget - this.#longStringBytes);
    return Math.min(this.#options.maxStringBytes, SHORT_STRING_BYTES + longRoom);
  }

  #appendString(bytes: Uint8Array, from: number, to: number): void {
    if (!this.#stringKept || this.#stringCut || to <= from) return;
    const room = this.#stringLimitBytes - this.#stringBytes;
    const take = Math.min(room, to - from);
    if (take < to - from) this.#stringCut = true;
    if (take <= 0) return;
    this.#stringParts.push(bytes.slice(from, from + take));
    this.#stringBytes += take;
  }

  #finishString(): void {
    const text = this.#stringKept ? this.#decodeString() : '';
    this.#longStringBytes += Math.max(0, this.#stringBytes - SHORT_STRING_BYTES);
    if (this.#stringIsKey) {
      this.#stack.at(-1)!.key = text;
      this.#state = State.Colon;
      return;
    }

    this.#retainedBytes += this.#stringBytes;
    if (this.#retainedBytes > this.#options.maxRetainedBytes) this.#overflow = true;
    this.#complete(text, this.#stringKept);
  }

  /** Decode the raw bytes between the quotes, escapes included; a cut string loses a trailing partial escape. */
  #decodeString(): string {
    const raw = concatBytes(this.#stringParts, this.#stringBytes);
    let length = this.#stringCut ? utf8SafeLength(raw, raw.length) : raw.length;
    for (let attempt = 0; attempt < 6 && length >= 0; attempt++, length--) {
      try {
        return JSON.parse(`"${decodeUtf8(raw.subarray(0, length))}"`) as string;
      } catch {
        if (!this.#stringCut) break;
      }
    }
    return decodeUtf8(raw);
  }

  #scanScalar(bytes: Uint8Array, start: number): number {
    let i = start;
    while (i < bytes.length) {
      const byte = bytes[i]!;
      const delimiter = byte === 0x2c || byte === 0x5d || byte === 0x7d || byte === 0x20 || byte === 0x0a || byte === 0x0d || byte === 0x09;
      if (delimiter) {
        this.#finishScalar();
        return i;
      }
      if (this.#scalar.length >= MAX_SCALAR_CHARS) {
        this.#fail(`number or literal longer than ${MAX_SCALAR_CHARS} characters at offset ${this.#offset + i}`);
        return bytes.length;
      }
      this.#scalar += String.fromCharCode(byte);
      i++;
    }
    return i;
  }

  #finishScalar(): void {
    const token = this.#scalar;
    let value: unknown;
    if (token === 'true') value = true;
    else if (token === 'false') value = false;
    else if (token === 'null') value = null;
    else if (NUMBER_PATTERN.test(token)) value = Number(token);
    else {
      this.#fail(`invalid literal "${token}"`);
      return;
    }
    this.#complete(value, this.#shouldKeep(false));
  }

  #fail(message: string): void {
    if (this.#error === null) this.#error = message;
    this.#state = State.Error;
  }
}
