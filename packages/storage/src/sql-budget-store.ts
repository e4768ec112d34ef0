import { randomUUID } from 'node:crypto';
import { TokenwiseError } from '@tokenwise/core';
import {
  type AlertChannel,
  type AlertDelivery,
  type AlertDeliveryState,
  type Budget,
  type BudgetAction,
  type BudgetAlert,
  type BudgetAlertLevel,
  type BudgetChanges,
  type BudgetCostKind,
  type BudgetLease,
  type BudgetLeaseRequest,
  type BudgetPeriod,
  type BudgetScope,
  type BudgetStore,
  type BudgetUsage,
  budgetPeriodBounds,
  checkBudgetNumbers,
  type NewBudget,
  type NewBudgetAlert,
} from './budget-store.js';
import type { ListPage, PageRequest } from './call-queries.js';
import { type ListOrder, listPageQuery, toListPage } from './list-page.js';
import type { SqlParam, SqlRunner, SqlStep } from './sql-runner.js';

type Row = Record<string, unknown>;

const DAY_MS = 86_400_000;
/** How far back `maxCallUsd` looks, in days: a month, so a new period starts with a known call size. */
const MAX_CALL_LOOKBACK_DAYS = 31;

const BUDGET_COLUMNS =
  'id, workspace_id, name, scope, scope_id, cost_kind, period, amount_usd, alert_threshold, action, webhook_url, email_to, created_at, created_by, updated_at';
const ALERT_COLUMNS = `id, workspace_id, budget_id, budget_name, period_start_ms, level, spent_usd, amount_usd, message, created_at, email_to,
  webhook_state, webhook_attempts, webhook_next_at_ms, webhook_error, email_state, email_attempts, email_next_at_ms, email_error`;

const BUDGET_ORDER: ListOrder = {
  list: 'budgets',
  columns: [
    { sql: 'b.created_at', field: 'created_at', type: 'text' },
    { sql: 'b.id', field: 'id', type: 'text' },
  ],
};
const ALERT_ORDER: ListOrder = {
  list: 'budget-alerts',
  columns: [
    { sql: 'created_at', field: 'created_at', type: 'text', descending: true },
    { sql: 'id', field: 'id', type: 'text', descending: true },
  ],
};

/** Build the sum over the spend counters of a budget row `b` from the day `fromExpression` (an SQL placeholder or expression, in ms) on. */
function spendOf(fromExpression: string, aggregate = 'SUM(s.usd)'): string {
  return `COALESCE((SELECT ${aggregate} FROM budget_spend s
    WHERE s.workspace_id = b.workspace_id AND s.scope = b.scope AND s.scope_id = b.scope_id AND s.cost_kind = b.cost_kind
      AND s.day_ms >= ${fromExpression}), 0)`;
}

/**
 * Budgets, leases and alerts in SQL that SQLite and PostgreSQL both run, on the runner and clock of the
 * store that holds it (`store.budgets`). Every budget read is scoped by its workspace. Placeholders
 * whose type PostgreSQL cannot infer from context are cast explicitly.
 */
export class SqlBudgetStore implements BudgetStore {
  /** `sql` fails with `store_failed` once the store is closed; `now` is the store's clock as ISO 8601. */
  constructor(
    private readonly sql: () => SqlRunner,
    private readonly now: () => string,
  ) {}

  async createBudget(input: NewBudget): Promise<Budget> {
    checkBudgetNumbers(input.amountUsd, input.alertThreshold);
    const now = this.now();
    const budget: Budget = { ...input, emails: [...input.emails], id: randomUUID(), createdAt: now, updatedAt: now };
    await this.sql().run(`INSERT INTO budgets (${BUDGET_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`, [
      budget.id,
      budget.workspaceId,
      budget.name,
      budget.scope,
      budget.scopeId ?? '',
      budget.costKind,
      budget.period,
      budget.amountUsd,
      budget.alertThreshold,
      budget.action,
      budget.webhookUrl,
      JSON.stringify(budget.emails),
      budget.createdAt,
      budget.createdBy,
      budget.updatedAt,
    ]);
    return budget;
  }

  async getBudget(workspaceId: string, id: string): Promise<Budget | null> {
    const [row] = await this.sql().all<Row>(`SELECT ${BUDGET_COLUMNS} FROM budgets b WHERE workspace_id = ? AND id = ?`, [workspaceId, id]);
    return row ? toBudget(row) : null;
  }

  async listBudgets(workspaceId: string): Promise<Budget[]> {
    const rows = await this.sql().all<Row>(`SELECT ${BUDGET_COLUMNS} FROM budgets b WHERE workspace_id = ? ORDER BY created_at, id`, [
      workspaceId,
    ]);
    return rows.map(toBudget);
  }

