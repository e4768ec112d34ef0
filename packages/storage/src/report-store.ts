import type { CallFilter } from './call-queries.js';

/** Tool id that the LLM judge's own calls are recorded with. The judge never judges these calls. */
export const JUDGE_TOOL = 'tokenwise-judge';

/** How often a person gets the insights email. */
export type InsightsEmailFrequency = 'weekly' | 'daily' | 'off';

export const INSIGHTS_EMAIL_FREQUENCIES: readonly InsightsEmailFrequency[] = ['weekly', 'daily', 'off'];

/** The workspace's frequency setting. A workspace without a stored setting gets the weekly email. */
export interface InsightsEmailSettings {
  workspaceId: string;
  frequency: InsightsEmailFrequency;
  /** Null while the workspace keeps the default. */
  updatedAt: string | null;
  updatedBy: string | null;
}

/** One person's own choice in one workspace, which replaces the workspace's unless that is `off`. */
export interface InsightsEmailPreference {
  workspaceId: string;
  userId: string;
  frequency: InsightsEmailFrequency;
  updatedAt: string;
}

/** Send state: `sending` while a process has the claim, `skipped` when the period had no call to report. */
export type InsightsEmailSendStatus = 'sending' | 'sent' | 'failed' | 'skipped';

/** Identifies one email: one person, one workspace, one period. */
export interface InsightsEmailSendKey {
  workspaceId: string;
  userId: string;
  frequency: 'weekly' | 'daily';
  /** ISO 8601 start of the reported period. */
  periodStart: string;
}

export interface InsightsEmailSend extends InsightsEmailSendKey {
  periodEnd: string;
  status: InsightsEmailSendStatus;
  attempts: number;
  claimedAt: string;
  finishedAt: string | null;
  /** The SMTP server's message id of a sent email. */
  messageId: string | null;
  error: string | null;
}

export interface InsightsEmailClaim extends InsightsEmailSendKey {
  periodEnd: string;
  now: Date;
  /** A `sending` claim older than this (a process that died while sending) may be taken over, in ms. */
  leaseMs: number;
  /** A `failed` send is tried again until it has this many attempts. */
  maxAttempts: number;
}

/**
 * Call counts by outcome for one tool. Refusals are successful calls whose stop reason is a refusal or a
 * content filter.
 */
export interface ToolOutcomes {
  tool: string;
  calls: number;
  errors: number;
  refusals: number;
  truncated: number;
  aborted: number;
}

/** The LLM judge of one workspace. Off until an owner turns it on. */
export interface JudgeSettings {
  workspaceId: string;
  enabled: boolean;
  /** The proxy route the judge's requests go through, e.g. `anthropic`. */
  route: string;
  model: string;
  /** Criteria the judge grades each call against, in the owner's words. */
  rubric: string;
  /** Share of the eligible calls judged, from 0 to 1. */
  sampleRate: number;
  /** Scores below this count as failing, on the judge's 0 to 10 scale. */
  passScore: number;
  /** The device whose route token the judge's own calls use, so they are recorded like any other call. */
  deviceId: string | null;
  /** Calls that started before this time (ms since the epoch) have been looked at already. */
  scanFromMs: number;
  updatedAt: string;
  updatedBy: string | null;
}

export type NewJudgeSettings = Omit<JudgeSettings, 'updatedAt'>;

/** Score state: `pending` while a process has the claim, `failed` when the judge returned no usable response. */
export type JudgeScoreStatus = 'pending' | 'scored' | 'failed';

export interface JudgeScore {
  callId: string;
  workspaceId: string;
  /** ISO 8601 start of the judged call. */
  callStartedAt: string;
  status: JudgeScoreStatus;
  /** Score from 0 to 10, or null unless scored. */
  score: number | null;
  /** The judge's one-paragraph reason, or null once the call's bodies expired. */
  reason: string | null;
  route: string;
  model: string;
  /** Message or response id of the judge's response, which is the `response_id` of its own recorded call. */
  responseId: string | null;
  error: string | null;
  attempts: number;
  finishedAt: string | null;
}

