const decoder = new TextDecoder('utf-8');

/**
 * Length of the longest prefix of `bytes[0..length)` that does not end inside a multi-byte UTF-8
 * character, so a cut at a byte cap never leaves half a character behind.
 */
export function utf8SafeLength(bytes: Uint8Array, length: number): number {
  const end = Math.min(length, bytes.length);
  let start = end - 1;
  while (start >= 0 && end - start < 4 && (bytes[start]! & 0xc0) === 0x80) start--;
  if (start < 0) return end;

  const lead = bytes[start]!;
  let needed = 1;
  if (lead >= 0xc0) needed = 2;
  if (lead >= 0xe0) needed = 3;
  if (lead >= 0xf0) needed = 4;
  return end - start >= needed ? end : start;
}

/** Decode UTF-8, replacing invalid sequences with U+FFFD instead of throwing. */
export function decodeUtf8(bytes: Uint8Array): string {
  return decoder.decode(bytes);
}

export function concatBytes(parts: readonly Uint8Array[], total: number): Uint8Array {
  if (parts.length === 1 && parts[0]!.length === total) return parts[0]!;
  const out = new Uint8Array(total);
  let offset = 0;
  for (const part of parts) {
    out.set(part.subarray(0, total - offset), offset);
    offset += Math.min(part.length, total - offset);
    if (offset >= total) break;
  }
  return out;
}
