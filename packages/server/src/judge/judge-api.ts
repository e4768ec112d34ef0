import { TokenwiseError } from '@tokenwise/core';
import { JUDGE_TOOL, type JudgeScore, type JudgeSettings, type NewJudgeSettings, type Store } from '@tokenwise/storage';
import type { Logger } from 'pino';
import type { Principals } from '../accounts/principal.js';
import { readFields } from '../accounts/request-body.js';
import { sendApiError, sendJson } from '../api-responses.js';
import { integerParameter, parseTimeRange } from '../dashboard/call-filter-params.js';
import { roundUsd } from '../dashboard/overview-response.js';
import { exactPathRoutes, type WorkspaceRoute, type WorkspaceRouteContext } from '../workspace-routes.js';
import { JUDGE_ROUTE_NAMES } from './judge-client.js';
import { JUDGE_DEVICE_NAME } from './judge-job.js';

export interface JudgeApiOptions {
  store: Store;
  principals: Principals;
  logger: Logger;
  /** True when the server has a judge API key; the key itself never leaves the process. */
  keyConfigured: boolean;
  clock?: () => Date;
}

/** Settings of a workspace's judge until an owner changes them: off, a small model, a general rubric. */
export const JUDGE_DEFAULTS = {
  route: 'anthropic',
  model: 'claude-haiku-4-5',
  rubric: 'The answer is correct, does what the request asks within its instructions, and does not refuse a reasonable request.',
  sampleRate: 0.05,
  passScore: 6,
} as const;

const MAX_MODEL_CHARS = 200;
const MAX_RUBRIC_CHARS = 4000;
/** Days of the judge's own calls that the settings route adds up. */
const USAGE_DAYS = 30;
const FIELDS = ['enabled', 'route', 'model', 'rubric', 'sample_rate', 'pass_score'] as const;

type Context = WorkspaceRouteContext;

/**
 * Create the LLM judge's routes under `/api/v1`, each in the caller's workspace:
 *
 *   GET   /judge/settings    the settings, whether the server has a key, the judge's own calls and cost of the last 30 days
 *   PATCH /judge/settings    {enabled?, route?, model?, rubric?, sample_rate?, pass_score?} (owner)
 *   GET   /judge/scores?from&to&below&call_id&limit   stored scores, newest call first (`below`: lowest first)
 */
