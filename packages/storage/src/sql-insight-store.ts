import { promisify } from 'node:util';
import { gunzip } from 'node:zlib';
import { TokenwiseError } from '@tokenwise/core';
import { booleanCallColumns, type CallRow, callColumns, fromCallRow, RATE_LIMITS_SUBQUERY } from './call-columns.js';
import type { CallPage, ListPage, PageRequest } from './call-queries.js';
import {
  type CallScore,
  DEFAULT_INSIGHT_SETTINGS,
  type InsightBatch,
  type InsightInput,
  type InsightSettings,
  type InsightSourceCall,
  type InsightStore,
  type PromptGroup,
  type PromptGroupKind,
  type PromptGroupSummary,
  type PromptSums,
  type PromptVersion,
  type PromptVersionSummary,
  type ScoreCounts,
  type ScoreGrouping,
  type ScoreSummary,
  type ScoreSummaryQuery,
  type StoredInsight,
} from './insight-store.js';
import { type ListOrder, listPageQuery, pageRows, toListPage } from './list-page.js';
import { SqlAccountStore } from './sql-account-store.js';
import { readBoolean, type SqlParam, type SqlStep } from './sql-runner.js';
import type { CallCursor, ListedCall } from './store.js';
import { parseCursor } from './store-rows.js';

type Row = Record<string, unknown>;

const gunzipAsync = promisify(gunzip);

/** Key in `settings` of the last call the insights job stored results for. */
const CURSOR_SETTING = 'insights.cursor';

/**
 * Sums of `calls c` for prompt groups and versions, read back by `readPromptSums`. Costs count like the
 * dashboard's: API spend (`exact`, `partial`) apart from subscription traffic priced at API rates. Per-call
 * token counts divide by the billable calls only, because a rejected request reports zero tokens.
 */
const PROMPT_SUMS = `COUNT(*) AS calls,
  SUM(CASE WHEN c.status = 'error' THEN 1 ELSE 0 END) AS errors,
  SUM(CASE WHEN c.cost_basis IN ('exact', 'partial') THEN c.cost_usd ELSE 0 END) AS api_usd,
  SUM(CASE WHEN c.cost_basis = 'api_equivalent' THEN c.cost_usd ELSE 0 END) AS api_equivalent_usd,
  SUM(CASE WHEN c.cost_basis IN ('exact', 'partial', 'api_equivalent') AND c.cost_usd IS NOT NULL THEN 1 ELSE 0 END) AS priced_calls,
  SUM(c.input_tokens) AS input_tokens,
  SUM(c.cache_read_tokens) AS cache_read_tokens,
  SUM(c.cache_write_tokens) AS cache_write_tokens,
  SUM(c.output_tokens) AS output_tokens,
  SUM(CASE WHEN c.input_tokens IS NOT NULL AND c.billable = TRUE THEN 1 ELSE 0 END) AS token_calls,
  SUM(CASE WHEN c.input_tokens IS NOT NULL AND c.cache_read_tokens IS NOT NULL THEN c.cache_read_tokens END) AS ratio_read,
  SUM(CASE WHEN c.input_tokens IS NOT NULL AND c.cache_read_tokens IS NOT NULL THEN c.input_tokens END) AS ratio_input,
  SUM(CASE WHEN c.status = 'success' THEN c.total_ms END) AS latency_sum,
  SUM(CASE WHEN c.status = 'success' THEN 1 ELSE 0 END) AS latency_calls,
  MIN(c.started_at_ms) AS first_ms,
  MAX(c.started_at_ms) AS last_ms`;

const SCORE_KEYS: Record<ScoreGrouping, string> = {
  group: 'ci.group_id',
  session: 'c.session_id',
  tool: 'c.tool',
  model: 'COALESCE(c.model_answered, c.model_requested)',
};

/** The most expensive first (API spend plus plan traffic at API prices, in nano-USD), then the most calls. */
const PROMPT_GROUP_ORDER: ListOrder = {
  list: 'prompt-groups',
  columns: [
    { sql: 'cost_nano_usd', field: 'cost_nano_usd', type: 'integer', descending: true },
    { sql: 'calls', field: 'calls', type: 'integer', descending: true },
    { sql: 'id', field: 'id', type: 'text' },
  ],
};
/** Newest observed first. */
const INSIGHT_ORDER: ListOrder = {
  list: 'insights',
  columns: [
    { sql: 'observed_at_ms', field: 'observed_at_ms', type: 'integer', descending: true },
    { sql: 'id', field: 'id', type: 'text' },
  ],
};
const INSIGHT_COLUMNS = 'id, workspace_id, kind, group_id, version_id, observed_at_ms, created_at, updated_at, summary, details';

