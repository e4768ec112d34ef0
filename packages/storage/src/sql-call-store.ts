import { randomUUID } from 'node:crypto';
import { TokenwiseError } from '@tokenwise/core';
import { oneCallSpendStep } from './budget-spend-sql.js';
import { booleanCallColumns, type CallRow, callColumns, fromCallRow, RATE_LIMITS_SUBQUERY } from './call-columns.js';
import type {
  BucketLatency,
  CallCostUpdate,
  CallFacets,
  CallFilter,
  CallGrouping,
  CallPage,
  CallQueryStore,
  CallSums,
  CallTotals,
  DeviceCallStats,
  FacetValue,
  GroupedSums,
  ListPage,
  ModelSummary,
  NewCustomPrice,
  Overview,
  OverviewQuery,
  PageRequest,
  Percentiles,
  RateLimitSnapshot,
  SessionSummary,
  StoredCustomPrice,
} from './call-queries.js';
import { HOUR_MS, recomputeRollupsSteps } from './call-rollups.js';
import { type ListOrder, listPageQuery, toListPage } from './list-page.js';
import {
  addRows,
  planRollup,
  type RollupPlan,
  readParts,
  readRollupSums,
  rollupGroupColumn,
  rollupSumsSql,
  rollupWhere,
  splitByBucket,
} from './overview-rollup.js';
import { isWorkspaceRange, readBinnedLatency, readFacet, readSessionSums } from './rollup-reads.js';
import { SqlInsightStore } from './sql-insight-store.js';
import { readBoolean, type SqlParam, type SqlStep } from './sql-runner.js';
import type { ListedCall } from './store.js';

type Row = Record<string, unknown>;

/** The call's model, as every filter, facet and grouping of the dashboard means it. */
const MODEL = 'COALESCE(model_answered, model_requested)';
const GROUP_COLUMNS: Record<CallGrouping, string> = {
  tool: 'tool',
  model: MODEL,
  provider: 'provider',
  route: 'route',
  device: 'device_id',
};

/** Sums every summary reads, as `CallSums` expects them from `readSums`. */
const SUMS = `COUNT(*) AS calls,
  SUM(CASE WHEN status = 'error' THEN 1 ELSE 0 END) AS errors,
  SUM(CASE WHEN cost_basis IN ('exact', 'partial') THEN cost_usd ELSE 0 END) AS api_usd,
  SUM(CASE WHEN cost_basis = 'api_equivalent' THEN cost_usd ELSE 0 END) AS api_equivalent_usd,
  SUM(input_tokens) AS input_tokens,
  SUM(cache_read_tokens) AS cache_read_tokens,
  SUM(cache_write_tokens) AS cache_write_tokens,
  SUM(output_tokens) AS output_tokens`;

/** Newest effective first, as the price book picks prices. */
const PRICE_ORDER: ListOrder = {
  list: 'prices',
  columns: [
    { sql: 'effective_from_ms', field: 'effective_from_ms', type: 'integer', descending: true },
    { sql: 'created_at', field: 'created_at', type: 'text', descending: true },
    { sql: 'id', field: 'id', type: 'text' },
  ],
};

/** By device, route and tool, the key of one rate-limit snapshot. */
const RATE_LIMIT_ORDER: ListOrder = {
  list: 'rate-limits',
  columns: [
    { sql: 'device_id', field: 'device_id', type: 'text' },
    { sql: 'route', field: 'route', type: 'text' },
    { sql: 'tool', field: 'tool', type: 'text' },
  ],
};

/** Calls re-priced per transaction. */
const COST_UPDATES_PER_TRANSACTION = 500;

/**
 * The maximum of successful calls in a range for the overview to rank its latencies exactly over
 * `calls`. Above it, the percentiles come from the hourly latency bins, within 2%.
 */
export const EXACT_PERCENTILE_LIMIT = 20_000;

/**
 * The dashboard's reads and the custom prices, in SQL that SQLite and PostgreSQL both run, on top of the
 * account queries. Aggregates read only the `calls` table (and `call_prompts` for text search), through
 * the workspace-and-time indexes; PostgreSQL returns SUM over BIGINT as a numeric string, so every number
 * goes through `Number`.
 */
export abstract class SqlCallStore extends SqlInsightStore implements CallQueryStore {
  /** See `EXACT_PERCENTILE_LIMIT`; a store sets it from its options. */
  protected exactPercentileLimit = EXACT_PERCENTILE_LIMIT;
  /** Whether reads started together run at once (a connection pool) rather than one after another. */
  protected readsRunConcurrently = false;

  async searchCalls(filter: CallFilter, page: PageRequest): Promise<CallPage> {
    checkLimit(page.limit);
    const where = filterWhere(filter);
    if (page.cursor !== undefined) {
      const [startedAtMs, seq] = parseCallCursor(page.cursor);
      where.conditions.push('(started_at_ms < ? OR (started_at_ms = ? AND seq < ?))');
      where.params.push(startedAtMs, startedAtMs, seq);
    }
    const rows = await this.sql().all<Row>(
      `SELECT seq, ${callColumns.join(', ')}, ${RATE_LIMITS_SUBQUERY} FROM calls
       WHERE ${where.conditions.join(' AND ')} ORDER BY started_at_ms DESC, seq DESC LIMIT ?`,
      [...where.params, page.limit],
    );
    return toPage(rows, page.limit);
  }

