import type { ServerResponse } from 'node:http';
import { TokenwiseError } from '@tokenwise/core';
import type { ScoreGrouping, Store } from '@tokenwise/storage';
import type { Logger } from 'pino';
import type { Principals } from '../accounts/principal.js';
import { readFields } from '../accounts/request-body.js';
import { sendApiError, sendJson } from '../api-responses.js';
import { integerParameter, listParameter, parseTimeRange } from '../dashboard/call-filter-params.js';
import { parseListPage } from '../list-page-params.js';
import { patternRoutes, type WorkspacePatternContext, type WorkspacePatternRoute } from '../workspace-routes.js';
import type { InsightsJob } from './insights-job.js';
import {
  describeCallScores,
  describeGroupCalls,
  describeInsights,
  describePromptGroup,
  describePromptGroups,
  describeScoreSummary,
  describeVersionDiff,
} from './insights-queries.js';

export interface InsightsApiOptions {
  store: Store;
  principals: Principals;
  /** The insights job of this process; null on a proxy-only server, where `POST /insights/run` is unavailable. */
  job: InsightsJob | null;
  logger: Logger;
  clock?: () => Date;
}

/** Bucket widths of the score trend, in ms. */
const BUCKETS_MS: Record<string, number> = { '1h': 3_600_000, '6h': 21_600_000, '1d': 86_400_000, '1w': 604_800_000 };
const MAX_BUCKETS = 1000;
const SCORE_GROUPINGS: readonly ScoreGrouping[] = ['group', 'session', 'tool', 'model'];
/** Call ids per `GET /insights/calls` at most. */
const MAX_SCORED_IDS = 200;
const MAX_LATENCY_TARGET_MS = 3_600_000;

type Context = WorkspacePatternContext;

type Handler = (context: Context) => Promise<void>;

const ROUTES: [method: string, pattern: RegExp, name: string][] = [
  ['GET', /^\/prompts$/, 'listGroups'],
  ['GET', /^\/prompts\/([^/]+)$/, 'getGroup'],
  ['GET', /^\/prompts\/([^/]+)\/calls$/, 'groupCalls'],
  ['GET', /^\/prompts\/([^/]+)\/versions\/([^/]+)\/diff$/, 'versionDiff'],
  ['GET', /^\/insights$/, 'listInsights'],
  ['GET', /^\/insights\/scores$/, 'scores'],
  ['GET', /^\/insights\/calls$/, 'callScores'],
  ['GET', /^\/insights\/settings$/, 'getSettings'],
  ['PATCH', /^\/insights\/settings$/, 'setSettings'],
  ['POST', /^\/insights\/run$/, 'run'],
];

/**
 * Prompt groups, versions, call scores and insights under `/api/v1` (docs/api.md has every parameter):
 *
 *   GET   /prompts                                      groups with a call in the range, the most expensive first, cursor-paginated
 *   GET   /prompts/{group_id}                           one group, its versions with their metrics, its insights
 *   GET   /prompts/{group_id}/calls                     its calls newest first, with their scores (`version_id` narrows)
 *   GET   /prompts/{group_id}/versions/{id}/diff        a version against the one before (or `against`)
 *   GET   /insights                                     insights newest first, cursor-paginated
 *   GET   /insights/scores                              failed checks per scorer, by group, session, tool or model, with a trend
 *   GET   /insights/calls?ids=…                         the scores of listed calls
 *   GET   /insights/settings, PATCH (owners)            latency target and metric shift threshold
 *   POST  /insights/run (owners)                        run the insights job now
 *
 * Every route acts in the caller's workspace; an id of another workspace is answered like an unknown one.
 */
