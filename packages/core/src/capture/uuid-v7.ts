/**
 * Random bytes drawn 4 KiB at a time: one `getRandomValues` per call cost more than the rest of building
 * the id. Each id takes 10 bytes of the pool and none is handed out twice.
 */
const POOL_BYTES = 4096;
const RANDOM_BYTES_PER_ID = 10;
const pool = new Uint8Array(POOL_BYTES);
let poolOffset = POOL_BYTES;

const HEX = Array.from({ length: 256 }, (_, byte) => byte.toString(16).padStart(2, '0'));

/** Generate a UUIDv7 (RFC 9562 section 5.7): 48-bit Unix milliseconds, then random bits, so ids sort by time. */
export function uuidV7(unixMs: number): string {
  if (poolOffset + RANDOM_BYTES_PER_ID > POOL_BYTES) {
    crypto.getRandomValues(pool);
    poolOffset = 0;
  }
  const bytes = new Uint8Array(16);
  bytes.set(pool.subarray(poolOffset, poolOffset + RANDOM_BYTES_PER_ID), 6);
  poolOffset += RANDOM_BYTES_PER_ID;

  let time = Math.max(0, Math.floor(unixMs));
  for (let i = 5; i >= 0; i--) {
    bytes[i] = time % 256;
    time = Math.floor(time / 256);
  }
  bytes[6] = (bytes[6]! & 0x0f) | 0x70;
  bytes[8] = (bytes[8]! & 0x3f) | 0x80;

  let hex = '';
  for (let i = 0; i < 16; i++) {
    if (i === 4 || i === 6 || i === 8 || i === 10) hex += '-';
    hex += HEX[bytes[i]!];
  }
  return hex;
}
