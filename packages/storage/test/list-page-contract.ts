import { createHash, randomUUID } from 'node:crypto';
import type { CallRecord } from '@tokenwise/core';
import { type Budget, budgetPeriodBounds, type ListPage, type PageRequest, type Store } from '@tokenwise/storage';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { fullRecord } from './sample-calls.js';
import type { StoreHandle } from './store-contract.js';

/** A store factory that takes the clock the store stamps `created_at` with. */
export type ClockedStoreFactory = (options: { clock: () => Date }) => Promise<StoreHandle>;

/** A sort key element that orders from high to low. */
interface Descending {
  descending: string | number;
}

/** An item of any paged list, reduced to what its order depends on. */
interface Keyed {
  id: string;
  /** The sort key, compared element by element: strings by code point, numbers numerically. */
  key: (string | number | Descending)[];
}

interface Fixture {
  store: Store;
  /** Sets the time the store stamps on rows created next. */
  at(iso: string): void;
  /** The time set last. */
  now(): Date;
  /** A fresh SHA-256 hex digest, for tokens and invites. */
  hash(): string;
}

interface SeededList {
  /** The items of the listed owner (workspace or person) in any order. */
  items: Keyed[];
  /** Reads one page of the listed owner's items. */
  page(request: PageRequest): Promise<ListPage<Keyed>>;
  /** The whole list as the unpaged method returns it. */
  all(): Promise<Keyed[]>;
  /** Adds one item to the listed owner. */
  add(): Promise<Keyed>;
  /** Removes one item, so a cursor may point at a row that is gone; null for lists the store never shortens. */
  remove: ((id: string) => Promise<void>) | null;
}

/** Creation times the seeds use: a tie of three, one later, and one earlier made last (another server's clock). */
const SEED_TIMES = [
  '2026-05-01T10:00:00.000Z',
  '2026-05-01T10:00:00.000Z',
  '2026-05-01T10:00:00.000Z',
  '2026-05-01T11:00:00.000Z',
  '2026-05-01T09:00:00.000Z',
];
const LATER = '2026-05-02T00:00:00.000Z';

const byCreation = (item: { id: string; createdAt: string }): Keyed => ({ id: item.id, key: [item.createdAt, item.id] });