  async updateBudget(workspaceId: string, id: string, changes: BudgetChanges): Promise<Budget | null> {
    checkBudgetNumbers(changes.amountUsd, changes.alertThreshold);
    const assignments = ['updated_at = ?'];
    const params: SqlParam[] = [this.now()];
    const assign = (column: string, value: SqlParam | undefined) => {
      if (value === undefined) return;
      assignments.push(`${column} = ?`);
      params.push(value);
    };
    assign('name', changes.name);
    assign('cost_kind', changes.costKind);
    assign('period', changes.period);
    assign('amount_usd', changes.amountUsd);
    assign('alert_threshold', changes.alertThreshold);
    assign('action', changes.action);
    assign('webhook_url', changes.webhookUrl);
    assign('email_to', changes.emails === undefined ? undefined : JSON.stringify(changes.emails));
    const changed = await this.sql().run(`UPDATE budgets SET ${assignments.join(', ')} WHERE workspace_id = ? AND id = ?`, [
      ...params,
      workspaceId,
      id,
    ]);
    return changed > 0 ? this.getBudget(workspaceId, id) : null;
  }

  async deleteBudget(workspaceId: string, id: string): Promise<boolean> {
    const owned = 'budget_id IN (SELECT id FROM budgets WHERE workspace_id = ? AND id = ?)';
    const changes = await this.sql().transaction([
      { sql: `DELETE FROM budget_leases WHERE ${owned}`, params: [workspaceId, id] },
      { sql: `DELETE FROM budget_alerts WHERE ${owned}`, params: [workspaceId, id] },
      { sql: 'DELETE FROM budgets WHERE workspace_id = ? AND id = ?', params: [workspaceId, id], requireChange: true },
    ]);
    return changes !== null;
  }

  async listBudgetUsage(query: { workspaceId?: string; now: Date }): Promise<BudgetUsage[]> {
    const usage = budgetUsageQuery(query.now);
    const where = query.workspaceId === undefined ? '' : 'WHERE b.workspace_id = ?';
    const rows = await this.sql().all<Row>(`${usage.select} ${where} ORDER BY b.created_at, b.id`, [
      ...usage.params,
      ...(query.workspaceId === undefined ? [] : [query.workspaceId]),
    ]);
    return rows.map((row) => toBudgetUsage(row, query.now));
  }

  async listBudgetUsagePage(query: { workspaceId: string; now: Date }, page: PageRequest): Promise<ListPage<BudgetUsage>> {
    const usage = budgetUsageQuery(query.now);
    const after = listPageQuery(BUDGET_ORDER, page);
    const rows = await this.sql().all<Row>(`${usage.select} WHERE b.workspace_id = ?${after.after} ORDER BY ${after.orderBy} LIMIT ?`, [
      ...usage.params,
      query.workspaceId,
      ...after.params,
      after.limit,
    ]);
    return toListPage(rows, page, BUDGET_ORDER, (row) => toBudgetUsage(row, query.now));
  }