const GROUP_COLUMNS = 'id, workspace_id, tool, kind, template_key, opening, created_at';
const VERSION_COLUMNS = 'id, group_id, fingerprint, first_call_id, first_seen_ms, tool_version, tool_count';

/**
 * The insights tables (prompt groups and versions, call scores, insights and their settings) in SQL that
 * SQLite and PostgreSQL both run. It sits below the dashboard's call queries in the chain of SQL stores
 * and reads `calls` through joins on `call_insights`, whose rows the insights job writes.
 */
export abstract class SqlInsightStore extends SqlAccountStore implements InsightStore {
  async readInsightSources(after: CallCursor | null, limit: number): Promise<InsightSourceCall[]> {
    checkLimit(limit);
    const rows = await this.sql().all<Row>(
      `SELECT seq, ${callColumns.join(', ')}, ${RATE_LIMITS_SUBQUERY},
         (SELECT b.request_body FROM call_bodies b WHERE b.call_id = calls.id) AS insight_request_body,
         (SELECT b.request_truncated FROM call_bodies b WHERE b.call_id = calls.id) AS insight_request_truncated
       FROM calls WHERE seq > ? ORDER BY seq ASC LIMIT ?`,
      [after === null ? 0 : parseCursor(after), limit],
    );
    return Promise.all(
      rows.map(async (row) => {
        const { insight_request_body: body, insight_request_truncated: truncated, ...callRow } = row;
        const listed = toListedCall(callRow);
        return {
          cursor: listed.cursor,
          record: listed.record,
          requestBody: body === null || body === undefined ? null : (await gunzipAsync(body as Buffer)).toString('utf8'),
          requestTruncated: readBoolean(truncated),
        };
      }),
    );
  }

  async insightCursor(): Promise<CallCursor | null> {
    const [row] = await this.sql().all<Row>('SELECT value FROM settings WHERE key = ?', [CURSOR_SETTING]);
    return row ? String(row.value) : null;
  }