/** Seed five items of the list for one owner and two for another; each case lists the first owner's. */
const LISTS: Record<string, (fixture: Fixture) => Promise<SeededList>> = {
  async devices({ store, at }) {
    const [mine, theirs] = [await store.createWorkspace({ name: 'A' }), await store.createWorkspace({ name: 'B' })];
    const create = async (workspaceId: string) => byCreation(await store.createDevice({ workspaceId, name: 'laptop' }));
    return seed(
      at,
      () => create(mine.id),
      () => create(theirs.id),
      {
        page: async (request) => keyed(await store.listDevicesPage(mine.id, request), byCreation),
        all: async () => (await store.listDevices(mine.id)).map(byCreation),
        remove: async (id) => void (await store.deleteDevice(id, { withCalls: false })),
      },
    );
  },

  async 'route tokens'({ store, at, hash }) {
    const [mine, theirs] = [await store.createWorkspace({ name: 'A' }), await store.createWorkspace({ name: 'B' })];
    const create = async (workspaceId: string) =>
      byCreation(await store.createRouteToken({ workspaceId, deviceId: null, name: 'token', tokenSha256: hash() }));
    return seed(
      at,
      () => create(mine.id),
      () => create(theirs.id),
      {
        page: async (request) => keyed(await store.listRouteTokensPage(mine.id, request), byCreation),
        all: async () => (await store.listRouteTokens(mine.id)).map(byCreation),
        // The store deletes route tokens only with their device or workspace; a revoked token stays listed.
        remove: null,
      },
    );
  },

  async 'API tokens of a person'({ store, at, hash }) {
    const workspace = await store.createWorkspace({ name: 'A' });
    const [me, other] = [await newUser(store, 'me@example.com'), await newUser(store, 'other@example.com')];
    const create = async (userId: string) =>
      byCreation(await store.createApiToken({ workspaceId: workspace.id, userId, name: 'script', tokenSha256: hash() }));
    const revoked = await create(me.id);
    await store.revokeApiToken(revoked.id);
    return seed(
      at,
      () => create(me.id),
      () => create(other.id),
      {
        page: async (request) => keyed(await store.listUserApiTokensPage(me.id, request), byCreation),
        all: async () => (await store.listUserApiTokens(me.id)).map(byCreation),
        // A revoked token leaves the list, as it leaves `listUserApiTokens`.
        remove: async (id) => void (await store.revokeApiToken(id)),
      },
    );
  },

  async invites({ store, at, hash }) {
    const [mine, theirs] = [await store.createWorkspace({ name: 'A' }), await store.createWorkspace({ name: 'B' })];
    const create = async (workspaceId: string) =>
      byCreation(
        await store.createInvite({
          workspaceId,
          role: 'member',
          email: null,
          tokenSha256: hash(),
          createdByUserId: null,
          expiresAt: '2026-06-01T00:00:00.000Z',
        }),
      );
    return seed(
      at,
      () => create(mine.id),
      () => create(theirs.id),
      {
        page: async (request) => keyed(await store.listInvitesPage(mine.id, request), byCreation),
        all: async () => (await store.listInvites(mine.id)).map(byCreation),
        remove: null,
      },
    );
  },

  async members({ store, at }) {
    const [mine, theirs] = [await store.createWorkspace({ name: 'A' }), await store.createWorkspace({ name: 'B' })];
    let people = 0;
    const create = async (workspaceId: string) => {
      people += 1;
      const user = await newUser(store, `person${people}@example.com`);
      return byCreation(await store.addMembership({ workspaceId, userId: user.id, role: 'member' }));
    };
    return seed(
      at,
      () => create(mine.id),
      () => create(theirs.id),
      {
        page: async (request) => keyed(await store.listMembersPage(mine.id, request), byCreation),
        all: async () => (await store.listMembers(mine.id)).map(byCreation),
        remove: async (membershipId) => {
          const member = (await store.listMembers(mine.id)).find((item) => item.id === membershipId)!;
          await store.removeMembership(mine.id, member.userId);
        },
      },
    );
  },

  async 'workspaces of a person'({ store, at }) {
    const [me, other] = [await newUser(store, 'me@example.com'), await newUser(store, 'other@example.com')];
    const byWorkspace = (membership: { workspace: { id: string; createdAt: string } }): Keyed => ({
      id: membership.workspace.id,
      key: [membership.workspace.createdAt, membership.workspace.id],
    });
    const create = async (userId: string) => {
      const workspace = await store.createWorkspace({ name: 'team' });
      await store.addMembership({ workspaceId: workspace.id, userId, role: 'owner' });
      return byWorkspace({ workspace });
    };
    return seed(
      at,
      () => create(me.id),
      () => create(other.id),
      {
        page: async (request) => keyed(await store.listMembershipsOfUserPage(me.id, request), byWorkspace),
        all: async () => (await store.listMembershipsOfUser(me.id)).map(byWorkspace),
        remove: async (workspaceId) => void (await store.removeMembership(workspaceId, me.id)),
      },
    );
  },

  async 'custom prices'({ store, at }) {
    const [mine, theirs] = [await store.createWorkspace({ name: 'A' }), await store.createWorkspace({ name: 'B' })];
    // Two prices share an effective time and a creation time, so only the id orders them.
    const effective = ['2026-04-01T00:00:00.000Z', '2026-04-01T00:00:00.000Z', '2026-03-01T00:00:00.000Z', '2026-04-01T00:00:00.000Z'];
    let pricesCreated = 0;
    const byPrice = (price: { id: string; effectiveFrom: string; createdAt: string }): Keyed => ({
      id: price.id,
      // Newest effective first, then newest created, then by id: negated times sort the first two descending.
      key: [-Date.parse(price.effectiveFrom), -Date.parse(price.createdAt), price.id],
    });
    const create = async (workspaceId: string) => {
      const effectiveFrom = effective[pricesCreated % effective.length]!;
      pricesCreated += 1;
      const price = await store.createCustomPrice({
        workspaceId,
        model: 'gpt-5',
        provider: null,
        effectiveFrom,
        input_mtok: pricesCreated,
        output_mtok: pricesCreated,
        cache_read_mtok: null,
        cache_write_mtok: null,
        cache_write_1h_mtok: null,
        createdBy: null,
      });
      return byPrice(price);
    };
    return seed(
      at,
      () => create(mine.id),
      () => create(theirs.id),
      {
        page: async (request) => keyed(await store.listCustomPricesPage(mine.id, request), byPrice),
        all: async () => (await store.listCustomPrices(mine.id)).map(byPrice),
        remove: async (id) => void (await store.deleteCustomPrice(mine.id, id)),
      },
    );
  },

  async budgets({ store, at, now }) {
    const [mine, theirs] = [await store.createWorkspace({ name: 'A' }), await store.createWorkspace({ name: 'B' })];
    const byBudget = (usage: { budget: Budget }): Keyed => byCreation(usage.budget);
    const create = async (workspaceId: string) => byCreation(await store.budgets.createBudget(newBudget(workspaceId)));
    return seed(
      at,
      () => create(mine.id),
      () => create(theirs.id),
      {
        page: async (request) => keyed(await store.budgets.listBudgetUsagePage({ workspaceId: mine.id, now: now() }, request), byBudget),
        all: async () => (await store.budgets.listBudgetUsage({ workspaceId: mine.id, now: now() })).map(byBudget),
        remove: async (id) => void (await store.budgets.deleteBudget(mine.id, id)),
      },
    );
  },

  async 'budget alerts'({ store, at }) {
    const [mine, theirs] = [await store.createWorkspace({ name: 'A' }), await store.createWorkspace({ name: 'B' })];
    const budgets = {
      [mine.id]: await store.budgets.createBudget(newBudget(mine.id)),
      [theirs.id]: await store.budgets.createBudget(newBudget(theirs.id)),
    };
    // An alert is unique per budget, period and level, so each one gets a period of its own.
    let periods = 0;
    const byAlert = (alert: { id: string; createdAt: string }): Keyed => ({
      id: alert.id,
      key: [{ descending: alert.createdAt }, { descending: alert.id }],
    });
    const create = async (workspaceId: string) => {
      periods += 1;
      const budget = budgets[workspaceId]!;
      const alert = await store.budgets.recordBudgetAlert({
        workspaceId,
        budgetId: budget.id,
        budgetName: budget.name,
        periodStartMs: budgetPeriodBounds('day', new Date(Date.UTC(2026, 0, periods))).startMs,
        level: 'threshold',
        spentUsd: 8,
        amountUsd: 10,
        message: 'daily API spend reached 80%',
        emails: [],
        webhook: { state: 'none', attempts: 0, nextAttemptAtMs: null, lastError: null },
        email: { state: 'none', attempts: 0, nextAttemptAtMs: null, lastError: null },
      });
      return byAlert(alert!);
    };
    return seed(
      at,
      () => create(mine.id),
      () => create(theirs.id),
      {
        page: async (request) => keyed(await store.budgets.listBudgetAlertsPage(mine.id, request), byAlert),
        all: async () => (await store.budgets.listBudgetAlerts(mine.id, 100)).map(byAlert),
        // The store deletes alerts only with their budget.
        remove: null,
      },
    );
  },

  async insights({ store, at, now }) {
    const byInsight = (insight: { id: string; observedAt: string }): Keyed => ({
      id: insight.id,
      key: [{ descending: Date.parse(insight.observedAt) }, insight.id],
    });
    // Each insight has a group of its own, so replacing that group's insights with none removes it.
    const groupOf = new Map<string, string>();
    const create = async (workspaceId: string) => {
      const insight = {
        id: randomUUID(),
        workspaceId,
        kind: 'version_change' as const,
        groupId: randomUUID(),
        versionId: null,
        // Observed at the seed's time, which makes ties the id breaks.
        observedAtMs: now().getTime(),
        summary: 'new version',
        details: '{}',
      };
      await store.upsertInsights([insight]);
      groupOf.set(insight.id, insight.groupId);
      return byInsight({ id: insight.id, observedAt: new Date(insight.observedAtMs).toISOString() });
    };
    return seed(
      at,
      () => create('ws-mine'),
      () => create('ws-theirs'),
      {
        page: async (request) => keyed(await store.listInsightsPage({ workspaceId: 'ws-mine' }, request), byInsight),
        all: async () => (await store.listInsights({ workspaceId: 'ws-mine', limit: 100 })).map(byInsight),
        remove: async (id) => void (await store.replaceGroupInsights('ws-mine', groupOf.get(id)!, [])),
      },
    );
  },

  async 'rate limits'({ store, at }) {
    // Devices with calls on several routes and tools, so device, route and tool all take part in the order.
    const KEYS = [
      ['dev-b', 'chatgpt', 'codex'],
      ['dev-a', 'anthropic', 'claude-code'],
      ['dev-b', 'anthropic', 'claude-code'],
      ['dev-a', 'anthropic', 'claude-cli'],
      ['dev-a', 'chatgpt', 'codex'],
      ['dev-c', 'anthropic', 'claude-code'],
    ] as const;
    const created = new Map<string, number>();
    const callOf = new Map<string, string>();
    const bySnapshot = (snapshot: { deviceId: string; route: string; tool: string }): Keyed => ({
      id: `${snapshot.deviceId}/${snapshot.route}/${snapshot.tool}`,
      key: [snapshot.deviceId, snapshot.route, snapshot.tool],
    });
    const create = async (workspaceId: string) => {
      const index = created.get(workspaceId) ?? 0;
      created.set(workspaceId, index + 1);
      const [deviceId, route, tool] = KEYS[index]!;
      const record: CallRecord = {
        ...fullRecord({ id: randomUUID(), workspace_id: workspaceId, device_id: deviceId, route, tool }),
        rate_limits: { 'retry-after': String(index) },
      };
      await store.insertCalls([{ record, bodies: null }]);
      const snapshot = bySnapshot({ deviceId, route, tool });
      callOf.set(`${workspaceId} ${snapshot.id}`, record.id);
      return snapshot;
    };
    return seed(
      at,
      () => create('ws-mine'),
      () => create('ws-theirs'),
      {
        page: async (request) => keyed(await store.listRateLimitsPage('ws-mine', request), bySnapshot),
        all: async () => (await store.latestRateLimits('ws-mine')).map(bySnapshot),
        remove: async (id) => void (await store.deleteCalls({ workspaceId: 'ws-mine', ids: [callOf.get(`ws-mine ${id}`)!] })),
      },
    );
  },

  async 'prompt groups'({ store, at }) {
    // The cost in USD of each new group's calls: a tie in cost that the call count breaks, and ties in both that the id breaks.
    const CALL_COSTS = [[0.02], [0.02], [0.01, 0.01], [0.03], [0.02], [0.005]];
    const created = new Map<string, number>();
    const callsOf = new Map<string, string[]>();
    const byGroup = (id: string, costUsd: number, calls: number): Keyed => ({
      id,
      key: [{ descending: Math.round(costUsd * 1e9) }, { descending: calls }, id],
    });
    const create = async (workspaceId: string) => {
      const index = created.get(workspaceId) ?? 0;
      created.set(workspaceId, index + 1);
      const costs = CALL_COSTS[index]!;
      const groupId = randomUUID();
      const records = costs.map((usd) =>
        fullRecord({ id: randomUUID(), workspace_id: workspaceId, cost: { ...fullRecord().cost, usd, basis: 'exact' } }),
      );
      const refs = await store.insertCalls(records.map((record) => ({ record, bodies: null })));
      await store.saveInsightBatch({
        groups: [{ id: groupId, workspaceId, tool: 'claude-code', kind: 'not_kept', templateKey: null, opening: null }],
        versions: [],
        calls: records.map((record) => ({
          callId: record.id,
          workspaceId,
          deviceId: record.device_id,
          sessionId: null,
          startedAtMs: Date.parse(record.started_at),
          groupId,
          versionId: null,
          requestSha256: null,
        })),
        scores: [],
        cursor: refs.at(-1)!.cursor,
      });
      callsOf.set(
        groupId,
        records.map((record) => record.id),
      );
      return byGroup(
        groupId,
        costs.reduce((sum, usd) => sum + usd, 0),
        costs.length,
      );
    };
    const fromSummary = (summary: { group: { id: string }; sums: { apiUsd: number; apiEquivalentUsd: number; calls: number } }) =>
      byGroup(summary.group.id, summary.sums.apiUsd + summary.sums.apiEquivalentUsd, summary.sums.calls);
    return seed(
      at,
      () => create('ws-mine'),
      () => create('ws-theirs'),
      {
        page: async (request) => keyed(await store.listPromptGroupsPage({ workspaceId: 'ws-mine' }, request), fromSummary),
        // The unpaged method returns the groups in no particular order.
        all: async () => sortKeyed((await store.listPromptGroups({ workspaceId: 'ws-mine' })).map(fromSummary)),
        remove: async (id) => void (await store.deleteCalls({ workspaceId: 'ws-mine', ids: callsOf.get(id)! })),
      },
    );
  },
};

