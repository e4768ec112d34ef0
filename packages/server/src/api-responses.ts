import type { IncomingMessage, ServerResponse } from 'node:http';
import { TokenwiseError } from '@tokenwise/core';

export type ApiErrorCode =
  | 'unauthorized'
  | 'forbidden'
  | 'not_found'
  | 'method_not_allowed'
  | 'conflict'
  | 'invalid_argument'
  | 'too_many_requests'
  | 'internal_error';

/** Largest JSON request body the API reads, in bytes; its requests are a few fields. */
const MAX_BODY_BYTES = 16 * 1024;

export function sendJson(res: ServerResponse, status: number, body: unknown): void {
  const text = JSON.stringify(body);
  res.writeHead(status, {
    'content-type': 'application/json; charset=utf-8',
    'content-length': Buffer.byteLength(text),
    // Responses carry call data and, once, new tokens: nothing may keep a copy.
    'cache-control': 'no-store',
  });
  res.end(text);
}

export function sendApiError(res: ServerResponse, status: number, code: ApiErrorCode, message: string): void {
  sendJson(res, status, { error: { code, message } });
}

/** Read and parse a JSON request body; undefined when the body is empty. */
export async function readJsonBody(req: IncomingMessage): Promise<unknown> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of req) {
    size += (chunk as Buffer).length;
    if (size > MAX_BODY_BYTES) {
      throw new TokenwiseError(
        'invalid_argument',
        `request body larger than ${MAX_BODY_BYTES} bytes, the limit of this request: send only the fields this request takes`,
      );
    }
    chunks.push(chunk as Buffer);
  }

  const text = Buffer.concat(chunks).toString('utf8').trim();
  if (text === '') return undefined;
  try {
    return JSON.parse(text);
  } catch {
    throw new TokenwiseError('invalid_argument', 'request body is not valid JSON: send e.g. {"name": "laptop"}');
  }
}
