import type { IncomingMessage, ServerResponse } from 'node:http';
import { TokenwiseError } from '@tokenwise/core';
import type { DeviceCode, Store, User, Workspace } from '@tokenwise/storage';
import type { Logger } from 'pino';
import { generateRouteToken, hashToken } from '../tokens.js';
import { createAttemptLimiter } from './attempt-limiter.js';
import { clientAddress } from './client-address.js';
import { readFields, stringField } from './request-body.js';
import { formatUserCode, generateSecret, generateUserCode, normalizeUserCode } from './secrets.js';

export const DEVICE_CODE_PATH = '/api/v1/device/code';
export const DEVICE_TOKEN_PATH = '/api/v1/device/token';
/** The `grant_type` of a device access token request (RFC 8628 section 3.4). */
export const DEVICE_GRANT_TYPE = 'urn:ietf:params:oauth:grant-type:device_code';

/** How long a person has to approve a code, in ms. */
const CODE_LIFETIME_MS = 15 * 60_000;
/** Seconds a device waits between polls; RFC 8628 section 3.5 defaults to 5 and adds 5 on every `slow_down`. */
const POLL_INTERVAL_S = 5;
const SLOW_DOWN_STEP_S = 5;
const MAX_DEVICE_NAME_LENGTH = 100;
/** Codes requested per client address within the window; a client over it waits at most the window. */
const CODES_PER_CLIENT = 10;
const CODE_WINDOW_MS = 60_000;
/**
 * Codes requested from all clients together within one code lifetime, which bounds the unexpired codes
 * this process adds to the store however many addresses send requests.
 */
const CODES_PER_LIFETIME = 1000;
const ALL_CLIENTS = '*';

/** An RFC 6749 section 5.2 error code, as RFC 8628 section 3.5 extends them. */
type OAuthError =
  | 'invalid_request'
  | 'invalid_grant'
  | 'unsupported_grant_type'
  | 'authorization_pending'
  | 'slow_down'
  | 'expired_token'
  | 'access_denied';

export interface DeviceFlowOptions {
  store: Store;
  logger: Logger;
  /** The origin devices and browsers reach this server at, for `verification_uri` and `proxy_base_url`. */
  baseUrl(req: IncomingMessage): string;
  /** The origin the device sends calls to; defaults to `baseUrl`. */
  proxyBaseUrl?(req: IncomingMessage): string;
  /** Take the client address from `X-Forwarded-For` (`--trust-proxy`); see `clientAddress`. */
  trustProxy?: boolean;
  clock?: () => Date;
}

/**
 * The device authorization grant (RFC 8628) that pairs a machine: the CLI requests a code, a person signs
 * in at `/device`, checks the code, the device's name and OS, picks a workspace and approves; the CLI's next
 * poll receives a new route token for that device. Only hashes of the device code and of the token are
 * stored, and the token is handed out once.
 */