  async listSessionCalls(workspaceId: string, sessionId: string, page: PageRequest): Promise<CallPage> {
    checkLimit(page.limit);
    const conditions = ['workspace_id = ?', 'session_id = ?'];
    const params: SqlParam[] = [workspaceId, sessionId];
    if (page.cursor !== undefined) {
      const [startedAtMs, seq] = parseCallCursor(page.cursor);
      conditions.push('(started_at_ms > ? OR (started_at_ms = ? AND seq > ?))');
      params.push(startedAtMs, startedAtMs, seq);
    }
    const rows = await this.sql().all<Row>(
      `SELECT seq, ${callColumns.join(', ')}, ${RATE_LIMITS_SUBQUERY} FROM calls
       WHERE ${conditions.join(' AND ')} ORDER BY started_at_ms ASC, seq ASC LIMIT ?`,
      [...params, page.limit],
    );
    return toPage(rows, page.limit);
  }

  async overview(query: OverviewQuery): Promise<Overview> {
    const { filter, bucketMs, groupBy, top } = query;
    if (!Number.isInteger(bucketMs) || bucketMs < 1) {
      throw new TokenwiseError('invalid_argument', `invalid bucket width ${bucketMs} ms: expected a whole number of ms of at least 1`);
    }
    // Whole hours come from the hourly rollup where the filter allows it, the rest from `calls`.
    const plan = planRollup(filter.from.getTime(), filter.to.getTime(), bucketMs);
    const rollup = plan === null || rollupWhere(filter, []) === null ? null : plan;
    // The session and latency rollups keep no field to filter on, so they serve a workspace and range alone.
    const rangeRollup = rollup !== null && isWorkspaceRange(filter) ? rollup : null;

    // Reads that do not wait for one another run at once, which PostgreSQL serves on several connections;
    // SQLite runs them one after another. Where reads run at once, the binned percentiles are read before
    // the totals tell whether they are needed, because they take the longest.
    const [modelRows, sessionRanking, groupRows, earlyBinned] = await Promise.all([
      // The whole hours' sums per model serve both the totals and the top models.
      rollup ? this.rollupModelRows(filter, rollup) : Promise.resolve([]),
      // The ranking of the top sessions also counts the sessions, which the totals take.
      rangeRollup ? readSessionSums(this.sql(), filter.workspaceId, rangeRollup, { order: 'cost', limit: top }) : Promise.resolve(null),
      rollup ? this.groupsWithRollup(filter, rollup, bucketMs, groupBy) : this.callGroups(filter, bucketMs, groupBy),
      rangeRollup && this.readsRunConcurrently ? this.binnedLatencies(filter, rangeRollup, bucketMs) : Promise.resolve(null),
    ]);
    const totalsRow = rollup
      ? await this.totalsWithRollup(filter, rollup, modelRows, sessionRanking?.sessions ?? null)
      : (await this.callTotals(filter, true))[0];
    const binned = rangeRollup !== null && Number(totalsRow?.successes ?? 0) > this.exactPercentileLimit;
    const [latencies, topSessions, topModels] = await Promise.all([
      binned ? (earlyBinned ?? this.binnedLatencies(filter, rangeRollup!, bucketMs)) : this.exactLatencies(filter, bucketMs),
      sessionRanking ? this.describeSessions(filter, sessionRanking.rows) : this.topSessions(filter, top),
      rollup ? this.topModelsWithRollup(filter, rollup, modelRows, top) : this.topModels(filter, top),
    ]);

    return {
      totals: readTotals(totalsRow ?? {}),
      ...latencies,
      groups: groupRows.map((row): GroupedSums => ({ bucket: Number(row.bucket), key: optionalText(row.group_key), ...readSums(row) })),
      topSessions,
      topModels,
    };
  }

  /** Rank the percentiles of `filter` exactly over its successful calls, overall and per bucket. */
  private async exactLatencies(
    filter: CallFilter & { from: Date },
    bucketMs: number,
  ): Promise<Pick<Overview, 'latency' | 'ttft' | 'bucketLatency'>> {
    const where = filterWhere(filter);
    const bucket = 'CAST((started_at_ms - ?) / ? AS INTEGER)';
    const bucketParams = [filter.from.getTime(), bucketMs];
    const [latency, ttft, bucketTotal, bucketTtft] = await Promise.all([
      this.percentiles('0', [], 'total_ms', where),
      this.percentiles('0', [], 'ttft_ms', where),
      this.percentiles(bucket, bucketParams, 'total_ms', where),
      this.percentiles(bucket, bucketParams, 'ttft_ms', where),
    ]);
    return {
      latency: latency.get(0) ?? { p50: null, p95: null },
      ttft: ttft.get(0) ?? { p50: null, p95: null },
      bucketLatency: mergeBucketLatency(bucketTotal, bucketTtft),
    };
  }

  /** Rank the percentiles of a workspace and range from the latency bins, within 2%. */
  private async binnedLatencies(
    filter: CallFilter & { from: Date },
    plan: RollupPlan,
    bucketMs: number,
  ): Promise<Pick<Overview, 'latency' | 'ttft' | 'bucketLatency'>> {
    const binned = await readBinnedLatency(this.sql(), filter.workspaceId, plan, filter.from.getTime(), bucketMs);
    const buckets = [...binned.buckets.entries()].sort((a, b) => a[0] - b[0]);
    return {
      latency: binned.latency,
      ttft: binned.ttft,
      bucketLatency: buckets.map(([bucket, percentiles]) => ({ bucket, ...percentiles })),
    };
  }