  async acquireBudgetLease(request: BudgetLeaseRequest): Promise<BudgetLease | null> {
    if (!(request.floorUsd >= 0 && request.wantUsd >= request.floorUsd)) {
      throw new TokenwiseError(
        'invalid_argument',
        `invalid lease request: want ${request.wantUsd} must be at least floor ${request.floorUsd} >= 0`,
      );
    }
    const nowMs = request.now.getTime();
    const steps: SqlStep[] = [
      // A no-op update takes the budget row's lock until the end of the transaction: lease grants of one
      // budget run one after another, across processes, and each reads the leases granted before it.
      {
        sql: 'UPDATE budgets SET updated_at = updated_at WHERE id = ? AND period = ?',
        params: [request.budgetId, request.period],
        requireChange: true,
      },
      {
        sql: 'DELETE FROM budget_leases WHERE budget_id = ? AND (expires_at_ms <= ? OR period_start_ms < ?)',
        params: [request.budgetId, nowMs, request.periodStartMs],
      },
      {
        sql: `INSERT INTO budget_leases (budget_id, period_start_ms, holder_id, reserved_usd, expires_at_ms)
          SELECT room.id, CAST(? AS BIGINT), CAST(? AS TEXT),
            CASE WHEN room.available >= CAST(? AS DOUBLE PRECISION) THEN CAST(? AS DOUBLE PRECISION)
                 WHEN room.available >= CAST(? AS DOUBLE PRECISION) THEN room.available
                 ELSE CAST(? AS DOUBLE PRECISION) END,
            CAST(? AS BIGINT)
          FROM (
            SELECT b.id AS id, b.amount_usd - ${spendOf('CAST(? AS BIGINT)')}
              - COALESCE((SELECT SUM(l.reserved_usd) FROM budget_leases l
                  WHERE l.budget_id = b.id AND l.period_start_ms = ? AND l.holder_id <> ?), 0) AS available
            FROM budgets b WHERE b.id = ?
          ) AS room WHERE true
          ON CONFLICT (budget_id, period_start_ms, holder_id) DO UPDATE SET
            reserved_usd = excluded.reserved_usd, expires_at_ms = excluded.expires_at_ms`,
        params: [
          request.periodStartMs,
          request.holderId,
          request.wantUsd,
          request.wantUsd,
          request.floorUsd,
          request.floorUsd,
          request.expiresAtMs,
          request.periodStartMs,
          request.periodStartMs,
          request.holderId,
          request.budgetId,
        ],
      },
    ];
    if ((await this.sql().transaction(steps)) === null) return null;

    const [row] = await this.sql().all<Row>(
      `SELECT b.amount_usd, ${spendOf('CAST(? AS BIGINT)')} AS spent_usd,
         COALESCE((SELECT SUM(l.reserved_usd) FROM budget_leases l
           WHERE l.budget_id = b.id AND l.period_start_ms = ? AND l.holder_id <> ? AND l.expires_at_ms > ?), 0) AS others_usd,
         (SELECT l.reserved_usd FROM budget_leases l WHERE l.budget_id = b.id AND l.period_start_ms = ? AND l.holder_id = ?) AS reserved_usd
       FROM budgets b WHERE b.id = ?`,
      [request.periodStartMs, request.periodStartMs, request.holderId, nowMs, request.periodStartMs, request.holderId, request.budgetId],
    );
    if (!row || row.reserved_usd === null || row.reserved_usd === undefined) return null;
    return {
      reservedUsd: Number(row.reserved_usd),
      amountUsd: Number(row.amount_usd),
      spentUsd: roundUsd(Number(row.spent_usd)),
      othersReservedUsd: roundUsd(Number(row.others_usd)),
    };
  }

  async releaseBudgetLeases(holderId: string): Promise<void> {
    await this.sql().run('DELETE FROM budget_leases WHERE holder_id = ?', [holderId]);
  }

  async recordBudgetAlert(input: NewBudgetAlert): Promise<BudgetAlert | null> {
    const alert: BudgetAlert = { ...input, emails: [...input.emails], id: randomUUID(), createdAt: this.now() };
    const changed = await this.sql().run(
      `INSERT INTO budget_alerts (${ALERT_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
       ON CONFLICT (budget_id, period_start_ms, level) DO NOTHING`,
      [
        alert.id,
        alert.workspaceId,
        alert.budgetId,
        alert.budgetName,
        alert.periodStartMs,
        alert.level,
        alert.spentUsd,
        alert.amountUsd,
        alert.message,
        alert.createdAt,
        JSON.stringify(alert.emails),
        ...deliveryParams(alert.webhook),
        ...deliveryParams(alert.email),
      ],
    );
    return changed > 0 ? alert : null;
  }

  async listBudgetAlerts(workspaceId: string, limit: number): Promise<BudgetAlert[]> {
    checkLimit(limit);
    const rows = await this.sql().all<Row>(
      `SELECT ${ALERT_COLUMNS} FROM budget_alerts WHERE workspace_id = ? ORDER BY created_at DESC, id DESC LIMIT ?`,
      [workspaceId, limit],
    );
    return rows.map(toAlert);
  }

  async listBudgetAlertsPage(workspaceId: string, page: PageRequest): Promise<ListPage<BudgetAlert>> {
    const query = listPageQuery(ALERT_ORDER, page);
    const rows = await this.sql().all<Row>(
      `SELECT ${ALERT_COLUMNS} FROM budget_alerts WHERE workspace_id = ?${query.after} ORDER BY ${query.orderBy} LIMIT ?`,
      [workspaceId, ...query.params, query.limit],
    );
    return toListPage(rows, page, ALERT_ORDER, toAlert);
  }

  async listDueBudgetAlerts(now: Date, limit: number): Promise<BudgetAlert[]> {
    checkLimit(limit);
    const nowMs = now.getTime();
    const rows = await this.sql().all<Row>(
      `SELECT ${ALERT_COLUMNS} FROM budget_alerts
       WHERE (webhook_state = 'pending' AND webhook_next_at_ms <= ?) OR (email_state = 'pending' AND email_next_at_ms <= ?)
       ORDER BY created_at, id LIMIT ?`,
      [nowMs, nowMs, limit],
    );
    return rows.map(toAlert);
  }

  async updateBudgetAlertDelivery(id: string, channel: AlertChannel, delivery: AlertDelivery): Promise<void> {
    // The column names come from this fixed choice, never from input.
    const prefix = channel === 'webhook' ? 'webhook' : 'email';
    await this.sql().run(
      `UPDATE budget_alerts SET ${prefix}_state = ?, ${prefix}_attempts = ?, ${prefix}_next_at_ms = ?, ${prefix}_error = ? WHERE id = ?`,
      [...deliveryParams(delivery), id],
    );
  }
}

