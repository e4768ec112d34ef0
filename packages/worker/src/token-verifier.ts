import { TokenwiseError } from '@tokenwise/core';

/** What a valid route token grants: the workspace and device its calls are recorded under. */
export interface RouteGrant {
  workspaceId: string;
  deviceId: string | null;
  /** False in privacy mode: records are sent without bodies. */
  keepBodies: boolean;
  /** False when the workspace turned redaction off: kept body text is sent as it was. */
  redactBodies: boolean;
}

export interface TokenVerifierOptions {
  serverUrl: string;
  ingestSecret: string;
  /** How long a valid token is trusted without asking the server again, in ms. */
  cacheMs: number;
  /** Time the server has to answer one verify request, in ms. */
  timeoutMs?: number;
  now?: () => number;
}

export interface TokenVerifier {
  /** The grant of a route token, or null when it is unknown or revoked. Throws `upstream_unreachable` when the server cannot tell. */
  verify(token: string): Promise<RouteGrant | null>;
}

interface CacheEntry {
  grant: RouteGrant | null;
  expiresAtMs: number;
}

/** An unknown token is remembered this long at most, so a token created a moment ago works soon. */
const NEGATIVE_CACHE_MS = 5_000;
const MAX_ENTRIES = 1_000;
const DEFAULT_TIMEOUT_MS = 10_000;

/**
 * Route token checks against `POST /api/v1/routes/verify` on the server, with a per-isolate cache in
 * front. Only the token's SHA-256 leaves the Worker. Lookups are not shared between concurrent requests,
 * because the Workers runtime does not let one request wait on another request's I/O.
 */
export function createTokenVerifier(options: TokenVerifierOptions): TokenVerifier {
  const now = options.now ?? Date.now;
  const timeoutMs = options.timeoutMs ?? DEFAULT_TIMEOUT_MS;
  const cache = new Map<string, CacheEntry>();

  function remember(hash: string, grant: RouteGrant | null): void {
    const ttlMs = grant ? options.cacheMs : Math.min(options.cacheMs, NEGATIVE_CACHE_MS);
    cache.delete(hash);
    if (ttlMs <= 0) return;
    cache.set(hash, { grant, expiresAtMs: now() + ttlMs });
    if (cache.size > MAX_ENTRIES) {
      const oldest = cache.keys().next().value;
      if (oldest !== undefined) cache.delete(oldest);
    }
  }

  async function ask(hash: string): Promise<RouteGrant | null> {
    const url = `${options.serverUrl}/api/v1/routes/verify`;
    let response: Response;
    try {
      response = await fetch(url, {
        method: 'POST',
        headers: { authorization: `Bearer ${options.ingestSecret}`, 'content-type': 'application/json' },
        body: JSON.stringify({ token_sha256: hash }),
        signal: AbortSignal.timeout(timeoutMs),
      });
    } catch (error) {
      throw unreachable(`${url} is unreachable: ${describeError(error)}`);
    }

    if (response.status === 401 || response.status === 404) {
      await response.body?.cancel();
      throw unreachable(
        response.status === 401
          ? 'the server rejected TOKENWISE_INGEST_SECRET; set the same secret on the Worker and the server'
          : 'the server has no Worker endpoints; start tokenwise serve with TOKENWISE_INGEST_SECRET',
      );
    }
    if (response.status !== 200) {
      await response.body?.cancel();
      throw unreachable(`HTTP ${response.status} from ${url}`);
    }
    return parseGrant(await response.json());
  }

  return {
    async verify(token) {
      const hash = await sha256Hex(token);
      const cached = cache.get(hash);
      if (cached && cached.expiresAtMs > now()) return cached.grant;

      const grant = await ask(hash);
      remember(hash, grant);
      return grant;
    },
  };
}

function parseGrant(body: unknown): RouteGrant | null {
  const answer = typeof body === 'object' && body !== null ? (body as Record<string, unknown>) : {};
  if (answer.valid === false) return null;
  const { workspace_id: workspaceId, device_id: deviceId, keep_bodies: keepBodies } = answer;
  if (
    answer.valid !== true ||
    typeof workspaceId !== 'string' ||
    (deviceId !== null && typeof deviceId !== 'string') ||
    typeof keepBodies !== 'boolean'
  ) {
    throw unreachable('the server sent a verify answer of an unexpected shape; update the Worker and the server to the same version');
  }
  // A server older than the redaction switch sends no redact_bodies; it always redacted.
  return { workspaceId, deviceId, keepBodies, redactBodies: answer.redact_bodies !== false };
}

function unreachable(detail: string): TokenwiseError {
  return new TokenwiseError('upstream_unreachable', `cannot check the route token with the Tokenwise server: ${detail}`);
}

export function describeError(error: unknown): string {
  if (error instanceof Error) return error.name === 'TimeoutError' ? 'no answer in time' : error.message.replace(/\.$/, '');
  return String(error);
}

async function sha256Hex(text: string): Promise<string> {
  const digest = new Uint8Array(await crypto.subtle.digest('SHA-256', new TextEncoder().encode(text)));
  return Array.from(digest, (byte) => byte.toString(16).padStart(2, '0')).join('');
}
