import type { RouteToken, Store } from '@tokenwise/storage';
import type { Logger } from 'pino';
import type { RouteAuthorization } from './proxy/proxy-options.js';
import { hashToken } from './tokens.js';

export interface RouteAuthorizerOptions {
  store: Store;
  logger: Logger;
  /** How long a valid token is trusted without asking the store again, in ms. */
  cacheTtlMs?: number;
  /** How long an unknown or revoked token is remembered as such, in ms (short: a new token must work soon). */
  negativeCacheTtlMs?: number;
  /** Cached tokens at most; the oldest entry goes first. */
  maxEntries?: number;
  /** Minimum time between two `last_used_at` writes for one token, in ms. */
  touchIntervalMs?: number;
  /**
   * How long past its expiry a cached grant is still used while the store fails, in ms, so calls keep
   * flowing through a database restart. A token revoked meanwhile through another server keeps working
   * that long at most.
   */
  staleIfErrorMs?: number;
  clock?: () => number;
}

export interface RouteAuthorizer {
  /** Resolves a route token to what it grants, or null when it is unknown or revoked. Rejects when the store fails. */
  authorize(token: string): Promise<RouteAuthorization | null>;
  /**
   * Revoke a token by id and drop it from this process's cache at once. Other processes sharing the
   * store keep a cached grant for up to `cacheTtlMs`.
   */
  revoke(tokenId: string): Promise<boolean>;
  /** Revoke a device with every route token of it, dropping them from this process's cache at once. */
  revokeDevice(deviceId: string): Promise<string[]>;
  /**
   * Drop the cached grants of a workspace or a device, so a changed setting (privacy mode) applies to the
   * next call here. Other processes pick it up within `cacheTtlMs`.
   */
  forget(scope: { workspaceId?: string; deviceId?: string }): void;
}

interface CacheEntry {
  grant: RouteAuthorization | null;
  tokenId: string | null;
  expiresAtMs: number;
  /** When the grant first expired without the store confirming it again (only for a grant used while the store fails). */
  staleSinceMs?: number;
}

/**
 * Resolve what a route token grants now: its workspace and device, with bodies kept only when neither the
 * workspace nor the device is in privacy mode. Null when the token, its device or its workspace is revoked
 * or gone.
 */
export async function resolveRouteGrant(store: Store, token: RouteToken | null): Promise<RouteAuthorization | null> {
  if (!token || token.revokedAt !== null) return null;
  const workspace = await store.getWorkspace(token.workspaceId);
  if (!workspace) return null;
  const device = token.deviceId === null ? null : await store.getDevice(token.deviceId);
  if (token.deviceId !== null && (!device || device.revokedAt !== null)) return null;
  return {
    workspaceId: workspace.id,
    deviceId: token.deviceId,
    keepBodies: workspace.keepBodies && !(device?.privacyMode ?? false),
    redactBodies: workspace.redactBodies,
    userId: device?.userId ?? null,
    budgetsFailClosed: workspace.budgetsFailClosed,
  };
}

/**
 * Route token lookup for the proxy: SHA-256 of the token, then the store, with a short cache in front so
 * a busy proxy does not query the store on every request. Concurrent lookups of one token share one
 * query. `last_used_at` is written at most once per `touchIntervalMs` per token, off the request path.
 */