function newBudget(workspaceId: string) {
  return {
    workspaceId,
    name: 'daily API spend',
    scope: 'workspace' as const,
    scopeId: null,
    costKind: 'api' as const,
    period: 'day' as const,
    amountUsd: 10,
    alertThreshold: 0.8,
    action: 'alert' as const,
    webhookUrl: null,
    emails: [],
    createdBy: null,
  };
}

/**
 * Cursor pagination of the short lists: devices, route and API tokens, invites, members, a person's
 * workspaces, custom prices, budgets and their alerts, insights, rate limits and prompt groups. Every list must page in a total order, stay within its workspace or
 * person, and reject cursors it did not issue.
 */
export function describeListPageContract(name: string, createStore: ClockedStoreFactory): void {
  describe(`${name}: list page contract`, () => {
    let handle: StoreHandle;
    let fixture: Fixture;

    beforeEach(async () => {
      let now = new Date('2026-05-01T08:00:00.000Z');
      let hashes = 0;
      handle = await createStore({ clock: () => now });
      fixture = {
        store: handle.store,
        at: (iso) => {
          now = new Date(iso);
        },
        now: () => now,
        hash: () => {
          hashes += 1;
          return createHash('sha256').update(`secret ${hashes}`).digest('hex');
        },
      };
    });

    afterEach(async () => {
      await handle.store.close();
      await handle.cleanup?.();
    });

    describe.each(Object.keys(LISTS))('%s', (list) => {
      const seedList = () => LISTS[list]!(fixture);

      it('pages through every item once in order', async () => {
        const seeded = await seedList();
        const expected = sortKeyed(seeded.items).map((item) => item.id);

        const pages = await readAllPages(seeded, 2);

        expect(pages.map((page) => page.items.length)).toEqual([2, 2, 1]);
        expect(pages.flatMap((page) => page.items.map((item) => item.id))).toEqual(expected);
        expect(pages.at(-1)!.nextCursor).toBeNull();
        expect((await seeded.all()).map((item) => item.id)).toEqual(expected);
      });

      it('ends without a cursor when the last page is full', async () => {
        const seeded = await seedList();

        const page = await seeded.page({ limit: seeded.items.length });

        expect(page.items).toHaveLength(seeded.items.length);
        expect(page.nextCursor).toBeNull();
      });

      it('continues after changes between pages', async () => {
        const seeded = await seedList();
        const first = await seeded.page({ limit: 2 });
        const cursorItem = first.items.at(-1)!;
        fixture.at(LATER);
        const added = await seeded.add();
        // Removing the item the cursor points at must not lose the place.
        if (seeded.remove) await seeded.remove(cursorItem.id);
        const current = [...seeded.items, added].filter((item) => seeded.remove === null || item.id !== cursorItem.id);

        const rest = (await readAllPages(seeded, 2, first.nextCursor!)).flatMap((page) => page.items.map((item) => item.id));

        const after = sortKeyed(current).filter((item) => compareKeyed(item, cursorItem) > 0);
        expect(rest).toEqual(after.map((item) => item.id));
        expect(rest).not.toContain(cursorItem.id);
        expect((await seeded.all()).map((item) => item.id)).toEqual(sortKeyed(current).map((item) => item.id));
      });

      it('rejects a cursor it did not issue', async () => {
        const seeded = await seedList();
        const issued = (await seeded.page({ limit: 2 })).nextCursor!;
        const [listName] = JSON.parse(Buffer.from(issued, 'base64url').toString('utf8')) as [string];
        const cursorOf = (value: unknown[]) => Buffer.from(JSON.stringify(value)).toString('base64url');

        await expect(seeded.page({ limit: 2, cursor: 'not-a-cursor' })).rejects.toThrow(/invalid cursor "not-a-cursor"/);
        await expect(seeded.page({ limit: 2, cursor: cursorOf(['other-list', 'x', 'y']) })).rejects.toThrow(/belongs to another list/);
        await expect(seeded.page({ limit: 2, cursor: cursorOf([listName]) })).rejects.toThrow(/invalid cursor/);
        await expect(seeded.page({ limit: 2, cursor: cursorOf([listName, {}, {}, {}]) })).rejects.toThrow(/invalid cursor/);
        await expect(seeded.page({ limit: 0 })).rejects.toThrow(/invalid limit 0/);
      });
    });
  });
}