  async saveInsightBatch(batch: InsightBatch): Promise<void> {
    parseCursor(batch.cursor);
    const now = this.now();
    const steps: SqlStep[] = [];

    for (const group of batch.groups) {
      steps.push({
        sql: `INSERT INTO prompt_groups (${GROUP_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?) ON CONFLICT (id) DO NOTHING`,
        params: [group.id, group.workspaceId, group.tool, group.kind, group.templateKey, group.opening, now],
      });
    }
    for (const version of batch.versions) {
      // The earliest call names the version's start and the tool version that introduced it, whichever
      // batch it arrives in. A pruned text comes back with a call that keeps its body.
      steps.push({
        sql: `INSERT INTO prompt_versions (id, workspace_id, group_id, fingerprint, first_call_id, first_seen_ms, tool_version,
                system_text, tools_json, tool_count, created_at)
              VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
              ON CONFLICT (id) DO UPDATE SET
                first_call_id = CASE WHEN excluded.first_seen_ms < prompt_versions.first_seen_ms THEN excluded.first_call_id ELSE prompt_versions.first_call_id END,
                tool_version = CASE WHEN excluded.first_seen_ms < prompt_versions.first_seen_ms THEN excluded.tool_version ELSE prompt_versions.tool_version END,
                first_seen_ms = CASE WHEN excluded.first_seen_ms < prompt_versions.first_seen_ms THEN excluded.first_seen_ms ELSE prompt_versions.first_seen_ms END,
                system_text = COALESCE(prompt_versions.system_text, excluded.system_text),
                tools_json = COALESCE(prompt_versions.tools_json, excluded.tools_json)`,
        params: [
          version.id,
          version.workspaceId,
          version.groupId,
          version.fingerprint,
          version.firstCallId,
          version.firstSeenMs,
          version.toolVersion,
          version.systemText,
          version.toolsJson,
          version.toolCount,
          now,
        ],
      });
    }
    for (const call of batch.calls) {
      steps.push({
        sql: `INSERT INTO call_insights (call_id, workspace_id, device_id, session_id, started_at_ms, group_id, version_id, request_sha256)
              VALUES (?, ?, ?, ?, ?, ?, ?, ?)
              ON CONFLICT (call_id) DO UPDATE SET group_id = excluded.group_id, version_id = excluded.version_id,
                request_sha256 = excluded.request_sha256`,
        params: [
          call.callId,
          call.workspaceId,
          call.deviceId,
          call.sessionId,
          call.startedAtMs,
          call.groupId,
          call.versionId,
          call.requestSha256,
        ],
      });
    }
    for (const score of batch.scores) {
      steps.push({
        sql: `INSERT INTO call_scores (id, call_id, scorer, workspace_id, started_at_ms, passed, value, detail) VALUES (?, ?, ?, ?, ?, ?, ?, ?)
              ON CONFLICT (id) DO UPDATE SET passed = excluded.passed, value = excluded.value, detail = excluded.detail`,
        params: [
          `${score.callId}/${score.scorer}`,
          score.callId,
          score.scorer,
          score.workspaceId,
          score.startedAtMs,
          score.passed,
          score.value,
          score.detail,
        ],
      });
    }

    // A call deleted while the job read it must leave no rows behind.
    const ids = [...new Set([...batch.calls.map((call) => call.callId), ...batch.scores.map((score) => score.callId)])];
    for (let start = 0; start < ids.length; start += 500) {
      const chunk = ids.slice(start, start + 500);
      for (const table of ['call_insights', 'call_scores']) {
        steps.push({
          sql: `DELETE FROM ${table} WHERE call_id IN (${placeholders(chunk)}) AND NOT EXISTS (SELECT 1 FROM calls WHERE calls.id = ${table}.call_id)`,
          params: chunk,
        });
      }
    }
    steps.push({
      sql: `INSERT INTO settings (key, value, updated_at) VALUES (?, ?, ?)
            ON CONFLICT (key) DO UPDATE SET value = excluded.value, updated_at = excluded.updated_at`,
      params: [CURSOR_SETTING, batch.cursor, now],
    });
    await this.sql().transaction(steps);
  }

  async findRepeatedRequest(query: {
    workspaceId: string;
    deviceId: string | null;
    requestSha256: string;
    fromMs: number;
    beforeMs: number;
  }): Promise<string | null> {
    const device = query.deviceId === null ? 'device_id IS NULL' : 'device_id = ?';
    const [row] = await this.sql().all<Row>(
      `SELECT call_id FROM call_insights WHERE workspace_id = ? AND request_sha256 = ? AND ${device}
         AND started_at_ms >= ? AND started_at_ms < ? ORDER BY started_at_ms DESC, call_id DESC LIMIT 1`,
      [query.workspaceId, query.requestSha256, ...(query.deviceId === null ? [] : [query.deviceId]), query.fromMs, query.beforeMs],
    );
    return row ? String(row.call_id) : null;
  }

  async findPreviousToolCall(query: {
    workspaceId: string;
    sessionId: string;
    groupId: string;
    beforeMs: number;
  }): Promise<{ callId: string; startedAtMs: number } | null> {
    const [row] = await this.sql().all<Row>(
      `SELECT ci.call_id, ci.started_at_ms FROM call_insights ci JOIN calls c ON c.id = ci.call_id
       WHERE ci.workspace_id = ? AND ci.session_id = ? AND ci.group_id = ? AND ci.started_at_ms < ? AND c.tool_calls > 0
       ORDER BY ci.started_at_ms DESC, ci.call_id DESC LIMIT 1`,
      [query.workspaceId, query.sessionId, query.groupId, query.beforeMs],
    );
    return row ? { callId: String(row.call_id), startedAtMs: Number(row.started_at_ms) } : null;
  }