/**
 * Build the SELECT of budgets `b` with their spend in the period that contains `now` (`spent_usd`) and
 * the largest call of the last month (`max_call_usd`). It ends with its FROM clause, so the caller appends
 * WHERE and ORDER BY and passes their parameters after `params`.
 */
function budgetUsageQuery(now: Date): { select: string; params: SqlParam[] } {
  const starts = {
    day: budgetPeriodBounds('day', now).startMs,
    week: budgetPeriodBounds('week', now).startMs,
    month: budgetPeriodBounds('month', now).startMs,
  };
  const lookbackFrom = starts.day - MAX_CALL_LOOKBACK_DAYS * DAY_MS;
  const periodStart = "CASE b.period WHEN 'day' THEN CAST(? AS BIGINT) WHEN 'week' THEN CAST(? AS BIGINT) ELSE CAST(? AS BIGINT) END";
  return {
    select: `SELECT ${BUDGET_COLUMNS}, ${spendOf(periodStart)} AS spent_usd, ${spendOf('CAST(? AS BIGINT)', 'MAX(s.max_call_usd)')} AS max_call_usd
       FROM budgets b`,
    params: [starts.day, starts.week, starts.month, lookbackFrom],
  };
}

function toBudgetUsage(row: Row, now: Date): BudgetUsage {
  const budget = toBudget(row);
  const bounds = budgetPeriodBounds(budget.period, now);
  return {
    budget,
    periodStartMs: bounds.startMs,
    periodEndMs: bounds.endMs,
    spentUsd: roundUsd(Number(row.spent_usd ?? 0)),
    maxCallUsd: Math.max(0, Number(row.max_call_usd ?? 0)),
  };
}

function deliveryParams(delivery: AlertDelivery): SqlParam[] {
  return [delivery.state, delivery.attempts, delivery.nextAttemptAtMs, delivery.lastError];
}

function checkLimit(limit: number): void {
  if (!Number.isInteger(limit) || limit < 1) {
    throw new TokenwiseError('invalid_argument', `invalid limit ${limit}: expected a whole number of at least 1`);
  }
}

/** Sums of floating-point USD differ in the last bits between databases; 9 decimals is the record's own precision. */
function roundUsd(usd: number): number {
  return Math.round(usd * 1e9) / 1e9;
}

function optionalText(value: unknown): string | null {
  return value === null || value === undefined ? null : String(value);
}

function optionalNumber(value: unknown): number | null {
  return value === null || value === undefined ? null : Number(value);
}

function parseEmails(value: unknown): string[] {
  if (typeof value !== 'string' || value === '') return [];
  const parsed = JSON.parse(value) as unknown;
  return Array.isArray(parsed) ? parsed.map(String) : [];
}

function toBudget(row: Row): Budget {
  const scope = String(row.scope) as BudgetScope;
  return {
    id: String(row.id),
    workspaceId: String(row.workspace_id),
    name: String(row.name),
    scope,
    scopeId: scope === 'workspace' ? null : String(row.scope_id),
    costKind: String(row.cost_kind) as BudgetCostKind,
    period: String(row.period) as BudgetPeriod,
    amountUsd: Number(row.amount_usd),
    alertThreshold: optionalNumber(row.alert_threshold),
    action: String(row.action) as BudgetAction,
    webhookUrl: optionalText(row.webhook_url),
    emails: parseEmails(row.email_to),
    createdAt: String(row.created_at),
    createdBy: optionalText(row.created_by),
    updatedAt: String(row.updated_at),
  };
}

function toDelivery(row: Row, prefix: 'webhook' | 'email'): AlertDelivery {
  return {
    state: String(row[`${prefix}_state`]) as AlertDeliveryState,
    attempts: Number(row[`${prefix}_attempts`]),
    nextAttemptAtMs: optionalNumber(row[`${prefix}_next_at_ms`]),
    lastError: optionalText(row[`${prefix}_error`]),
  };
}

function toAlert(row: Row): BudgetAlert {
  return {
    id: String(row.id),
    workspaceId: String(row.workspace_id),
    budgetId: String(row.budget_id),
    budgetName: String(row.budget_name),
    periodStartMs: Number(row.period_start_ms),
    level: String(row.level) as BudgetAlertLevel,
    spentUsd: Number(row.spent_usd),
    amountUsd: Number(row.amount_usd),
    message: String(row.message),
    createdAt: String(row.created_at),
    emails: parseEmails(row.email_to),
    webhook: toDelivery(row, 'webhook'),
    email: toDelivery(row, 'email'),
  };
}
