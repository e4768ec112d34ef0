import { randomUUID } from 'node:crypto';
import { TokenwiseError } from '@tokenwise/core';
import type { CallFilter } from './call-queries.js';
import {
  INSIGHTS_EMAIL_FREQUENCIES,
  type InsightsEmailClaim,
  type InsightsEmailFrequency,
  type InsightsEmailPreference,
  type InsightsEmailSend,
  type InsightsEmailSendKey,
  type InsightsEmailSettings,
  JUDGE_TOOL,
  type JudgeCandidate,
  type JudgeClaim,
  type JudgeResult,
  type JudgeScore,
  type JudgeScoreQuery,
  type JudgeScoreSummary,
  type JudgeSettings,
  type NewJudgeSettings,
  type ReportStore,
  type ToolOutcomes,
} from './report-store.js';
import { filterWhere, SqlCallStore } from './sql-call-store.js';
import { readBoolean, type SqlParam } from './sql-runner.js';

type Row = Record<string, unknown>;

/** Characters of a stored error or judge reason at most. */
const MAX_TEXT_CHARS = 2000;

/**
 * The insights email's settings and send log and the LLM judge's settings and scores, in SQL that SQLite
 * and PostgreSQL both run. Claims are single statements (an INSERT that skips an existing key, or an
 * UPDATE whose WHERE states when a claim may be taken over), so two processes never both win one.
 */
export abstract class SqlReportStore extends SqlCallStore implements ReportStore {
  async getInsightsEmailSettings(workspaceId: string): Promise<InsightsEmailSettings> {
    const [row] = await this.sql().all<Row>(
      'SELECT frequency, updated_at, updated_by FROM insights_email_settings WHERE workspace_id = ?',
      [workspaceId],
    );
    if (!row) return { workspaceId, frequency: 'weekly', updatedAt: null, updatedBy: null };
    return {
      workspaceId,
      frequency: String(row.frequency) as InsightsEmailFrequency,
      updatedAt: String(row.updated_at),
      updatedBy: optionalText(row.updated_by),
    };
  }

  async setInsightsEmailFrequency(
    workspaceId: string,
    frequency: InsightsEmailFrequency,
    updatedBy: string | null,
  ): Promise<InsightsEmailSettings> {
    checkFrequency(frequency);
    const updatedAt = this.now();
    await this.sql().run(
      `INSERT INTO insights_email_settings (workspace_id, frequency, updated_at, updated_by) VALUES (?, ?, ?, ?)
       ON CONFLICT (workspace_id) DO UPDATE SET frequency = excluded.frequency, updated_at = excluded.updated_at, updated_by = excluded.updated_by`,
      [workspaceId, frequency, updatedAt, updatedBy],
    );
    return { workspaceId, frequency, updatedAt, updatedBy };
  }

  async listInsightsEmailPreferences(workspaceId: string): Promise<InsightsEmailPreference[]> {
    const rows = await this.sql().all<Row>(
      'SELECT user_id, frequency, updated_at FROM insights_email_preferences WHERE workspace_id = ? ORDER BY user_id',
      [workspaceId],
    );
    return rows.map((row) => ({
      workspaceId,
      userId: String(row.user_id),
      frequency: String(row.frequency) as InsightsEmailFrequency,
      updatedAt: String(row.updated_at),
    }));
  }

  async setInsightsEmailPreference(workspaceId: string, userId: string, frequency: InsightsEmailFrequency | null): Promise<void> {
    if (frequency === null) {
      await this.sql().run('DELETE FROM insights_email_preferences WHERE workspace_id = ? AND user_id = ?', [workspaceId, userId]);
      return;
    }
    checkFrequency(frequency);
    await this.sql().run(
      `INSERT INTO insights_email_preferences (id, workspace_id, user_id, frequency, updated_at) VALUES (?, ?, ?, ?, ?)
       ON CONFLICT (workspace_id, user_id) DO UPDATE SET frequency = excluded.frequency, updated_at = excluded.updated_at`,
      [randomUUID(), workspaceId, userId, frequency, this.now()],
    );
  }

  async claimInsightsEmailSend(claim: InsightsEmailClaim): Promise<boolean> {
    const nowMs = claim.now.getTime();
    const key = sendKeyParams(claim);
    const inserted = await this.sql().run(
      `INSERT INTO insights_email_sends (id, workspace_id, user_id, frequency, period_start, period_end, status, attempts, claimed_at_ms)
       VALUES (?, ?, ?, ?, ?, ?, 'sending', 1, ?)
       ON CONFLICT (workspace_id, user_id, frequency, period_start) DO NOTHING`,
      [randomUUID(), ...key, claim.periodEnd, nowMs],
    );
    if (inserted > 0) return true;
    const taken = await this.sql().run(
      `UPDATE insights_email_sends SET status = 'sending', attempts = attempts + 1, claimed_at_ms = ?, error = NULL
       WHERE workspace_id = ? AND user_id = ? AND frequency = ? AND period_start = ?
         AND ((status = 'failed' AND attempts < ?) OR (status = 'sending' AND claimed_at_ms < ?))`,
      [nowMs, ...key, claim.maxAttempts, nowMs - claim.leaseMs],
    );
    return taken > 0;
  }