  /** Read the rollup's sums of the whole hours per model and provider, with every sum of the totals. */
  private async rollupModelRows(filter: CallFilter & { from: Date; to: Date }, plan: RollupPlan): Promise<Row[]> {
    const rows = await readRollupSums(this.sql(), rollupWhere(filter, [plan.wholeHours])!, {
      columns: [rollupGroupColumn('model'), 'provider'],
      params: [],
    });
    return rows.map(({ key_0, key_1, ...sums }) => ({ model: key_0, provider: key_1, ...sums }));
  }

  /** Sum the calls of `filter` into one row of totals, with the session count only when `withSessions`. */
  private async callTotals(filter: CallFilter, withSessions: boolean): Promise<Row[]> {
    const where = filterWhere(filter);
    return this.sql().all<Row>(
      `SELECT ${SUMS},
         SUM(uncached_input_tokens) AS uncached_input_tokens,
         SUM(reasoning_tokens) AS reasoning_tokens,
         ${withSessions ? 'COUNT(DISTINCT session_id) AS sessions,' : ''}
         SUM(CASE WHEN cost_basis = 'unpriced' THEN 1 ELSE 0 END) AS unpriced_calls,
         SUM(CASE WHEN cost_basis = 'unknown' THEN 1 ELSE 0 END) AS unknown_cost_calls,
         SUM(CASE WHEN status = 'success' THEN 1 ELSE 0 END) AS successes,
         SUM(CASE WHEN input_tokens IS NOT NULL AND cache_read_tokens IS NOT NULL THEN cache_read_tokens END) AS ratio_read,
         SUM(CASE WHEN input_tokens IS NOT NULL AND cache_read_tokens IS NOT NULL THEN input_tokens END) AS ratio_input
       FROM calls WHERE ${where.conditions.join(' AND ')}`,
      where.params,
    );
  }

  /** Sum the calls of `filter` per bucket and group key, counting buckets from `bucketFrom`. */
  private async callGroups(filter: CallFilter, bucketMs: number, groupBy: CallGrouping): Promise<Row[]> {
    const query = callGroupsSql(filter, bucketMs, groupBy, filter.from!);
    return this.sql().all<Row>(query.sql, query.params);
  }

  /**
   * Sum the totals: whole hours from the rollup's rows per model, `modelRows`, and the edges from `calls`.
   * The session count is `sessions` when known, else counted over every call of the range.
   */
  private async totalsWithRollup(
    filter: CallFilter & { from: Date; to: Date },
    plan: RollupPlan,
    modelRows: readonly Row[],
    sessions: number | null,
  ): Promise<Row> {
    const rows: Row[] = modelRows.map(({ model: _model, provider: _provider, ...sums }) => sums);
    for (const [from, to] of plan.edges)
      rows.push(...(await this.callTotals({ ...filter, from: new Date(from), to: new Date(to) }, false)));
    if (sessions !== null) return { ...addRows(rows, [])[0], sessions };
    const where = filterWhere(filter);
    const [counted] = await this.sql().all<Row>(
      `SELECT COUNT(DISTINCT session_id) AS sessions FROM calls WHERE ${where.conditions.join(' AND ')}`,
      where.params,
    );
    return { ...addRows(rows, [])[0], sessions: counted?.sessions ?? 0 };
  }

  /** Sum the series: the hours inside one bucket from the rollup, every other part of the range from `calls`. */
  private async groupsWithRollup(
    filter: CallFilter & { from: Date; to: Date },
    plan: RollupPlan,
    bucketMs: number,
    groupBy: CallGrouping,
  ): Promise<Row[]> {
    // A SELECT per bucket groups by the group key alone, which sorts less than grouping by bucket too.
    const rollupParts: [number, readonly [number, number]][] = [
      ...splitByBucket(plan.seriesHours, filter.from.getTime(), bucketMs),
      ...plan.splitHours.map(({ bucket, hour }): [number, readonly [number, number]] => [bucket, hour]),
    ];
    const callParts = [
      ...plan.seriesFromCalls.map((range) => ({ range, subtractFrom: null })),
      ...plan.splitHours.map(({ bucket, smaller }) => ({ range: smaller, subtractFrom: bucket })),
    ];
    const [rollupRows, callRows] = await Promise.all([
      readParts(this.sql(), rollupParts, ([bucket, hours]) =>
        rollupSumsSql(
          rollupWhere(filter, [hours])!,
          { columns: ['CAST(? AS INTEGER)', rollupGroupColumn(groupBy)], params: [bucket] },
          'series',
        ),
      ),
      readParts(this.sql(), callParts, ({ range: [from, to], subtractFrom }) =>
        callGroupsSql({ ...filter, from: new Date(from), to: new Date(to) }, bucketMs, groupBy, filter.from, subtractFrom),
      ),
    ]);
    const rows: Row[] = rollupRows.map(({ key_0, key_1, ...sums }) => ({ bucket: key_0, group_key: key_1, ...sums }));
    for (const { subtract_from, ...row } of callRows) {
      rows.push(row);
      // The smaller side of a split hour also leaves the bucket that took the whole hour.
      if (subtract_from != null) rows.push(negatedSums({ ...row, bucket: subtract_from }, ['bucket', 'group_key']));
    }
    // A group that had calls only on the smaller side of a split hour adds up to no call there.
    return addRows(
      rows.map((row) => ({ ...row, bucket: Number(row.bucket) })),
      ['bucket', 'group_key'],
    ).filter((row) => Number(row.calls) !== 0);
  }

