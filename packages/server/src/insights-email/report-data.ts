import { type CallFilter, type CallGrouping, JUDGE_TOOL, type Overview, type Store, type Workspace } from '@tokenwise/storage';
import { OTHER_KEY, type OverviewGrouping, overviewResponse, roundUsd } from '../dashboard/overview-response.js';
import { DAY_MS, periodLengthMs, type ReportPeriod } from './report-period.js';
import { findSpendAnomalies, HISTORY_DAYS, type SpendAnomaly } from './spend-anomalies.js';

/** Maximum rows per breakdown (tool, model, person). The rest are added up in one `Other` row, as on the dashboard. */
export const BREAKDOWN_ROWS = 8;
/** Maximum number of sessions and of judged calls listed. */
export const TOP_SESSIONS = 5;
export const LOWEST_SCORES = 5;
/** Maximum number of prompt changes (new versions and metric shifts) listed. */
export const PROMPT_CHANGES = 20;

export interface ReportFigures {
  calls: number;
  /** API spend plus the API-equivalent cost of subscription traffic, in USD, as the dashboard's `cost_usd`. */
  costUsd: number;
}

export interface ReportTotals extends ReportFigures {
  apiUsd: number;
  apiEquivalentUsd: number;
  errors: number;
  refusals: number;
  sessions: number;
  /** Calls whose cost is unknown: no price for the model, or no usage reported. */
  unpricedCalls: number;
}

/** One line of a breakdown: a tool, model or person, this period and the one before. */
export interface ReportRow {
  /** The dashboard's series key (`__none__`, `__other__` included). */
  key: string;
  label: string;
  current: ReportFigures;
  previous: ReportFigures;
}

export interface ReportSession {
  sessionId: string;
  tool: string | null;
  calls: number;
  errors: number;
  costUsd: number;
  firstCallAt: string;
  lastCallAt: string;
}

export interface ReportOutcome {
  tool: string;
  calls: number;
  errors: number;
  refusals: number;
  previousCalls: number;
  previousErrors: number;
  previousRefusals: number;
}

export interface ReportJudgedCall {
  callId: string;
  callStartedAt: string;
  score: number;
  /** Null in privacy mode and once the call's bodies expired. */
  reason: string | null;
}

export interface ReportJudge {
  enabled: boolean;
  model: string;
  passScore: number;
  scored: number;
  failing: number;
  failedJudgings: number;
  averageScore: number | null;
  /** The judge's own calls in the period and what they cost. */
  calls: number;
  costUsd: number;
  /** The lowest scores below the pass score, lowest first. */
  lowest: ReportJudgedCall[];
}

/** A new prompt version, or a metric that shifted with one, found by the insights job in the period. */
export interface ReportPromptChange {
  kind: 'version_change' | 'metric_shift';
  groupId: string;
  versionId: string | null;
  observedAt: string;
  tool: string;
  /** The prompt template's name, which quotes its first line, or null in privacy mode. */
  groupName: string | null;
  toolVersion: string | null;
  previousToolVersion: string | null;
  /** Cost per priced call of the version before and of the new one, in USD, or null where no call was priced. */
  costPerCallBefore: number | null;
  costPerCallAfter: number | null;
  callsBefore: number;
  callsAfter: number;
  /** Text changes for `version_change`, or null once the text is no longer kept. */
  diff: { linesAdded: number; linesRemoved: number; toolsAdded: string[]; toolsRemoved: string[]; toolsChanged: string[] } | null;
  /** For `metric_shift`: the metric's label and its relative change in percent. */
  metric: { label: string; changePct: number | null } | null;
}

/** The deterministic checks' failures of a period (provider errors, refusals, cut responses, retries, …). */
export interface ReportChecks {
  /** Calls the insights job has checked, and those of them with a kept request body. */
  calls: number;
  bodyCalls: number;
  failed: Record<string, number>;
}

