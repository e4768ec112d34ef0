import type { IncomingMessage } from 'node:http';
import { TokenwiseError } from '@tokenwise/core';

/** Largest form or JSON body the web UI and the device endpoints read, in bytes; they carry a few short fields. */
const MAX_FORM_BYTES = 16 * 1024;

/**
 * Read an `application/x-www-form-urlencoded` or JSON object body into string fields. Fields that are not
 * strings (in JSON) are kept as they are, for the caller to reject. An empty body is an empty object.
 */
export async function readFields(req: IncomingMessage): Promise<Record<string, unknown>> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of req) {
    size += (chunk as Buffer).length;
    if (size > MAX_FORM_BYTES) {
      throw new TokenwiseError('invalid_argument', `request body larger than ${MAX_FORM_BYTES} bytes: send only the form's fields`);
    }
    chunks.push(chunk as Buffer);
  }
  const text = Buffer.concat(chunks).toString('utf8');
  if (text.trim() === '') return {};

  const type = (req.headers['content-type'] ?? '').split(';')[0]!.trim().toLowerCase();
  if (type === 'application/json') {
    let parsed: unknown;
    try {
      parsed = JSON.parse(text);
    } catch {
      throw new TokenwiseError('invalid_argument', 'request body is not valid JSON');
    }
    if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed)) {
      throw new TokenwiseError('invalid_argument', 'request body must be a JSON object');
    }
    return parsed as Record<string, unknown>;
  }
  return Object.fromEntries(new URLSearchParams(text));
}

/** Return a string field, trimmed unless `raw` (passwords keep their spaces); undefined when missing. */
export function stringField(fields: Record<string, unknown>, name: string, raw = false): string | undefined {
  const value = fields[name];
  if (value === undefined || value === null) return undefined;
  if (typeof value !== 'string') throw new TokenwiseError('invalid_argument', `invalid ${name}: expected a string`);
  return raw ? value : value.trim();
}
