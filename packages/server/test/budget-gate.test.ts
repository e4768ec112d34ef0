import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { type CallRecord, createRouteRegistry } from '@tokenwise/core';
import { type Budget, SqliteStore } from '@tokenwise/storage';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { type BudgetGate, createBudgetGate } from '../src/budgets/budget-gate.js';
import type { BudgetAdmission, BudgetTicket, RouteAuthorization } from '../src/proxy/index.js';
import { createLogCapture, type LogCapture } from './helpers/log-capture.js';
import { sampleRecord } from './helpers/sample-record.js';
import { createServerLoggerForTest } from './helpers/test-logger.js';

const route = createRouteRegistry().get('anthropic')!;
const API_KEY_HEADER = undefined;

/**
 * The budget gate of one process against a real SQLite store, driven call by call: the lease it gets,
 * the reservations it makes and releases, and a budget that goes away under it.
 */
describe('budget gate', () => {
  let dir: string;
  let store: SqliteStore;
  let logs: LogCapture;
  let gate: BudgetGate | null;
  let authorization: RouteAuthorization;
  let budget: Budget;
  let callNumber: number;

  beforeEach(async () => {
    dir = await mkdtemp(join(tmpdir(), 'tokenwise-gate-'));
    store = new SqliteStore(join(dir, 'tokenwise.db'));
    logs = createLogCapture();
    gate = null;
    callNumber = 0;
    const workspace = await store.createWorkspace({ name: 'team' });
    authorization = { workspaceId: workspace.id, deviceId: null, keepBodies: true };
    budget = await store.budgets.createBudget({
      workspaceId: workspace.id,
      name: 'Daily',
      scope: 'workspace',
      scopeId: null,
      costKind: 'api',
      period: 'day',
      amountUsd: 1,
      alertThreshold: null,
      action: 'block',
      webhookUrl: null,
      emails: [],
      createdBy: null,
    });
  });

  afterEach(async () => {
    await gate?.close();
    await store.close();
    await rm(dir, { recursive: true, force: true });
  });

  /** Build a call of the workspace that cost `usd` and started now. */
  function call(usd: number): CallRecord {
    callNumber += 1;
    return sampleRecord({
      id: `0190a1b2-0000-7000-8000-${String(callNumber).padStart(12, '0')}`,
      started_at: new Date().toISOString(),
      workspace_id: authorization.workspaceId,
      device_id: null,
      cost: { usd, basis: 'exact', price_key: 'claude-sonnet-4-5', breakdown: {}, price_data_version: null },
    });
  }

  async function startGate(options: { leaseTtlMs?: number; refreshIntervalMs?: number } = {}): Promise<BudgetGate> {
    gate = createBudgetGate({
      store,
      logger: createServerLoggerForTest(logs),
      priceRecord: (record) => record,
      refreshIntervalMs: options.refreshIntervalMs ?? 3_600_000,
      leaseTtlMs: options.leaseTtlMs,
      leaseWaitMs: 1000,
    });
    await gate.start();
    return gate;
  }

  async function admit(): Promise<BudgetAdmission> {
    return gate!.admit({ authorization, route, authorizationHeader: API_KEY_HEADER });
  }

  async function admitted(): Promise<BudgetTicket> {
    const admission = await admit();
    if (!admission.ok) throw new Error(`expected the call to be admitted: ${admission.refusal.message}`);
    return admission.ticket!;
  }

  /** Spend 0.9 of the 1 USD in calls of 0.1 each, so the estimate is 0.1 and one call of room is left. */
  async function spendAllButOneCall(): Promise<void> {
    await store.insertCalls(Array.from({ length: 9 }, () => ({ record: call(0.1), bodies: null })));
  }

  it('refuses while the last room is reserved', async () => {
    await spendAllButOneCall();
    await startGate();

    const first = await admitted();
    const second = await admit();

    expect(second.ok).toBe(false);
    if (!second.ok) {
      expect(second.refusal.status).toBe(429);
      expect(second.refusal.kind).toBe('budget_exceeded');
      expect(second.refusal.message).toContain('Tokenwise budget "Daily"');
      expect(second.refusal.message).toContain('calls in progress hold the rest');
    }
    first.settle(null);
  });

  it('releases a reservation when the call ends without a record', async () => {
    await spendAllButOneCall();
    await startGate();

    const first = await admitted();
    first.settle(null);

    const again = await admitted();
    again.settle(null);
  });

  it('lets one call use room smaller than the estimate', async () => {
    await spendAllButOneCall();
    await startGate();

    const first = await admitted();
    first.settle(call(0.05));
    // 0.05 is left, less than the 0.1 estimate: one more call may use it, and then nothing is left.
    const last = await admitted();
    const rejected = await admit();
    expect(rejected.ok).toBe(false);
    last.settle(call(0.1));
    expect((await admit()).ok).toBe(false);
  });

  it('stops applying a budget deleted under its lease', async () => {
    // Fail-closed, so a call is admitted only because the budget is known gone, not because the store failed.
    authorization = { ...authorization, budgetsFailClosed: true };
    await spendAllButOneCall();
    await startGate({ leaseTtlMs: 300 });
    (await admitted()).settle(call(0.1));
    expect((await admit()).ok).toBe(false);

    await store.budgets.deleteBudget(budget.workspaceId, budget.id);
    // Past the lease's validity, the next call requests a lease from the store, which no longer has the budget.
    await new Promise((resolve) => setTimeout(resolve, 300));

    expect((await admit()).ok).toBe(true);
    expect(logs.text()).not.toContain('budgets cannot be checked');
  });

  it('admits calls of a workspace without blocking budgets without a ticket', async () => {
    await store.budgets.updateBudget(budget.workspaceId, budget.id, { action: 'alert' });
    await startGate();

    expect(await admit()).toEqual({ ok: true, ticket: null });
  });
});
