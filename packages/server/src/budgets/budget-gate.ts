import { randomUUID } from 'node:crypto';
import { type CallRecord, isSubscriptionBilled } from '@tokenwise/core';
import { type BudgetCostKind, type BudgetLease, type BudgetUsage, budgetPeriodBounds, type Store } from '@tokenwise/storage';
import type { Logger } from 'pino';
import type { BudgetAdmission, BudgetTicket, ProxyBudgetGate, RouteAuthorization } from '../proxy/index.js';
import { describeBudget, formatUsd } from './budget-text.js';

export interface BudgetGateOptions {
  store: Store;
  logger: Logger;
  /** Prices a record as the sink stores it (custom prices included), so charges match the spend counters. */
  priceRecord(record: CallRecord): CallRecord;
  /** Time between two reloads of the budgets and renewals of this process's leases, in ms; default 1 s. */
  refreshIntervalMs?: number;
  /** How long the store keeps a lease this process stops renewing, in ms; default 15 s. */
  leaseTtlMs?: number;
  /** How long a call waits for this process's first share of a budget before the store counts as unreachable, in ms; default 2 s. */
  leaseWaitMs?: number;
  clock?: () => number;
}

export interface BudgetGate extends ProxyBudgetGate {
  /** Load the budgets once; a failure is logged and the next refresh tries again. */
  start(): Promise<void>;
  /** Tell the gate that these calls reached the store, whose spend counters now include them. */
  onStored(callIds: readonly string[]): void;
  /** Reload the budgets now, after one was created or changed through this process; failures are logged. */
  reloadBudgets(): Promise<void>;
  /** Stop refreshing and give this process's leases back. */
  close(): Promise<void>;
}

/** Without a call of the scope in the last 31 days, a call is assumed to cost this fraction of the budget. */
const FIRST_CALL_FRACTION = 0.02;
/** A process requests room for this many calls of the estimated size at a time. */
const CALLS_PER_LEASE = 4;
/** Time between two fail-open warnings of one workspace, in ms. */
const WARNING_INTERVAL_MS = 60_000;
/** Charges of calls not stored yet that the gate remembers at most; the oldest are forgotten first. */
const MAX_PENDING_CHARGES = 100_000;
const USD_EPSILON = 1e-9;

/**
 * The part of one blocking budget in one period that one process may spend. The store grants a lease (see
 * `acquireBudgetLease`), and the process reserves and settles calls against it in memory.
 *
 * Accounting: `consumed` changes only by what calls take from the lease. A call takes an estimate when it
 * is admitted and the difference to its actual cost when it ends (negative for a cheaper call, minus the
 * whole estimate for a call that ended without a record). A call that reserved nothing takes its cost.
 * A lease granted for a request sent when `consumed` was C, with `floor` = unstored + in flight at that
 * moment, leaves `reserved - floor - (consumed - C)` to spend. Calls reaching the store do not return room
 * to the lease, because the store counts them in its spend counters from then on.
 */
interface Share {
  key: string;
  usage: BudgetUsage;
  periodStartMs: number;
  periodEndMs: number;
  /** `reserved - floor` of the last lease; null before the first lease. */
  leaseBaseUsd: number | null;
  consumedAtBase: number;
  consumed: number;
  /** The lease counts until then on this process's clock: two thirds of the store's expiry. */
  leaseValidUntilMs: number;
  /** True when the last lease granted less than requested: the budget has no more room now. */
  exhausted: boolean;
  lastLease: BudgetLease | null;
  unstoredUsd: number;
  inflightUsd: number;
  inflightCalls: number;
  /** Largest call cost seen here for this budget. */
  maxCallUsd: number;
  lastActivityMs: number;
  /** True while this process keeps more than its floor; an idle share gives the rest back once. */
  holdsSpare: boolean;
  /** True once the store reported the budget deleted or its period changed; the share no longer applies. */
  gone: boolean;
  syncing: Promise<boolean> | null;
}

interface Reservation {
  share: Share;
  usd: number;
}

type Decision = { kind: 'reserve'; usd: number } | { kind: 'lease' } | { kind: 'spent' } | { kind: 'gone' };

