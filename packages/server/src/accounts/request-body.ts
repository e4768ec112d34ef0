import type { IncomingMessage } from 'node:http';
import { TokenwiseError } from '@tokenwise/core';

/** Largest form or JSON body read by default, in bytes: forms and most API requests carry a few short fields. */
export const DEFAULT_MAX_BODY_BYTES = 16 * 1024;

export interface ReadFieldsOptions {
  /**
   * The field names the route takes; a body with any other field is rejected, naming it and these. Left
   * out by web forms, whose hidden fields vary, and by the OAuth endpoints, which RFC 6749 section 3.1
   * tells to ignore parameters they do not know.
   */
  accept?: readonly string[];
  /** Largest body this request takes, in bytes; default `DEFAULT_MAX_BODY_BYTES`. */
  maxBytes?: number;
  /** What a client whose body is too large should do instead, added to the error message. */
  tooLargeHint?: string;
}

/**
 * Read an `application/x-www-form-urlencoded` or JSON object body into string fields. Fields that are not
 * strings (in JSON) are kept as they are, for the caller to reject. An empty body is an empty object.
 */
export async function readFields(req: IncomingMessage, options: ReadFieldsOptions = {}): Promise<Record<string, unknown>> {
  const fields = await parseFields(req, options);
  if (options.accept) rejectUnknownFields(fields, options.accept);
  return fields;
}

/** Throw `invalid_argument` naming the first field of `fields` that is not in `accepted`, and the accepted ones. */
export function rejectUnknownFields(fields: Record<string, unknown>, accepted: readonly string[]): void {
  const unknown = Object.keys(fields).find((name) => !accepted.includes(name));
  if (unknown === undefined) return;
  throw new TokenwiseError('invalid_argument', `unknown field "${unknown}": this request accepts ${accepted.join(', ')}`);
}

async function parseFields(req: IncomingMessage, options: ReadFieldsOptions): Promise<Record<string, unknown>> {
  const type = (req.headers['content-type'] ?? '').split(';')[0]!.trim().toLowerCase();
  const maxBytes = options.maxBytes ?? DEFAULT_MAX_BODY_BYTES;
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of req) {
    size += (chunk as Buffer).length;
    if (size > maxBytes) {
      const hint =
        options.tooLargeHint ?? (type === 'application/json' ? 'send only the fields this request takes' : "send only the form's fields");
      throw new TokenwiseError('invalid_argument', `request body larger than ${maxBytes} bytes, the limit of this request: ${hint}`);
    }
    chunks.push(chunk as Buffer);
  }
  const text = Buffer.concat(chunks).toString('utf8');
  if (text.trim() === '') return {};

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
