import type { IncomingMessage, ServerResponse } from 'node:http';
import { TokenwiseError } from '@tokenwise/core';
import {
  BUDGET_ACTIONS,
  BUDGET_COST_KINDS,
  BUDGET_PERIODS,
  BUDGET_SCOPES,
  type Budget,
  type BudgetAlert,
  type BudgetChanges,
  type BudgetUsage,
  budgetPeriodBounds,
  MAX_BUDGET_USD,
  type NewBudget,
  type Store,
} from '@tokenwise/storage';
import type { Logger } from 'pino';
import type { Caller, Principals, WorkspaceScope } from '../accounts/principal.js';
import { readFields } from '../accounts/request-body.js';
import { sendNoWorkspace } from '../api.js';
import { sendApiError, sendJson } from '../api-responses.js';
import { parseListPage } from '../list-page-params.js';
import { maskWebhookUrl, parseWebhookUrl } from './alert-webhook.js';

export interface BudgetApiOptions {
  store: Store;
  principals: Principals;
  logger: Logger;
  /** `--allow-private-webhooks`: accept webhook URLs on loopback and private networks. */
  allowPrivateWebhooks: boolean;
  /**
   * Called after a budget was created, changed or deleted, so that this process's proxy applies it to the
   * next call. Other proxy processes reload within their refresh interval.
   */
  onBudgetsChanged?: () => Promise<void>;
  clock?: () => Date;
}

interface Context {
  req: IncomingMessage;
  res: ServerResponse;
  url: URL;
  caller: Caller;
  scope: WorkspaceScope;
  params: string[];
}

type Handler = (context: Context) => Promise<void>;

const MAX_NAME_LENGTH = 100;
/** The fields of a budget in `POST /budgets` and `PATCH /budgets/{id}`. */
const BUDGET_FIELDS = [
  'name',
  'scope',
  'device_id',
  'user_id',
  'cost_kind',
  'period',
  'amount_usd',
  'alert_threshold',
  'action',
  'webhook_url',
  'emails',
];
const MAX_EMAILS = 20;
const DEFAULT_ALERT_THRESHOLD = 0.8;

const ROUTES: [method: string, pattern: RegExp, name: string][] = [
  ['GET', /^\/budgets$/, 'list'],
  ['POST', /^\/budgets$/, 'create'],
  ['GET', /^\/budgets\/([^/]+)$/, 'get'],
  ['PATCH', /^\/budgets\/([^/]+)$/, 'update'],
  ['DELETE', /^\/budgets\/([^/]+)$/, 'delete'],
  ['GET', /^\/budget-alerts$/, 'alerts'],
];

/**
 * Create the budget routes under `/api/v1`, every one acting in the caller's workspace:
 *
 *   GET    /budgets             budgets with their spend in the current period, oldest first, cursor-paginated
 *   POST   /budgets             {period, amount_usd, scope?, device_id?, user_id?, cost_kind?, action?,
 *                                alert_threshold?, name?, webhook_url?, emails?} (owner)
 *   GET    /budgets/{id}
 *   PATCH  /budgets/{id}        any of the fields above except the scope (owner)
 *   DELETE /budgets/{id}        (owner)
 *   GET    /budget-alerts       the workspace's alerts, newest first, with their delivery state, cursor-paginated
 *
 * A budget id of another workspace gets 404 like an unknown one. A webhook URL is never returned whole,
 * because its path is the secret that lets anyone post to the channel.
 */
