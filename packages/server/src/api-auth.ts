import type { ApiToken, Store } from '@tokenwise/storage';
import { digestsEqual, hashToken } from './tokens.js';

export interface ApiTokenVerifier {
  /** The API token an `Authorization` header carries, or null when the header is missing, malformed or unknown. */
  verify(authorization: string | undefined): Promise<ApiToken | null>;
  /** Reload the active tokens on the next request, after a token was revoked or deleted through this process. */
  invalidate(): void;
}

/** Shortest time between two reloads of the active tokens triggered by an unknown token, in ms. */
const RELOAD_INTERVAL_MS = 5_000;
/** Maximum age of the cached token list, in ms, so a token revoked by another process stops working. */
const MAX_CACHE_AGE_MS = 60_000;

/**
 * Checks `Authorization: Bearer <api token>`. The SHA-256 of the presented token is compared with every
 * active token's hash in constant time, so response timing does not reveal how much of a guess matched.
 * The active list is cached and reloaded when an unknown token arrives, at most once per interval, which
 * picks up tokens created by another process without letting bad requests hammer the store.
 */
export function createApiTokenVerifier(store: Store, clock: () => number = Date.now): ApiTokenVerifier {
  let active: ApiToken[] = [];
  let loadedAtMs = Number.NEGATIVE_INFINITY;

  function match(hash: string): ApiToken | null {
    let found: ApiToken | null = null;
    // Compare against every token instead of stopping at the first match: the time does not depend on which one matched.
    for (const token of active) {
      if (digestsEqual(token.tokenSha256, hash)) found = token;
    }
    return found;
  }

  async function reload(): Promise<void> {
    active = await store.listActiveApiTokens();
    loadedAtMs = clock();
  }

  return {
    async verify(authorization) {
      const token = /^Bearer\s+(\S+)\s*$/i.exec(authorization ?? '')?.[1];
      if (!token) return null;

      if (clock() - loadedAtMs >= MAX_CACHE_AGE_MS) await reload();
      const hash = hashToken(token);
      const found = match(hash);
      if (found) return found;

      if (clock() - loadedAtMs < RELOAD_INTERVAL_MS) return null;
      await reload();
      return match(hash);
    },

    invalidate() {
      loadedAtMs = Number.NEGATIVE_INFINITY;
    },
  };
}
