import { createHmac } from 'node:crypto';

const ROUTE_TOKEN_PREFIX = 'twr_';

/**
 * Derive the route token the judge's requests of one workspace use, as an HMAC-SHA256 of the workspace
 * and the judge's device under the judge API key. Every app process with the same key derives the same
 * token, so the store keeps only its hash like any other route token, and a new key gives a new token.
 */
export function judgeRouteToken(apiKey: string, workspaceId: string, deviceId: string): string {
  const digest = createHmac('sha256', apiKey).update(`tokenwise judge route token\n${workspaceId}\n${deviceId}`).digest('base64url');
  return ROUTE_TOKEN_PREFIX + digest;
}
