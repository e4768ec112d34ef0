import { randomBytes, type ScryptOptions, scrypt, timingSafeEqual } from 'node:crypto';

/**
 * scrypt cost: N = 2^15, r = 8, p = 1 takes 32 MiB and about 90 ms per hash (measured on the 2-core
 * machine that runs the tests). The hash string carries its parameters, so raising them later keeps old
 * hashes verifiable.
 */
const COST = { N: 2 ** 15, r: 8, p: 1 } as const;
const KEY_BYTES = 32;
const SALT_BYTES = 16;
/** Node refuses scrypt above `maxmem`; 128 * N * r bytes is what it needs, with room to spare. */
const MAX_MEMORY_BYTES = 64 * 1024 * 1024;

export const MIN_PASSWORD_LENGTH = 10;
/** Longer input only costs hashing time, so it is rejected before scrypt runs. */
export const MAX_PASSWORD_LENGTH = 256;

/** Hash a password as `scrypt$N$r$p$salt$hash` (base64url parts). */
export async function hashPassword(password: string): Promise<string> {
  const salt = randomBytes(SALT_BYTES);
  const key = await derive(password, salt, COST);
  return ['scrypt', COST.N, COST.r, COST.p, salt.toString('base64url'), key.toString('base64url')].join('$');
}

/** True when `password` matches `hash`; a malformed hash never matches. Compares in constant time. */
export async function verifyPassword(password: string, hash: string): Promise<boolean> {
  const parts = hash.split('$');
  if (parts.length !== 6 || parts[0] !== 'scrypt') return false;
  const [N, r, p] = parts.slice(1, 4).map(Number) as [number, number, number];
  if (![N, r, p].every((value) => Number.isSafeInteger(value) && value > 0) || 128 * N * r > MAX_MEMORY_BYTES) return false;

  const salt = Buffer.from(parts[4]!, 'base64url');
  const expected = Buffer.from(parts[5]!, 'base64url');
  if (password.length > MAX_PASSWORD_LENGTH || expected.length === 0) return false;
  const key = await derive(password, salt, { N, r, p }, expected.length);
  return timingSafeEqual(key, expected);
}

let unknownUserHash: Promise<string> | null = null;

/**
 * Return the hash of a random password, checked when a sign-in names an unknown email, so the response
 * takes as long as for a known email with a wrong password.
 */
export function hashForUnknownUser(): Promise<string> {
  unknownUserHash ??= hashPassword(randomBytes(24).toString('base64url'));
  return unknownUserHash;
}

/** Return why a new password is unacceptable, or null when it is fine. */
export function checkNewPassword(password: string, email: string): string | null {
  if (password.length < MIN_PASSWORD_LENGTH) return `the password is too short: use at least ${MIN_PASSWORD_LENGTH} characters`;
  if (password.length > MAX_PASSWORD_LENGTH) return `the password is too long: use at most ${MAX_PASSWORD_LENGTH} characters`;
  if (password.trim().toLowerCase() === email.trim().toLowerCase()) return 'the password must not be your email address';
  return null;
}

function derive(password: string, salt: Buffer, cost: { N: number; r: number; p: number }, length = KEY_BYTES): Promise<Buffer> {
  const options: ScryptOptions = { ...cost, maxmem: MAX_MEMORY_BYTES };
  return new Promise((resolve, reject) => {
    scrypt(password.normalize('NFKC'), salt, length, options, (error, key) => (error ? reject(error) : resolve(key)));
  });
}
