import { execFileSync } from 'node:child_process';
import zlib from 'node:zlib';
import { describe, expect, it } from 'vitest';
import { createContentDecoder } from './content-decoder.js';

const text = 'data: {"text":"héllo wörld"}\n\n'.repeat(40);
const plain = new TextEncoder().encode(text);

function decode(encoding: string | undefined, body: Uint8Array, pieceBytes = 7, decoders = {}) {
  const out: Uint8Array[] = [];
  const decoder = createContentDecoder(encoding, (bytes) => out.push(bytes.slice()), decoders);
  for (let offset = 0; offset < body.length; offset += pieceBytes) decoder.push(body.subarray(offset, offset + pieceBytes));
  decoder.end();
  return { text: Buffer.concat(out).toString('utf8'), error: decoder.error };
}

describe('createContentDecoder', () => {
  it('passes identity bodies through', () => {
    expect(decode(undefined, plain)).toEqual({ text, error: null });
    expect(decode('identity', plain)).toEqual({ text, error: null });
  });

  it('decodes gzip split into small pieces', () => {
    expect(decode('gzip', zlib.gzipSync(plain), 3)).toEqual({ text, error: null });
  });

  it('decodes zlib-wrapped and raw deflate', () => {
    expect(decode('deflate', zlib.deflateSync(plain), 1)).toEqual({ text, error: null });
    expect(decode('deflate', zlib.deflateRawSync(plain), 1)).toEqual({ text, error: null });
  });

  it('decodes zstd', () => {
    const compressed = new Uint8Array(execFileSync('zstd', ['-q', '-c'], { input: Buffer.from(plain) }));
    expect(decode('zstd', compressed, 5)).toEqual({ text, error: null });
  });

  it('emits each gzip-flushed event before the next arrives', () => {
    // A server that flushes after every SSE event lets the copy see each event on the read that carries it.
    const first = zlib.gzipSync('data: one\n\n', { finishFlush: zlib.constants.Z_SYNC_FLUSH });
    const seen: string[] = [];
    const decoder = createContentDecoder('gzip', (bytes) => seen.push(Buffer.from(bytes).toString()));
    decoder.push(new Uint8Array(first));
    expect(seen.join('')).toBe('data: one\n\n');
  });

  it('decodes br through the runtime decoder once the body ends', () => {
    const compressed = new Uint8Array(zlib.brotliCompressSync(plain));
    const br = (bytes: Uint8Array) => new Uint8Array(zlib.brotliDecompressSync(bytes));
    expect(decode('br', compressed, 9, { br })).toEqual({ text, error: null });
  });

  it('skips the whole-body decoder for an empty body', () => {
    const br = () => {
      throw new Error('decoder called');
    };
    expect(decode('br', new Uint8Array(0), 9, { br })).toEqual({ text: '', error: null });
  });

  it('reports a coding without a decoder', () => {
    expect(decode('br', plain)).toEqual({ text: '', error: 'content-encoding "br" has no decoder in this runtime' });
  });

  it('reports stacked codings', () => {
    expect(decode('gzip, br', plain).error).toBe('stacked content codings "gzip, br" are not decoded');
  });

  it('reports corrupt data instead of throwing', () => {
    const result = decode('gzip', plain);
    expect(result.error).toMatch(/^gzip decoding failed: /);
  });

  it('reports a truncated gzip body', () => {
    const compressed = zlib.gzipSync(plain);
    const result = decode('gzip', compressed.subarray(0, compressed.length - 10));
    expect(result.error).toMatch(/^gzip decoding failed: /);
  });
});