  /**
   * Rank the top models from the rollup's rows per model of the whole hours, `modelRows`, and the edges'
   * calls, in the order `topModels` uses.
   */
  private async topModelsWithRollup(
    filter: CallFilter & { from: Date; to: Date },
    plan: RollupPlan,
    modelRows: readonly Row[],
    top: number,
  ): Promise<ModelSummary[]> {
    const rows: Row[] = [...modelRows];
    for (const [from, to] of plan.edges) {
      const where = filterWhere({ ...filter, from: new Date(from), to: new Date(to) });
      rows.push(
        ...(await this.sql().all<Row>(
          `SELECT ${MODEL} AS model, provider, ${SUMS}, SUM(COALESCE(cost_usd, 0)) AS cost_total
           FROM calls WHERE ${where.conditions.join(' AND ')} GROUP BY 1, 2`,
          where.params,
        )),
      );
    }
    const byCost = addRows(rows, ['model', 'provider']).sort(
      (a, b) =>
        roundUsd(Number(b.cost_total ?? 0)) - roundUsd(Number(a.cost_total ?? 0)) ||
        Number(b.calls ?? 0) - Number(a.calls ?? 0) ||
        compareNullableText(optionalText(a.model), optionalText(b.model)),
    );
    return byCost.slice(0, top).map((row) => ({ model: optionalText(row.model), provider: String(row.provider), sums: readSums(row) }));
  }

  async listSessions(filter: CallFilter, page: PageRequest): Promise<{ sessions: SessionSummary[]; nextCursor: string | null }> {
    checkLimit(page.limit);
    const plan = isWorkspaceRange(filter) ? planRollup(filter.from.getTime(), filter.to.getTime(), HOUR_MS) : null;
    if (plan !== null) {
      const { rows } = await readSessionSums(this.sql(), filter.workspaceId, plan, {
        order: 'recent',
        limit: page.limit + 1,
        ...(page.cursor === undefined ? {} : { after: parseSessionCursor(page.cursor) }),
      });
      return this.toSessionPage(filter, rows, page.limit);
    }

    const where = filterWhere(filter);
    where.conditions.push('session_id IS NOT NULL');
    let having = '';
    const havingParams: SqlParam[] = [];
    if (page.cursor !== undefined) {
      const [lastMs, sessionId] = parseSessionCursor(page.cursor);
      having = 'HAVING MAX(started_at_ms) < ? OR (MAX(started_at_ms) = ? AND session_id < ?)';
      havingParams.push(lastMs, lastMs, sessionId);
    }
    const rows = await this.sql().all<Row>(
      `SELECT session_id, MIN(started_at_ms) AS first_ms, MAX(started_at_ms) AS last_ms, MAX(started_at_ms + total_ms) AS end_ms, ${SUMS}
       FROM calls WHERE ${where.conditions.join(' AND ')} GROUP BY session_id ${having}
       ORDER BY last_ms DESC, session_id DESC LIMIT ?`,
      [...where.params, ...havingParams, page.limit + 1],
    );
    return this.toSessionPage(filter, rows, page.limit);
  }

  /** Build a page of the sessions list from up to `limit + 1` grouped session rows, newest last call first. */
  private async toSessionPage(
    filter: CallFilter,
    rows: Row[],
    limit: number,
  ): Promise<{ sessions: SessionSummary[]; nextCursor: string | null }> {
    const pageRows = rows.slice(0, limit);
    const sessions = await this.describeSessions(filter, pageRows);
    const last = pageRows.at(-1);
    const nextCursor = rows.length > limit && last ? encodeCursor([Number(last.last_ms), String(last.session_id)]) : null;
    return { sessions, nextCursor };
  }

  async getSession(workspaceId: string, sessionId: string): Promise<SessionSummary | null> {
    const filter: CallFilter = { workspaceId, sessionIds: [sessionId] };
    const where = filterWhere(filter);
    const rows = await this.sql().all<Row>(
      `SELECT session_id, MIN(started_at_ms) AS first_ms, MAX(started_at_ms) AS last_ms, MAX(started_at_ms + total_ms) AS end_ms, ${SUMS}
       FROM calls WHERE ${where.conditions.join(' AND ')} GROUP BY session_id`,
      where.params,
    );
    const [session] = await this.describeSessions(filter, rows);
    return session ?? null;
  }

  async callFacets(filter: CallFilter, limit: number): Promise<CallFacets> {
    checkLimit(limit);
    const plan = isWorkspaceRange(filter) ? planRollup(filter.from.getTime(), filter.to.getTime(), HOUR_MS) : null;
    if (plan !== null) {
      const workspaceId = filter.workspaceId;
      return {
        tools: await readFacet(this.sql(), workspaceId, plan, 'tools', limit),
        models: await readFacet(this.sql(), workspaceId, plan, 'models', limit),
        providers: await readFacet(this.sql(), workspaceId, plan, 'providers', limit),
        statuses: await readFacet(this.sql(), workspaceId, plan, 'statuses', limit),
        devices: await readFacet(this.sql(), workspaceId, plan, 'devices', limit),
      };
    }
    const facet = async (expression: string): Promise<FacetValue[]> => {
      const where = filterWhere(filter);
      where.conditions.push(`${expression} IS NOT NULL`);
      const rows = await this.sql().all<Row>(
        `SELECT ${expression} AS value, COUNT(*) AS calls FROM calls WHERE ${where.conditions.join(' AND ')}
         GROUP BY 1 ORDER BY 2 DESC, 1 LIMIT ?`,
        [...where.params, limit],
      );
      return rows.map((row) => ({ value: String(row.value), calls: Number(row.calls) }));
    };
    return {
      tools: await facet('tool'),
      models: await facet(MODEL),
      providers: await facet('provider'),
      statuses: await facet('status'),
      devices: await facet('device_id'),
    };
  }