  async listPromptGroups(query: {
    workspaceId: string;
    from?: Date;
    to?: Date;
    tools?: readonly string[];
    groupId?: string;
  }): Promise<PromptGroupSummary[]> {
    const conditions = ['ci.workspace_id = ?', 'ci.group_id IS NOT NULL'];
    const params: SqlParam[] = [query.workspaceId];
    if (query.from) {
      conditions.push('ci.started_at_ms >= ?');
      params.push(query.from.getTime());
    }
    if (query.to) {
      conditions.push('ci.started_at_ms < ?');
      params.push(query.to.getTime());
    }
    if (query.groupId !== undefined) {
      conditions.push('ci.group_id = ?');
      params.push(query.groupId);
    }
    if (query.tools !== undefined) {
      if (query.tools.length === 0) return [];
      conditions.push(`c.tool IN (${placeholders(query.tools)})`);
      params.push(...query.tools);
    }
    const where = conditions.join(' AND ');
    const sumRows = await this.sql().all<Row>(
      `SELECT ci.group_id, ${PROMPT_SUMS}, COUNT(DISTINCT ci.version_id) AS versions
       FROM call_insights ci JOIN calls c ON c.id = ci.call_id WHERE ${where} GROUP BY ci.group_id`,
      params,
    );
    if (sumRows.length === 0) return [];

    const groupIds = sumRows.map((row) => String(row.group_id));
    const groups = await this.sql().all<Row>(
      `SELECT ${GROUP_COLUMNS} FROM prompt_groups WHERE workspace_id = ? AND id IN (${placeholders(groupIds)})`,
      [query.workspaceId, ...groupIds],
    );
    const deviceRows = await this.sql().all<Row>(
      `SELECT DISTINCT ci.group_id, ci.device_id FROM call_insights ci JOIN calls c ON c.id = ci.call_id
       WHERE ${where} AND ci.device_id IS NOT NULL`,
      params,
    );
    const devices = new Map<string, string[]>();
    for (const row of deviceRows) {
      const list = devices.get(String(row.group_id)) ?? [];
      list.push(String(row.device_id));
      devices.set(String(row.group_id), list);
    }
    const groupById = new Map(groups.map((row) => [String(row.id), toPromptGroup(row)]));

    return sumRows.flatMap((row) => {
      const group = groupById.get(String(row.group_id));
      if (!group) return [];
      return [{ group, sums: readPromptSums(row), versions: Number(row.versions), deviceIds: (devices.get(group.id) ?? []).sort() }];
    });
  }

  async listPromptGroupsPage(
    query: { workspaceId: string; from?: Date; to?: Date; tools?: readonly string[] },
    page: PageRequest,
  ): Promise<ListPage<PromptGroupSummary>> {
    // NOTE: the sort key is a sum over the range's calls, so each page sums and sorts every group of the
    // range. Only the response is bounded by the page.
    const summaries = await this.listPromptGroups(query);
    const rows = summaries.map((summary) => ({
      cost_nano_usd: Math.round((summary.sums.apiUsd + summary.sums.apiEquivalentUsd) * 1e9),
      calls: summary.sums.calls,
      id: summary.group.id,
      summary,
    }));
    return pageRows(rows, PROMPT_GROUP_ORDER, page, (row) => row.summary as PromptGroupSummary);
  }

  async getPromptGroup(workspaceId: string, groupId: string): Promise<PromptGroup | null> {
    const [row] = await this.sql().all<Row>(`SELECT ${GROUP_COLUMNS} FROM prompt_groups WHERE workspace_id = ? AND id = ?`, [
      workspaceId,
      groupId,
    ]);
    return row ? toPromptGroup(row) : null;
  }

  async listPromptVersions(workspaceId: string, groupId: string): Promise<PromptVersionSummary[]> {
    const versions = await this.sql().all<Row>(
      `SELECT ${VERSION_COLUMNS}, CASE WHEN system_text IS NULL THEN 0 ELSE 1 END AS text_kept FROM prompt_versions
       WHERE workspace_id = ? AND group_id = ? ORDER BY first_seen_ms ASC, id ASC`,
      [workspaceId, groupId],
    );
    const sums = await this.sql().all<Row>(
      `SELECT ci.version_id, ${PROMPT_SUMS} FROM call_insights ci JOIN calls c ON c.id = ci.call_id
       WHERE ci.workspace_id = ? AND ci.group_id = ? AND ci.version_id IS NOT NULL GROUP BY ci.version_id`,
      [workspaceId, groupId],
    );
    const sumsById = new Map(sums.map((row) => [String(row.version_id), readPromptSums(row)]));
    return versions.map((row) => {
      const { systemText: _text, toolsJson: _tools, ...version } = toPromptVersion(row);
      return { version, sums: sumsById.get(version.id) ?? readPromptSums({}), textKept: Number(row.text_kept) === 1 };
    });
  }