export function createBudgetApi(options: BudgetApiOptions) {
  const { store, principals, logger } = options;
  const clock = options.clock ?? (() => new Date());

  const handlers: Record<string, Handler> = {
    list: listBudgets,
    create: createBudget,
    get: getBudget,
    update: updateBudget,
    delete: deleteBudget,
    alerts: listAlerts,
  };

  function requireOwner(context: Context, action: string): boolean {
    if (context.scope.role === 'owner') return true;
    sendApiError(context.res, 403, 'forbidden', `only owners of the workspace ${action}`);
    return false;
  }

  async function usageOf(workspaceId: string): Promise<BudgetUsage[]> {
    return store.budgets.listBudgetUsage({ workspaceId, now: clock() });
  }

  async function listBudgets(context: Context): Promise<void> {
    const page = await store.budgets.listBudgetUsagePage(
      { workspaceId: context.scope.workspace.id, now: clock() },
      parseListPage(context.url.searchParams),
    );
    sendJson(context.res, 200, { budgets: page.items.map(describeBudgetUsage), next_cursor: page.nextCursor });
  }

  /** Return the budget of the path with its usage, or send 404 and return null. */
  async function budgetOf(context: Context): Promise<BudgetUsage | null> {
    const id = context.params[0]!;
    const found = (await usageOf(context.scope.workspace.id)).find((entry) => entry.budget.id === id);
    if (!found) sendApiError(context.res, 404, 'not_found', `no budget with id "${id}" in this workspace`);
    return found ?? null;
  }

  async function getBudget(context: Context): Promise<void> {
    const found = await budgetOf(context);
    if (found) sendJson(context.res, 200, { budget: describeBudgetUsage(found) });
  }

  async function createBudget(context: Context): Promise<void> {
    if (!requireOwner(context, 'manage budgets')) return;
    const fields = await readFields(context.req, { accept: BUDGET_FIELDS });
    const workspaceId = context.scope.workspace.id;
    const scope = choiceField(fields, 'scope', BUDGET_SCOPES) ?? 'workspace';
    const scopeId = await scopeIdOf(fields, scope, workspaceId);
    const costKind = choiceField(fields, 'cost_kind', BUDGET_COST_KINDS) ?? 'api';
    const period = choiceField(fields, 'period', BUDGET_PERIODS);
    if (period === undefined) {
      throw new TokenwiseError('invalid_argument', `missing period: expected one of ${BUDGET_PERIODS.join(', ')}`);
    }
    const amountUsd = amountField(fields);
    if (amountUsd === undefined) throw new TokenwiseError('invalid_argument', 'missing amount_usd: give the budget in USD, e.g. 25');

    const input: NewBudget = {
      workspaceId,
      name: nameField(fields) ?? defaultName(costKind, period),
      scope,
      scopeId,
      costKind,
      period,
      amountUsd,
      alertThreshold: thresholdField(fields) ?? (fields.alert_threshold === null ? null : DEFAULT_ALERT_THRESHOLD),
      action: choiceField(fields, 'action', BUDGET_ACTIONS) ?? 'alert',
      webhookUrl: webhookField(fields) ?? null,
      emails: emailsField(fields) ?? [],
      createdBy: context.caller.user?.id ?? null,
    };
    const budget = await store.budgets.createBudget(input);
    await options.onBudgetsChanged?.();
    logger.info({ workspace_id: workspaceId, budget_id: budget.id, scope, period, action: budget.action }, 'budget created');
    const usage = (await usageOf(workspaceId)).find((entry) => entry.budget.id === budget.id);
    sendJson(context.res, 201, { budget: usage ? describeBudgetUsage(usage) : describeBudgetOnly(budget) });
  }

  async function updateBudget(context: Context): Promise<void> {
    const found = await budgetOf(context);
    if (!found || !requireOwner(context, 'manage budgets')) return;
    // The scope's fields are accepted here only to be rejected with the reason below.
    const fields = await readFields(context.req, { accept: BUDGET_FIELDS });
    for (const fixed of ['scope', 'device_id', 'user_id']) {
      if (fields[fixed] !== undefined) {
        throw new TokenwiseError('invalid_argument', `${fixed} cannot change: delete the budget and create one for the other scope`);
      }
    }
    const changes: BudgetChanges = {};
    const name = nameField(fields);
    if (name !== undefined) changes.name = name;
    const costKind = choiceField(fields, 'cost_kind', BUDGET_COST_KINDS);
    if (costKind !== undefined) changes.costKind = costKind;
    const period = choiceField(fields, 'period', BUDGET_PERIODS);
    if (period !== undefined) changes.period = period;
    const amountUsd = amountField(fields);
    if (amountUsd !== undefined) changes.amountUsd = amountUsd;
    if (fields.alert_threshold !== undefined) changes.alertThreshold = thresholdField(fields) ?? null;
    const action = choiceField(fields, 'action', BUDGET_ACTIONS);
    if (action !== undefined) changes.action = action;
    if (fields.webhook_url !== undefined) changes.webhookUrl = webhookField(fields) ?? null;
    const emails = emailsField(fields);
    if (emails !== undefined) changes.emails = emails;

    const workspaceId = context.scope.workspace.id;
    await store.budgets.updateBudget(workspaceId, found.budget.id, changes);
    await options.onBudgetsChanged?.();
    logger.info({ workspace_id: workspaceId, budget_id: found.budget.id, fields: Object.keys(fields) }, 'budget changed');
    const usage = (await usageOf(workspaceId)).find((entry) => entry.budget.id === found.budget.id);
    if (!usage) {
      sendApiError(context.res, 404, 'not_found', `no budget with id "${found.budget.id}" in this workspace`);
      return;
    }
    sendJson(context.res, 200, { budget: describeBudgetUsage(usage) });
  }

  async function deleteBudget(context: Context): Promise<void> {
    const found = await budgetOf(context);
    if (!found || !requireOwner(context, 'manage budgets')) return;
    await store.budgets.deleteBudget(context.scope.workspace.id, found.budget.id);
    await options.onBudgetsChanged?.();
    logger.info({ workspace_id: context.scope.workspace.id, budget_id: found.budget.id }, 'budget deleted');
    sendJson(context.res, 200, { id: found.budget.id, deleted: true });
  }

  async function listAlerts(context: Context): Promise<void> {
    const page = await store.budgets.listBudgetAlertsPage(context.scope.workspace.id, parseListPage(context.url.searchParams));
    sendJson(context.res, 200, { alerts: page.items.map(describeAlert), next_cursor: page.nextCursor });
  }

  /** Return the device or person id of a scoped budget after checking that it belongs to the workspace. */
  async function scopeIdOf(fields: Record<string, unknown>, scope: Budget['scope'], workspaceId: string): Promise<string | null> {
    if (scope === 'workspace') {
      if (fields.device_id != null || fields.user_id != null) {
        throw new TokenwiseError('invalid_argument', 'device_id and user_id need scope "device" or "user"');
      }
      return null;
    }
    const field = scope === 'device' ? 'device_id' : 'user_id';
    const id = fields[field];
    if (typeof id !== 'string' || id.trim() === '') {
      throw new TokenwiseError('invalid_argument', `missing ${field}: a budget with scope "${scope}" names its ${scope}`);
    }
    if (scope === 'device') {
      const device = await store.getDevice(id.trim());
      if (!device || device.workspaceId !== workspaceId) {
        throw new TokenwiseError(
          'invalid_argument',
          `invalid device_id: no device with id "${id}" in this workspace (see GET /api/v1/devices)`,
        );
      }
      return device.id;
    }
    const membership = await store.getMembership(workspaceId, id.trim());
    if (!membership) {
      throw new TokenwiseError(
        'invalid_argument',
        `invalid user_id: no member with id "${id}" in this workspace (see GET /api/v1/members)`,
      );
    }
    return membership.userId;
  }

  function webhookField(fields: Record<string, unknown>): string | null | undefined {
    const value = fields.webhook_url;
    if (value === undefined) return undefined;
    if (value === null || value === '') return null;
    if (typeof value !== 'string') throw new TokenwiseError('invalid_argument', 'invalid webhook_url: expected a URL string or null');
    return parseWebhookUrl(value, options.allowPrivateWebhooks);
  }

  function describeBudgetUsage(usage: BudgetUsage) {
    const { budget, spentUsd } = usage;
    const thresholdUsd = budget.alertThreshold === null ? null : budget.alertThreshold * budget.amountUsd;
    let state: 'ok' | 'alerting' | 'used_up' = 'ok';
    if (spentUsd >= budget.amountUsd) state = 'used_up';
    else if (thresholdUsd !== null && spentUsd >= thresholdUsd) state = 'alerting';
    return {
      ...describeBudgetOnly(budget),
      spent_usd: spentUsd,
      period_start: new Date(usage.periodStartMs).toISOString(),
      resets_at: new Date(usage.periodEndMs).toISOString(),
      state,
    };
  }

  function describeBudgetOnly(budget: Budget) {
    const bounds = budgetPeriodBounds(budget.period, clock());
    return {
      id: budget.id,
      name: budget.name,
      scope: budget.scope,
      device_id: budget.scope === 'device' ? budget.scopeId : null,
      user_id: budget.scope === 'user' ? budget.scopeId : null,
      cost_kind: budget.costKind,
      period: budget.period,
      amount_usd: budget.amountUsd,
      alert_threshold: budget.alertThreshold,
      action: budget.action,
      webhook_url: budget.webhookUrl === null ? null : maskWebhookUrl(budget.webhookUrl),
      emails: budget.emails,
      created_at: budget.createdAt,
      created_by: budget.createdBy,
      updated_at: budget.updatedAt,
      spent_usd: 0,
      period_start: new Date(bounds.startMs).toISOString(),
      resets_at: new Date(bounds.endMs).toISOString(),
      state: 'ok' as const,
    };
  }

  /** Serve the request when one of these routes matches; false when none does, so the next handler may. */
  return async function handle(req: IncomingMessage, res: ServerResponse, url: URL, caller: Caller): Promise<boolean> {
    const path = url.pathname.replace(/\/+$/, '').slice('/api/v1'.length);
    const method = req.method ?? 'GET';
    let pathKnown = false;
    for (const [routeMethod, pattern, name] of ROUTES) {
      const match = pattern.exec(path);
      if (!match) continue;
      pathKnown = true;
      if (routeMethod !== method) continue;
      const scope = await principals.workspace(caller, req);
      if (!scope) {
        sendNoWorkspace(res, caller);
        return true;
      }
      await handlers[name]!({ req, res, url, caller, scope, params: match.slice(1).map(decodeSegment) });
      return true;
    }
    if (!pathKnown) return false;
    sendApiError(res, 405, 'method_not_allowed', `${method} is not allowed on ${url.pathname}`);
    return true;
  };
}