  async finishInsightsEmailSend(
    key: InsightsEmailSendKey,
    result: { status: 'sent' | 'failed' | 'skipped'; messageId: string | null; error: string | null; now: Date },
  ): Promise<void> {
    await this.sql().run(
      `UPDATE insights_email_sends SET status = ?, finished_at = ?, message_id = ?, error = ?
       WHERE workspace_id = ? AND user_id = ? AND frequency = ? AND period_start = ?`,
      [result.status, result.now.toISOString(), result.messageId, clipText(result.error), ...sendKeyParams(key)],
    );
  }

  async listInsightsEmailSends(workspaceId: string, limit: number): Promise<InsightsEmailSend[]> {
    checkLimit(limit);
    const rows = await this.sql().all<Row>(
      `SELECT user_id, frequency, period_start, period_end, status, attempts, claimed_at_ms, finished_at, message_id, error
       FROM insights_email_sends WHERE workspace_id = ? ORDER BY period_start DESC, frequency, user_id LIMIT ?`,
      [workspaceId, limit],
    );
    return rows.map((row) => ({
      workspaceId,
      userId: String(row.user_id),
      frequency: String(row.frequency) as 'weekly' | 'daily',
      periodStart: String(row.period_start),
      periodEnd: String(row.period_end),
      status: String(row.status) as InsightsEmailSend['status'],
      attempts: Number(row.attempts),
      claimedAt: new Date(Number(row.claimed_at_ms)).toISOString(),
      finishedAt: optionalText(row.finished_at),
      messageId: optionalText(row.message_id),
      error: optionalText(row.error),
    }));
  }

  async callOutcomesByTool(filter: CallFilter): Promise<ToolOutcomes[]> {
    const where = filterWhere(filter);
    const rows = await this.sql().all<Row>(
      `SELECT tool, COUNT(*) AS calls,
         SUM(CASE WHEN status = 'error' THEN 1 ELSE 0 END) AS errors,
         SUM(CASE WHEN status = 'success' AND stop_reason_normalized IN ('refusal', 'content_filter') THEN 1 ELSE 0 END) AS refusals,
         SUM(CASE WHEN status = 'truncated' THEN 1 ELSE 0 END) AS truncated,
         SUM(CASE WHEN status = 'aborted' THEN 1 ELSE 0 END) AS aborted
       FROM calls WHERE ${where.conditions.join(' AND ')} GROUP BY tool ORDER BY COUNT(*) DESC, tool`,
      where.params,
    );
    return rows.map((row) => ({
      tool: String(row.tool),
      calls: Number(row.calls ?? 0),
      errors: Number(row.errors ?? 0),
      refusals: Number(row.refusals ?? 0),
      truncated: Number(row.truncated ?? 0),
      aborted: Number(row.aborted ?? 0),
    }));
  }

  async getJudgeSettings(workspaceId: string): Promise<JudgeSettings | null> {
    const [row] = await this.sql().all<Row>(`SELECT ${JUDGE_SETTINGS_COLUMNS} FROM judge_settings WHERE workspace_id = ?`, [workspaceId]);
    return row ? toJudgeSettings(row) : null;
  }

  async saveJudgeSettings(input: NewJudgeSettings): Promise<JudgeSettings> {
    checkJudgeSettings(input);
    const settings: JudgeSettings = { ...input, updatedAt: this.now() };
    await this.sql().run(
      `INSERT INTO judge_settings (${JUDGE_SETTINGS_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
       ON CONFLICT (workspace_id) DO UPDATE SET enabled = excluded.enabled, route = excluded.route, model = excluded.model,
         rubric = excluded.rubric, sample_rate = excluded.sample_rate, pass_score = excluded.pass_score,
         device_id = excluded.device_id, scan_from_ms = excluded.scan_from_ms, updated_at = excluded.updated_at,
         updated_by = excluded.updated_by`,
      [
        settings.workspaceId,
        settings.enabled,
        settings.route,
        settings.model,
        settings.rubric,
        settings.sampleRate,
        settings.passScore,
        settings.deviceId,
        settings.scanFromMs,
        settings.updatedAt,
        settings.updatedBy,
      ],
    );
    return settings;
  }