  async deviceCallStats(deviceIds: readonly string[], since: Date): Promise<DeviceCallStats[]> {
    if (deviceIds.length === 0) return [];
    // Grouped over `calls_by_device` (device_id, started_at_ms), which contains every column read here.
    const rows = await this.sql().all<Row>(
      `SELECT device_id, COUNT(*) AS calls, SUM(CASE WHEN started_at_ms >= ? THEN 1 ELSE 0 END) AS calls_since, MAX(started_at_ms) AS last_ms
       FROM calls WHERE device_id IN (${placeholders(deviceIds)}) GROUP BY device_id`,
      [since.getTime(), ...deviceIds],
    );
    const found = new Map(rows.map((row) => [String(row.device_id), row]));
    return deviceIds.map((deviceId) => {
      const row = found.get(deviceId);
      return {
        deviceId,
        calls: Number(row?.calls ?? 0),
        callsSince: Number(row?.calls_since ?? 0),
        lastCallAt: row?.last_ms == null ? null : new Date(Number(row.last_ms)).toISOString(),
      };
    });
  }

  async latestRateLimits(workspaceId: string): Promise<RateLimitSnapshot[]> {
    const groups = await this.sql().all<Row>(
      `SELECT device_id, route, tool, MAX(started_at_ms) AS latest FROM call_rate_limits
       WHERE workspace_id = ? AND device_id IS NOT NULL GROUP BY device_id, route, tool ORDER BY device_id, route, tool`,
      [workspaceId],
    );
    return this.rateLimitSnapshots(workspaceId, groups);
  }

  async listRateLimitsPage(workspaceId: string, page: PageRequest): Promise<ListPage<RateLimitSnapshot>> {
    const query = listPageQuery(RATE_LIMIT_ORDER, page);
    const groups = await this.sql().all<Row>(
      `SELECT device_id, route, tool, MAX(started_at_ms) AS latest FROM call_rate_limits
       WHERE workspace_id = ? AND device_id IS NOT NULL${query.after} GROUP BY device_id, route, tool ORDER BY ${query.orderBy} LIMIT ?`,
      [workspaceId, ...query.params, query.limit],
    );
    const listed = toListPage(groups, page, RATE_LIMIT_ORDER, (group) => group);
    return { items: await this.rateLimitSnapshots(workspaceId, listed.items), nextCursor: listed.nextCursor };
  }

  /** Read the newest headers of each (device, route, tool) group, in the order of `groups`. */
  private async rateLimitSnapshots(workspaceId: string, groups: readonly Row[]): Promise<RateLimitSnapshot[]> {
    const snapshots: RateLimitSnapshot[] = [];
    for (const group of groups) {
      // Two calls of one group can start in the same ms; the later stored one wins.
      const [row] = await this.sql().all<Row>(
        `SELECT call_id, device_id, route, tool, provider, started_at_ms, headers FROM call_rate_limits
         WHERE workspace_id = ? AND device_id = ? AND route = ? AND tool = ? AND started_at_ms = ? ORDER BY call_id DESC LIMIT 1`,
        [workspaceId, String(group.device_id), String(group.route), String(group.tool), Number(group.latest)],
      );
      if (!row) continue;
      snapshots.push({
        deviceId: String(row.device_id),
        route: String(row.route),
        tool: String(row.tool),
        provider: String(row.provider),
        callId: String(row.call_id),
        observedAt: new Date(Number(row.started_at_ms)).toISOString(),
        headers: JSON.parse(String(row.headers)) as Record<string, string>,
      });
    }
    return snapshots;
  }

  async hasPromptText(workspaceId: string): Promise<boolean> {
    const rows = await this.sql().all<Row>(
      'SELECT 1 AS found FROM call_prompts p JOIN calls c ON c.id = p.call_id WHERE c.workspace_id = ? LIMIT 1',
      [workspaceId],
    );
    return rows.length > 0;
  }

  async listCustomPrices(workspaceId: string): Promise<StoredCustomPrice[]> {
    const rows = await this.sql().all<Row>(
      `SELECT ${PRICE_COLUMNS} FROM custom_prices WHERE workspace_id = ? ORDER BY effective_from_ms DESC, created_at DESC, id`,
      [workspaceId],
    );
    return rows.map(toCustomPrice);
  }

  async listCustomPricesPage(workspaceId: string, page: PageRequest): Promise<ListPage<StoredCustomPrice>> {
    const query = listPageQuery(PRICE_ORDER, page);
    const rows = await this.sql().all<Row>(
      `SELECT ${PRICE_COLUMNS}, effective_from_ms FROM custom_prices WHERE workspace_id = ?${query.after} ORDER BY ${query.orderBy} LIMIT ?`,
      [workspaceId, ...query.params, query.limit],
    );
    return toListPage(rows, page, PRICE_ORDER, toCustomPrice);
  }

  async listAllCustomPrices(): Promise<StoredCustomPrice[]> {
    const rows = await this.sql().all<Row>(
      `SELECT ${PRICE_COLUMNS} FROM custom_prices ORDER BY effective_from_ms DESC, created_at DESC, id`,
      [],
    );
    return rows.map(toCustomPrice);
  }

