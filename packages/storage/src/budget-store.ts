import { TokenwiseError } from '@tokenwise/core';
import type { ListPage, PageRequest } from './call-queries.js';

/** Whose calls a budget counts: the whole workspace, one device, or every device one person paired. */
export type BudgetScope = 'workspace' | 'device' | 'user';
export type BudgetPeriod = 'day' | 'week' | 'month';
/**
 * The cost a budget counts. `api` is real API spend (calls billed per token, cost basis `exact` or
 * `partial`); `api_equivalent` is subscription traffic priced at API rates. A budget never mixes the two.
 */
export type BudgetCostKind = 'api' | 'api_equivalent';
/** `alert` only notifies at the limit; `block` also makes the proxy reject further calls with 429. */
export type BudgetAction = 'alert' | 'block';

export const BUDGET_SCOPES: readonly BudgetScope[] = ['workspace', 'device', 'user'];
export const BUDGET_PERIODS: readonly BudgetPeriod[] = ['day', 'week', 'month'];
export const BUDGET_COST_KINDS: readonly BudgetCostKind[] = ['api', 'api_equivalent'];
export const BUDGET_ACTIONS: readonly BudgetAction[] = ['alert', 'block'];

export interface Budget {
  id: string;
  workspaceId: string;
  name: string;
  scope: BudgetScope;
  /** The device id or user id the budget is about; null for a workspace budget. */
  scopeId: string | null;
  costKind: BudgetCostKind;
  period: BudgetPeriod;
  amountUsd: number;
  /** Fraction of the amount (above 0, below 1) whose crossing sends the soft alert; null sends none. */
  alertThreshold: number | null;
  action: BudgetAction;
  /** Slack-compatible incoming webhook that receives the alerts; null for none. It is a secret. */
  webhookUrl: string | null;
  /** Addresses that receive the alerts by email; empty sends them to the workspace's owners. */
  emails: string[];
  createdAt: string;
  createdBy: string | null;
  updatedAt: string;
}

export type NewBudget = Omit<Budget, 'id' | 'createdAt' | 'updatedAt'>;

/** The scope of a budget never changes; make a new budget for another one. */
export type BudgetChanges = Partial<
  Pick<Budget, 'name' | 'costKind' | 'period' | 'amountUsd' | 'alertThreshold' | 'action' | 'webhookUrl' | 'emails'>
>;

/** A budget with what its scope spent in the current period, from the spend counters of stored calls. */
export interface BudgetUsage {
  budget: Budget;
  periodStartMs: number;
  periodEndMs: number;
  spentUsd: number;
  /** Maximum cost of one stored call of the scope in the last 31 days; 0 without such a call. */
  maxCallUsd: number;
}

/**
 * A proxy process's request for its share of a blocking budget: the USD it may spend before it requests
 * more. `floorUsd` is what the process has already spent or reserved without it reaching the spend
 * counters yet; the store always grants at least that, so other processes see it as taken.
 */
export interface BudgetLeaseRequest {
  budgetId: string;
  /** The period the lease is for; a budget whose period changed meanwhile grants nothing. */
  period: BudgetPeriod;
  periodStartMs: number;
  /** A process's own id, random per start. */
  holderId: string;
  wantUsd: number;
  floorUsd: number;
  /** When the store may hand the lease to others if the holder has not renewed it, in ms since the epoch. */
  expiresAtMs: number;
  now: Date;
}

export interface BudgetLease {
  /** Total this holder may have spent and reserved, `floorUsd` included. */
  reservedUsd: number;
  amountUsd: number;
  /** Spend counted for the period so far, from stored calls. */
  spentUsd: number;
  /** Sum of the other holders' unexpired leases. */
  othersReservedUsd: number;
}

export type BudgetAlertLevel = 'threshold' | 'limit';
export type AlertDeliveryState = 'none' | 'pending' | 'sent' | 'failed';

/** The state of one delivery channel (webhook or email) of an alert. */
export interface AlertDelivery {
  state: AlertDeliveryState;
  attempts: number;
  /** When the next attempt is due, in ms since the epoch; null unless pending. */
  nextAttemptAtMs: number | null;
  /** The last failure, without secrets (no URL, no credentials). */
  lastError: string | null;
}

/** One crossing of a budget's soft threshold or its limit in one period; recorded once across processes. */
export interface BudgetAlert {
  id: string;
  workspaceId: string;
  budgetId: string;
  budgetName: string;
  periodStartMs: number;
  level: BudgetAlertLevel;
  spentUsd: number;
  amountUsd: number;
  message: string;
  createdAt: string;
  /** Recipients chosen when the alert was made; empty when no email goes out. */
  emails: string[];
  webhook: AlertDelivery;
  email: AlertDelivery;
}