/** Everything one insights email states, read from the store with the dashboard's own queries. */
export interface InsightsReport {
  workspace: { id: string; name: string; privacyMode: boolean };
  period: { kind: ReportPeriod['kind']; from: string; to: string; previousFrom: string };
  totals: { current: ReportTotals; previous: ReportTotals };
  byTool: ReportRow[];
  byModel: ReportRow[];
  byPerson: ReportRow[];
  topSessions: ReportSession[];
  outcomes: ReportOutcome[];
  anomalies: SpendAnomaly[];
  /** Newest first. */
  promptChanges: ReportPromptChange[];
  checks: { current: ReportChecks; previous: ReportChecks };
  /** Null while the workspace has never turned the judge on. */
  judge: ReportJudge | null;
}

/** Read the figures of one workspace for one period and the period before it. */
export async function buildInsightsReport(store: Store, workspace: Workspace, period: ReportPeriod): Promise<InsightsReport> {
  const current: CallFilter & { from: Date; to: Date } = { workspaceId: workspace.id, from: period.from, to: period.to };
  const previous: CallFilter & { from: Date; to: Date } = { workspaceId: workspace.id, from: period.previousFrom, to: period.from };
  const bucketMs = periodLengthMs(period.kind);
  const devices = await store.listDevices(workspace.id);
  const people = new Map((await store.listMembers(workspace.id)).map((member) => [member.userId, member.user.name || member.user.email]));

  const overviews = new Map<string, Overview>();
  const overviewOf = async (filter: CallFilter & { from: Date; to: Date }, groupBy: CallGrouping): Promise<Overview> => {
    const cacheKey = `${filter.from.getTime()}:${groupBy}`;
    const cached = overviews.get(cacheKey);
    if (cached) return cached;
    const result = await store.overview({ filter, bucketMs, groupBy, top: TOP_SESSIONS });
    overviews.set(cacheKey, result);
    return result;
  };

  const breakdown = async (groupBy: OverviewGrouping): Promise<ReportRow[]> => {
    const storeGrouping: CallGrouping = groupBy === 'person' ? 'device' : groupBy;
    const seriesOf = async (filter: CallFilter & { from: Date; to: Date }, seriesLimit: number) =>
      overviewResponse(await overviewOf(filter, storeGrouping), {
        from: filter.from,
        to: filter.to,
        bucket: period.kind,
        bucketMs,
        bucketCount: 1,
        groupBy,
        seriesLimit,
        devices,
        people,
      }).series.map((series) => ({ key: series.key, label: series.label, calls: series.calls[0] ?? 0, costUsd: series.cost_usd[0] ?? 0 }));
    const now = await seriesOf(current, BREAKDOWN_ROWS);
    const before = await seriesOf(previous, Number.MAX_SAFE_INTEGER);
    const beforeByKey = new Map(before.map((row) => [row.key, row]));
    const listed = new Set(now.map((row) => row.key));

    return now.map((row) => {
      let previousFigures: ReportFigures;
      if (row.key === OTHER_KEY) {
        const rest = before.filter((entry) => !listed.has(entry.key));
        previousFigures = {
          calls: rest.reduce((sum, entry) => sum + entry.calls, 0),
          costUsd: roundUsd(rest.reduce((sum, entry) => sum + entry.costUsd, 0)),
        };
      } else {
        const entry = beforeByKey.get(row.key);
        previousFigures = { calls: entry?.calls ?? 0, costUsd: entry?.costUsd ?? 0 };
      }
      return { key: row.key, label: row.label, current: { calls: row.calls, costUsd: row.costUsd }, previous: previousFigures };
    });
  };

  const byTool = await breakdown('tool');
  const byModel = await breakdown('model');
  const byPerson = await breakdown('person');

  const currentOutcomes = await store.callOutcomesByTool(current);
  const previousOutcomes = new Map((await store.callOutcomesByTool(previous)).map((entry) => [entry.tool, entry]));
  const outcomes: ReportOutcome[] = currentOutcomes.map((entry) => {
    const before = previousOutcomes.get(entry.tool);
    return {
      tool: entry.tool,
      calls: entry.calls,
      errors: entry.errors,
      refusals: entry.refusals,
      previousCalls: before?.calls ?? 0,
      previousErrors: before?.errors ?? 0,
      previousRefusals: before?.refusals ?? 0,
    };
  });
  const refusalsOf = (list: { refusals: number }[]) => list.reduce((sum, entry) => sum + entry.refusals, 0);

  const currentOverview = await overviewOf(current, 'tool');
  const previousOverview = await overviewOf(previous, 'tool');

  return {
    workspace: { id: workspace.id, name: workspace.name, privacyMode: !workspace.keepBodies },
    period: {
      kind: period.kind,
      from: period.from.toISOString(),
      to: period.to.toISOString(),
      previousFrom: period.previousFrom.toISOString(),
    },
    totals: {
      current: totalsOf(currentOverview, refusalsOf(currentOutcomes)),
      previous: totalsOf(previousOverview, refusalsOf([...previousOutcomes.values()])),
    },
    byTool,
    byModel,
    byPerson,
    topSessions: currentOverview.topSessions.map((session) => ({
      sessionId: session.sessionId,
      tool: session.tools[0] ?? null,
      calls: session.sums.calls,
      errors: session.sums.errors,
      costUsd: roundUsd(session.sums.apiUsd + session.sums.apiEquivalentUsd),
      firstCallAt: session.firstCallAt,
      lastCallAt: session.lastCallAt,
    })),
    outcomes,
    anomalies: await spendAnomalies(store, workspace.id, period),
    promptChanges: await promptChanges(store, workspace, period),
    checks: {
      current: await checksOf(store, workspace.id, current, bucketMs),
      previous: await checksOf(store, workspace.id, previous, bucketMs),
    },
    judge: await judgeFigures(store, workspace, current),
  };
}