  async createCustomPrice(input: NewCustomPrice): Promise<StoredCustomPrice> {
    const effectiveFromMs = Date.parse(input.effectiveFrom);
    if (Number.isNaN(effectiveFromMs)) {
      throw new TokenwiseError('invalid_argument', `invalid effective_from "${input.effectiveFrom}": expected an ISO 8601 time`);
    }
    const price: StoredCustomPrice = {
      ...input,
      effectiveFrom: new Date(effectiveFromMs).toISOString(),
      id: randomUUID(),
      createdAt: this.now(),
    };
    await this.sql().run(`INSERT INTO custom_prices (${PRICE_COLUMNS}, effective_from_ms) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`, [
      price.id,
      price.workspaceId,
      price.model,
      price.provider,
      price.effectiveFrom,
      price.input_mtok,
      price.output_mtok,
      price.cache_read_mtok,
      price.cache_write_mtok,
      price.cache_write_1h_mtok,
      price.createdAt,
      price.createdBy,
      effectiveFromMs,
    ]);
    return price;
  }

  async deleteCustomPrice(workspaceId: string, id: string): Promise<boolean> {
    return (await this.sql().run('DELETE FROM custom_prices WHERE workspace_id = ? AND id = ?', [workspaceId, id])) > 0;
  }

  async updateCallCosts(updates: readonly CallCostUpdate[]): Promise<number> {
    let changed = 0;
    for (let start = 0; start < updates.length; start += COST_UPDATES_PER_TRANSACTION) {
      // Each call's old cost leaves the budget spend counters and its new cost enters them, in the same
      // transaction as the update.
      const steps: SqlStep[] = updates.slice(start, start + COST_UPDATES_PER_TRANSACTION).flatMap(({ id, cost }) => [
        oneCallSpendStep(id, -1),
        {
          sql: `UPDATE calls SET cost_usd = ?, cost_basis = ?, cost_price_key = ?, cost_breakdown = ?, price_data_version = ?, price_source = ?
                WHERE id = ?`,
          params: [
            cost.usd,
            cost.basis,
            cost.price_key,
            JSON.stringify(cost.breakdown),
            cost.price_data_version,
            cost.price_source ?? null,
            id,
          ],
        },
        oneCallSpendStep(id, 1),
      ]);
      // The hours of the re-priced calls are summed again, so the rollup keeps equal to the calls.
      const ids = updates.slice(start, start + COST_UPDATES_PER_TRANSACTION).map(({ id }) => id);
      const rollupSteps = recomputeRollupsSteps({ sql: `id IN (${placeholders(ids)})`, params: ids });
      const changes = (await this.sql().transaction([...steps, ...rollupSteps]))?.slice(0, steps.length);
      // Every third step, from the second on, is an UPDATE of calls.
      changed += (changes ?? []).filter((_, index) => index % 3 === 1).reduce((sum, count) => sum + count, 0);
    }
    return changed;
  }

  /**
   * p50 and p95 of `column` per bucket, nearest rank (the value at rank ceil(p × n / 100)), over calls
   * with status `success` and a value. Window functions sort inside the database, so only two rows per
   * bucket come back.
   */
  private async percentiles(
    bucket: string,
    bucketParams: SqlParam[],
    column: 'total_ms' | 'ttft_ms',
    where: { conditions: string[]; params: SqlParam[] },
  ): Promise<Map<number, Percentiles>> {
    const rows = await this.sql().all<Row>(
      `SELECT bucket, value, rn, n FROM (
         SELECT bucket, value, ROW_NUMBER() OVER (PARTITION BY bucket ORDER BY value) AS rn, COUNT(*) OVER (PARTITION BY bucket) AS n
         FROM (SELECT ${bucket} AS bucket, ${column} AS value FROM calls
               WHERE ${where.conditions.join(' AND ')} AND status = 'success' AND ${column} IS NOT NULL) AS scoped
       ) AS ranked
       WHERE rn = (n * 50 + 99) / 100 OR rn = (n * 95 + 99) / 100`,
      [...bucketParams, ...where.params],
    );
    const result = new Map<number, Percentiles>();
    for (const row of rows) {
      const key = Number(row.bucket);
      const n = Number(row.n);
      const rank = Number(row.rn);
      const entry = result.get(key) ?? { p50: null, p95: null };
      if (rank === Math.ceil((n * 50) / 100)) entry.p50 = Number(row.value);
      if (rank === Math.ceil((n * 95) / 100)) entry.p95 = Number(row.value);
      result.set(key, entry);
    }
    return result;
  }

  private async topSessions(filter: CallFilter, top: number): Promise<SessionSummary[]> {
    const where = filterWhere(filter);
    where.conditions.push('session_id IS NOT NULL');
    const rows = await this.sql().all<Row>(
      `SELECT session_id, MIN(started_at_ms) AS first_ms, MAX(started_at_ms) AS last_ms, MAX(started_at_ms + total_ms) AS end_ms, ${SUMS}
       FROM calls WHERE ${where.conditions.join(' AND ')} GROUP BY session_id
       ORDER BY SUM(COALESCE(cost_usd, 0)) DESC, COUNT(*) DESC, session_id LIMIT ?`,
      [...where.params, top],
    );
    return this.describeSessions(filter, rows);
  }