export type NewBudgetAlert = Omit<BudgetAlert, 'id' | 'createdAt'>;
export type AlertChannel = 'webhook' | 'email';

/**
 * Budgets, their spend counters, the leases proxy processes hold on blocking budgets, and the alerts.
 * The spend counters are kept by the store itself: every call stored through `insertCalls` adds its cost
 * in the same transaction, per UTC day, to its workspace, its device and its device's person. Deleting
 * calls leaves the counters as they are (the money was spent); re-pricing calls corrects them.
 */
export interface BudgetStore {
  createBudget(input: NewBudget): Promise<Budget>;
  getBudget(workspaceId: string, id: string): Promise<Budget | null>;
  listBudgets(workspaceId: string): Promise<Budget[]>;
  updateBudget(workspaceId: string, id: string, changes: BudgetChanges): Promise<Budget | null>;
  /** Deletes the budget with its leases and alerts. */
  deleteBudget(workspaceId: string, id: string): Promise<boolean>;
  /** Every budget (of one workspace, or of all) with its spend in the period that contains `now`. */
  listBudgetUsage(query: { workspaceId?: string; now: Date }): Promise<BudgetUsage[]>;
  /** One page of a workspace's budgets with their spend, oldest first (by creation, then id). */
  listBudgetUsagePage(query: { workspaceId: string; now: Date }, page: PageRequest): Promise<ListPage<BudgetUsage>>;

  /**
   * Grant a holder `min(wantUsd, amount - spent - others' leases)`, never less than `floorUsd`, in one
   * transaction that holds the budget's row lock, so two processes never both get the last dollar.
   * Expired leases are dropped first. Null when the budget is gone or its period changed.
   */
  acquireBudgetLease(request: BudgetLeaseRequest): Promise<BudgetLease | null>;
  /** Drops every lease of a holder, when its process stops. */
  releaseBudgetLeases(holderId: string): Promise<void>;

  /** Stores the alert unless its budget, period and level has one already; returns it, or null when it existed. */
  recordBudgetAlert(alert: NewBudgetAlert): Promise<BudgetAlert | null>;
  /** Alerts of a workspace, newest first. */
  listBudgetAlerts(workspaceId: string, limit: number): Promise<BudgetAlert[]>;
  /** One page of a workspace's alerts, newest first (by creation, then id, both descending). */
  listBudgetAlertsPage(workspaceId: string, page: PageRequest): Promise<ListPage<BudgetAlert>>;
  /** Alerts with a pending delivery due at `now`, oldest first. */
  listDueBudgetAlerts(now: Date, limit: number): Promise<BudgetAlert[]>;
  updateBudgetAlertDelivery(id: string, channel: AlertChannel, delivery: AlertDelivery): Promise<void>;
}

const DAY_MS = 86_400_000;

/**
 * Return the bounds of the `period` that contains `now`, in ms since the epoch, `[startMs, endMs)`. Periods follow
 * UTC: a day starts at 00:00 UTC, a week on Monday 00:00 UTC, a month on its first day 00:00 UTC.
 */
export function budgetPeriodBounds(period: BudgetPeriod, now: Date): { startMs: number; endMs: number } {
  const year = now.getUTCFullYear();
  const month = now.getUTCMonth();
  const dayStart = Date.UTC(year, month, now.getUTCDate());
  switch (period) {
    case 'day':
      return { startMs: dayStart, endMs: dayStart + DAY_MS };
    case 'week': {
      const daysSinceMonday = (now.getUTCDay() + 6) % 7;
      const startMs = dayStart - daysSinceMonday * DAY_MS;
      return { startMs, endMs: startMs + 7 * DAY_MS };
    }
    case 'month':
      return { startMs: Date.UTC(year, month, 1), endMs: Date.UTC(year, month + 1, 1) };
  }
}

/** Largest amount a budget accepts, in USD; a bigger one is more likely a typo than a plan. */
export const MAX_BUDGET_USD = 10_000_000;

/** Check the numbers of a budget; the API checks the rest (names, addresses, scope ids) with friendlier messages. */
export function checkBudgetNumbers(amountUsd: number | undefined, alertThreshold: number | null | undefined): void {
  if (amountUsd !== undefined && !(Number.isFinite(amountUsd) && amountUsd > 0 && amountUsd <= MAX_BUDGET_USD)) {
    throw new TokenwiseError('invalid_argument', `invalid budget amount ${amountUsd}: expected USD above 0 and at most ${MAX_BUDGET_USD}`);
  }
  if (alertThreshold !== undefined && alertThreshold !== null && !(alertThreshold > 0 && alertThreshold < 1)) {
    throw new TokenwiseError(
      'invalid_argument',
      `invalid alert threshold ${alertThreshold}: expected a fraction above 0 and below 1, e.g. 0.8, or null for no soft alert`,
    );
  }
}