  async getPromptVersion(workspaceId: string, versionId: string): Promise<PromptVersion | null> {
    const [row] = await this.sql().all<Row>(
      `SELECT ${VERSION_COLUMNS}, system_text, tools_json FROM prompt_versions WHERE workspace_id = ? AND id = ?`,
      [workspaceId, versionId],
    );
    return row ? toPromptVersion(row) : null;
  }

  async listPromptGroupCalls(workspaceId: string, groupId: string, versionId: string | null, page: PageRequest): Promise<CallPage> {
    checkLimit(page.limit);
    const conditions = ['ci.workspace_id = ?', 'ci.group_id = ?'];
    const params: SqlParam[] = [workspaceId, groupId];
    if (versionId !== null) {
      conditions.push('ci.version_id = ?');
      params.push(versionId);
    }
    if (page.cursor !== undefined) {
      const [startedAtMs, seq] = parseListCursor(page.cursor);
      conditions.push('(calls.started_at_ms < ? OR (calls.started_at_ms = ? AND calls.seq < ?))');
      params.push(startedAtMs, startedAtMs, seq);
    }
    const rows = await this.sql().all<Row>(
      `SELECT calls.seq, ${callColumns.map((column) => `calls.${column}`).join(', ')}, ${RATE_LIMITS_SUBQUERY}
       FROM call_insights ci JOIN calls ON calls.id = ci.call_id
       WHERE ${conditions.join(' AND ')} ORDER BY calls.started_at_ms DESC, calls.seq DESC LIMIT ?`,
      [...params, page.limit],
    );
    const last = rows.at(-1);
    return {
      calls: rows.map(toListedCall),
      nextCursor:
        rows.length === page.limit && last
          ? Buffer.from(JSON.stringify([Number(last.started_at_ms), Number(last.seq)])).toString('base64url')
          : null,
    };
  }

  async callInsightsOf(workspaceId: string, callIds: readonly string[]) {
    if (callIds.length === 0) return [];
    const rows = await this.sql().all<Row>(
      `SELECT call_id, group_id, version_id FROM call_insights WHERE workspace_id = ? AND call_id IN (${placeholders(callIds)})`,
      [workspaceId, ...callIds],
    );
    return rows.map((row) => ({
      callId: String(row.call_id),
      groupId: optionalText(row.group_id),
      versionId: optionalText(row.version_id),
    }));
  }

  async listCallScores(workspaceId: string, callIds: readonly string[]): Promise<CallScore[]> {
    if (callIds.length === 0) return [];
    const rows = await this.sql().all<Row>(
      `SELECT call_id, scorer, passed, value, detail, started_at_ms FROM call_scores
       WHERE workspace_id = ? AND call_id IN (${placeholders(callIds)}) ORDER BY call_id, scorer`,
      [workspaceId, ...callIds],
    );
    return rows.map((row) => ({
      callId: String(row.call_id),
      scorer: String(row.scorer),
      passed: readBoolean(row.passed),
      value: row.value === null || row.value === undefined ? null : Number(row.value),
      detail: JSON.parse(String(row.detail)) as Record<string, unknown>,
      startedAt: new Date(Number(row.started_at_ms)).toISOString(),
    }));
  }