export function describeAlert(alert: BudgetAlert) {
  const delivery = (channel: BudgetAlert['webhook']) => ({
    state: channel.state,
    attempts: channel.attempts,
    next_attempt_at: channel.nextAttemptAtMs === null ? null : new Date(channel.nextAttemptAtMs).toISOString(),
    last_error: channel.lastError,
  });
  return {
    id: alert.id,
    budget_id: alert.budgetId,
    budget_name: alert.budgetName,
    level: alert.level,
    period_start: new Date(alert.periodStartMs).toISOString(),
    spent_usd: alert.spentUsd,
    amount_usd: alert.amountUsd,
    message: alert.message,
    created_at: alert.createdAt,
    emails: alert.emails,
    webhook: delivery(alert.webhook),
    email: delivery(alert.email),
  };
}

function defaultName(costKind: Budget['costKind'], period: Budget['period']): string {
  return `${costKind === 'api' ? 'API spend' : 'API-equivalent cost'} per ${period}`;
}

function choiceField<T extends string>(fields: Record<string, unknown>, name: string, choices: readonly T[]): T | undefined {
  const value = fields[name];
  if (value === undefined || value === null) return undefined;
  if (typeof value !== 'string' || !(choices as readonly string[]).includes(value)) {
    throw new TokenwiseError('invalid_argument', `invalid ${name} ${JSON.stringify(value)}: expected one of ${choices.join(', ')}`);
  }
  return value as T;
}