  private async topModels(filter: CallFilter, top: number): Promise<ModelSummary[]> {
    const where = filterWhere(filter);
    const rows = await this.sql().all<Row>(
      `SELECT ${MODEL} AS model, provider, ${SUMS} FROM calls WHERE ${where.conditions.join(' AND ')}
       GROUP BY 1, 2 ORDER BY SUM(COALESCE(cost_usd, 0)) DESC, COUNT(*) DESC, 1 LIMIT ?`,
      [...where.params, top],
    );
    return rows.map((row) => ({ model: optionalText(row.model), provider: String(row.provider), sums: readSums(row) }));
  }

  /** Build the summaries of grouped session rows, adding the tools, models and devices each used (within `filter`). */
  private async describeSessions(filter: CallFilter, rows: Row[]): Promise<SessionSummary[]> {
    if (rows.length === 0) return [];
    const sessionIds = rows.map((row) => String(row.session_id));
    const where = filterWhere({ ...filter, sessionIds });
    const details = await this.sql().all<Row>(
      `SELECT DISTINCT session_id, tool, ${MODEL} AS model, device_id FROM calls WHERE ${where.conditions.join(' AND ')}`,
      where.params,
    );
    const used = new Map(sessionIds.map((id) => [id, { tools: new Set<string>(), models: new Set<string>(), devices: new Set<string>() }]));
    for (const detail of details) {
      const entry = used.get(String(detail.session_id));
      if (!entry) continue;
      entry.tools.add(String(detail.tool));
      if (detail.model != null) entry.models.add(String(detail.model));
      if (detail.device_id != null) entry.devices.add(String(detail.device_id));
    }

    return rows.map((row) => {
      const sessionId = String(row.session_id);
      const entry = used.get(sessionId)!;
      const firstMs = Number(row.first_ms);
      return {
        sessionId,
        tools: [...entry.tools].sort(),
        models: [...entry.models].sort(),
        deviceIds: [...entry.devices].sort(),
        firstCallAt: new Date(firstMs).toISOString(),
        lastCallAt: new Date(Number(row.last_ms)).toISOString(),
        durationMs: Math.max(0, Math.round(Number(row.end_ms) - firstMs)),
        sums: readSums(row),
      };
    });
  }
}

/** Return `row` with every field but `keyFields` negated, to take its sums off a total. */
function negatedSums(row: Row, keyFields: readonly string[]): Row {
  return Object.fromEntries(Object.entries(row).map(([field, value]) => [field, keyFields.includes(field) ? value : -Number(value ?? 0)]));
}

/**
 * Build the SELECT of the sums of `filter`'s calls per bucket of `bucketMs` from `bucketFrom` and group key.
 * With `subtractFrom` (a bucket or null), each row also carries it as `subtract_from`.
 */
function callGroupsSql(
  filter: CallFilter,
  bucketMs: number,
  groupBy: CallGrouping,
  bucketFrom: Date,
  subtractFrom?: number | null,
): { sql: string; params: SqlParam[] } {
  const where = filterWhere(filter);
  const subtract = subtractFrom === undefined ? '' : 'CAST(? AS INTEGER) AS subtract_from, ';
  return {
    sql: `SELECT ${subtract}CAST((started_at_ms - ?) / ? AS INTEGER) AS bucket, ${GROUP_COLUMNS[groupBy]} AS group_key, ${SUMS}
      FROM calls WHERE ${where.conditions.join(' AND ')} GROUP BY ${subtract === '' ? '1, 2' : '2, 3'}`,
    params: [...(subtractFrom === undefined ? [] : [subtractFrom]), bucketFrom.getTime(), bucketMs, ...where.params],
  };
}

/** Build the WHERE conditions of a filter with `?` placeholders. The workspace condition is always the first. */
export function filterWhere(filter: CallFilter): { conditions: string[]; params: SqlParam[] } {
  const conditions = ['workspace_id = ?'];
  const params: SqlParam[] = [filter.workspaceId];
  if (filter.from !== undefined) {
    conditions.push('started_at_ms >= ?');
    params.push(filter.from.getTime());
  }
  if (filter.to !== undefined) {
    conditions.push('started_at_ms < ?');
    params.push(filter.to.getTime());
  }
  const lists: [string, readonly string[] | undefined][] = [
    ['tool', filter.tools],
    [MODEL, filter.models],
    ['provider', filter.providers],
    ['route', filter.routes],
    ['device_id', filter.deviceIds],
    ['status', filter.statuses],
    ['session_id', filter.sessionIds],
  ];
  for (const [column, values] of lists) {
    if (values === undefined) continue;
    if (values.length === 0) {
      conditions.push('1 = 0');
      continue;
    }
    conditions.push(`${column} IN (${placeholders(values)})`);
    params.push(...values);
  }
  if (filter.promptText !== undefined && filter.promptText !== '') {
    conditions.push("EXISTS (SELECT 1 FROM call_prompts p WHERE p.call_id = calls.id AND p.text LIKE ? ESCAPE '\\')");
    params.push(`%${escapeLike(filter.promptText.toLowerCase())}%`);
  }
  return { conditions, params };
}

/** Order text in code point order, with null last. */
function compareNullableText(a: string | null, b: string | null): number {
  if (a === b) return 0;
  if (a === null) return 1;
  if (b === null) return -1;
  return a < b ? -1 : 1;
}

function escapeLike(text: string): string {
  return text.replace(/[\\%_]/g, (character) => `\\${character}`);
}

function placeholders(values: readonly unknown[]): string {
  return values.map(() => '?').join(', ');
}

