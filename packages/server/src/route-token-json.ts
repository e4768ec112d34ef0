import type { RouteToken } from '@tokenwise/storage';

/** Describe a route token for the API: everything but the hash (the secret itself is never stored). */
export function describeRouteToken(token: RouteToken) {
  return {
    id: token.id,
    name: token.name,
    device_id: token.deviceId,
    created_at: token.createdAt,
    last_used_at: token.lastUsedAt,
    revoked_at: token.revokedAt,
  };
}

/** A route token as `describeRouteToken` returns it and `GET /api/v1/route-tokens` lists it. */
export type RouteTokenDescription = ReturnType<typeof describeRouteToken>;
