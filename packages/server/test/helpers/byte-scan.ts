import { existsSync, readFileSync } from 'node:fs';
import { constants, inflateRawSync } from 'node:zlib';

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