/** Validate the store option `exactPercentileLimit`, defaulting to `EXACT_PERCENTILE_LIMIT`. */
export function checkExactPercentileLimit(limit: number | undefined): number {
  if (limit === undefined) return EXACT_PERCENTILE_LIMIT;
  if (!Number.isSafeInteger(limit) || limit < 0) {
    throw new TokenwiseError('invalid_argument', `invalid exactPercentileLimit ${limit}: expected a whole number of calls, 0 or more`);
  }
  return limit;
}

function checkLimit(limit: number): void {
  if (!Number.isInteger(limit) || limit < 1) {
    throw new TokenwiseError('invalid_argument', `invalid limit ${limit}: expected a whole number of at least 1`);
  }
}

function toPage(rows: Row[], limit: number): CallPage {
  const calls = rows.map(toListedCall);
  const last = rows.at(-1);
  const nextCursor = rows.length === limit && last ? encodeCursor([Number(last.started_at_ms), Number(last.seq)]) : null;
  return { calls, nextCursor };
}

function toListedCall(row: Row): ListedCall {
  const { seq, rate_limits_json, ...columns } = row;
  for (const column of booleanCallColumns) columns[column] = readBoolean(columns[column]);
  return { cursor: String(seq), record: fromCallRow(columns as unknown as CallRow, optionalText(rate_limits_json)) };
}

function readSums(row: Row): CallSums {
  return {
    calls: Number(row.calls ?? 0),
    errors: Number(row.errors ?? 0),
    apiUsd: roundUsd(Number(row.api_usd ?? 0)),
    apiEquivalentUsd: roundUsd(Number(row.api_equivalent_usd ?? 0)),
    inputTokens: Number(row.input_tokens ?? 0),
    cacheReadTokens: Number(row.cache_read_tokens ?? 0),
    cacheWriteTokens: Number(row.cache_write_tokens ?? 0),
    outputTokens: Number(row.output_tokens ?? 0),
  };
}

function readTotals(row: Row): CallTotals {
  return {
    ...readSums(row),
    uncachedInputTokens: Number(row.uncached_input_tokens ?? 0),
    reasoningTokens: Number(row.reasoning_tokens ?? 0),
    sessions: Number(row.sessions ?? 0),
    unpricedCalls: Number(row.unpriced_calls ?? 0),
    unknownCostCalls: Number(row.unknown_cost_calls ?? 0),
    cacheRatioReadTokens: Number(row.ratio_read ?? 0),
    cacheRatioInputTokens: Number(row.ratio_input ?? 0),
  };
}

/**
 * Sums of floating-point USD differ in the last bits between databases; 9 decimals is the record's own
 * precision. A sum that a subtraction left a hair below 0 would round to -0, so it becomes 0.
 */
function roundUsd(usd: number): number {
  return Math.round(usd * 1e9) / 1e9 || 0;
}

function mergeBucketLatency(total: Map<number, Percentiles>, ttft: Map<number, Percentiles>): BucketLatency[] {
  const buckets = [...new Set([...total.keys(), ...ttft.keys()])].sort((a, b) => a - b);
  return buckets.map((bucket) => ({
    bucket,
    totalMs: total.get(bucket) ?? { p50: null, p95: null },
    ttftMs: ttft.get(bucket) ?? { p50: null, p95: null },
  }));
}

/** Cursors are base64url JSON arrays, opaque to callers. */
function encodeCursor(values: (string | number)[]): string {
  return Buffer.from(JSON.stringify(values)).toString('base64url');
}

function decodeCursor(cursor: string): unknown {
  try {
    return JSON.parse(Buffer.from(cursor, 'base64url').toString('utf8'));
  } catch {
    return null;
  }
}

function parseCallCursor(cursor: string): [number, number] {
  const value = decodeCursor(cursor);
  if (Array.isArray(value) && value.length === 2 && value.every((part) => Number.isSafeInteger(part) && part >= 0)) {
    return value as [number, number];
  }
  throw invalidCursor(cursor);
}

function parseSessionCursor(cursor: string): [number, string] {
  const value = decodeCursor(cursor);
  if (Array.isArray(value) && value.length === 2 && Number.isSafeInteger(value[0]) && typeof value[1] === 'string') {
    return value as [number, string];
  }
  throw invalidCursor(cursor);
}

function invalidCursor(cursor: string): TokenwiseError {
  return new TokenwiseError(
    'invalid_argument',
    `invalid cursor "${cursor.slice(0, 80)}": pass back the next_cursor of the previous page, with the same filters`,
  );
}

const PRICE_COLUMNS =
  'id, workspace_id, model, provider, effective_from, input_mtok, output_mtok, cache_read_mtok, cache_write_mtok, cache_write_1h_mtok, created_at, created_by';

function toCustomPrice(row: Row): StoredCustomPrice {
  return {
    id: String(row.id),
    workspaceId: String(row.workspace_id),
    model: String(row.model),
    provider: optionalText(row.provider),
    effectiveFrom: String(row.effective_from),
    input_mtok: Number(row.input_mtok),
    output_mtok: Number(row.output_mtok),
    cache_read_mtok: optionalNumber(row.cache_read_mtok),
    cache_write_mtok: optionalNumber(row.cache_write_mtok),
    cache_write_1h_mtok: optionalNumber(row.cache_write_1h_mtok),
    createdAt: String(row.created_at),
    createdBy: optionalText(row.created_by),
  };
}

function optionalText(value: unknown): string | null {
  return value === null || value === undefined ? null : String(value);
}

function optionalNumber(value: unknown): number | null {
  return value === null || value === undefined ? null : Number(value);
}