export function createInsightsApi(options: InsightsApiOptions) {
  const { store, principals, logger } = options;
  const clock = options.clock ?? (() => new Date());

  const handlers: Record<string, Handler> = {
    async listGroups({ res, url, scope }) {
      const range = parseTimeRange(url.searchParams, clock(), '7d');
      const tools = listParameter(url.searchParams, 'tool');
      const page = parseListPage(url.searchParams);
      sendJson(res, 200, await describePromptGroups(store, scope.workspace, { ...range, ...(tools ? { tools } : {}) }, page));
    },

    async getGroup({ res, scope, params }) {
      const group = await describePromptGroup(store, scope.workspace, params[0]!);
      if (!group) return notFound(res, `no prompt group with id "${params[0]}" in this workspace`);
      sendJson(res, 200, group);
    },

    async groupCalls({ res, url, scope, params }) {
      const groupId = params[0]!;
      if (!(await store.getPromptGroup(scope.workspace.id, groupId))) {
        return notFound(res, `no prompt group with id "${groupId}" in this workspace`);
      }
      const limit = integerParameter(url.searchParams, 'limit', { min: 1, max: 500, fallback: 100 });
      const versionId = url.searchParams.get('version_id');
      const cursor = url.searchParams.get('cursor') ?? undefined;
      sendJson(res, 200, await describeGroupCalls(store, scope.workspace.id, groupId, { versionId, limit, cursor }));
    },

    async versionDiff({ res, url, scope, params }) {
      const [groupId, versionId] = params as [string, string];
      const diff = await describeVersionDiff(store, scope.workspace.id, groupId, versionId, url.searchParams.get('against'));
      if (!diff)
        return notFound(res, `no version "${versionId}" (or "against" version) of the prompt group "${groupId}" in this workspace`);
      sendJson(res, 200, diff);
    },

    async listInsights({ res, url, scope }) {
      const { from } = parseTimeRange(url.searchParams, clock(), '30d');
      const page = parseListPage(url.searchParams);
      sendJson(res, 200, await describeInsights(store, scope.workspace.id, from === undefined ? {} : { from }, page));
    },

    async scores({ res, url, scope }) {
      const params = url.searchParams;
      const now = clock();
      const range = parseTimeRange(params, now, '7d');
      const from = range.from ?? new Date(now.getTime() - 7 * 86_400_000);
      const to = range.to ?? now;
      const groupBy = (params.get('group_by') ?? 'tool') as ScoreGrouping;
      if (!SCORE_GROUPINGS.includes(groupBy)) {
        throw new TokenwiseError('invalid_argument', `invalid group_by "${groupBy}": expected one of ${SCORE_GROUPINGS.join(', ')}`);
      }
      const bucket = params.get('bucket') ?? (to.getTime() - from.getTime() <= 2 * 86_400_000 ? '1h' : '1d');
      const bucketMs = BUCKETS_MS[bucket];
      if (bucketMs === undefined) {
        throw new TokenwiseError('invalid_argument', `invalid bucket "${bucket}": expected one of ${Object.keys(BUCKETS_MS).join(', ')}`);
      }
      if (Math.ceil((to.getTime() - from.getTime()) / bucketMs) > MAX_BUCKETS) {
        throw new TokenwiseError(
          'invalid_argument',
          `the range makes more than ${MAX_BUCKETS} buckets of ${bucket}: choose a wider bucket`,
        );
      }
      const limit = integerParameter(params, 'limit', { min: 1, max: 200, fallback: 20 });
      sendJson(res, 200, await describeScoreSummary(store, scope.workspace.id, { from, to, groupBy, bucketMs, limit }));
    },

    async callScores({ res, url, scope }) {
      const ids = listParameter(url.searchParams, 'ids') ?? [];
      if (ids.length === 0 || ids.length > MAX_SCORED_IDS) {
        throw new TokenwiseError('invalid_argument', `invalid ids: expected 1 to ${MAX_SCORED_IDS} call ids, comma-separated`);
      }
      sendJson(res, 200, await describeCallScores(store, scope.workspace.id, ids));
    },

    async getSettings({ res, scope }) {
      sendJson(res, 200, { settings: describeSettings(await store.getInsightSettings(scope.workspace.id)) });
    },

    async setSettings({ req, res, scope }) {
      if (scope.role !== 'owner') return sendApiError(res, 403, 'forbidden', 'only owners of the workspace change the insights settings');
      const fields = await readFields(req, { accept: ['latency_target_ms', 'metric_shift_pct'] });
      const current = await store.getInsightSettings(scope.workspace.id);
      const latencyTargetMs = numberField(fields, 'latency_target_ms', current.latencyTargetMs, {
        min: 1,
        max: MAX_LATENCY_TARGET_MS,
        integer: true,
      });
      const metricShiftPct = numberField(fields, 'metric_shift_pct', current.metricShiftPct, { min: 1, max: 1000, integer: false });
      const saved = await store.setInsightSettings(scope.workspace.id, { latencyTargetMs, metricShiftPct });
      logger.info(
        { workspace_id: scope.workspace.id, latency_target_ms: latencyTargetMs, metric_shift_pct: metricShiftPct },
        'insights settings changed',
      );
      sendJson(res, 200, { settings: describeSettings(saved) });
    },

    async run({ res, scope }) {
      if (scope.role !== 'owner') return sendApiError(res, 403, 'forbidden', 'only owners of the workspace run the insights job');
      if (!options.job)
        return sendApiError(res, 404, 'not_found', 'this server does not run the insights job: send the request to an app server');
      const result = await options.job.runOnce();
      sendJson(res, 200, { calls: result.calls, groups: result.groups });
    },
  };

  return patternRoutes(
    principals,
    ROUTES.map(([method, pattern, name]): WorkspacePatternRoute => [method, pattern, handlers[name]!]),
  );
}

/** Return true when an insights route exists at `path` with another method, so the caller answers 405. */
export function isInsightsPath(path: string): boolean {
  const relative = path.replace(/\/+$/, '').slice('/api/v1'.length);
  return ROUTES.some(([, pattern]) => pattern.test(relative));
}

function describeSettings(settings: { latencyTargetMs: number; metricShiftPct: number; updatedAt: string | null }) {
  return { latency_target_ms: settings.latencyTargetMs, metric_shift_pct: settings.metricShiftPct, updated_at: settings.updatedAt };
}

function numberField(
  fields: Record<string, unknown>,
  name: string,
  fallback: number,
  bounds: { min: number; max: number; integer: boolean },
): number {
  const value = fields[name];
  if (value === undefined || value === null) return fallback;
  const number = typeof value === 'number' ? value : Number.NaN;
  if (!Number.isFinite(number) || number < bounds.min || number > bounds.max || (bounds.integer && !Number.isInteger(number))) {
    throw new TokenwiseError(
      'invalid_argument',
      `invalid ${name} ${JSON.stringify(value)}: expected a ${bounds.integer ? 'whole ' : ''}number from ${bounds.min} to ${bounds.max}`,
    );
  }
  return number;
}

function notFound(res: ServerResponse, message: string): void {
  sendApiError(res, 404, 'not_found', message);
}
