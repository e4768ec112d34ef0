import type { CapturedBody } from '../call-record.js';
import { redactSecrets } from '../redact.js';
import { concatBytes, decodeUtf8, utf8SafeLength } from './utf8.js';

/** The stored copy of one decoded body: the first `capBytes` bytes, and a count of all of them. */
export class BodyCopy {
  readonly #capBytes: number;
  readonly #redact: boolean;
  #parts: Uint8Array[] = [];
  #keptBytes = 0;
  #seenBytes = 0;

  constructor(capBytes: number, redact = true) {
    this.#capBytes = capBytes;
    this.#redact = redact;
  }

  append(bytes: Uint8Array): void {
    this.#seenBytes += bytes.length;
    const room = this.#capBytes - this.#keptBytes;
    if (room <= 0) return;
    const piece = bytes.length <= room ? bytes : bytes.subarray(0, room);
    this.#parts.push(piece.slice());
    this.#keptBytes += piece.length;
  }

  /** Decode the kept bytes as UTF-8 text, with secrets masked unless redaction is off. A cut never splits a character. */
  toCapturedBody(contentType: string | null, encodingError: string | null): CapturedBody {
    const truncated = this.#seenBytes > this.#keptBytes;
    const bytes = concatBytes(this.#parts, this.#keptBytes);
    const length = truncated ? utf8SafeLength(bytes, bytes.length) : bytes.length;
    const decoded = encodingError !== null && this.#seenBytes === 0 ? null : decodeUtf8(bytes.subarray(0, length));
    const text = decoded !== null && this.#redact ? redactSecrets(decoded) : decoded;
    return { text, bytes: this.#seenBytes, truncated, content_type: contentType, encoding_error: encodingError };
  }
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
