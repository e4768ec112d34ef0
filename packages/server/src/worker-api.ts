import type { IncomingMessage, ServerResponse } from 'node:http';
import { type CallRecord, redactHeaders, TokenwiseError } from '@tokenwise/core';
import type { CallToStore, ListedCall, Store, Workspace } from '@tokenwise/storage';
import type { Logger } from 'pino';
import { sendJson } from './api-responses.js';
import { parseIngestBatch } from './ingest-validation.js';
import { logCall } from './log.js';
import { resolveRouteGrant } from './route-authorizer.js';
import { digestsEqual, hashToken } from './tokens.js';

/**
 * The two endpoints the Cloudflare Worker calls, authenticated with the shared ingest secret instead of
 * an API token:
 *
 *   POST /api/v1/routes/verify   {"token_sha256"} -> {"valid": true, workspace_id, device_id, keep_bodies, redact_bodies} | {"valid": false}
 *   POST /api/v1/ingest          {"calls": [{record, bodies}]} -> {"received", "stored", "duplicates"}
 *
 * The Worker sends the SHA-256 of a route token, never the token. Ingest stores a batch in one
 * transaction and skips calls whose id is already stored, so a batch the Worker sends again after a
 * lost response never doubles a call.
 */
export interface WorkerApiOptions {
  store: Store;
  /** The shared secret (`--ingest-secret`); undefined turns both endpoints off. */
  secret: string | undefined;
  logger: Logger;
  /** Receives the calls an ingest request added, in storage order (the live call stream). */
  onStored?: (calls: ListedCall[]) => void;
  /** Minimum time between two `last_used_at` writes for one route token, in ms. */
  touchIntervalMs?: number;
  /** Prices an ingested record with its workspace's custom price, as the local proxy's records are. */
  priceRecord?: (record: CallRecord) => CallRecord;
  clock?: () => number;
}

export interface WorkerApiHandler {
  /** True for the paths this handler serves; the app routes them here before the API-token check. */
  handles(target: string): boolean;
  handle(req: IncomingMessage, res: ServerResponse): void;
}

const VERIFY_PATH = '/api/v1/routes/verify';
const INGEST_PATH = '/api/v1/ingest';
/** Largest ingest request read, in bytes: 100 calls with two 1 MiB bodies each, JSON-escaped, fit. */
const MAX_INGEST_BODY_BYTES = 32 * 1024 * 1024;
const MAX_VERIFY_BODY_BYTES = 4 * 1024;
const SHA256_HEX = /^[0-9a-f]{64}$/;
/** Shortest secret accepted, in characters: 32 random bytes in base64 are 44. */
export const MIN_INGEST_SECRET_LENGTH = 32;

type ErrorCode = 'unauthorized' | 'not_found' | 'method_not_allowed' | 'invalid_argument' | 'payload_too_large' | 'internal_error';

class RequestError extends Error {
  constructor(
    readonly status: number,
    readonly code: ErrorCode,
    message: string,
  ) {
    super(message);
  }
}