  async scoreSummary(query: ScoreSummaryQuery): Promise<ScoreSummary> {
    checkLimit(query.limit);
    if (!Number.isInteger(query.bucketMs) || query.bucketMs < 1) {
      throw new TokenwiseError(
        'invalid_argument',
        `invalid bucket width ${query.bucketMs} ms: expected a whole number of ms of at least 1`,
      );
    }
    const key = SCORE_KEYS[query.groupBy];
    const bucket = 'CAST((ci.started_at_ms - ?) / ? AS INTEGER)';
    const range: SqlParam[] = [query.workspaceId, query.from.getTime(), query.to.getTime()];
    const callWhere = 'ci.workspace_id = ? AND ci.started_at_ms >= ? AND ci.started_at_ms < ?';
    const callCounts = 'COUNT(*) AS calls, SUM(CASE WHEN ci.request_sha256 IS NOT NULL THEN 1 ELSE 0 END) AS body_calls';
    const failedFrom = `call_scores s JOIN call_insights ci ON ci.call_id = s.call_id JOIN calls c ON c.id = s.call_id
      WHERE ${callWhere} AND s.passed = ?`;
    const bucketParams: SqlParam[] = [query.from.getTime(), query.bucketMs];

    const [totalRow] = await this.sql().all<Row>(`SELECT ${callCounts} FROM call_insights ci WHERE ${callWhere}`, range);
    const totalFailed = await this.sql().all<Row>(`SELECT s.scorer, COUNT(*) AS failed FROM ${failedFrom} GROUP BY s.scorer`, [
      ...range,
      false,
    ]);

    const keyRows = await this.sql().all<Row>(
      `SELECT ${key} AS key, ${callCounts} FROM call_insights ci JOIN calls c ON c.id = ci.call_id WHERE ${callWhere}
       GROUP BY 1 ORDER BY 2 DESC, 1 LIMIT ?`,
      [...range, query.limit],
    );
    const keyFailed = await this.sql().all<Row>(`SELECT ${key} AS key, s.scorer, COUNT(*) AS failed FROM ${failedFrom} GROUP BY 1, 2`, [
      ...range,
      false,
    ]);
    const bucketRows = await this.sql().all<Row>(
      `SELECT ${bucket} AS bucket, ${callCounts} FROM call_insights ci WHERE ${callWhere} GROUP BY 1`,
      [...bucketParams, ...range],
    );
    const bucketFailed = await this.sql().all<Row>(
      `SELECT ${bucket} AS bucket, s.scorer, COUNT(*) AS failed FROM ${failedFrom} GROUP BY 1, 2`,
      [...bucketParams, ...range, false],
    );

    const failedByKey = groupFailures(keyFailed, 'key');
    const failedByBucket = groupFailures(bucketFailed, 'bucket');
    return {
      totals: { ...readCounts(totalRow ?? {}), failed: groupFailures(totalFailed, null).get('') ?? {} },
      groups: keyRows.map((row) => ({
        key: optionalText(row.key),
        ...readCounts(row),
        failed: failedByKey.get(String(row.key ?? '')) ?? {},
      })),
      trend: bucketRows
        .map((row) => ({ bucket: Number(row.bucket), ...readCounts(row), failed: failedByBucket.get(String(Number(row.bucket))) ?? {} }))
        .sort((a, b) => a.bucket - b.bucket),
    };
  }

  async upsertInsights(insights: readonly InsightInput[]): Promise<void> {
    if (insights.length === 0) return;
    await this.sql().transaction(insights.map((insight) => upsertInsightStep(insight, this.now())));
  }

  async replaceGroupInsights(workspaceId: string, groupId: string, insights: readonly InsightInput[]): Promise<void> {
    const keep = insights.map((insight) => insight.id);
    const others = keep.length === 0 ? '' : ` AND id NOT IN (${placeholders(keep)})`;
    await this.sql().transaction([
      { sql: `DELETE FROM insights WHERE workspace_id = ? AND group_id = ?${others}`, params: [workspaceId, groupId, ...keep] },
      ...insights.map((insight) => upsertInsightStep(insight, this.now())),
    ]);
  }

  async listInsights(query: { workspaceId: string; from?: Date; groupId?: string; limit: number }): Promise<StoredInsight[]> {
    checkLimit(query.limit);
    const conditions = ['workspace_id = ?'];
    const params: SqlParam[] = [query.workspaceId];
    if (query.from) {
      conditions.push('observed_at_ms >= ?');
      params.push(query.from.getTime());
    }
    if (query.groupId !== undefined) {
      conditions.push('group_id = ?');
      params.push(query.groupId);
    }
    const rows = await this.sql().all<Row>(
      `SELECT ${INSIGHT_COLUMNS} FROM insights WHERE ${conditions.join(' AND ')} ORDER BY observed_at_ms DESC, id ASC LIMIT ?`,
      [...params, query.limit],
    );
    return rows.map(toStoredInsight);
  }

