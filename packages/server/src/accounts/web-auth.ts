import { createHmac, randomBytes } from 'node:crypto';
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Session, Store, User } from '@tokenwise/storage';
import { digestsEqual, hashToken } from '../tokens.js';
import { generateSecret } from './secrets.js';

/** Sessions end this long after sign-in, whatever the activity. */
export const SESSION_LIFETIME_MS = 30 * 24 * 3_600_000;
/** `last_seen_at` of a session is written at most this often. */
const TOUCH_INTERVAL_MS = 10 * 60_000;

export interface SignedIn {
  user: User;
  session: Session;
  /** The cookie's token, from which the CSRF token is derived. */
  token: string;
}

export interface WebAuth {
  /** The signed-in person of a request, or null when the cookie is missing, unknown or expired. */
  signedIn(req: IncomingMessage): Promise<SignedIn | null>;
  /** Start a session for `user` and set its cookie on `res`. */
  signIn(req: IncomingMessage, res: ServerResponse, user: User): Promise<SignedIn>;
  /** End the request's session, if any, and clear the cookie. */
  signOut(req: IncomingMessage, res: ServerResponse): Promise<void>;
  /**
   * The CSRF token for forms on this request's page: derived from the session token, or before sign-in
   * from a random cookie this sets on `res` when missing.
   */
  csrfToken(req: IncomingMessage, res: ServerResponse, signedIn: SignedIn | null): string;
  /** True when `presented` is the CSRF token of this request's session or pre-session cookie. */
  checkCsrf(req: IncomingMessage, signedIn: SignedIn | null, presented: unknown): boolean;
}

/**
 * Browser sessions: an HttpOnly, SameSite=Lax cookie contains a random token and the store its SHA-256.
 * CSRF tokens are an HMAC of the cookie's value (the synchronizer-token pattern without server state): a
 * page of another site can make the browser send the cookie but cannot read it, so it cannot compute the
 * token a form or an `x-csrf-token` header must carry.
 */
export function createWebAuth(options: { store: Store; secureCookies: boolean; clock?: () => Date }): WebAuth {
  const { store, secureCookies } = options;
  const clock = options.clock ?? (() => new Date());
  // The __Host- prefix makes browsers refuse the cookie unless it is Secure, host-only and for path /.
  const sessionCookie = secureCookies ? '__Host-tokenwise_session' : 'tokenwise_session';
  const seedCookie = secureCookies ? '__Host-tokenwise_csrf' : 'tokenwise_csrf';

  function setCookie(res: ServerResponse, name: string, value: string, maxAgeS: number): void {
    const attributes = [`${name}=${value}`, 'Path=/', 'HttpOnly', 'SameSite=Lax', `Max-Age=${maxAgeS}`];
    if (secureCookies) attributes.push('Secure');
    const existing = res.getHeader('set-cookie');
    const list = Array.isArray(existing) ? existing : existing === undefined ? [] : [String(existing)];
    res.setHeader('set-cookie', [...list, attributes.join('; ')]);
  }

  return {
    async signedIn(req) {
      const token = readCookie(req, sessionCookie);
      if (!token) return null;
      const session = await store.findSessionByHash(hashToken(token));
      const now = clock();
      if (!session || session.expiresAt <= now.toISOString()) return null;
      const user = await store.getUser(session.userId);
      if (!user) return null;

      if (now.getTime() - Date.parse(session.lastSeenAt) >= TOUCH_INTERVAL_MS) await store.touchSession(session.id, now);
      return { user, session, token };
    },

    async signIn(req, res, user) {
      const token = generateSecret('session');
      const expiresAt = new Date(clock().getTime() + SESSION_LIFETIME_MS).toISOString();
      const userAgent = req.headers['user-agent']?.slice(0, 300) ?? null;
      const session = await store.createSession({ userId: user.id, tokenSha256: hashToken(token), expiresAt, userAgent });
      setCookie(res, sessionCookie, token, Math.floor(SESSION_LIFETIME_MS / 1000));
      return { user, session, token };
    },

    async signOut(req, res) {
      const token = readCookie(req, sessionCookie);
      if (token) {
        const session = await store.findSessionByHash(hashToken(token));
        if (session) await store.deleteSession(session.id);
      }
      setCookie(res, sessionCookie, '', 0);
    },

    csrfToken(req, res, signedIn) {
      if (signedIn) return deriveCsrf(signedIn.token);
      let seed = readCookie(req, seedCookie);
      if (!seed) {
        seed = randomBytes(32).toString('base64url');
        setCookie(res, seedCookie, seed, Math.floor(SESSION_LIFETIME_MS / 1000));
      }
      return deriveCsrf(seed);
    },

    checkCsrf(req, signedIn, presented) {
      if (typeof presented !== 'string' || presented === '') return false;
      const seed = signedIn?.token ?? readCookie(req, seedCookie);
      if (!seed) return false;
      return digestsEqual(deriveCsrf(seed), presented);
    },
  };
}

function deriveCsrf(seed: string): string {
  return createHmac('sha256', seed).update('tokenwise csrf v1').digest('base64url');
}

/** Return the value of cookie `name`, or null; values Tokenwise sets are base64url, so no decoding is needed. */
export function readCookie(req: IncomingMessage, name: string): string | null {
  const header = req.headers.cookie;
  if (!header) return null;
  for (const part of header.split(';')) {
    const separator = part.indexOf('=');
    if (separator === -1) continue;
    if (part.slice(0, separator).trim() === name) {
      const value = part.slice(separator + 1).trim();
      return /^[A-Za-z0-9_-]{16,200}$/.test(value) ? value : null;
    }
  }
  return null;
}
