import type { CallBodies, CapturedBody } from '../call-record.js';
import { redactSecrets } from '../redact.js';
import { decodeUtf8 } from './utf8.js';

/**
 * Decode a body captured with `decodeBodies: false` to the `CapturedBody` the capture returns by default:
 * the same text (secrets masked when `redact` is true, as `redactBodies` does) and the same other fields.
 * A body without `raw` is already decoded and comes back unchanged.
 */
export function decodeCapturedBody(body: CapturedBody, redact: boolean): CapturedBody {
  if (body.raw === undefined) return body;
  const { raw, ...decoded } = body;
  const text = decodeUtf8(raw);
  return { ...decoded, text: redact ? redactSecrets(text) : text };
}

/** Decode both bodies of a call like `decodeCapturedBody`; headers are copied as they are. */
export function decodeCallBodies(bodies: CallBodies, redact: boolean): CallBodies {
  const decode = (body: CapturedBody | null) => (body === null ? null : decodeCapturedBody(body, redact));
  return { ...bodies, request: decode(bodies.request), response: decode(bodies.response) };
}

/** Size of a body's content: bytes of `raw` when present, else UTF-16 code units of `text`. */
export function capturedBodySize(body: CapturedBody | null): number {
  if (body === null) return 0;
  return body.raw?.byteLength ?? body.text?.length ?? 0;
}
