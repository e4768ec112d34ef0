import { createHash } from 'node:crypto';
import type { Device, JudgeSettings, Store } from '@tokenwise/storage';
import type { Logger } from 'pino';
import { startPeriodicJob } from '../periodic-job.js';
import { hashToken } from '../tokens.js';
import { askJudge, JudgeError } from './judge-client.js';
import { answerTextOf, requestTextOf } from './judge-prompt.js';
import { judgeRouteToken } from './judge-token.js';

/** Time between two runs of the judge job, in ms. */
export const JUDGE_INTERVAL_MS = 60_000;
/**
 * A call is looked at only once it is this old, in ms, so that calls still on their way to the store (a
 * batch being flushed, a spool being replayed) are not passed over.
 */
const SETTLE_MS = 2 * 60_000;
/** Calls read per workspace and run, and judge requests made per workspace and run, at most. */
const CANDIDATES_PER_RUN = 500;
const JUDGINGS_PER_RUN = 20;
/** A judging claimed longer ago than this by a process that has not finished it may be taken over, in ms. */
const CLAIM_LEASE_MS = 10 * 60_000;
/** Name of the device whose route token the judge's calls use. */
export const JUDGE_DEVICE_NAME = 'LLM judge';

export interface JudgeJobOptions {
  store: Store;
  logger: Logger;
  /** The provider key the judge sends; undefined keeps the job idle. */
  apiKey: string | undefined;
  /** Origin of a proxy of this installation (this server, or `--public-url` on an app-only server); null when none is known. */
  proxyUrl(): string | null;
  intervalMs?: number;
  clock?: () => Date;
}

export interface JudgeJob {
  /** Run once now; resolves when done (failures are logged, not thrown). */
  runOnce(): Promise<void>;
  close(): Promise<void>;
}

/**
 * Start the background job of the optional LLM judge. For each workspace that turned it on, it samples
 * the calls with kept bodies that started since the last run. It claims each in the store, so two app
 * processes never judge one call twice. Then it sends the exchange to the judge model through this
 * installation's own proxy with the operator's key, and stores the score and reason. The judge's requests are recorded like
 * any call, with the tool id `tokenwise-judge` and the judge's device, so their cost shows everywhere.
 */
