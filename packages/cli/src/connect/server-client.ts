import { escapeForTerminal } from '../terminal-text.js';
import { describeFetchFailure } from './fetch-failure.js';

/**
 * The two endpoints a device reaches with only its route token (`Authorization: Bearer <route token>`):
 * the server's record of the token, and revoking it.
 */

export interface RouteTokenInfo {
  id: string;
  name: string;
  last_used_at: string | null;
  /** The device the token belongs to; null for a token without one, absent from older servers. */
  device_id?: string | null;
  /**
   * Start time of the newest recent call of each tool of this token's device, as the server saw it; null
   * when the server cannot tell the token's calls apart (a token without a device).
   */
  last_calls: Record<string, string> | null;
  /** The server's public origin (`--public-url`); null or absent when it has none or is an older version. */
  public_url?: string | null;
}

export type ServerReply<T> =
  | { kind: 'ok'; value: T }
  /** The server rejected the token: unknown or revoked. */
  | { kind: 'rejected'; message: string }
  /** A server without these endpoints (an older version). */
  | { kind: 'unsupported'; message: string }
  | { kind: 'unreachable'; message: string };

const REQUEST_TIMEOUT_MS = 10_000;

export function fetchTokenInfo(serverUrl: string, routeToken: string): Promise<ServerReply<RouteTokenInfo>> {
  return callSelf<RouteTokenInfo>(serverUrl, routeToken, 'GET', '/api/v1/route-tokens/self');
}

/** Check that a Tokenwise server answers at `serverUrl`; returns why not, or null when `/healthz` answers. */
export async function probeServer(serverUrl: string): Promise<string | null> {
  try {
    const response = await fetch(`${serverUrl}/healthz`, { signal: AbortSignal.timeout(REQUEST_TIMEOUT_MS) });
    await response.arrayBuffer();
    return null;
  } catch (error) {
    return `failed to reach the Tokenwise server at ${serverUrl}: ${describeFetchFailure(error)}`;
  }
}

export function revokeOwnToken(serverUrl: string, routeToken: string): Promise<ServerReply<{ id: string; revoked: boolean }>> {
  return callSelf(serverUrl, routeToken, 'POST', '/api/v1/route-tokens/self/revoke');
}

async function callSelf<T>(serverUrl: string, routeToken: string, method: string, path: string): Promise<ServerReply<T>> {
  let response: Response;
  try {
    response = await fetch(`${serverUrl}${path}`, {
      method,
      headers: { authorization: `Bearer ${routeToken}` },
      signal: AbortSignal.timeout(REQUEST_TIMEOUT_MS),
    });
  } catch (error) {
    return { kind: 'unreachable', message: `failed to reach the Tokenwise server at ${serverUrl}: ${describeFetchFailure(error)}` };
  }

  const text = await response.text();
  if (response.ok) {
    try {
      return { kind: 'ok', value: JSON.parse(text) as T };
    } catch {
      return { kind: 'unsupported', message: `${serverUrl}${path} returned a body that is not JSON` };
    }
  }
  const message = errorMessage(text) ?? `HTTP ${response.status}`;
  if (response.status === 401) return { kind: 'rejected', message: `the server at ${serverUrl} rejected the route token: ${message}` };
  if (response.status === 404 || response.status === 405) {
    return { kind: 'unsupported', message: `the server at ${serverUrl} has no ${path} (an older version?)` };
  }
  return { kind: 'unreachable', message: `the server at ${serverUrl} returned HTTP ${response.status}: ${message}` };
}

/** Return the server's error message, escaped, because it ends up in notes, errors and status lines on a terminal. */
function errorMessage(text: string): string | null {
  try {
    const message = (JSON.parse(text) as { error?: { message?: unknown } }).error?.message;
    return typeof message === 'string' ? escapeForTerminal(message) : null;
  } catch {
    return null;
  }
}