  async listInsightsPage(query: { workspaceId: string; from?: Date }, page: PageRequest): Promise<ListPage<StoredInsight>> {
    const after = listPageQuery(INSIGHT_ORDER, page);
    const since = query.from === undefined ? '' : ' AND observed_at_ms >= ?';
    const rows = await this.sql().all<Row>(
      `SELECT ${INSIGHT_COLUMNS} FROM insights WHERE workspace_id = ?${since}${after.after} ORDER BY ${after.orderBy} LIMIT ?`,
      [query.workspaceId, ...(query.from === undefined ? [] : [query.from.getTime()]), ...after.params, after.limit],
    );
    return toListPage(rows, page, INSIGHT_ORDER, toStoredInsight);
  }

  async getInsightSettings(workspaceId: string): Promise<InsightSettings> {
    const [row] = await this.sql().all<Row>(
      'SELECT latency_target_ms, metric_shift_pct, updated_at FROM insight_settings WHERE workspace_id = ?',
      [workspaceId],
    );
    if (!row) return { ...DEFAULT_INSIGHT_SETTINGS };
    return {
      latencyTargetMs: Number(row.latency_target_ms),
      metricShiftPct: Number(row.metric_shift_pct),
      updatedAt: String(row.updated_at),
    };
  }

  async setInsightSettings(workspaceId: string, settings: { latencyTargetMs: number; metricShiftPct: number }): Promise<InsightSettings> {
    if (!Number.isInteger(settings.latencyTargetMs) || settings.latencyTargetMs < 1) {
      throw new TokenwiseError('invalid_argument', `invalid latency target ${settings.latencyTargetMs}: expected whole ms of at least 1`);
    }
    if (!Number.isFinite(settings.metricShiftPct) || settings.metricShiftPct <= 0) {
      throw new TokenwiseError('invalid_argument', `invalid metric shift ${settings.metricShiftPct}: expected a percentage above 0`);
    }
    const updatedAt = this.now();
    await this.sql().run(
      `INSERT INTO insight_settings (workspace_id, latency_target_ms, metric_shift_pct, updated_at) VALUES (?, ?, ?, ?)
       ON CONFLICT (workspace_id) DO UPDATE SET latency_target_ms = excluded.latency_target_ms,
         metric_shift_pct = excluded.metric_shift_pct, updated_at = excluded.updated_at`,
      [workspaceId, settings.latencyTargetMs, settings.metricShiftPct, updatedAt],
    );
    return { ...settings, updatedAt };
  }

  // NOTE: a group's opening (the first line of its system prompt, at most 100 characters) is kept after
  // its versions' texts are pruned, because it names the group.
  async pruneVersionTexts(): Promise<number> {
    return this.sql().run(
      `UPDATE prompt_versions SET system_text = NULL, tools_json = NULL
       WHERE system_text IS NOT NULL AND NOT EXISTS (
         SELECT 1 FROM call_insights ci JOIN call_bodies b ON b.call_id = ci.call_id
         WHERE ci.version_id = prompt_versions.id AND b.request_body IS NOT NULL)`,
      [],
    );
  }
}

function upsertInsightStep(insight: InsightInput, now: string): SqlStep {
  return {
    sql: `INSERT INTO insights (id, workspace_id, kind, group_id, version_id, observed_at_ms, created_at, updated_at, summary, details)
          VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
          ON CONFLICT (id) DO UPDATE SET observed_at_ms = excluded.observed_at_ms, summary = excluded.summary,
            details = excluded.details, updated_at = excluded.updated_at`,
    params: [
      insight.id,
      insight.workspaceId,
      insight.kind,
      insight.groupId,
      insight.versionId,
      insight.observedAtMs,
      now,
      now,
      insight.summary,
      insight.details,
    ],
  };
}

function toListedCall(row: Row): ListedCall {
  const { seq, rate_limits_json, ...columns } = row;
  for (const column of booleanCallColumns) columns[column] = readBoolean(columns[column]);
  return { cursor: String(seq), record: fromCallRow(columns as unknown as CallRow, optionalText(rate_limits_json)) };
}