/**
 * Read the insights that the insights job raised for prompt versions first seen in the period.
 * NOTE: this reads what that job has stored so far. The job reads new calls every minute, so if it lags
 * behind at the period's end, a version first seen in the last minutes of the period misses this email.
 */
async function promptChanges(store: Store, workspace: Workspace, period: ReportPeriod): Promise<ReportPromptChange[]> {
  const insights = await store.listInsights({ workspaceId: workspace.id, from: period.from, limit: PROMPT_CHANGES });
  return insights
    .filter((insight) => Date.parse(insight.observedAt) < period.to.getTime())
    .map((insight) => {
      const details = insight.details;
      const before = metricsOf(details.before);
      const after = metricsOf(details.after);
      const diff = isObject(details.diff) ? details.diff : null;
      return {
        kind: insight.kind,
        groupId: insight.groupId,
        versionId: insight.versionId,
        observedAt: insight.observedAt,
        tool: textOf(details.tool) ?? 'unknown',
        groupName: workspace.keepBodies ? textOf(details.group_name) : null,
        toolVersion: textOf(details.tool_version),
        previousToolVersion: textOf(details.previous_tool_version),
        costPerCallBefore: before.costPerCall,
        costPerCallAfter: after.costPerCall,
        callsBefore: before.calls,
        callsAfter: after.calls,
        diff:
          diff === null
            ? null
            : {
                linesAdded: Number(diff.instruction_lines_added ?? 0),
                linesRemoved: Number(diff.instruction_lines_removed ?? 0),
                toolsAdded: stringsOf(diff.tools_added),
                toolsRemoved: stringsOf(diff.tools_removed),
                toolsChanged: stringsOf(diff.tools_changed),
              },
        metric:
          insight.kind === 'metric_shift'
            ? {
                label: textOf(details.label) ?? String(details.metric),
                changePct: typeof details.change_pct === 'number' ? details.change_pct : null,
              }
            : null,
      };
    });
}