export interface JudgeClaim {
  callId: string;
  workspaceId: string;
  callStartedAtMs: number;
  route: string;
  model: string;
  now: Date;
  /** A `pending` claim older than this may be taken over, in ms. */
  leaseMs: number;
}

export interface JudgeResult {
  status: 'scored' | 'failed';
  score: number | null;
  reason: string | null;
  responseId: string | null;
  error: string | null;
  now: Date;
}

/** A call the judge may look at: it has both bodies and no finished or live score. */
export interface JudgeCandidate {
  callId: string;
  startedAtMs: number;
  deviceId: string | null;
}

export interface JudgeScoreQuery {
  workspaceId: string;
  /** Calls that started in `[from, to)`. */
  from?: Date;
  to?: Date;
  /** Only scored calls with a score below this. */
  below?: number;
  callIds?: readonly string[];
  /** `newest` by the call's start, or `lowest` score first. */
  order: 'newest' | 'lowest';
  limit: number;
}

export interface JudgeScoreSummary {
  scored: number;
  /** Judgings that produced no score. */
  failedJudgings: number;
  /** Scored calls below the pass score. */
  failing: number;
  /** Mean of the scores, or null without a scored call. */
  averageScore: number | null;
}

/** The insights email's settings and send log, and the LLM judge's settings and scores. */
export interface ReportStore {
  getInsightsEmailSettings(workspaceId: string): Promise<InsightsEmailSettings>;
  setInsightsEmailFrequency(
    workspaceId: string,
    frequency: InsightsEmailFrequency,
    updatedBy: string | null,
  ): Promise<InsightsEmailSettings>;
  listInsightsEmailPreferences(workspaceId: string): Promise<InsightsEmailPreference[]>;
  /** Store a person's own frequency, or with null go back to the workspace's. */
  setInsightsEmailPreference(workspaceId: string, userId: string, frequency: InsightsEmailFrequency | null): Promise<void>;
  /**
   * Claim the right to send one email. Return true for the first claim of its key, for a `failed` send with
   * fewer than `maxAttempts` attempts, and for a `sending` claim older than the lease, else false. The claim
   * is atomic across processes sharing the store, so each period is mailed once.
   */
  claimInsightsEmailSend(claim: InsightsEmailClaim): Promise<boolean>;
  finishInsightsEmailSend(
    key: InsightsEmailSendKey,
    result: { status: 'sent' | 'failed' | 'skipped'; messageId: string | null; error: string | null; now: Date },
  ): Promise<void>;
  /** List the workspace's sends, the latest period first. */
  listInsightsEmailSends(workspaceId: string, limit: number): Promise<InsightsEmailSend[]>;
  /** Count the matching calls per tool and outcome, the tool with the most calls first. */
  callOutcomesByTool(filter: CallFilter): Promise<ToolOutcomes[]>;

  getJudgeSettings(workspaceId: string): Promise<JudgeSettings | null>;
  saveJudgeSettings(settings: NewJudgeSettings): Promise<JudgeSettings>;
  listEnabledJudgeSettings(): Promise<JudgeSettings[]>;
  /** Move the workspace's scan position forward to `toMs`. It never moves backward. */
  advanceJudgeScan(workspaceId: string, toMs: number): Promise<void>;
  /**
   * List the workspace's calls started in `[fromMs, toMs)` with both bodies kept, oldest first, that have no
   * score row or only a `pending` one claimed before `staleBeforeMs`. The judge's own calls are left out.
   */
  listJudgeCandidates(query: {
    workspaceId: string;
    fromMs: number;
    toMs: number;
    staleBeforeMs: number;
    limit: number;
  }): Promise<JudgeCandidate[]>;
  /**
   * Claim the right to judge one call. Return true for the first claim and for a `pending` claim older
   * than the lease.
   */
  claimJudgeScore(claim: JudgeClaim): Promise<boolean>;
  finishJudgeScore(callId: string, result: JudgeResult): Promise<void>;
  listJudgeScores(query: JudgeScoreQuery): Promise<JudgeScore[]>;
  judgeScoreSummary(query: { workspaceId: string; from: Date; to: Date; passScore: number }): Promise<JudgeScoreSummary>;
}