function toStoredInsight(row: Row): StoredInsight {
  return {
    id: String(row.id),
    workspaceId: String(row.workspace_id),
    kind: String(row.kind) as StoredInsight['kind'],
    groupId: String(row.group_id),
    versionId: optionalText(row.version_id),
    observedAt: new Date(Number(row.observed_at_ms)).toISOString(),
    createdAt: String(row.created_at),
    updatedAt: String(row.updated_at),
    summary: String(row.summary),
    details: JSON.parse(String(row.details)) as Record<string, unknown>,
  };
}

function toPromptGroup(row: Row): PromptGroup {
  return {
    id: String(row.id),
    workspaceId: String(row.workspace_id),
    tool: String(row.tool),
    kind: String(row.kind) as PromptGroupKind,
    templateKey: optionalText(row.template_key),
    opening: optionalText(row.opening),
    createdAt: String(row.created_at),
  };
}

function toPromptVersion(row: Row): PromptVersion {
  return {
    id: String(row.id),
    groupId: String(row.group_id),
    fingerprint: String(row.fingerprint),
    firstCallId: String(row.first_call_id),
    firstSeenAt: new Date(Number(row.first_seen_ms)).toISOString(),
    toolVersion: optionalText(row.tool_version),
    toolCount: Number(row.tool_count),
    systemText: optionalText(row.system_text),
    toolsJson: optionalText(row.tools_json),
  };
}

/** Read `PROMPT_SUMS`; PostgreSQL returns sums of BIGINT as numeric strings, so every number goes through `Number`. */
function readPromptSums(row: Row): PromptSums {
  const number = (value: unknown) => Number(value ?? 0);
  return {
    calls: number(row.calls),
    errors: number(row.errors),
    apiUsd: roundUsd(number(row.api_usd)),
    apiEquivalentUsd: roundUsd(number(row.api_equivalent_usd)),
    pricedCalls: number(row.priced_calls),
    inputTokens: number(row.input_tokens),
    cacheReadTokens: number(row.cache_read_tokens),
    cacheWriteTokens: number(row.cache_write_tokens),
    outputTokens: number(row.output_tokens),
    tokenCalls: number(row.token_calls),
    cacheRatioReadTokens: number(row.ratio_read),
    cacheRatioInputTokens: number(row.ratio_input),
    latencyMsSum: number(row.latency_sum),
    latencyCalls: number(row.latency_calls),
    firstCallAt: row.first_ms === null || row.first_ms === undefined ? null : new Date(Number(row.first_ms)).toISOString(),
    lastCallAt: row.last_ms === null || row.last_ms === undefined ? null : new Date(Number(row.last_ms)).toISOString(),
  };
}

function readCounts(row: Row): Omit<ScoreCounts, 'failed'> {
  return { calls: Number(row.calls ?? 0), bodyCalls: Number(row.body_calls ?? 0) };
}

/** Failure counts per key (or per bucket) and scorer; `column` null puts every row under the key ''. */
function groupFailures(rows: Row[], column: 'key' | 'bucket' | null): Map<string, Record<string, number>> {
  const result = new Map<string, Record<string, number>>();
  for (const row of rows) {
    let key = '';
    if (column === 'bucket') key = String(Number(row.bucket));
    else if (column === 'key') key = String(row.key ?? '');
    const failed = result.get(key) ?? {};
    failed[String(row.scorer)] = Number(row.failed);
    result.set(key, failed);
  }
  return result;
}

function roundUsd(usd: number): number {
  return Math.round(usd * 1e9) / 1e9;
}

function parseListCursor(cursor: string): [number, number] {
  let value: unknown = null;
  try {
    value = JSON.parse(Buffer.from(cursor, 'base64url').toString('utf8'));
  } catch {
    value = null;
  }
  if (Array.isArray(value) && value.length === 2 && value.every((part) => Number.isSafeInteger(part) && part >= 0)) {
    return value as [number, number];
  }
  throw new TokenwiseError(
    'invalid_argument',
    `invalid cursor "${cursor.slice(0, 80)}": pass back the next_cursor of the previous page, with the same filters`,
  );
}

function checkLimit(limit: number): void {
  if (!Number.isInteger(limit) || limit < 1) {
    throw new TokenwiseError('invalid_argument', `invalid limit ${limit}: expected a whole number of at least 1`);
  }
}

function placeholders(values: readonly unknown[]): string {
  return values.map(() => '?').join(', ');
}

function optionalText(value: unknown): string | null {
  return value === null || value === undefined ? null : String(value);
}