  async listEnabledJudgeSettings(): Promise<JudgeSettings[]> {
    const rows = await this.sql().all<Row>(`SELECT ${JUDGE_SETTINGS_COLUMNS} FROM judge_settings WHERE enabled = ? ORDER BY workspace_id`, [
      true,
    ]);
    return rows.map(toJudgeSettings);
  }

  async advanceJudgeScan(workspaceId: string, toMs: number): Promise<void> {
    await this.sql().run('UPDATE judge_settings SET scan_from_ms = ? WHERE workspace_id = ? AND scan_from_ms < ?', [
      toMs,
      workspaceId,
      toMs,
    ]);
  }

  async listJudgeCandidates(query: {
    workspaceId: string;
    fromMs: number;
    toMs: number;
    staleBeforeMs: number;
    limit: number;
  }): Promise<JudgeCandidate[]> {
    checkLimit(query.limit);
    // Errors and aborted calls carry no answer to grade, so only successful and truncated calls qualify.
    const rows = await this.sql().all<Row>(
      `SELECT c.id, c.started_at_ms, c.device_id FROM calls c JOIN call_bodies b ON b.call_id = c.id
       WHERE c.workspace_id = ? AND c.started_at_ms >= ? AND c.started_at_ms < ? AND c.tool <> ?
         AND c.status IN ('success', 'truncated') AND b.request_body IS NOT NULL AND b.response_body IS NOT NULL
         AND NOT EXISTS (SELECT 1 FROM judge_scores s WHERE s.call_id = c.id AND (s.status <> 'pending' OR s.claimed_at_ms >= ?))
       ORDER BY c.started_at_ms, c.id LIMIT ?`,
      [query.workspaceId, query.fromMs, query.toMs, JUDGE_TOOL, query.staleBeforeMs, query.limit],
    );
    return rows.map((row) => ({ callId: String(row.id), startedAtMs: Number(row.started_at_ms), deviceId: optionalText(row.device_id) }));
  }

  async claimJudgeScore(claim: JudgeClaim): Promise<boolean> {
    const nowMs = claim.now.getTime();
    const inserted = await this.sql().run(
      `INSERT INTO judge_scores (call_id, workspace_id, call_started_at_ms, status, route, model, attempts, claimed_at_ms)
       VALUES (?, ?, ?, 'pending', ?, ?, 1, ?) ON CONFLICT (call_id) DO NOTHING`,
      [claim.callId, claim.workspaceId, claim.callStartedAtMs, claim.route, claim.model, nowMs],
    );
    if (inserted > 0) return true;
    const taken = await this.sql().run(
      `UPDATE judge_scores SET attempts = attempts + 1, claimed_at_ms = ?, route = ?, model = ?
       WHERE call_id = ? AND workspace_id = ? AND status = 'pending' AND claimed_at_ms < ?`,
      [nowMs, claim.route, claim.model, claim.callId, claim.workspaceId, nowMs - claim.leaseMs],
    );
    return taken > 0;
  }

  async finishJudgeScore(callId: string, result: JudgeResult): Promise<void> {
    if (result.score !== null && !(result.score >= 0 && result.score <= 10)) {
      throw new TokenwiseError('invalid_argument', `invalid judge score ${result.score}: expected a number from 0 to 10`);
    }
    await this.sql().run(
      'UPDATE judge_scores SET status = ?, score = ?, reason = ?, response_id = ?, error = ?, finished_at = ? WHERE call_id = ?',
      [result.status, result.score, clipText(result.reason), result.responseId, clipText(result.error), result.now.toISOString(), callId],
    );
  }

  async listJudgeScores(query: JudgeScoreQuery): Promise<JudgeScore[]> {
    checkLimit(query.limit);
    const conditions = ['workspace_id = ?'];
    const params: SqlParam[] = [query.workspaceId];
    if (query.from !== undefined) {
      conditions.push('call_started_at_ms >= ?');
      params.push(query.from.getTime());
    }
    if (query.to !== undefined) {
      conditions.push('call_started_at_ms < ?');
      params.push(query.to.getTime());
    }
    if (query.below !== undefined) {
      conditions.push("status = 'scored' AND score < ?");
      params.push(query.below);
    }
    if (query.callIds !== undefined) {
      if (query.callIds.length === 0) return [];
      conditions.push(`call_id IN (${query.callIds.map(() => '?').join(', ')})`);
      params.push(...query.callIds);
    }
    const order =
      query.order === 'lowest'
        ? "CASE WHEN status = 'scored' THEN 0 ELSE 1 END, score ASC, call_started_at_ms DESC, call_id"
        : 'call_started_at_ms DESC, call_id';
    const rows = await this.sql().all<Row>(
      `SELECT ${JUDGE_SCORE_COLUMNS} FROM judge_scores WHERE ${conditions.join(' AND ')} ORDER BY ${order} LIMIT ?`,
      [...params, query.limit],
    );
    return rows.map(toJudgeScore);
  }

