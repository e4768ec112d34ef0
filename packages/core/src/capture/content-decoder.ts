import { Gunzip, Inflate, Unzlib } from 'fflate';
import { Decompress as ZstdDecompress } from 'fzstd';
import type { BodyDecoder } from './capture-types.js';
import { concatBytes } from './utf8.js';

/**
 * Undoes a `Content-Encoding` on the capture's copy of a body. gzip, deflate and zstd decode while the
 * bytes arrive, synchronously, so an event is parsed during the read that completed it and time to first
 * token stays exact. Other codings (br) go through a whole-body decoder the runtime injects, once the body
 * has ended. A decoding failure is recorded in `error` and stops decoding instead of throwing.
 */
export interface ContentDecoder {
  push(chunk: Uint8Array): void;
  end(): void;
  /** Reason decoding failed or was not attempted, or null while it works. */
  readonly error: string | null;
}

/** Compressed bytes a whole-body decoder may wait for; a longer body is not decoded. */
const MAX_BUFFERED_COMPRESSED_BYTES = 16 * 1024 * 1024;

interface StreamingDecompressor {
  push(chunk: Uint8Array, final?: boolean): void;
}

export function createContentDecoder(
  contentEncoding: string | undefined,
  onData: (bytes: Uint8Array) => void,
  decoders: Partial<Record<string, BodyDecoder>> = {},
): ContentDecoder {
  const codings = (contentEncoding ?? '')
    .split(',')
    .map((coding) => coding.trim().toLowerCase())
    .filter((coding) => coding !== '' && coding !== 'identity');

  if (codings.length === 0) return { push: onData, end() {}, error: null };
  if (codings.length > 1) return failedDecoder(`stacked content codings "${contentEncoding}" are not decoded`);

  const coding = codings[0]!;
  const emit = (bytes: Uint8Array) => {
    if (bytes.length > 0) onData(bytes);
  };
  if (coding === 'gzip' || coding === 'x-gzip') return streamingDecoder(coding, () => new Gunzip(emit));
  if (coding === 'deflate') return deflateDecoder(emit);
  if (coding === 'zstd') return streamingDecoder(coding, () => new ZstdDecompress(emit));

  const wholeBody = decoders[coding];
  if (wholeBody) return wholeBodyDecoder(coding, wholeBody, emit);
  return failedDecoder(`content-encoding "${coding}" has no decoder in this runtime`);
}

function streamingDecoder(coding: string, create: () => StreamingDecompressor): ContentDecoder {
  let decompressor: StreamingDecompressor | null = null;
  let error: string | null = null;
  const run = (action: () => void) => {
    if (error !== null) return;
    try {
      action();
    } catch (cause) {
      error = `${coding} decoding failed: ${cause instanceof Error ? cause.message : String(cause)}`;
    }
  };

  return {
    push: (chunk) =>
      run(() => {
        decompressor ??= create();
        decompressor.push(chunk);
      }),
    end: () => run(() => decompressor?.push(new Uint8Array(0), true)),
    get error() {
      return error;
    },
  };
}

/**
 * HTTP "deflate" is zlib-wrapped (RFC 9110 section 8.4.1.2), but some servers send raw DEFLATE. The
 * first two bytes tell them apart (RFC 1950: CM 8 and a header checksum divisible by 31).
 */
function deflateDecoder(emit: (bytes: Uint8Array) => void): ContentDecoder {
  let head: Uint8Array | null = new Uint8Array(0);
  let inner: ContentDecoder | null = null;

  const choose = (firstTwo: Uint8Array): ContentDecoder => {
    const zlibWrapped = (firstTwo[0]! & 0x0f) === 8 && ((firstTwo[0]! << 8) | firstTwo[1]!) % 31 === 0;
    return streamingDecoder('deflate', () => (zlibWrapped ? new Unzlib(emit) : new Inflate(emit)));
  };

  return {
    push(chunk) {
      if (inner) return inner.push(chunk);
      head = concatBytes([head!, chunk], head!.length + chunk.length);
      if (head.length < 2) return;
      inner = choose(head);
      inner.push(head);
      head = null;
    },
    end() {
      if (!inner && head && head.length > 0) inner = streamingDecoder('deflate', () => new Inflate(emit));
      if (inner && head) inner.push(head);
      inner?.end();
    },
    get error() {
      return inner?.error ?? null;
    },
  };
}

function wholeBodyDecoder(coding: string, decode: BodyDecoder, emit: (bytes: Uint8Array) => void): ContentDecoder {
  let parts: Uint8Array[] = [];
  let total = 0;
  let error: string | null = null;

  return {
    push(chunk) {
      if (error !== null) return;
      total += chunk.length;
      if (total > MAX_BUFFERED_COMPRESSED_BYTES) {
        error = `${coding} body larger than ${MAX_BUFFERED_COMPRESSED_BYTES} bytes was not decoded`;
        parts = [];
        return;
      }
      parts.push(chunk.slice());
    },
    end() {
      if (error !== null || total === 0) return;
      try {
        // NOTE: the decoded body exists whole in memory here; the runtime's decoder must bound its
        // output (Node: zlib's maxOutputLength) to keep a compression bomb from exhausting memory.
        emit(decode(concatBytes(parts, total)));
      } catch (cause) {
        error = `${coding} decoding failed: ${cause instanceof Error ? cause.message : String(cause)}`;
      }
      parts = [];
    },
    get error() {
      return error;
    },
  };
}

function failedDecoder(message: string): ContentDecoder {
  return { push() {}, end() {}, error: message };
}