/**
 * Enforce blocking budgets in the proxy without a store query per call. Every `refreshIntervalMs` the
 * gate reloads the budgets with their spend and renews the leases of the budgets this process used.
 * A call reserves an estimate (the largest call of the scope in the last 31 days) against the lease and
 * settles its actual cost when it ends.
 *
 * The bound: a process admits a call only while its lease has room for the estimate, or, when less than
 * one estimated call is left, one call at a time. So spend passes a blocking budget by at most one call
 * per process, plus whatever calls in flight cost beyond their estimate. Calls recorded by the Worker are
 * counted once stored, but the Worker does not enforce budgets.
 */
export function createBudgetGate(options: BudgetGateOptions): BudgetGate {
  const { store, logger, priceRecord } = options;
  const refreshIntervalMs = options.refreshIntervalMs ?? 1000;
  const leaseTtlMs = options.leaseTtlMs ?? 15_000;
  const leaseWaitMs = options.leaseWaitMs ?? 2000;
  const clock = options.clock ?? Date.now;
  const holderId = randomUUID();

  /** Budgets with `action: block`, per workspace, from the last successful reload. */
  let blocking = new Map<string, BudgetUsage[]>();
  let loaded = false;
  let storeFailing = false;
  const shares = new Map<string, Share>();
  const pendingCharges = new Map<string, Reservation[]>();
  const lastWarningMs = new Map<string, number>();
  let timer: NodeJS.Timeout | null = null;
  let running: Promise<void> | null = null;
  let closed = false;

  async function reload(): Promise<void> {
    // NOTE: each proxy reads every budget of every workspace each interval, in one indexed query. With many
    // thousands of budgets, this should load only the workspaces the process serves.
    const usage = await store.budgets.listBudgetUsage({ now: new Date(clock()) });
    const next = new Map<string, BudgetUsage[]>();
    for (const entry of usage) {
      if (entry.budget.action !== 'block') continue;
      const list = next.get(entry.budget.workspaceId) ?? [];
      list.push(entry);
      next.set(entry.budget.workspaceId, list);
    }
    blocking = next;
    loaded = true;
    const byId = new Map(usage.map((entry) => [entry.budget.id, entry]));
    for (const [key, share] of shares) {
      const fresh = byId.get(share.usage.budget.id);
      if (fresh?.budget.action !== 'block') {
        if (share.inflightCalls === 0) shares.delete(key);
        continue;
      }
      if (fresh.periodStartMs === share.periodStartMs) share.usage = fresh;
      else share.usage = { ...fresh, spentUsd: share.usage.spentUsd };
    }
  }

  function shareFor(usage: BudgetUsage, periodStartMs: number, periodEndMs: number): Share {
    const key = `${usage.budget.id}:${periodStartMs}`;
    let share = shares.get(key);
    if (!share) {
      share = {
        key,
        usage,
        periodStartMs,
        periodEndMs,
        leaseBaseUsd: null,
        consumedAtBase: 0,
        consumed: 0,
        leaseValidUntilMs: 0,
        exhausted: false,
        lastLease: null,
        unstoredUsd: 0,
        inflightUsd: 0,
        inflightCalls: 0,
        maxCallUsd: 0,
        lastActivityMs: clock(),
        holdsSpare: false,
        gone: false,
        syncing: null,
      };
      shares.set(key, share);
    }
    return share;
  }

  function estimateOf(share: Share): number {
    const largest = Math.max(share.maxCallUsd, share.usage.maxCallUsd);
    return largest > 0 ? largest : share.usage.budget.amountUsd * FIRST_CALL_FRACTION;
  }

  function roomOf(share: Share): number {
    return (share.leaseBaseUsd ?? 0) - (share.consumed - share.consumedAtBase);
  }

  function decide(share: Share, now: number): Decision {
    if (share.gone) return { kind: 'gone' };
    if (share.leaseBaseUsd === null || now >= share.leaseValidUntilMs) return { kind: 'lease' };
    const room = roomOf(share);
    const estimate = estimateOf(share);
    if (room >= estimate) return { kind: 'reserve', usd: estimate };
    // Less than one estimated call is left: one call at a time may use it.
    if (room > USD_EPSILON && share.inflightCalls === 0) return { kind: 'reserve', usd: estimate };
    return share.exhausted ? { kind: 'spent' } : { kind: 'lease' };
  }

  /** Request this share's lease from the store; resolves true when the store responded. Concurrent calls share one request. */
  function sync(share: Share): Promise<boolean> {
    share.syncing ??= (async () => {
      const now = clock();
      const floor = Math.max(0, share.unstoredUsd + share.inflightUsd);
      const active = now - share.lastActivityMs < 2 * refreshIntervalMs || share.inflightCalls > 0;
      const spare = active ? Math.max(CALLS_PER_LEASE * estimateOf(share), share.usage.budget.amountUsd * FIRST_CALL_FRACTION) : 0;
      const want = floor + spare;
      const consumedAtRequest = share.consumed;
      try {
        const lease = await store.budgets.acquireBudgetLease({
          budgetId: share.usage.budget.id,
          period: share.usage.budget.period,
          periodStartMs: share.periodStartMs,
          holderId,
          wantUsd: want,
          floorUsd: floor,
          expiresAtMs: now + leaseTtlMs,
          now: new Date(now),
        });
        noteStoreAvailable();
        if (lease === null) {
          // The budget is gone or its period changed; the next reload brings the new definition.
          share.gone = true;
          shares.delete(share.key);
          return true;
        }
        share.leaseBaseUsd = lease.reservedUsd - floor;
        share.consumedAtBase = consumedAtRequest;
        share.leaseValidUntilMs = now + (leaseTtlMs * 2) / 3;
        share.exhausted = lease.reservedUsd < want - USD_EPSILON;
        share.lastLease = lease;
        share.holdsSpare = spare > 0;
        return true;
      } catch (error) {
        noteStoreFailing(error, share);
        return false;
      } finally {
        share.syncing = null;
      }
    })();
    return share.syncing;
  }

  function noteStoreFailing(error: unknown, share: Share): void {
    if (!storeFailing) {
      logger.warn(
        { err: error, budget_id: share.usage.budget.id },
        'renewing a budget lease failed; budgets use their current leases until the store is back',
      );
    }
    storeFailing = true;
  }

  function noteStoreAvailable(): void {
    if (storeFailing) logger.info('the store grants budget leases again');
    storeFailing = false;
  }

  /** Return the blocking budgets whose scope covers a call of this grant, for one cost kind or all. */
  function budgetsFor(authorization: RouteAuthorization, costKind: BudgetCostKind | null): BudgetUsage[] {
    return (blocking.get(authorization.workspaceId) ?? []).filter((usage) => {
      const budget = usage.budget;
      if (costKind !== null && budget.costKind !== costKind) return false;
      if (budget.scope === 'device') return budget.scopeId === authorization.deviceId;
      if (budget.scope === 'user') return authorization.userId != null && budget.scopeId === authorization.userId;
      return true;
    });
  }

  function currentShare(usage: BudgetUsage, now: number): Share {
    const bounds = budgetPeriodBounds(usage.budget.period, new Date(now));
    return shareFor(usage, bounds.startMs, bounds.endMs);
  }

  function refuseSpent(share: Share, now: number): BudgetAdmission {
    const budget = share.usage.budget;
    const spent = Math.max(share.usage.spentUsd, share.lastLease?.spentUsd ?? 0) + share.unstoredUsd;
    const resetsAt = new Date(share.periodEndMs).toISOString();
    const retryAfterS = Math.max(1, Math.ceil((share.periodEndMs - now) / 1000));
    const message =
      `Tokenwise budget "${budget.name}" (${describeBudget(budget)}) is used up: ${formatUsd(spent)} spent of ${formatUsd(budget.amountUsd)}` +
      `${spent < budget.amountUsd ? ', and calls in progress hold the rest' : ''}. It resets at ${resetsAt}; ` +
      'an owner of the workspace can raise it in Tokenwise.';
    logBlocked(budget.workspaceId, budget.id, spent);
    return {
      ok: false,
      refusal: {
        status: 429,
        kind: 'budget_exceeded',
        message,
        // Anthropic's and OpenAI's SDKs retry a 429 unless `x-should-retry: false`; waiting cannot help here.
        headers: { 'retry-after': String(retryAfterS), 'x-should-retry': 'false' },
      },
    };
  }

  function refuseUnavailable(workspaceId: string): BudgetAdmission {
    warnOnce(workspaceId, 'budgets cannot be checked because the store is unreachable; the workspace is fail-closed, so calls are refused');
    return {
      ok: false,
      refusal: {
        status: 503,
        kind: 'budget_unavailable',
        message:
          'Tokenwise cannot check the budgets of this workspace because its database is unreachable, and the workspace refuses calls then (fail-closed). Retry in a minute.',
        headers: { 'retry-after': '30' },
      },
    };
  }

  function warnOnce(workspaceId: string, message: string): void {
    const now = clock();
    const last = lastWarningMs.get(workspaceId);
    if (last !== undefined && now - last < WARNING_INTERVAL_MS) return;
    lastWarningMs.set(workspaceId, now);
    logger.warn({ workspace_id: workspaceId }, message);
  }

  function logBlocked(workspaceId: string, budgetId: string, spentUsd: number): void {
    const key = `blocked:${budgetId}`;
    const now = clock();
    const last = lastWarningMs.get(key);
    if (last !== undefined && now - last < WARNING_INTERVAL_MS) return;
    lastWarningMs.set(key, now);
    logger.info(
      { workspace_id: workspaceId, budget_id: budgetId, spent_usd: spentUsd },
      'call rejected with 429: a blocking budget is used up',
    );
  }

  /** Charges of a finished call to the blocking budgets it counts toward, priced as the store will price it. */
  function chargesOf(record: CallRecord, authorization: RouteAuthorization): Reservation[] {
    const priced = priceRecord(record);
    const usd = priced.cost.usd;
    const kind = costKindOf(priced.cost.basis);
    if (kind === null || usd === null || !(usd > 0)) return [];
    const startedMs = Date.parse(priced.started_at);
    const at = Number.isNaN(startedMs) ? clock() : startedMs;
    return budgetsFor(authorization, kind).map((usage) => ({ share: currentShare(usage, at), usd }));
  }

  function createTicket(authorization: RouteAuthorization, reservations: Reservation[]): BudgetTicket {
    let settled = false;

    const charge = (record: CallRecord, reserved: readonly Reservation[]) => {
      const now = clock();
      const charges = chargesOf(record, authorization);
      for (const { share, usd } of reserved) {
        const actual = charges.find((entry) => entry.share === share)?.usd ?? 0;
        share.consumed += actual - usd;
      }
      for (const { share, usd } of charges) {
        if (!reserved.some((entry) => entry.share === share)) share.consumed += usd;
        share.unstoredUsd += usd;
        share.maxCallUsd = Math.max(share.maxCallUsd, usd);
        share.lastActivityMs = now;
      }
      if (charges.length > 0) rememberCharges(record.id, charges);
    };

    return {
      settle(record) {
        if (settled) return;
        settled = true;
        for (const { share, usd } of reservations) {
          share.inflightUsd -= usd;
          share.inflightCalls -= 1;
        }
        if (record) charge(record, reservations);
        else for (const { share, usd } of reservations) share.consumed -= usd;
      },
      charge(record) {
        charge(record, []);
      },
    };
  }

  function rememberCharges(callId: string, charges: Reservation[]): void {
    pendingCharges.set(callId, charges);
    if (pendingCharges.size > MAX_PENDING_CHARGES) {
      const oldest = pendingCharges.keys().next().value;
      if (oldest !== undefined) pendingCharges.delete(oldest);
    }
  }

  function evaluate(shareList: Share[], now: number): { decisions: Decision[]; needLease: Share[] } {
    const decisions = shareList.map((share) => decide(share, now));
    const needLease = shareList.filter((_, index) => decisions[index]!.kind === 'lease');
    return { decisions, needLease };
  }

  async function admit(call: Parameters<ProxyBudgetGate['admit']>[0]): Promise<BudgetAdmission> {
    const { authorization } = call;
    const workspaceBudgets = blocking.get(authorization.workspaceId);
    if (!loaded) {
      if (authorization.budgetsFailClosed) return refuseUnavailable(authorization.workspaceId);
      warnOnce(authorization.workspaceId, 'budgets are not loaded yet because the store is unreachable; calls go through (fail-open)');
      return { ok: true, ticket: createTicket(authorization, []) };
    }
    if (!workspaceBudgets || workspaceBudgets.length === 0) return { ok: true, ticket: null };

    const predicted: BudgetCostKind = isSubscriptionBilled(call.route, { authorization: call.authorizationHeader ?? '' })
      ? 'api_equivalent'
      : 'api';
    let now = clock();
    const shareList = budgetsFor(authorization, predicted).map((usage) => currentShare(usage, now));
    for (const share of shareList) share.lastActivityMs = now;

    let { decisions, needLease } = evaluate(shareList, now);
    // At most two lease requests, within one wait of `leaseWaitMs`: concurrent calls may use up a fresh lease.
    const deadlineMs = now + leaseWaitMs;
    for (let round = 0; round < 2 && needLease.length > 0 && !decisions.some((decision) => decision.kind === 'spent'); round += 1) {
      const remainingMs = Math.max(0, deadlineMs - clock());
      const answered = await Promise.race([
        Promise.all(needLease.map((share) => sync(share))).then((results) => results.every(Boolean)),
        new Promise<false>((resolve) => setTimeout(() => resolve(false), remainingMs).unref()),
      ]);
      now = clock();
      ({ decisions, needLease } = evaluate(shareList, now));
      if (!answered) break;
    }

    const spentIndex = decisions.findIndex((decision) => decision.kind === 'spent');
    if (spentIndex >= 0) return refuseSpent(shareList[spentIndex]!, now);

    const reservations: Reservation[] = [];
    for (const [index, share] of shareList.entries()) {
      const decision = decisions[index]!;
      if (decision.kind === 'reserve') {
        reservations.push({ share, usd: decision.usd });
      } else if (decision.kind === 'gone') {
        // A budget deleted or changed meanwhile does not hold this call back.
      } else if (share.leaseBaseUsd !== null && !share.exhausted && !storeFailing && now < share.leaseValidUntilMs) {
        // The store granted in full but concurrent calls took the room meanwhile: the budget is close to spent.
        return refuseSpent(share, now);
      } else if (authorization.budgetsFailClosed) {
        return refuseUnavailable(authorization.workspaceId);
      } else {
        warnOnce(authorization.workspaceId, 'budgets cannot be checked because the store is unreachable; calls go through (fail-open)');
      }
    }
    for (const { share, usd } of reservations) {
      share.consumed += usd;
      share.inflightUsd += usd;
      share.inflightCalls += 1;
    }
    return { ok: true, ticket: createTicket(authorization, reservations) };
  }

  async function refresh(): Promise<void> {
    try {
      await reload();
      noteStoreAvailable();
    } catch (error) {
      if (!storeFailing) logger.warn({ err: error }, 'reloading the budgets failed; the proxy keeps the budgets it loaded last');
      storeFailing = true;
    }

    const now = clock();
    const renewals: Promise<boolean>[] = [];
    for (const [key, share] of shares) {
      const periodOver = now >= share.periodEndMs;
      if (periodOver && share.inflightCalls === 0) {
        shares.delete(key);
        continue;
      }
      const active = now - share.lastActivityMs < 2 * refreshIntervalMs || share.inflightCalls > 0;
      const holdsClaims = share.unstoredUsd > USD_EPSILON || share.inflightUsd > USD_EPSILON;
      const expiring = share.leaseBaseUsd !== null && share.leaseValidUntilMs - now < leaseTtlMs / 3;
      // Active shares renew every interval. An idle one gives its spare room back once, and renews the
      // claims of its unstored calls until they are stored.
      if (active || (share.holdsSpare && !active) || (holdsClaims && expiring)) renewals.push(sync(share));
      else if (!holdsClaims && !share.holdsSpare && now - share.lastActivityMs > leaseTtlMs) shares.delete(key);
    }
    await Promise.all(renewals);
  }

  function schedule(): void {
    if (closed) return;
    timer = setTimeout(() => {
      running = refresh().finally(() => {
        running = null;
        schedule();
      });
    }, refreshIntervalMs);
    timer.unref();
  }

  return {
    admit,

    async start() {
      try {
        await reload();
      } catch (error) {
        storeFailing = true;
        logger.warn({ err: error }, 'loading the budgets failed; blocking budgets are not enforced until the store responds');
      }
      schedule();
    },

    async reloadBudgets() {
      try {
        await reload();
      } catch (error) {
        logger.warn({ err: error }, 'reloading the budgets failed; the next refresh tries again');
      }
    },

    onStored(callIds) {
      for (const id of callIds) {
        const charges = pendingCharges.get(id);
        if (!charges) continue;
        pendingCharges.delete(id);
        for (const { share, usd } of charges) share.unstoredUsd = Math.max(0, share.unstoredUsd - usd);
      }
    },

    async close() {
      closed = true;
      if (timer) clearTimeout(timer);
      await running;
      try {
        await store.budgets.releaseBudgetLeases(holderId);
      } catch (error) {
        logger.warn({ err: error }, 'giving budget leases back failed; they expire on their own');
      }
    },
  };
}

function costKindOf(basis: CallRecord['cost']['basis']): BudgetCostKind | null {
  if (basis === 'exact' || basis === 'partial') return 'api';
  if (basis === 'api_equivalent') return 'api_equivalent';
  return null;
}
