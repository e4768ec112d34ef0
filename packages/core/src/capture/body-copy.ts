import type { CapturedBody } from '../call-record.js';
import { redactSecrets } from '../redact.js';
import { concatBytes, decodeUtf8, utf8SafeLength } from './utf8.js';

/** The stored copy of one decoded body: the first `capBytes` bytes, and a count of all of them. */
export class BodyCopy {
  readonly #capBytes: number;
  readonly #redact: boolean;
  readonly #decode: boolean;
  #parts: Uint8Array[] = [];
  #keptBytes = 0;
  #seenBytes = 0;

  /** With `decode` false, `toCapturedBody` returns the kept bytes in `raw` instead of text; see `CaptureOptions.decodeBodies`. */
  constructor(capBytes: number, redact = true, decode = true) {
    this.#capBytes = capBytes;
    this.#redact = redact;
    this.#decode = decode;
  }

  append(bytes: Uint8Array): void {
    this.#seenBytes += bytes.length;
    const room = this.#capBytes - this.#keptBytes;
    if (room <= 0) return;
    const piece = bytes.length <= room ? bytes : bytes.subarray(0, room);
    this.#parts.push(piece.slice());
    this.#keptBytes += piece.length;
  }

  /**
   * Decode the kept bytes as UTF-8 text, with secrets masked unless redaction is off, or keep them in `raw`
   * when decoding is off. A cut never splits a character.
   */
  toCapturedBody(contentType: string | null, encodingError: string | null): CapturedBody {
    const truncated = this.#seenBytes > this.#keptBytes;
    const bytes = concatBytes(this.#parts, this.#keptBytes);
    const length = truncated ? utf8SafeLength(bytes, bytes.length) : bytes.length;
    const fields = { bytes: this.#seenBytes, truncated, content_type: contentType, encoding_error: encodingError };
    if (encodingError !== null && this.#seenBytes === 0) return { text: null, ...fields };
    if (!this.#decode) return { text: null, raw: ownedPrefix(bytes, length), ...fields };

    const decoded = decodeUtf8(bytes.subarray(0, length));
    return { text: this.#redact ? redactSecrets(decoded) : decoded, ...fields };
  }
}

/**
 * Copy the first `length` bytes into a plain Uint8Array that owns its whole ArrayBuffer, unless `bytes`
 * is one already. A Buffer's `slice` returns a view of the same memory, and Node's HTTP parser hands
 * body chunks over as views into a larger read buffer, so a kept part can be such a view.
 */
function ownedPrefix(bytes: Uint8Array, length: number): Uint8Array {
  const owned = length === bytes.byteLength && bytes.byteOffset === 0 && bytes.buffer.byteLength === length;
  if (owned && bytes.buffer instanceof ArrayBuffer && Object.getPrototypeOf(bytes) === Uint8Array.prototype) return bytes;
  const copy = new Uint8Array(length);
  copy.set(bytes.subarray(0, length));
  return copy;
}

/** Output text gathered from a response for display and tests, capped at `capChars` UTF-16 units. */
export class TextCollector {
  readonly #capChars: number;
  #parts: string[] = [];
  #length = 0;

  constructor(capChars: number) {
    this.#capChars = capChars;
  }

  append(text: string): void {
    const room = this.#capChars - this.#length;
    if (room <= 0 || text.length === 0) return;
    const piece = text.length <= room ? text : text.slice(0, room);
    this.#parts.push(piece);
    this.#length += piece.length;
  }

  text(): string {
    return this.#parts.join('');
  }
}
