import { TokenwiseError } from '@tokenwise/core';
import type { ApiToken, RouteToken } from './store.js';

/** A row of `route_tokens` or `api_tokens` as every store reads it; only route tokens have `device_id`, only API tokens `user_id`. */
export interface TokenRow {
  id: string;
  workspace_id: string;
  device_id?: string | null;
  user_id?: string | null;
  name: string;
  token_sha256: string;
  created_at: string;
  revoked_at: string | null;
  last_used_at: string | null;
}

export function parseCursor(cursor: string): number {
  if (!/^\d{1,15}$/.test(cursor)) {
    throw new TokenwiseError('invalid_argument', `invalid cursor "${cursor}": pass back a cursor this server returned`);
  }
  return Number(cursor);
}

export function checkSha256(hash: string): string {
  if (!/^[0-9a-f]{64}$/.test(hash)) {
    throw new TokenwiseError('invalid_argument', 'invalid token hash: expected 64 lowercase hex digits of SHA-256');
  }
  return hash;
}

export function toRouteToken(row: TokenRow): RouteToken {
  return {
    id: row.id,
    workspaceId: row.workspace_id,
    deviceId: row.device_id ?? null,
    name: row.name,
    tokenSha256: row.token_sha256,
    createdAt: row.created_at,
    revokedAt: row.revoked_at,
    lastUsedAt: row.last_used_at,
  };
}

export function toApiToken(row: TokenRow): ApiToken {
  return {
    id: row.id,
    workspaceId: row.workspace_id,
    userId: row.user_id ?? null,
    name: row.name,
    tokenSha256: row.token_sha256,
    createdAt: row.created_at,
    revokedAt: row.revoked_at,
    lastUsedAt: row.last_used_at,
  };
}