export function createDeviceFlow(options: DeviceFlowOptions) {
  const { store, logger } = options;
  const clock = options.clock ?? (() => new Date());
  const codeLimiter = createAttemptLimiter({ maxFailures: CODES_PER_CLIENT, windowMs: CODE_WINDOW_MS });
  // NOTE: a client with more than CODES_PER_LIFETIME / CODES_PER_CLIENT addresses can still spend this
  // bound and make everyone wait, for at most one code lifetime.
  const totalLimiter = createAttemptLimiter({ maxFailures: CODES_PER_LIFETIME, windowMs: CODE_LIFETIME_MS });

  async function requestCode(req: IncomingMessage, res: ServerResponse): Promise<void> {
    // NOTE: behind a reverse proxy without --trust-proxy every client has the proxy's address, so one
    // client that keeps requesting codes makes the others wait too (each wait at most CODE_WINDOW_MS).
    const client = clientAddress(req, options.trustProxy ?? false);
    const clientRetryS = codeLimiter.retryAfterS(client);
    if (clientRetryS > 0) {
      res.setHeader('retry-after', String(clientRetryS));
      sendOAuthError(
        res,
        429,
        'slow_down',
        `too many device codes requested from this address (${CODES_PER_CLIENT} per ${CODE_WINDOW_MS / 1000} s): retry in ${clientRetryS} s`,
      );
      return;
    }
    const totalRetryS = totalLimiter.retryAfterS(ALL_CLIENTS);
    if (totalRetryS > 0) {
      logger.warn({ limit: CODES_PER_LIFETIME, retry_after_s: totalRetryS }, 'device code requests rejected: too many unexpired codes');
      res.setHeader('retry-after', String(totalRetryS));
      sendOAuthError(res, 429, 'slow_down', `too many device codes requested on this server: retry in ${totalRetryS} s`);
      return;
    }
    codeLimiter.fail(client);
    totalLimiter.fail(ALL_CLIENTS);

    const fields = await readFields(req);
    const deviceName = checkDeviceText(stringField(fields, 'device_name') ?? 'unnamed device', 'device_name');
    const os = stringField(fields, 'os');
    const deviceCode = generateSecret('deviceCode');
    const code = await createUniqueCode({ deviceCodeSha256: hashToken(deviceCode), deviceName, os: os ? checkDeviceText(os, 'os') : null });

    const verificationUri = `${options.baseUrl(req)}/device`;
    logger.info({ device_code_id: code.id, device_name: deviceName }, 'device code issued');
    sendOAuthJson(res, 200, {
      device_code: deviceCode,
      user_code: formatUserCode(code.userCode),
      verification_uri: verificationUri,
      verification_uri_complete: `${verificationUri}?user_code=${formatUserCode(code.userCode)}`,
      expires_in: Math.round(CODE_LIFETIME_MS / 1000),
      interval: POLL_INTERVAL_S,
    });
  }

  async function createUniqueCode(input: { deviceCodeSha256: string; deviceName: string; os: string | null }): Promise<DeviceCode> {
    const expiresAt = new Date(clock().getTime() + CODE_LIFETIME_MS).toISOString();
    // A collision of user codes among the unexpired ones is rare (20^8 codes) but fails the insert; try again.
    for (let attempt = 1; ; attempt += 1) {
      const userCode = generateUserCode();
      const taken = await store.findDeviceCodeByUserCode(userCode);
      if (taken && taken.expiresAt > clock().toISOString()) continue;
      if (taken) await store.purgeExpiredCredentials(clock());
      try {
        return await store.createDeviceCode({ ...input, userCode, intervalS: POLL_INTERVAL_S, expiresAt });
      } catch (error) {
        if (attempt >= 3) throw error;
      }
    }
  }

  async function pollToken(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const fields = await readFields(req);
    if (stringField(fields, 'grant_type') !== DEVICE_GRANT_TYPE) {
      sendOAuthError(res, 400, 'unsupported_grant_type', `expected grant_type=${DEVICE_GRANT_TYPE}`);
      return;
    }
    const deviceCode = stringField(fields, 'device_code');
    if (!deviceCode) {
      sendOAuthError(res, 400, 'invalid_request', 'missing device_code');
      return;
    }

    const code = await store.findDeviceCodeByHash(hashToken(deviceCode));
    const now = clock();
    if (!code || code.status === 'issued') {
      sendOAuthError(res, 400, 'invalid_grant', 'unknown or already used device_code: start pairing again');
      return;
    }
    if (code.expiresAt <= now.toISOString()) {
      sendOAuthError(res, 400, 'expired_token', 'the code expired before it was approved: start pairing again');
      return;
    }
    if (code.status === 'denied') {
      sendOAuthError(res, 400, 'access_denied', 'the pairing was denied in the browser');
      return;
    }
    if (code.status === 'pending') {
      // RFC 8628 section 3.5: a device polling faster than the interval gets slow_down and must wait 5 s more.
      const tooSoon = code.lastPolledAt !== null && now.getTime() - Date.parse(code.lastPolledAt) < code.intervalS * 1000;
      const intervalS = tooSoon ? code.intervalS + SLOW_DOWN_STEP_S : code.intervalS;
      await store.recordDeviceCodePoll(code.id, now, intervalS);
      if (tooSoon) sendOAuthError(res, 400, 'slow_down', `poll at most every ${intervalS} s`, { interval: intervalS });
      else sendOAuthError(res, 400, 'authorization_pending', 'waiting for approval in the browser');
      return;
    }

    await issueToken(req, res, code);
  }

  async function issueToken(req: IncomingMessage, res: ServerResponse, code: DeviceCode): Promise<void> {
    const workspace = code.workspaceId === null ? null : await store.getWorkspace(code.workspaceId);
    if (!workspace) {
      sendOAuthError(res, 400, 'invalid_grant', 'the workspace of this pairing no longer exists: start pairing again');
      return;
    }
    const token = generateRouteToken();
    const issued = await store.issueDeviceCode(code.id, {
      device: { workspaceId: workspace.id, name: code.deviceName, os: code.os, userId: code.userId },
      routeToken: { name: code.deviceName, tokenSha256: hashToken(token) },
    });
    if (!issued) {
      sendOAuthError(res, 400, 'invalid_grant', 'unknown or already used device_code: start pairing again');
      return;
    }

    logger.info({ device_id: issued.device.id, workspace_id: workspace.id, token_id: issued.routeTokenId }, 'device paired');
    sendOAuthJson(res, 200, {
      access_token: token,
      token_type: 'route',
      proxy_base_url: (options.proxyBaseUrl ?? options.baseUrl)(req),
      device_id: issued.device.id,
      route_token_id: issued.routeTokenId,
      workspace_id: workspace.id,
      workspace_name: workspace.name,
    });
  }

  return {
    matches(path: string): boolean {
      return path === DEVICE_CODE_PATH || path === DEVICE_TOKEN_PATH;
    },

    handle(req: IncomingMessage, res: ServerResponse, path: string): void {
      if (req.method !== 'POST') {
        res.setHeader('allow', 'POST');
        sendOAuthError(res, 405, 'invalid_request', `${req.method} is not allowed on ${path}: use POST`);
        return;
      }
      const work = path === DEVICE_CODE_PATH ? requestCode(req, res) : pollToken(req, res);
      work.catch((error: unknown) => {
        if (error instanceof TokenwiseError && error.code === 'invalid_argument') {
          sendOAuthError(res, 400, 'invalid_request', error.message);
          return;
        }
        logger.error({ err: error, path }, 'device authorization request failed');
        if (res.headersSent) res.destroy();
        else sendOAuthJson(res, 500, { error: 'server_error', error_description: 'the server failed; details are in the server log' });
      });
    },

    /** Return the pending, unexpired code a person typed, or null. */
    async findPending(userCodeInput: string): Promise<DeviceCode | null> {
      const userCode = normalizeUserCode(userCodeInput);
      if (userCode === null) return null;
      const code = await store.findDeviceCodeByUserCode(userCode);
      if (code?.status !== 'pending' || code.expiresAt <= clock().toISOString()) return null;
      return code;
    },

    /** Approve a pending code into `workspace`, or deny it; false when it was decided or expired meanwhile. */
    async decide(code: DeviceCode, user: User, decision: { approve: true; workspace: Workspace } | { approve: false }): Promise<boolean> {
      const decided = await store.decideDeviceCode(
        code.id,
        decision.approve
          ? { status: 'approved', workspaceId: decision.workspace.id, userId: user.id }
          : { status: 'denied', workspaceId: null, userId: user.id },
        clock(),
      );
      if (decided) {
        logger.info(
          {
            device_code_id: code.id,
            user_id: user.id,
            workspace_id: decision.approve ? decision.workspace.id : null,
            approved: decision.approve,
          },
          'device code decided',
        );
      }
      return decided;
    },
  };
}

export type DeviceFlow = ReturnType<typeof createDeviceFlow>;

function checkDeviceText(value: string, field: string): string {
  const text = value.trim();
  if (text === '' || text.length > MAX_DEVICE_NAME_LENGTH || /\p{Cc}/u.test(text)) {
    throw new TokenwiseError('invalid_argument', `invalid ${field}: expected 1 to ${MAX_DEVICE_NAME_LENGTH} printable characters`);
  }
  return text;
}

/** Send a token endpoint response, which must not be cached (RFC 6749 section 5.1). */
function sendOAuthJson(res: ServerResponse, status: number, body: unknown): void {
  const text = JSON.stringify(body);
  res.writeHead(status, {
    'content-type': 'application/json; charset=utf-8',
    'content-length': Buffer.byteLength(text),
    'cache-control': 'no-store',
    pragma: 'no-cache',
  });
  res.end(text);
}

function sendOAuthError(res: ServerResponse, status: number, error: OAuthError, description: string, extra: object = {}): void {
  sendOAuthJson(res, status, { error, error_description: description, ...extra });
}