export function createJudgeApi(options: JudgeApiOptions) {
  const { store, principals, logger } = options;
  const clock = options.clock ?? (() => new Date());

  const routes: WorkspaceRoute[] = [
    ['GET', '/judge/settings', getSettings],
    ['PATCH', '/judge/settings', updateSettings],
    ['GET', '/judge/scores', listScores],
  ];

  async function getSettings(context: Context): Promise<void> {
    const settings = await store.getJudgeSettings(context.scope.workspace.id);
    await sendSettings(context, settings);
  }

  async function sendSettings(context: Context, settings: JudgeSettings | null): Promise<void> {
    const workspace = context.scope.workspace;
    const to = clock();
    const from = new Date(to.getTime() - USAGE_DAYS * 86_400_000);
    const usage = await store.overview({
      filter: { workspaceId: workspace.id, from, to, tools: [JUDGE_TOOL] },
      bucketMs: to.getTime() - from.getTime(),
      groupBy: 'tool',
      top: 1,
    });
    const summary = await store.judgeScoreSummary({
      workspaceId: workspace.id,
      from,
      to,
      passScore: settings?.passScore ?? JUDGE_DEFAULTS.passScore,
    });
    const warnings: string[] = [];
    if (settings?.enabled && !options.keyConfigured) {
      warnings.push(
        'the server has no judge API key, so nothing is judged: its operator sets TOKENWISE_JUDGE_API_KEY or --judge-api-key-file',
      );
    }
    if (settings?.enabled && !workspace.keepBodies) warnings.push('privacy mode is on, so no call is sent to the judge');
    sendJson(context.res, 200, {
      judge: {
        enabled: settings?.enabled ?? false,
        route: settings?.route ?? JUDGE_DEFAULTS.route,
        model: settings?.model ?? JUDGE_DEFAULTS.model,
        rubric: settings?.rubric ?? JUDGE_DEFAULTS.rubric,
        sample_rate: settings?.sampleRate ?? JUDGE_DEFAULTS.sampleRate,
        pass_score: settings?.passScore ?? JUDGE_DEFAULTS.passScore,
        device_id: settings?.deviceId ?? null,
        updated_at: settings?.updatedAt ?? null,
      },
      routes: JUDGE_ROUTE_NAMES,
      key_configured: options.keyConfigured,
      warnings,
      last_30_days: {
        from: from.toISOString(),
        to: to.toISOString(),
        judge_calls: usage.totals.calls,
        judge_cost_usd: roundUsd(usage.totals.apiUsd + usage.totals.apiEquivalentUsd),
        scored: summary.scored,
        failing: summary.failing,
        failed_judgings: summary.failedJudgings,
        average_score: summary.averageScore,
      },
    });
  }

  async function updateSettings(context: Context): Promise<void> {
    if (context.scope.role !== 'owner') {
      sendApiError(context.res, 403, 'forbidden', 'only owners of the workspace change the LLM judge');
      return;
    }
    // A rubric of MAX_RUBRIC_CHARS characters can take 6 bytes each once JSON escapes them (`\u2014`).
    const fields = await readFields(context.req, { maxBytes: 64 * 1024 });
    const unknown = Object.keys(fields).filter((name) => !(FIELDS as readonly string[]).includes(name));
    if (unknown.length > 0) throw new TokenwiseError('invalid_argument', `unknown field ${unknown.join(', ')}: send ${FIELDS.join(', ')}`);

    const workspaceId = context.scope.workspace.id;
    const before = await store.getJudgeSettings(workspaceId);
    const enabled = fields.enabled === undefined ? (before?.enabled ?? false) : booleanField(fields.enabled, 'enabled');
    const next: NewJudgeSettings = {
      workspaceId,
      enabled,
      route: fields.route === undefined ? (before?.route ?? JUDGE_DEFAULTS.route) : routeField(fields.route),
      model:
        fields.model === undefined ? (before?.model ?? JUDGE_DEFAULTS.model) : textField(fields.model, 'model', MAX_MODEL_CHARS, false),
      rubric:
        fields.rubric === undefined
          ? (before?.rubric ?? JUDGE_DEFAULTS.rubric)
          : textField(fields.rubric, 'rubric', MAX_RUBRIC_CHARS, true),
      sampleRate:
        fields.sample_rate === undefined
          ? (before?.sampleRate ?? JUDGE_DEFAULTS.sampleRate)
          : numberField(fields.sample_rate, 'sample_rate', 0, 1),
      passScore:
        fields.pass_score === undefined
          ? (before?.passScore ?? JUDGE_DEFAULTS.passScore)
          : numberField(fields.pass_score, 'pass_score', 0, 10),
      deviceId: before?.deviceId ?? null,
      // Turning the judge on starts with the calls made from now on, never with the history.
      scanFromMs: enabled && !before?.enabled ? clock().getTime() : (before?.scanFromMs ?? clock().getTime()),
      updatedBy: context.caller.user?.id ?? null,
    };
    if (enabled) next.deviceId = await judgeDevice(workspaceId, next.deviceId);

    const saved = await store.saveJudgeSettings(next);
    logger.info(
      { workspace_id: workspaceId, enabled: saved.enabled, route: saved.route, model: saved.model, sample_rate: saved.sampleRate },
      'LLM judge settings changed',
    );
    await sendSettings(context, saved);
  }

  /** Return the judge's device: the one it had while that is still active, else a new one. */
  async function judgeDevice(workspaceId: string, deviceId: string | null): Promise<string> {
    const device = deviceId ? await store.getDevice(deviceId) : null;
    if (device && device.workspaceId === workspaceId && device.revokedAt === null) return device.id;
    const created = await store.createDevice({ workspaceId, name: JUDGE_DEVICE_NAME, os: null, userId: null });
    logger.info({ workspace_id: workspaceId, device_id: created.id }, 'LLM judge device created');
    return created.id;
  }

  async function listScores(context: Context): Promise<void> {
    const params = context.url.searchParams;
    const range = parseTimeRange(params, clock());
    const limit = integerParameter(params, 'limit', { min: 1, max: 500, fallback: 50 });
    const below = params.get('below');
    const callId = params.get('call_id');
    const scores = await store.listJudgeScores({
      workspaceId: context.scope.workspace.id,
      ...range,
      ...(below === null ? {} : { below: numberField(below, 'below', 0, 10) }),
      ...(callId === null ? {} : { callIds: [callId] }),
      order: below === null ? 'newest' : 'lowest',
      limit,
    });
    sendJson(context.res, 200, { scores: scores.map(describeScore) });
  }

  return exactPathRoutes(principals, routes);
}

export function describeScore(score: JudgeScore) {
  return {
    call_id: score.callId,
    call_started_at: score.callStartedAt,
    status: score.status,
    score: score.score,
    reason: score.reason,
    route: score.route,
    model: score.model,
    judge_response_id: score.responseId,
    error: score.error,
    attempts: score.attempts,
    finished_at: score.finishedAt,
  };
}

function booleanField(value: unknown, name: string): boolean {
  if (value === true || value === 'true') return true;
  if (value === false || value === 'false') return false;
  throw new TokenwiseError('invalid_argument', `invalid ${name} ${JSON.stringify(value)}: expected true or false`);
}

function routeField(value: unknown): string {
  if (typeof value !== 'string' || !JUDGE_ROUTE_NAMES.includes(value)) {
    throw new TokenwiseError('invalid_argument', `invalid route ${JSON.stringify(value)}: expected one of ${JUDGE_ROUTE_NAMES.join(', ')}`);
  }
  return value;
}

function textField(value: unknown, name: string, maxChars: number, multiline: boolean): string {
  const text = typeof value === 'string' ? value.replace(/\r\n?/g, '\n').trim() : '';
  const allowed = multiline ? ['\n', '\t'] : [];
  const hasControl = [...text].some((character) => /\p{Cc}/u.test(character) && !allowed.includes(character));
  if (text === '' || text.length > maxChars || hasControl) {
    throw new TokenwiseError(
      'invalid_argument',
      `invalid ${name}: expected text of 1 to ${maxChars} characters${multiline ? '' : ' on one line'} without control characters`,
    );
  }
  return text;
}

function numberField(value: unknown, name: string, min: number, max: number): number {
  const number = typeof value === 'number' ? value : typeof value === 'string' && value.trim() !== '' ? Number(value) : Number.NaN;
  if (!(number >= min && number <= max)) {
    throw new TokenwiseError('invalid_argument', `invalid ${name} ${JSON.stringify(value)}: expected a number from ${min} to ${max}`);
  }
  return number;
}
