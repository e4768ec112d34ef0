import type { CallRecord, Cost } from '@tokenwise/core';
import { type Budget, budgetPeriodBounds, type NewBudget, type NewBudgetAlert, type Store } from '@tokenwise/storage';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { sparseRecord } from './sample-calls.js';
import type { StoreHandle } from './store-contract.js';

/** A Wednesday; its week started on Monday 2026-12-07 and its month on 2026-12-01 (UTC). */
const NOW = new Date('2026-12-09T15:30:00.000Z');

/**
 * Run the budget half of the store contract: budgets scoped by workspace, the spend counters the store
 * keeps as calls are stored and re-priced, leases on blocking budgets, and alerts recorded once.
 */
export function describeBudgetContract(name: string, createStore: () => Promise<StoreHandle>): void {
  describe(`${name}: budget contract`, () => {
    let handle: StoreHandle;
    let store: Store;
    let workspaceId: string;
    let callNumber = 0;

    beforeEach(async () => {
      handle = await createStore();
      store = handle.store;
      workspaceId = (await store.createWorkspace({ name: 'team' })).id;
      callNumber = 0;
    });

    afterEach(async () => {
      await store.close();
      await handle.cleanup?.();
    });

    function newBudget(overrides: Partial<NewBudget> = {}): NewBudget {
      return {
        workspaceId,
        name: 'daily API spend',
        scope: 'workspace',
        scopeId: null,
        costKind: 'api',
        period: 'day',
        amountUsd: 10,
        alertThreshold: 0.8,
        action: 'block',
        webhookUrl: null,
        emails: [],
        createdBy: null,
        ...overrides,
      };
    }

    function cost(usd: number | null, basis: Cost['basis']): Cost {
      return { usd, basis, price_key: 'claude-sonnet-4-5', breakdown: {}, price_data_version: null };
    }

    /** Build a priced call of the workspace; `started_at` defaults to an hour before NOW. */
    function pricedCall(usd: number | null, basis: Cost['basis'], overrides: Partial<CallRecord> = {}): CallRecord {
      callNumber += 1;
      return sparseRecord({
        id: `0190a1b2-0000-7000-8000-${String(callNumber).padStart(12, '0')}`,
        started_at: new Date(NOW.getTime() - 3_600_000).toISOString(),
        workspace_id: workspaceId,
        billable: true,
        status: 'success',
        cost: cost(usd, basis),
        ...overrides,
      });
    }

    async function storeCalls(...records: CallRecord[]): Promise<void> {
      await store.insertCalls(records.map((record) => ({ record, bodies: null })));
    }

    async function spentOf(budget: Budget): Promise<number> {
      const usage = await store.budgets.listBudgetUsage({ workspaceId: budget.workspaceId, now: NOW });
      return usage.find((entry) => entry.budget.id === budget.id)!.spentUsd;
    }

    describe('budgets', () => {
      it('creates, reads, changes and deletes a budget', async () => {
        const created = await store.budgets.createBudget(
          newBudget({ emails: ['ops@example.com'], webhookUrl: 'https://hooks.example.com/x' }),
        );

        expect(await store.budgets.getBudget(workspaceId, created.id)).toStrictEqual(created);
        expect(await store.budgets.listBudgets(workspaceId)).toStrictEqual([created]);

        const changed = await store.budgets.updateBudget(workspaceId, created.id, {
          amountUsd: 25,
          alertThreshold: null,
          action: 'alert',
          emails: [],
          webhookUrl: null,
        });
        expect(changed).toMatchObject({ amountUsd: 25, alertThreshold: null, action: 'alert', emails: [], webhookUrl: null });

        expect(await store.budgets.deleteBudget(workspaceId, created.id)).toBe(true);
        expect(await store.budgets.getBudget(workspaceId, created.id)).toBeNull();
        expect(await store.budgets.deleteBudget(workspaceId, created.id)).toBe(false);
      });

      it('keeps budgets within their workspace', async () => {
        const other = await store.createWorkspace({ name: 'other' });
        const budget = await store.budgets.createBudget(newBudget());

        expect(await store.budgets.getBudget(other.id, budget.id)).toBeNull();
        expect(await store.budgets.listBudgets(other.id)).toEqual([]);
        expect(await store.budgets.updateBudget(other.id, budget.id, { amountUsd: 1 })).toBeNull();
        expect(await store.budgets.deleteBudget(other.id, budget.id)).toBe(false);
        expect(await store.budgets.listBudgetUsage({ workspaceId: other.id, now: NOW })).toEqual([]);
        expect(await store.budgets.getBudget(workspaceId, budget.id)).not.toBeNull();
      });

      it('rejects an amount or threshold out of range', async () => {
        await expect(store.budgets.createBudget(newBudget({ amountUsd: 0 }))).rejects.toThrow(/invalid budget amount 0/);
        await expect(store.budgets.createBudget(newBudget({ amountUsd: Number.NaN }))).rejects.toThrow(/invalid budget amount/);
        await expect(store.budgets.createBudget(newBudget({ alertThreshold: 1 }))).rejects.toThrow(/invalid alert threshold 1/);
      });

      it('goes with its workspace, device or person', async () => {
        const user = await store.createUser({ email: 'ada@example.com', name: 'Ada', passwordHash: 'scrypt$hash' });
        await store.addMembership({ workspaceId, userId: user.id, role: 'member' });
        const device = await store.createDevice({ workspaceId, name: 'laptop', userId: user.id });
        const deviceBudget = await store.budgets.createBudget(newBudget({ scope: 'device', scopeId: device.id }));
        const userBudget = await store.budgets.createBudget(newBudget({ scope: 'user', scopeId: user.id }));
        const workspaceBudget = await store.budgets.createBudget(newBudget());

        await store.deleteDevice(device.id, { withCalls: false });
        expect(await store.budgets.getBudget(workspaceId, deviceBudget.id)).toBeNull();
        expect(await store.budgets.getBudget(workspaceId, userBudget.id)).not.toBeNull();

        await store.deleteUser(user.id, []);
        expect(await store.budgets.getBudget(workspaceId, userBudget.id)).toBeNull();

        expect(await store.deleteWorkspace(workspaceId)).toBe(true);
        expect(await store.budgets.getBudget(workspaceId, workspaceBudget.id)).toBeNull();
      });

      it('keeps the fail-closed choice on the workspace', async () => {
        expect((await store.getWorkspace(workspaceId))?.budgetsFailClosed).toBe(false);

        await store.updateWorkspace(workspaceId, { budgetsFailClosed: true });

        expect((await store.getWorkspace(workspaceId))?.budgetsFailClosed).toBe(true);
      });
    });

    describe('spend counters', () => {
      it('count API spend and API-equivalent apart per scope', async () => {
        const user = await store.createUser({ email: 'ada@example.com', name: 'Ada', passwordHash: 'scrypt$hash' });
        const laptop = await store.createDevice({ workspaceId, name: 'laptop', userId: user.id });
        const server = await store.createDevice({ workspaceId, name: 'ci' });
        const api = await store.budgets.createBudget(newBudget({ costKind: 'api' }));
        const equivalent = await store.budgets.createBudget(newBudget({ costKind: 'api_equivalent' }));
        const laptopApi = await store.budgets.createBudget(newBudget({ scope: 'device', scopeId: laptop.id }));
        const adaApi = await store.budgets.createBudget(newBudget({ scope: 'user', scopeId: user.id }));

        await storeCalls(
          pricedCall(1.5, 'exact', { device_id: laptop.id }),
          pricedCall(0.25, 'partial', { device_id: server.id }),
          pricedCall(4, 'api_equivalent', { device_id: laptop.id }),
          pricedCall(null, 'unpriced', { device_id: laptop.id }),
          pricedCall(0, 'none', { device_id: laptop.id }),
        );

        expect(await spentOf(api)).toBeCloseTo(1.75, 9);
        expect(await spentOf(equivalent)).toBeCloseTo(4, 9);
        expect(await spentOf(laptopApi)).toBeCloseTo(1.5, 9);
        expect(await spentOf(adaApi)).toBeCloseTo(1.5, 9);
      });

      it('count only the current period', async () => {
        const day = await store.budgets.createBudget(newBudget({ period: 'day' }));
        const week = await store.budgets.createBudget(newBudget({ period: 'week' }));
        const month = await store.budgets.createBudget(newBudget({ period: 'month' }));

        await storeCalls(
          pricedCall(1, 'exact', { started_at: '2026-12-09T00:00:00.000Z' }),
          pricedCall(2, 'exact', { started_at: '2026-12-08T23:59:59.999Z' }),
          pricedCall(4, 'exact', { started_at: '2026-12-06T12:00:00.000Z' }),
          pricedCall(8, 'exact', { started_at: '2026-11-30T12:00:00.000Z' }),
        );

        expect(await spentOf(day)).toBeCloseTo(1, 9);
        expect(await spentOf(week)).toBeCloseTo(3, 9);
        expect(await spentOf(month)).toBeCloseTo(7, 9);
        const usage = await store.budgets.listBudgetUsage({ workspaceId, now: NOW });
        expect(usage.find((entry) => entry.budget.id === week.id)).toMatchObject({
          periodStartMs: Date.parse('2026-12-07T00:00:00.000Z'),
          periodEndMs: Date.parse('2026-12-14T00:00:00.000Z'),
          maxCallUsd: 8,
        });
      });

      it('count a call stored twice once', async () => {
        const budget = await store.budgets.createBudget(newBudget());
        const record = pricedCall(2, 'exact');

        await storeCalls(record);
        await storeCalls(record, record);

        expect(await spentOf(budget)).toBeCloseTo(2, 9);
      });

      it('follow re-pricing and outlast deleted calls', async () => {
        const budget = await store.budgets.createBudget(newBudget());
        const record = pricedCall(2, 'exact');
        await storeCalls(record);

        expect(await store.updateCallCosts([{ id: record.id, cost: cost(3.5, 'exact') }])).toBe(1);
        expect(await spentOf(budget)).toBeCloseTo(3.5, 9);

        await store.updateCallCosts([{ id: record.id, cost: cost(3.5, 'api_equivalent') }]);
        expect(await spentOf(budget)).toBeCloseTo(0, 9);

        await store.updateCallCosts([{ id: record.id, cost: cost(1, 'exact') }]);
        await store.deleteCalls({ workspaceId, ids: [record.id] });
        expect(await spentOf(budget)).toBeCloseTo(1, 9);
      });
    });

    describe('leases', () => {
      const period = budgetPeriodBounds('day', NOW);
      const lease = (budget: Budget, holderId: string, wantUsd: number, floorUsd = 0, expiresAtMs = NOW.getTime() + 60_000) =>
        store.budgets.acquireBudgetLease({
          budgetId: budget.id,
          period: 'day',
          periodStartMs: period.startMs,
          holderId,
          wantUsd,
          floorUsd,
          expiresAtMs,
          now: NOW,
        });

      it('grant what is left after spend and other holders', async () => {
        const budget = await store.budgets.createBudget(newBudget({ amountUsd: 10 }));
        await storeCalls(pricedCall(3, 'exact'));

        expect(await lease(budget, 'a', 4)).toEqual({ reservedUsd: 4, amountUsd: 10, spentUsd: 3, othersReservedUsd: 0 });
        expect(await lease(budget, 'b', 5)).toMatchObject({ reservedUsd: 3, othersReservedUsd: 4 });
        expect(await lease(budget, 'c', 1)).toMatchObject({ reservedUsd: 0, othersReservedUsd: 7 });
      });

      it('grant at least the floor', async () => {
        const budget = await store.budgets.createBudget(newBudget({ amountUsd: 1 }));
        await storeCalls(pricedCall(1, 'exact'));

        expect(await lease(budget, 'a', 2, 0.5)).toMatchObject({ reservedUsd: 0.5, spentUsd: 1 });
      });

      it('replace a holder lease and ignore expired ones', async () => {
        const budget = await store.budgets.createBudget(newBudget({ amountUsd: 10 }));
        await lease(budget, 'a', 8);
        await lease(budget, 'gone', 1, 0, NOW.getTime() - 1);

        expect(await lease(budget, 'a', 2)).toMatchObject({ reservedUsd: 2, othersReservedUsd: 0 });
        expect(await lease(budget, 'b', 9)).toMatchObject({ reservedUsd: 8, othersReservedUsd: 2 });

        await store.budgets.releaseBudgetLeases('a');
        expect(await lease(budget, 'b', 10)).toMatchObject({ reservedUsd: 10, othersReservedUsd: 0 });
      });

      it('grant nothing for a changed period or a deleted budget', async () => {
        const budget = await store.budgets.createBudget(newBudget());

        await store.budgets.updateBudget(workspaceId, budget.id, { period: 'month' });
        expect(await lease(budget, 'a', 1)).toBeNull();

        await store.budgets.deleteBudget(workspaceId, budget.id);
        expect(await lease(budget, 'a', 1)).toBeNull();
      });

      it('never grant the same dollar twice to concurrent holders', async () => {
        const budget = await store.budgets.createBudget(newBudget({ amountUsd: 10 }));

        const leases = await Promise.all(Array.from({ length: 12 }, (_, index) => lease(budget, `holder-${index}`, 3)));

        const granted = leases.reduce((sum, entry) => sum + entry!.reservedUsd, 0);
        expect(granted).toBeCloseTo(10, 9);
        expect(leases.filter((entry) => entry!.reservedUsd === 3)).toHaveLength(3);
      });
    });

    describe('alerts', () => {
      function newAlert(budget: Budget, overrides: Partial<NewBudgetAlert> = {}): NewBudgetAlert {
        return {
          workspaceId,
          budgetId: budget.id,
          budgetName: budget.name,
          periodStartMs: budgetPeriodBounds('day', NOW).startMs,
          level: 'threshold',
          spentUsd: 8.5,
          amountUsd: 10,
          message: 'daily API spend reached 85%',
          emails: ['ops@example.com'],
          webhook: { state: 'pending', attempts: 0, nextAttemptAtMs: NOW.getTime(), lastError: null },
          email: { state: 'none', attempts: 0, nextAttemptAtMs: null, lastError: null },
          ...overrides,
        };
      }

      it('records each level once per period', async () => {
        const budget = await store.budgets.createBudget(newBudget());

        const first = await store.budgets.recordBudgetAlert(newAlert(budget));
        expect(first).toMatchObject({ level: 'threshold', emails: ['ops@example.com'] });
        expect(await store.budgets.recordBudgetAlert(newAlert(budget, { spentUsd: 9 }))).toBeNull();
        const limit = await store.budgets.recordBudgetAlert(newAlert(budget, { level: 'limit' }));
        const nextDay = await store.budgets.recordBudgetAlert(
          newAlert(budget, { periodStartMs: budgetPeriodBounds('day', new Date('2026-12-10T01:00:00Z')).startMs }),
        );

        const listed = await store.budgets.listBudgetAlerts(workspaceId, 10);
        expect(listed.map((alert) => alert.id).sort()).toEqual([first!.id, limit!.id, nextDay!.id].sort());
        const times = listed.map((alert) => alert.createdAt);
        expect(times).toEqual([...times].sort().reverse());
        expect(await store.budgets.listBudgetAlerts((await store.createWorkspace({ name: 'other' })).id, 10)).toEqual([]);
      });

      it('lists due deliveries and records their outcome', async () => {
        const budget = await store.budgets.createBudget(newBudget());
        const due = await store.budgets.recordBudgetAlert(newAlert(budget));
        await store.budgets.recordBudgetAlert(
          newAlert(budget, {
            level: 'limit',
            webhook: { state: 'pending', attempts: 1, nextAttemptAtMs: NOW.getTime() + 60_000, lastError: 'HTTP 500' },
          }),
        );

        expect((await store.budgets.listDueBudgetAlerts(NOW, 10)).map((alert) => alert.id)).toEqual([due!.id]);

        const sent = { state: 'sent' as const, attempts: 1, nextAttemptAtMs: null, lastError: null };
        await store.budgets.updateBudgetAlertDelivery(due!.id, 'webhook', sent);

        expect(await store.budgets.listDueBudgetAlerts(NOW, 10)).toEqual([]);
        const [stored] = (await store.budgets.listBudgetAlerts(workspaceId, 10)).filter((alert) => alert.id === due!.id);
        expect(stored?.webhook).toEqual(sent);
        expect(stored?.email).toEqual({ state: 'none', attempts: 0, nextAttemptAtMs: null, lastError: null });
      });

      it('go with their budget', async () => {
        const budget = await store.budgets.createBudget(newBudget());
        await store.budgets.recordBudgetAlert(newAlert(budget));

        await store.budgets.deleteBudget(workspaceId, budget.id);

        expect(await store.budgets.listBudgetAlerts(workspaceId, 10)).toEqual([]);
      });
    });
  });
}
