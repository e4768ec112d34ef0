import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { constants, gunzipSync, inflateRawSync } from 'node:zlib';

/**
 * Return where `marker` occurs in the file as plain bytes, or inside any gzip stream in it (call bodies
 * are stored gzip-compressed). A gzip stream that SQLite split over overflow pages is read up to the split
 * only, so callers prove the scan works with a marker that must be found.
 */
export function findMarkerInFile(path: string, marker: string): string[] {
  if (!existsSync(path)) return [];
  const bytes = readFileSync(path);
  const needle = Buffer.from(marker, 'utf8');
  const found: string[] = [];
  if (bytes.includes(needle)) found.push(`${path}: plain bytes`);

  const gzipMagic = Buffer.from([0x1f, 0x8b, 0x08]);
  for (let offset = bytes.indexOf(gzipMagic); offset !== -1; offset = bytes.indexOf(gzipMagic, offset + 1)) {
    let inflated: Buffer;
    try {
      // Node writes a 10-byte gzip header without a file name; the raw deflate data follows it.
      inflated = inflateRawSync(bytes.subarray(offset + 10), { finishFlush: constants.Z_SYNC_FLUSH });
    } catch {
      continue;
    }
    if (inflated.includes(needle)) found.push(`${path}: gzip stream at byte ${offset}`);
  }
  return found;
}

/** Gzip streams written as base64 (a spool line keeps each compressed body so) start with these characters. */
const BASE64_GZIP = /H4sI[A-Za-z0-9+/]+={0,2}/g;

/**
 * Return where `marker` occurs in any file under `dir`: as plain bytes, inside a gzip stream, or inside
 * a base64-encoded gzip stream (the record spool's lines).
 */
export function findMarkerInDir(dir: string, marker: string): string[] {
  const found: string[] = [];
  for (const entry of readdirSync(dir, { recursive: true, withFileTypes: true })) {
    if (!entry.isFile()) continue;
    const path = join(entry.parentPath, entry.name);
    found.push(...findMarkerInFile(path, marker));
    const text = readFileSync(path, 'latin1');
    for (const match of text.matchAll(BASE64_GZIP)) {
      let inflated: Buffer;
      try {
        inflated = gunzipSync(Buffer.from(match[0], 'base64'), { finishFlush: constants.Z_SYNC_FLUSH });
      } catch {
        continue;
      }
      if (inflated.includes(Buffer.from(marker, 'utf8'))) found.push(`${path}: base64 gzip stream at byte ${match.index}`);
    }
  }
  return found;
}