function nameField(fields: Record<string, unknown>): string | undefined {
  const value = fields.name;
  if (value === undefined || value === null) return undefined;
  if (typeof value !== 'string' || value.trim() === '' || value.trim().length > MAX_NAME_LENGTH) {
    throw new TokenwiseError('invalid_argument', `invalid name: expected a text of 1 to ${MAX_NAME_LENGTH} characters`);
  }
  return value.trim();
}

function amountField(fields: Record<string, unknown>): number | undefined {
  const value = fields.amount_usd;
  if (value === undefined || value === null || value === '') return undefined;
  const amount = typeof value === 'number' ? value : Number(value);
  if (!Number.isFinite(amount) || amount <= 0 || amount > MAX_BUDGET_USD) {
    throw new TokenwiseError(
      'invalid_argument',
      `invalid amount_usd ${JSON.stringify(value)}: expected USD above 0 and at most ${MAX_BUDGET_USD}, e.g. 25`,
    );
  }
  return amount;
}

/** Read `alert_threshold`: a fraction above 0 and below 1, or undefined when the field is null or missing. */
function thresholdField(fields: Record<string, unknown>): number | undefined {
  const value = fields.alert_threshold;
  if (value === undefined || value === null || value === '') return undefined;
  const threshold = typeof value === 'number' ? value : Number(value);
  if (!(threshold > 0 && threshold < 1)) {
    throw new TokenwiseError(
      'invalid_argument',
      `invalid alert_threshold ${JSON.stringify(value)}: expected a fraction of the amount above 0 and below 1, e.g. 0.8, or null for no soft alert`,
    );
  }
  return threshold;
}

function emailsField(fields: Record<string, unknown>): string[] | undefined {
  const value = fields.emails;
  if (value === undefined) return undefined;
  if (value === null) return [];
  if (!Array.isArray(value) || value.length > MAX_EMAILS) {
    throw new TokenwiseError('invalid_argument', `invalid emails: expected a list of at most ${MAX_EMAILS} addresses`);
  }
  return value.map((entry) => {
    const email = typeof entry === 'string' ? entry.trim() : '';
    if (!/^[^@\s<>",]+@[^@\s<>",]+\.[^@\s<>",]+$/.test(email)) {
      throw new TokenwiseError(
        'invalid_argument',
        `invalid email ${JSON.stringify(entry)} in emails: expected an address such as ops@example.com`,
      );
    }
    return email.toLowerCase();
  });
}

function decodeSegment(segment: string | undefined): string {
  try {
    return decodeURIComponent(segment ?? '');
  } catch {
    throw new TokenwiseError('invalid_argument', `invalid percent-encoding in the path segment "${segment}"`);
  }
}