export function startJudgeJob(options: JudgeJobOptions): JudgeJob {
  const { store, logger, apiKey } = options;
  const clock = options.clock ?? (() => new Date());
  /** Warnings already logged, so an idle judge does not log the same line every minute. */
  const warned = new Set<string>();

  function warnOnce(key: string, fields: Record<string, unknown>, message: string): void {
    if (warned.has(key)) return;
    warned.add(key);
    logger.warn(fields, message);
  }

  async function run(): Promise<void> {
    let enabled: JudgeSettings[];
    try {
      enabled = await store.listEnabledJudgeSettings();
    } catch (error) {
      logger.warn({ err: error }, 'judge job failed to read its settings; it runs again at the next interval');
      return;
    }
    if (enabled.length === 0) return;
    if (!apiKey) {
      warnOnce(
        'no-key',
        { workspaces: enabled.length },
        'the LLM judge is on but the server has no key: set TOKENWISE_JUDGE_API_KEY or --judge-api-key-file',
      );
      return;
    }
    const proxyUrl = options.proxyUrl();
    if (!proxyUrl) {
      warnOnce('no-proxy', {}, 'the LLM judge needs a proxy to send its calls through: start this app server with --public-url');
      return;
    }
    for (const settings of enabled) {
      if (job.stopping) return;
      try {
        await judgeWorkspace(settings, apiKey, proxyUrl);
      } catch (error) {
        logger.warn(
          { err: error, workspace_id: settings.workspaceId },
          'judge job failed for a workspace; it runs again at the next interval',
        );
      }
    }
  }

  async function judgeWorkspace(settings: JudgeSettings, key: string, proxyUrl: string): Promise<void> {
    const workspaceId = settings.workspaceId;
    const workspace = await store.getWorkspace(workspaceId);
    if (!workspace) return;
    // Privacy mode: no bodies are kept, and none already stored may leave the server now.
    if (!workspace.keepBodies) return;
    const device = settings.deviceId ? await store.getDevice(settings.deviceId) : null;
    if (!device || device.revokedAt !== null || device.workspaceId !== workspaceId) {
      warnOnce(
        `device:${workspaceId}`,
        { workspace_id: workspaceId },
        'the LLM judge device was revoked or deleted: turn the judge off and on again',
      );
      return;
    }
    const routeToken = await ensureRouteToken(key, workspaceId, device);
    if (!routeToken) return;

    const now = clock();
    const toMs = now.getTime() - SETTLE_MS;
    if (toMs <= settings.scanFromMs) return;
    const candidates = await store.listJudgeCandidates({
      workspaceId,
      fromMs: settings.scanFromMs,
      toMs,
      staleBeforeMs: now.getTime() - CLAIM_LEASE_MS,
      limit: CANDIDATES_PER_RUN,
    });
    const privateDevices = new Set((await store.listDevices(workspaceId)).filter((entry) => entry.privacyMode).map((entry) => entry.id));

    let judged = 0;
    let scannedToMs = candidates.length < CANDIDATES_PER_RUN ? toMs : candidates.at(-1)!.startedAtMs;
    for (const candidate of candidates) {
      if (judged >= JUDGINGS_PER_RUN || job.stopping) {
        scannedToMs = candidate.startedAtMs;
        break;
      }
      if (!isSampled(candidate.callId, settings.sampleRate)) continue;
      if (candidate.deviceId !== null && privateDevices.has(candidate.deviceId)) continue;
      const claimed = await store.claimJudgeScore({
        callId: candidate.callId,
        workspaceId,
        callStartedAtMs: candidate.startedAtMs,
        route: settings.route,
        model: settings.model,
        now: clock(),
        leaseMs: CLAIM_LEASE_MS,
      });
      if (!claimed) continue;
      judged += 1;
      await judgeCall(settings, candidate.callId, key, `${proxyUrl}/r/${routeToken}`);
    }
    // A full page whose calls all started in one ms would stop the scan, so it moves past that ms.
    if (scannedToMs === settings.scanFromMs && candidates.length === CANDIDATES_PER_RUN) scannedToMs += 1;
    await store.advanceJudgeScan(workspaceId, scannedToMs);
  }

  async function judgeCall(settings: JudgeSettings, callId: string, key: string, proxyBase: string): Promise<void> {
    const ids = { workspace_id: settings.workspaceId, call_id: callId };
    const call = await store.getCall(callId);
    const request = call?.bodies?.request?.text ?? null;
    const response = call?.bodies?.response?.text ?? null;
    if (!call || request === null || response === null) {
      await store.finishJudgeScore(callId, {
        status: 'failed',
        score: null,
        reason: null,
        responseId: null,
        error: 'the call or its bodies were deleted before the judge read them',
        now: clock(),
      });
      return;
    }
    try {
      const verdict = await askJudge({
        proxyBase,
        route: settings.route,
        model: settings.model,
        rubric: settings.rubric,
        apiKey: key,
        requestText: requestTextOf(call.record.api_shape, request),
        answerText: answerTextOf(response),
      });
      await store.finishJudgeScore(callId, {
        status: 'scored',
        score: verdict.score,
        reason: verdict.reason,
        responseId: verdict.responseId,
        error: null,
        now: clock(),
      });
      logger.info({ ...ids, score: verdict.score }, 'call judged');
    } catch (error) {
      if (!(error instanceof JudgeError)) throw error;
      await store.finishJudgeScore(callId, {
        status: 'failed',
        score: null,
        reason: null,
        responseId: error.responseId,
        error: error.message,
        now: clock(),
      });
      logger.warn({ ...ids, err: error }, 'judging a call failed');
    }
  }

  /**
   * Return the judge's route token of the workspace, registering its hash on the judge's device when this
   * key has not been used there yet. Null when an owner revoked it, which stops the judge of that workspace.
   */
  async function ensureRouteToken(key: string, workspaceId: string, device: Device): Promise<string | null> {
    const token = judgeRouteToken(key, workspaceId, device.id);
    const tokenSha256 = hashToken(token);
    const existing = await store.findRouteTokenByHash(tokenSha256);
    if (existing) {
      if (existing.revokedAt === null) return token;
      warnOnce(
        `token:${workspaceId}`,
        { workspace_id: workspaceId },
        'the LLM judge route token was revoked: turn the judge off and on again',
      );
      return null;
    }
    await store.withLock(`judge-token:${workspaceId}`, async () => {
      if (await store.findRouteTokenByHash(tokenSha256)) return;
      await store.createRouteToken({ workspaceId, deviceId: device.id, name: JUDGE_DEVICE_NAME, tokenSha256 });
      logger.info({ workspace_id: workspaceId, device_id: device.id }, 'LLM judge route token registered');
    });
    return token;
  }

  const job = startPeriodicJob(run, options.intervalMs ?? JUDGE_INTERVAL_MS);
  return job;
}

/**
 * Decide from the call id alone whether a call is in the sample, so every process and every run agrees:
 * the first 32 bits of its SHA-256 as a fraction of 2^32, below the rate.
 */
export function isSampled(callId: string, sampleRate: number): boolean {
  if (sampleRate >= 1) return true;
  if (sampleRate <= 0) return false;
  const fraction = createHash('sha256').update(callId).digest().readUInt32BE(0) / 2 ** 32;
  return fraction < sampleRate;
}
