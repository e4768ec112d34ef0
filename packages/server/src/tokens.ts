import { hash, randomBytes, timingSafeEqual } from 'node:crypto';

/**
 * Route tokens sit in the URL path (`/r/{token}/…`) and API tokens in `Authorization: Bearer`. Both are
 * 32 random bytes in base64url behind a short prefix, so a secret scanner or a person can tell which is
 * which. Stores keep only their SHA-256.
 */
const ROUTE_TOKEN_PREFIX = 'twr_';
const API_TOKEN_PREFIX = 'twa_';

export function generateRouteToken(): string {
  return ROUTE_TOKEN_PREFIX + randomBytes(32).toString('base64url');
}

export function generateApiToken(): string {
  return API_TOKEN_PREFIX + randomBytes(32).toString('base64url');
}

/** Lowercase hex SHA-256 of a token, the only form a store keeps. Every proxied call hashes its route token. */
export function hashToken(token: string): string {
  return hash('sha256', token, 'hex');
}

/** Compare two SHA-256 hex digests in constant time; false for digests of different lengths. */
export function digestsEqual(left: string, right: string): boolean {
  const a = Buffer.from(left, 'utf8');
  const b = Buffer.from(right, 'utf8');
  return a.length === b.length && timingSafeEqual(a, b);
}