async function seed(
  at: (iso: string) => void,
  createMine: () => Promise<Keyed>,
  createTheirs: () => Promise<Keyed>,
  reads: Pick<SeededList, 'page' | 'all' | 'remove'>,
): Promise<SeededList> {
  const items: Keyed[] = [];
  for (const [index, time] of SEED_TIMES.entries()) {
    at(time);
    items.push(await createMine());
    // The other owner's items share the times, so only the WHERE clause keeps them out.
    if (index < 2) await createTheirs();
  }
  return { items, ...reads, add: createMine };
}

async function readAllPages(list: SeededList, limit: number, cursor?: string): Promise<ListPage<Keyed>[]> {
  const pages: ListPage<Keyed>[] = [];
  let next: string | undefined = cursor;
  do {
    const page = await list.page({ limit, ...(next === undefined ? {} : { cursor: next }) });
    pages.push(page);
    next = page.nextCursor ?? undefined;
    expect(pages.length).toBeLessThan(20);
  } while (next !== undefined);
  return pages;
}

function keyed<T>(page: ListPage<T>, toKeyed: (item: T) => Keyed): ListPage<Keyed> {
  return { items: page.items.map(toKeyed), nextCursor: page.nextCursor };
}

function compareKeyed(a: Keyed, b: Keyed): number {
  for (const [index, element] of a.key.entries()) {
    const otherElement = b.key[index]!;
    const direction = typeof element === 'object' ? -1 : 1;
    const value = typeof element === 'object' ? element.descending : element;
    const other = typeof otherElement === 'object' ? otherElement.descending : otherElement;
    if (value < other) return -direction;
    if (value > other) return direction;
  }
  return 0;
}

function sortKeyed(items: Keyed[]): Keyed[] {
  return [...items].sort(compareKeyed);
}

function newUser(store: Store, email: string) {
  return store.createUser({ email, name: email.split('@')[0]!, passwordHash: 'scrypt$hash' });
}
