import type { CallRecord } from '@tokenwise/core';
import type { CallPage, CallSums, ListPage, PageRequest } from './call-queries.js';
import type { CallCursor } from './store.js';

/**
 * How a prompt group was formed: `template` from a fingerprinted system prompt; `not_kept` for calls whose
 * request body was not kept (privacy mode, or deleted before the insights job read it); `unreadable` for
 * bodies that could not be parsed (cut at the capture limit, not JSON).
 */
export type PromptGroupKind = 'template' | 'not_kept' | 'unreadable';

/** A call with what the insights job reads of it: the record and, when kept, the request body text. */
export interface InsightSourceCall {
  cursor: CallCursor;
  record: CallRecord;
  /** Request body text; null when the body was not kept or could not be decoded. */
  requestBody: string | null;
  /** True when the stored request body was cut at the capture limit. */
  requestTruncated: boolean;
}

export interface PromptGroupInput {
  /** Deterministic id, so every run of the job names a group alike. */
  id: string;
  workspaceId: string;
  tool: string;
  kind: PromptGroupKind;
  /** SHA-256 (hex) of the tool and the template's opening; null for the `not_kept` and `unreadable` groups. */
  templateKey: string | null;
  /** First line of the normalized system prompt (at most 100 characters); null without a template. */
  opening: string | null;
}

export interface PromptVersionInput {
  id: string;
  workspaceId: string;
  groupId: string;
  /** SHA-256 (hex) of the normalized system prompt and tool definitions. */
  fingerprint: string;
  /** The earliest call seen with it; a later batch holding an earlier call replaces it. */
  firstCallId: string;
  firstSeenMs: number;
  /** Version of the tool that sent that call. */
  toolVersion: string | null;
  systemText: string;
  /** JSON array of `{name, definition}`, sorted by name. */
  toolsJson: string;
  toolCount: number;
}

/** The insights job's findings about one call. */
export interface CallInsightInput {
  callId: string;
  workspaceId: string;
  deviceId: string | null;
  sessionId: string | null;
  startedAtMs: number;
  /** Null for calls that are no model call (token counting, model lists). */
  groupId: string | null;
  versionId: string | null;
  /** SHA-256 (hex) of the request body, for the retry check; null without a kept body. */
  requestSha256: string | null;
}

/** One scorer's verdict on one call. Deterministic scorers store only failures. */
export interface CallScoreInput {
  callId: string;
  workspaceId: string;
  scorer: string;
  startedAtMs: number;
  passed: boolean;
  value: number | null;
  /** JSON object. */
  detail: string;
}

/** An insight raised by the job: a new version of a template, or a metric that shifted with it. */
export interface InsightInput {
  /** Deterministic id: the same finding raised twice is one insight, updated. */
  id: string;
  workspaceId: string;
  kind: 'version_change' | 'metric_shift';
  groupId: string;
  versionId: string | null;
  /** When the finding happened (the first call of the new version), ms since the epoch. */
  observedAtMs: number;
  /** One line for lists and emails. */
  summary: string;
  /** JSON object with the numbers behind the summary. */
  details: string;
}

export interface InsightBatch {
  groups: PromptGroupInput[];
  versions: PromptVersionInput[];
  calls: CallInsightInput[];
  scores: CallScoreInput[];
  /** The cursor of the last call read; the next run starts after it. */
  cursor: CallCursor;
}

export interface PromptGroup {
  id: string;
  workspaceId: string;
  tool: string;
  kind: PromptGroupKind;
  templateKey: string | null;
  opening: string | null;
  createdAt: string;
}

/** Sums of a group or version over a time range, with the parts per-call metrics are made of. */
export interface PromptSums extends CallSums {
  /** Calls with a cost in `apiUsd` or `apiEquivalentUsd`. */
  pricedCalls: number;
  /** Billable calls that report input tokens, the divisor of tokens per call. */
  tokenCalls: number;
  /** Cache-read and input tokens over the calls that report both, for the cache hit ratio. */
  cacheRatioReadTokens: number;
  cacheRatioInputTokens: number;
  /** Sum and count of `total_ms` over successful calls. */
  latencyMsSum: number;
  latencyCalls: number;
  firstCallAt: string | null;
  lastCallAt: string | null;
}

export interface PromptGroupSummary {
  group: PromptGroup;
  sums: PromptSums;
  versions: number;
  deviceIds: string[];
}

export interface PromptVersion {
  id: string;
  groupId: string;
  fingerprint: string;
  firstCallId: string;
  firstSeenAt: string;
  toolVersion: string | null;
  toolCount: number;
  /** Normalized text, null once no call of the version keeps its body (retention, deletion). */
  systemText: string | null;
  toolsJson: string | null;
}

export interface PromptVersionSummary {
  version: Omit<PromptVersion, 'systemText' | 'toolsJson'>;
  /** Over every call of the version. */
  sums: PromptSums;
  /** True while its text is kept. */
  textKept: boolean;
}

export interface CallScore {
  callId: string;
  scorer: string;
  passed: boolean;
  value: number | null;
  detail: Record<string, unknown>;
  startedAt: string;
}

export type ScoreGrouping = 'group' | 'session' | 'tool' | 'model';

export interface ScoreSummaryQuery {
  workspaceId: string;
  from: Date;
  to: Date;
  groupBy: ScoreGrouping;
  /** Width of the trend's buckets, in ms. */
  bucketMs: number;
  /** Keys listed at most, those with the most calls first. */
  limit: number;
}