async function checksOf(store: Store, workspaceId: string, range: { from: Date; to: Date }, bucketMs: number): Promise<ReportChecks> {
  const summary = await store.scoreSummary({ workspaceId, from: range.from, to: range.to, groupBy: 'tool', bucketMs, limit: 1 });
  return { calls: summary.totals.calls, bodyCalls: summary.totals.bodyCalls, failed: { ...summary.totals.failed } };
}

function metricsOf(value: unknown): { calls: number; costPerCall: number | null } {
  if (!isObject(value)) return { calls: 0, costPerCall: null };
  return {
    calls: typeof value.calls === 'number' ? value.calls : 0,
    costPerCall: typeof value.cost_per_call_usd === 'number' ? value.cost_per_call_usd : null,
  };
}

function isObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

function textOf(value: unknown): string | null {
  return typeof value === 'string' ? value : null;
}

function stringsOf(value: unknown): string[] {
  return Array.isArray(value) ? value.filter((entry): entry is string => typeof entry === 'string') : [];
}

/** Return true when neither period has a call, so there is nothing to send. */
export function isEmptyReport(report: InsightsReport): boolean {
  return report.totals.current.calls === 0 && report.totals.previous.calls === 0;
}

function totalsOf(overview: Overview, refusals: number): ReportTotals {
  const totals = overview.totals;
  return {
    calls: totals.calls,
    costUsd: roundUsd(totals.apiUsd + totals.apiEquivalentUsd),
    apiUsd: totals.apiUsd,
    apiEquivalentUsd: totals.apiEquivalentUsd,
    errors: totals.errors,
    refusals,
    sessions: totals.sessions,
    unpricedCalls: totals.unpricedCalls + totals.unknownCostCalls,
  };
}

/** Find days far above the usual spend in the daily spend of the period and the `HISTORY_DAYS` before it. */
async function spendAnomalies(store: Store, workspaceId: string, period: ReportPeriod): Promise<SpendAnomaly[]> {
  const from = new Date(period.from.getTime() - HISTORY_DAYS * DAY_MS);
  const overview = await store.overview({ filter: { workspaceId, from, to: period.to }, bucketMs: DAY_MS, groupBy: 'tool', top: 1 });
  const days = new Map<number, { costUsd: number; calls: number }>();
  for (const group of overview.groups) {
    const day = days.get(group.bucket) ?? { costUsd: 0, calls: 0 };
    day.costUsd = roundUsd(day.costUsd + group.apiUsd + group.apiEquivalentUsd);
    day.calls += group.calls;
    days.set(group.bucket, day);
  }
  const daily = [...days.entries()]
    .sort(([a], [b]) => a - b)
    .map(([bucket, day]) => ({ day: new Date(from.getTime() + bucket * DAY_MS), ...day }));
  return findSpendAnomalies(daily, period.from, period.to);
}

async function judgeFigures(
  store: Store,
  workspace: Workspace,
  current: CallFilter & { from: Date; to: Date },
): Promise<ReportJudge | null> {
  const settings = await store.getJudgeSettings(workspace.id);
  if (!settings) return null;
  const summary = await store.judgeScoreSummary({
    workspaceId: workspace.id,
    from: current.from,
    to: current.to,
    passScore: settings.passScore,
  });
  const lowest = await store.listJudgeScores({
    workspaceId: workspace.id,
    from: current.from,
    to: current.to,
    below: settings.passScore,
    order: 'lowest',
    limit: LOWEST_SCORES,
  });
  const own = await store.overview({
    filter: { ...current, tools: [JUDGE_TOOL] },
    bucketMs: current.to.getTime() - current.from.getTime(),
    groupBy: 'tool',
    top: 1,
  });
  return {
    enabled: settings.enabled,
    model: settings.model,
    passScore: settings.passScore,
    ...summary,
    calls: own.totals.calls,
    costUsd: roundUsd(own.totals.apiUsd + own.totals.apiEquivalentUsd),
    lowest: lowest.map((score) => ({
      callId: score.callId,
      callStartedAt: score.callStartedAt,
      score: score.score ?? 0,
      reason: workspace.keepBodies ? score.reason : null,
    })),
  };
}