export function createWorkerApiHandler(options: WorkerApiOptions): WorkerApiHandler {
  const { store, logger } = options;
  const clock = options.clock ?? Date.now;
  const touchIntervalMs = options.touchIntervalMs ?? 60_000;
  const secretSha256 = options.secret === undefined ? null : hashToken(options.secret);
  const lastTouchMs = new Map<string, number>();

  function authenticate(req: IncomingMessage): void {
    if (secretSha256 === null) {
      throw new RequestError(
        404,
        'not_found',
        `the Worker endpoints are off: start tokenwise serve with TOKENWISE_INGEST_SECRET (at least ${MIN_INGEST_SECRET_LENGTH} characters)`,
      );
    }
    const presented = /^Bearer\s+(\S+)\s*$/i.exec(req.headers.authorization ?? '')?.[1];
    // Comparing the digests keeps the time independent of how much of a guess matched, and of its length.
    if (!presented || !digestsEqual(hashToken(presented), secretSha256)) {
      throw new RequestError(401, 'unauthorized', 'missing or wrong ingest secret: send Authorization: Bearer <TOKENWISE_INGEST_SECRET>');
    }
  }

  async function verify(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const body = await readJson(req, MAX_VERIFY_BODY_BYTES);
    const hash = isObject(body) ? body.token_sha256 : undefined;
    if (typeof hash !== 'string' || !SHA256_HEX.test(hash)) {
      throw new RequestError(400, 'invalid_argument', 'invalid verify body: expected {"token_sha256": "<64 lowercase hex digits>"}');
    }

    const token = await store.findRouteTokenByHash(hash);
    const grant = await resolveRouteGrant(store, token);
    if (!token || !grant) {
      sendJson(res, 200, { valid: false });
      return;
    }

    touch(token.id);
    sendJson(res, 200, {
      valid: true,
      workspace_id: grant.workspaceId,
      device_id: grant.deviceId,
      keep_bodies: grant.keepBodies,
      redact_bodies: grant.redactBodies ?? true,
    });
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

  async function ingest(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const calls = parseIngestBatch(await readJson(req, MAX_INGEST_BODY_BYTES));
    const workspaces = await loadWorkspaces(calls);
    const privateDevices = await loadPrivateDevices(calls);

    const toStore = calls.map(({ record: sent, bodies }): CallToStore => {
      const record = options.priceRecord ? options.priceRecord(sent) : sent;
      // Privacy mode (of the workspace or the device) is enforced here too, whatever the Worker's cached grant said.
      const keepBodies = (workspaces.get(record.workspace_id!)?.keepBodies ?? false) && !privateDevices.has(record.device_id ?? '');
      if (!keepBodies || bodies === null) return { record, bodies: null };
      return {
        record,
        bodies: {
          ...bodies,
          request_headers: redactHeaders(bodies.request_headers),
          response_headers: redactHeaders(bodies.response_headers),
        },
      };
    });

    const stored = await store.insertCalls(toStore);
    const byId = new Map(toStore.map((call) => [call.record.id, call.record]));
    const listed = stored.map((ref) => ({ cursor: ref.cursor, record: byId.get(ref.id)! }));
    for (const call of listed) logCall(logger, call.record);
    notify(listed);

    if (stored.length < calls.length) {
      logger.debug({ received: calls.length, duplicates: calls.length - stored.length }, 'ingest skipped calls already stored');
    }
    sendJson(res, 200, { received: calls.length, stored: stored.length, duplicates: calls.length - stored.length });
  }

  async function loadWorkspaces(calls: CallToStore[]): Promise<Map<string, Workspace>> {
    const workspaces = new Map<string, Workspace>();
    for (const [index, { record }] of calls.entries()) {
      const id = record.workspace_id!;
      if (workspaces.has(id)) continue;
      const workspace = await store.getWorkspace(id);
      if (!workspace) {
        throw new RequestError(400, 'invalid_argument', `invalid calls[${index}].record.workspace_id: no workspace "${id}" on this server`);
      }
      workspaces.set(id, workspace);
    }
    return workspaces;
  }

  /** Ids of the batch's devices that are in privacy mode. */
  async function loadPrivateDevices(calls: CallToStore[]): Promise<Set<string>> {
    const ids = new Set(calls.flatMap(({ record }) => (record.device_id ? [record.device_id] : [])));
    const privateIds = new Set<string>();
    for (const id of ids) {
      if ((await store.getDevice(id))?.privacyMode) privateIds.add(id);
    }
    return privateIds;
  }

  function notify(calls: ListedCall[]): void {
    if (calls.length === 0 || !options.onStored) return;
    try {
      options.onStored(calls);
    } catch (error) {
      logger.error({ err: error }, 'notifying listeners of ingested calls failed');
    }
  }

  async function handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const path = pathOf(req.url ?? '/');
    authenticate(req);
    if (req.method !== 'POST') throw new RequestError(405, 'method_not_allowed', `${req.method} is not allowed on ${path}; use POST`);
    if (path === VERIFY_PATH) return verify(req, res);
    return ingest(req, res);
  }

  return {
    handles: (target) => {
      const path = pathOf(target);
      return path === VERIFY_PATH || path === INGEST_PATH;
    },
    handle(req, res) {
      handle(req, res).catch((error: unknown) => {
        // Drain what the client is still sending, so the error response reaches it instead of a reset.
        req.resume();
        if (error instanceof RequestError) {
          sendError(res, error.status, error.code, error.message);
        } else if (error instanceof TokenwiseError && error.code === 'invalid_argument') {
          logger.warn({ path: pathOf(req.url ?? '/'), reason: error.message }, 'Worker request rejected');
          sendError(res, 400, 'invalid_argument', error.message);
        } else {
          logger.error({ err: error, path: pathOf(req.url ?? '/') }, 'Worker request failed');
          sendError(res, 500, 'internal_error', 'the server failed to handle this request; details are in the server log');
        }
      });
    },
  };
}

function sendError(res: ServerResponse, status: number, code: ErrorCode, message: string): void {
  if (res.headersSent) {
    res.destroy();
    return;
  }
  if (status === 401) res.setHeader('www-authenticate', 'Bearer');
  sendJson(res, status, { error: { code, message } });
}

function pathOf(target: string): string {
  const queryStart = target.indexOf('?');
  return (queryStart === -1 ? target : target.slice(0, queryStart)).replace(/\/+$/, '');
}

function isObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

/**
 * Read a JSON body of at most `maxBytes`. A body over the limit is still drained, not destroyed, because
 * destroying the request would close the socket before the 413 reaches the client.
 */
function readJson(req: IncomingMessage, maxBytes: number): Promise<unknown> {
  const declared = Number(req.headers['content-length']);
  if (Number.isFinite(declared) && declared > maxBytes) return Promise.reject(tooLarge(maxBytes));

  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    req.on('data', (chunk: Buffer) => {
      size += chunk.length;
      if (size <= maxBytes) chunks.push(chunk);
    });
    req.once('error', reject);
    req.once('end', () => {
      if (size > maxBytes) {
        reject(tooLarge(maxBytes));
        return;
      }
      try {
        resolve(JSON.parse(Buffer.concat(chunks).toString('utf8')));
      } catch {
        reject(new RequestError(400, 'invalid_argument', 'request body is not valid JSON'));
      }
    });
  });
}

function tooLarge(maxBytes: number): RequestError {
  return new RequestError(413, 'payload_too_large', `request body larger than ${maxBytes} bytes: send fewer calls per request`);
}
