import { randomBytes, randomInt } from 'node:crypto';

/**
 * Prefixes of the secrets the web UI and pairing hand out, so a secret scanner or a person can tell them
 * apart from route (`twr_`) and API (`twa_`) tokens. Each is 32 random bytes in base64url; stores keep
 * only the SHA-256.
 */
export const SECRET_PREFIXES = {
  session: 'tws_',
  invite: 'twi_',
  passwordReset: 'twp_',
  deviceCode: 'twd_',
  setupCode: 'twu_',
} as const;

export function generateSecret(kind: keyof typeof SECRET_PREFIXES): string {
  return SECRET_PREFIXES[kind] + randomBytes(32).toString('base64url');
}

/**
 * Letters of a user code: consonants only, so no code spells a word, and none of the look-alikes I, O, 0
 * or 1 (RFC 8628 section 6.1 recommends both). Eight of them give 20^8, about 2.6e10 codes.
 */
const USER_CODE_LETTERS = 'BCDFGHJKLMNPQRSTVWXZ';
export const USER_CODE_LENGTH = 8;

/** Generate a user code: eight letters without separator; `formatUserCode` adds the dash people see. */
export function generateUserCode(): string {
  let code = '';
  for (let index = 0; index < USER_CODE_LENGTH; index += 1) code += USER_CODE_LETTERS[randomInt(USER_CODE_LETTERS.length)];
  return code;
}

/** `BCDFGHJK` -> `BCDF-GHJK`. */
export function formatUserCode(code: string): string {
  return `${code.slice(0, 4)}-${code.slice(4)}`;
}

/**
 * Read a user code as a person typed it: case, spaces and dashes do not matter. Returns null when what
 * is left is not eight code letters.
 */
export function normalizeUserCode(input: string): string | null {
  const code = input.toUpperCase().replace(/[\s-]/g, '');
  if (code.length !== USER_CODE_LENGTH) return null;
  return [...code].every((letter) => USER_CODE_LETTERS.includes(letter)) ? code : null;
}
