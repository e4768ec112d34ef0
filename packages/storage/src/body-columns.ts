import { promisify } from 'node:util';
import { gunzip, gzip } from 'node:zlib';
import type { CallBodies, CapturedBody } from '@tokenwise/core';

/**
 * Call bodies flattened into the columns of `call_bodies`. Body text is stored gzip-compressed (LLM
 * request bodies repeat the whole conversation and compress well); headers are small JSON text. A side
 * the capture did not keep (`null`) has `*_kept = false` and null columns, so it reads back as `null`.
 */
export interface BodyRow {
  request_kept: boolean;
  request_body: Buffer | null;
  request_bytes: number | null;
  request_truncated: boolean | null;
  request_content_type: string | null;
  request_encoding_error: string | null;
  response_kept: boolean;
  response_body: Buffer | null;
  response_bytes: number | null;
  response_truncated: boolean | null;
  response_content_type: string | null;
  response_encoding_error: string | null;
  request_headers: string;
  response_headers: string;
}

export const bodyColumns = [
  'request_kept',
  'request_body',
  'request_bytes',
  'request_truncated',
  'request_content_type',
  'request_encoding_error',
  'response_kept',
  'response_body',
  'response_bytes',
  'response_truncated',
  'response_content_type',
  'response_encoding_error',
  'request_headers',
  'response_headers',
] as const satisfies readonly (keyof BodyRow)[];

export const booleanBodyColumns = ['request_kept', 'request_truncated', 'response_kept', 'response_truncated'] as const;

const gzipAsync = promisify(gzip);

/**
 * gzip level of stored bodies. Level 1 took half the CPU time of the default level 6 on the benchmark's
 * 20 KB request and on the Codex request of the llm-wire corpus, for output 15% larger on the Codex one.
 */
export const BODY_GZIP_LEVEL = 1;
const gunzipAsync = promisify(gunzip);

/**
 * Maximum number of bodies compressed at once. Each gzip stream allocates its deflate state (a few hundred
 * KiB of native memory) when it is created, so a batch of 200 calls compressed all at once grew the process
 * by about 90 MB. libuv's thread pool runs four at a time by default anyway.
 */
const MAX_CONCURRENT_COMPRESSIONS = 4;
let runningCompressions = 0;
const waitingCompressions: (() => void)[] = [];

async function compress(text: string): Promise<Buffer> {
  // A finishing compression hands its slot straight to the next one waiting, so the count never overshoots.
  if (runningCompressions >= MAX_CONCURRENT_COMPRESSIONS) await new Promise<void>((resolve) => waitingCompressions.push(resolve));
  else runningCompressions += 1;
  try {
    return await gzipAsync(Buffer.from(text, 'utf8'), { level: BODY_GZIP_LEVEL });
  } finally {
    const next = waitingCompressions.shift();
    if (next) next();
    else runningCompressions -= 1;
  }
}

/** Compression runs on libuv's thread pool, so a 4 MiB body does not stall the proxy's event loop. */
export async function toBodyRow(bodies: CallBodies): Promise<BodyRow> {
  const [request, response] = await Promise.all([flattenBody(bodies.request), flattenBody(bodies.response)]);
  return {
    request_kept: request.kept,
    request_body: request.body,
    request_bytes: request.bytes,
    request_truncated: request.truncated,
    request_content_type: request.contentType,
    request_encoding_error: request.encodingError,
    response_kept: response.kept,
    response_body: response.body,
    response_bytes: response.bytes,
    response_truncated: response.truncated,
    response_content_type: response.contentType,
    response_encoding_error: response.encodingError,
    request_headers: JSON.stringify(bodies.request_headers),
    response_headers: JSON.stringify(bodies.response_headers),
  };
}

export async function fromBodyRow(row: BodyRow): Promise<CallBodies> {
  const [requestText, responseText] = await Promise.all([decompress(row.request_body), decompress(row.response_body)]);
  return {
    request: row.request_kept
      ? {
          text: requestText,
          bytes: row.request_bytes ?? 0,
          truncated: row.request_truncated ?? false,
          content_type: row.request_content_type,
          encoding_error: row.request_encoding_error,
        }
      : null,
    response: row.response_kept
      ? {
          text: responseText,
          bytes: row.response_bytes ?? 0,
          truncated: row.response_truncated ?? false,
          content_type: row.response_content_type,
          encoding_error: row.response_encoding_error,
        }
      : null,
    request_headers: JSON.parse(row.request_headers) as Record<string, string>,
    response_headers: JSON.parse(row.response_headers) as Record<string, string>,
  };
}

async function decompress(body: Buffer | null): Promise<string | null> {
  return body === null ? null : (await gunzipAsync(body)).toString('utf8');
}

async function flattenBody(body: CapturedBody | null) {
  if (body === null) {
    return { kept: false, body: null, bytes: null, truncated: null, contentType: null, encodingError: null };
  }
  return {
    kept: true,
    body: body.text === null ? null : await compress(body.text),
    bytes: body.bytes,
    truncated: body.truncated,
    contentType: body.content_type,
    encodingError: body.encoding_error,
  };
}