  async judgeScoreSummary(query: { workspaceId: string; from: Date; to: Date; passScore: number }): Promise<JudgeScoreSummary> {
    const [row] = await this.sql().all<Row>(
      `SELECT SUM(CASE WHEN status = 'scored' THEN 1 ELSE 0 END) AS scored,
         SUM(CASE WHEN status = 'failed' THEN 1 ELSE 0 END) AS failed_judgings,
         SUM(CASE WHEN status = 'scored' AND score < ? THEN 1 ELSE 0 END) AS failing,
         AVG(CASE WHEN status = 'scored' THEN score END) AS average_score
       FROM judge_scores WHERE workspace_id = ? AND call_started_at_ms >= ? AND call_started_at_ms < ?`,
      [query.passScore, query.workspaceId, query.from.getTime(), query.to.getTime()],
    );
    const average = row?.average_score;
    return {
      scored: Number(row?.scored ?? 0),
      failedJudgings: Number(row?.failed_judgings ?? 0),
      failing: Number(row?.failing ?? 0),
      // Averages differ in the last bits between the databases; four decimals is more than a 0–10 score needs.
      averageScore: average === null || average === undefined ? null : Math.round(Number(average) * 1e4) / 1e4,
    };
  }
}

const JUDGE_SETTINGS_COLUMNS =
  'workspace_id, enabled, route, model, rubric, sample_rate, pass_score, device_id, scan_from_ms, updated_at, updated_by';
const JUDGE_SCORE_COLUMNS =
  'call_id, workspace_id, call_started_at_ms, status, score, reason, route, model, response_id, error, attempts, finished_at';

function sendKeyParams(key: InsightsEmailSendKey): SqlParam[] {
  return [key.workspaceId, key.userId, key.frequency, key.periodStart];
}

function toJudgeSettings(row: Row): JudgeSettings {
  return {
    workspaceId: String(row.workspace_id),
    enabled: readBoolean(row.enabled),
    route: String(row.route),
    model: String(row.model),
    rubric: String(row.rubric),
    sampleRate: Number(row.sample_rate),
    passScore: Number(row.pass_score),
    deviceId: optionalText(row.device_id),
    scanFromMs: Number(row.scan_from_ms),
    updatedAt: String(row.updated_at),
    updatedBy: optionalText(row.updated_by),
  };
}

function toJudgeScore(row: Row): JudgeScore {
  return {
    callId: String(row.call_id),
    workspaceId: String(row.workspace_id),
    callStartedAt: new Date(Number(row.call_started_at_ms)).toISOString(),
    status: String(row.status) as JudgeScore['status'],
    score: row.score === null || row.score === undefined ? null : Number(row.score),
    reason: optionalText(row.reason),
    route: String(row.route),
    model: String(row.model),
    responseId: optionalText(row.response_id),
    error: optionalText(row.error),
    attempts: Number(row.attempts),
    finishedAt: optionalText(row.finished_at),
  };
}

function checkFrequency(frequency: string): void {
  if (!(INSIGHTS_EMAIL_FREQUENCIES as readonly string[]).includes(frequency)) {
    throw new TokenwiseError('invalid_argument', `invalid frequency "${frequency}": expected ${INSIGHTS_EMAIL_FREQUENCIES.join(', ')}`);
  }
}

function checkJudgeSettings(settings: NewJudgeSettings): void {
  if (!(settings.sampleRate >= 0 && settings.sampleRate <= 1)) {
    throw new TokenwiseError('invalid_argument', `invalid sample rate ${settings.sampleRate}: expected a number from 0 to 1`);
  }
  if (!(settings.passScore >= 0 && settings.passScore <= 10)) {
    throw new TokenwiseError('invalid_argument', `invalid pass score ${settings.passScore}: expected a number from 0 to 10`);
  }
  if (!Number.isSafeInteger(settings.scanFromMs) || settings.scanFromMs < 0) {
    throw new TokenwiseError('invalid_argument', `invalid scan position ${settings.scanFromMs}: expected ms since the epoch`);
  }
}

function checkLimit(limit: number): void {
  if (!Number.isInteger(limit) || limit < 1) {
    throw new TokenwiseError('invalid_argument', `invalid limit ${limit}: expected a whole number of at least 1`);
  }
}

function clipText(text: string | null): string | null {
  if (text === null) return null;
  return text.length > MAX_TEXT_CHARS ? `${text.slice(0, MAX_TEXT_CHARS - 1)}…` : text;
}

function optionalText(value: unknown): string | null {
  return value === null || value === undefined ? null : String(value);
}