export function createRouteAuthorizer(options: RouteAuthorizerOptions): RouteAuthorizer {
  const { store, logger } = options;
  const cacheTtlMs = options.cacheTtlMs ?? 30_000;
  const negativeCacheTtlMs = options.negativeCacheTtlMs ?? 2_000;
  const maxEntries = options.maxEntries ?? 10_000;
  const touchIntervalMs = options.touchIntervalMs ?? 60_000;
  const staleIfErrorMs = options.staleIfErrorMs ?? 60 * 60 * 1000;
  const clock = options.clock ?? Date.now;

  const cache = new Map<string, CacheEntry>();
  const pending = new Map<string, Promise<CacheEntry>>();
  const lastTouchMs = new Map<string, number>();
  // Ids revoked through this process. A lookup that started before the revocation may still return the
  // old grant; this set keeps it from being cached or used.
  const revokedIds = new Set<string>();

  function remember(hash: string, entry: CacheEntry): void {
    cache.delete(hash);
    cache.set(hash, entry);
    if (cache.size > maxEntries) {
      const oldest = cache.keys().next().value;
      if (oldest !== undefined) cache.delete(oldest);
    }
  }

  async function lookUp(hash: string): Promise<CacheEntry> {
    const token = await store.findRouteTokenByHash(hash);
    const grant = await resolveRouteGrant(store, token);
    return { grant, tokenId: token?.id ?? null, expiresAtMs: clock() + (grant ? cacheTtlMs : negativeCacheTtlMs) };
  }

  /**
   * Return the cached grant of `hash` to use while the store fails, or null when there is none to use.
   * The grant is kept a little longer so that the calls that follow do not each wait for the failing
   * store. A concurrent call may have extended it already, and a revocation or `forget` removes it.
   */
  function usableWhileFailing(hash: string): CacheEntry | null {
    const cached = cache.get(hash);
    if (!cached?.grant || cached.tokenId === null || revokedIds.has(cached.tokenId)) return null;
    const now = clock();
    if (cached.expiresAtMs > now) return cached;
    const staleSinceMs = cached.staleSinceMs ?? cached.expiresAtMs;
    if (now - staleSinceMs > staleIfErrorMs) return null;
    return { ...cached, staleSinceMs, expiresAtMs: now + negativeCacheTtlMs };
  }

  function evictToken(tokenId: string): void {
    revokedIds.add(tokenId);
    for (const [hash, entry] of cache) {
      if (entry.tokenId === tokenId) cache.delete(hash);
    }
    lastTouchMs.delete(tokenId);
  }

  function touch(tokenId: string): void {
    const now = clock();
    const last = lastTouchMs.get(tokenId);
    if (last !== undefined && now - last < touchIntervalMs) return;
    lastTouchMs.set(tokenId, now);

    store.touchRouteToken(tokenId, new Date(now)).catch((error: unknown) => {
      logger.warn({ err: error, token_id: tokenId }, 'recording route token use failed');
    });
  }

  return {
    async authorize(token) {
      const hash = hashToken(token);
      let entry = cache.get(hash);

      if (!entry || entry.expiresAtMs <= clock()) {
        let lookup = pending.get(hash);
        if (!lookup) {
          lookup = lookUp(hash).finally(() => pending.delete(hash));
          pending.set(hash, lookup);
        }
        try {
          entry = await lookup;
        } catch (error) {
          const stale = usableWhileFailing(hash);
          if (!stale) {
            logger.error({ err: error }, 'route token lookup failed');
            throw error;
          }
          logger.warn({ err: error, token_id: stale.tokenId }, 'route token lookup failed; using the cached grant until the store is back');
          entry = stale;
        }
        if (entry.tokenId !== null && revokedIds.has(entry.tokenId)) entry = { ...entry, grant: null };
        remember(hash, entry);
      }

      if (entry.grant && entry.tokenId) touch(entry.tokenId);
      return entry.grant;
    },

    async revoke(tokenId) {
      revokedIds.add(tokenId);
      const revoked = await store.revokeRouteToken(tokenId);
      evictToken(tokenId);
      return revoked;
    },

    async revokeDevice(deviceId) {
      const tokenIds = await store.revokeDevice(deviceId);
      for (const tokenId of tokenIds) evictToken(tokenId);
      // A lookup that started before the revocation may still return a grant of this device.
      this.forget({ deviceId });
      return tokenIds;
    },

    forget(scope) {
      for (const [hash, entry] of cache) {
        const grant = entry.grant;
        if (!grant) continue;
        if (grant.workspaceId === scope.workspaceId || (scope.deviceId !== undefined && grant.deviceId === scope.deviceId)) {
          cache.delete(hash);
        }
      }
    },
  };
}