export interface ScoreCounts {
  /** Calls the job has looked at. */
  calls: number;
  /** Of those, calls with a kept request body, which the body scorers (`tool_error`, `retry`) could check. */
  bodyCalls: number;
  /** Failed calls per scorer. */
  failed: Record<string, number>;
}

export interface ScoreSummary {
  totals: ScoreCounts;
  groups: (ScoreCounts & { key: string | null })[];
  /** One entry per bucket with calls: `floor((started_at - from) / bucketMs)`. */
  trend: (ScoreCounts & { bucket: number })[];
}

export interface StoredInsight {
  id: string;
  workspaceId: string;
  kind: InsightInput['kind'];
  groupId: string;
  versionId: string | null;
  observedAt: string;
  createdAt: string;
  updatedAt: string;
  summary: string;
  details: Record<string, unknown>;
}

export interface InsightSettings {
  /** Calls slower than this are flagged `slow`: time to first token of a stream, else total time, in ms. */
  latencyTargetMs: number;
  /** A change of a per-call metric between versions beyond this many percent raises an insight. */
  metricShiftPct: number;
  /** Null until an owner changes a default. */
  updatedAt: string | null;
}

export const DEFAULT_INSIGHT_SETTINGS: InsightSettings = { latencyTargetMs: 30_000, metricShiftPct: 25, updatedAt: null };

/**
 * Prompt groups and versions, per-call scores and insights, which the server's insights job derives from
 * stored calls. Every read takes the workspace it reads.
 */
export interface InsightStore {
  /** Calls stored after `after` (from the first when null) in storage order, with their request bodies. */
  readInsightSources(after: CallCursor | null, limit: number): Promise<InsightSourceCall[]>;
  /** The cursor of the last call the insights job stored results for; null before its first run. */
  insightCursor(): Promise<CallCursor | null>;
  /**
   * Store one batch of results and move the cursor, in one transaction. Groups, versions, call rows and
   * scores of calls already processed are updated in place, so storing a batch twice changes nothing.
   * Rows of calls deleted in the meantime are skipped.
   */
  saveInsightBatch(batch: InsightBatch): Promise<void>;
  /** The newest earlier call of one device with the same request body, started in `[fromMs, beforeMs)`. */
  findRepeatedRequest(query: {
    workspaceId: string;
    deviceId: string | null;
    requestSha256: string;
    fromMs: number;
    beforeMs: number;
  }): Promise<string | null>;
  /** The newest call of a session and prompt group before `beforeMs` that asked for tool calls. */
  findPreviousToolCall(query: {
    workspaceId: string;
    sessionId: string;
    groupId: string;
    beforeMs: number;
  }): Promise<{ callId: string; startedAtMs: number } | null>;

  /** The groups with a call in the range (all of them by default), each summed over those calls; `groupId` lists one. */
  listPromptGroups(query: {
    workspaceId: string;
    from?: Date;
    to?: Date;
    tools?: readonly string[];
    groupId?: string;
  }): Promise<PromptGroupSummary[]>;
  /**
   * One page of the groups with a call in the range, each summed over those calls: the most expensive first
   * (API spend plus plan traffic at API prices), then the most calls, then by id.
   */
  listPromptGroupsPage(
    query: { workspaceId: string; from?: Date; to?: Date; tools?: readonly string[] },
    page: PageRequest,
  ): Promise<ListPage<PromptGroupSummary>>;
  getPromptGroup(workspaceId: string, groupId: string): Promise<PromptGroup | null>;
  /** The versions of a group, oldest first, each with the sums of all its calls. */
  listPromptVersions(workspaceId: string, groupId: string): Promise<PromptVersionSummary[]>;
  getPromptVersion(workspaceId: string, versionId: string): Promise<PromptVersion | null>;
  /** The calls of a group (or of one of its versions), newest first. */
  listPromptGroupCalls(workspaceId: string, groupId: string, versionId: string | null, page: PageRequest): Promise<CallPage>;
  /** The prompt group and version of each call the job has looked at. */
  callInsightsOf(
    workspaceId: string,
    callIds: readonly string[],
  ): Promise<{ callId: string; groupId: string | null; versionId: string | null }[]>;

  listCallScores(workspaceId: string, callIds: readonly string[]): Promise<CallScore[]>;
  scoreSummary(query: ScoreSummaryQuery): Promise<ScoreSummary>;

  upsertInsights(insights: readonly InsightInput[]): Promise<void>;
  /**
   * Make `insights` the insights of one group: upsert them and delete the group's other insights, which no
   * longer hold (a metric that moved back under the threshold), in one transaction.
   */
  replaceGroupInsights(workspaceId: string, groupId: string, insights: readonly InsightInput[]): Promise<void>;
  listInsights(query: { workspaceId: string; from?: Date; groupId?: string; limit: number }): Promise<StoredInsight[]>;
  /** One page of a workspace's insights observed at or after `from`, newest observed first, then by id. */
  listInsightsPage(query: { workspaceId: string; from?: Date }, page: PageRequest): Promise<ListPage<StoredInsight>>;

  getInsightSettings(workspaceId: string): Promise<InsightSettings>;
  setInsightSettings(workspaceId: string, settings: { latencyTargetMs: number; metricShiftPct: number }): Promise<InsightSettings>;
  /** Forget the text of versions none of whose calls still keeps a request body; returns how many. */
  pruneVersionTexts(): Promise<number>;
}
