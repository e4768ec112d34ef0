import type { BodyDecoder } from '@tokenwise/core';
import { decompress } from 'brotli/decompress';

/**
 * Whole-body Brotli decoder for the capture's copy. The Workers runtime's DecompressionStream knows only
 * gzip and deflate, and workerd sends `accept-encoding: br, gzip` upstream, so Brotli bodies are common.
 * The `brotli` package decodes in plain JavaScript.
 */
export const decodeBrotli: BodyDecoder = (bytes) => decompress(bytes);
