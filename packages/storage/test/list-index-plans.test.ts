import { createHash, randomUUID } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { budgetPeriodBounds, type ListPage, type PageRequest, PostgresStore, SqliteStore, type Store } from '@tokenwise/storage';
import Database from 'better-sqlite3';
import pg from 'pg';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { createTestSchema, describeWithPostgres, type TestSchema } from './postgres-test-database.js';
import { fullRecord } from './sample-calls.js';

/**
 * The query plans of the paginated lists: every page query must read the index in its list's order and
 * sort nothing, and a page after a cursor must start its index range at the cursor. A missing index, or
 * a WHERE or ORDER BY that stops matching it, shows up as a temp B-tree in SQLite and a Sort node in
 * PostgreSQL. The plans are those of the exact SQL and parameters the store sends.
 */

interface Seeded {
  workspaceId: string;
  userId: string;
}

interface PageQuery {
  list: string;
  /** The index that must serve the page query. */
  index: string;
  /** The first sort column, which bounds the index range of a page after a cursor. */
  firstColumn: string;
  read(store: Store, seeded: Seeded, page: PageRequest): Promise<ListPage<unknown>>;
}

const PAGE_QUERIES: PageQuery[] = [
  {
    list: 'devices',
    index: 'devices_by_workspace_created',
    firstColumn: 'created_at',
    read: (store, seeded, page) => store.listDevicesPage(seeded.workspaceId, page),
  },
  {
    list: 'route tokens',
    index: 'route_tokens_by_workspace_created',
    firstColumn: 'created_at',
    read: (store, seeded, page) => store.listRouteTokensPage(seeded.workspaceId, page),
  },
  {
    list: 'invites',
    index: 'invites_by_workspace_created',
    firstColumn: 'created_at',
    read: (store, seeded, page) => store.listInvitesPage(seeded.workspaceId, page),
  },
  {
    list: 'members',
    index: 'memberships_by_workspace_created',
    firstColumn: 'created_at',
    read: (store, seeded, page) => store.listMembersPage(seeded.workspaceId, page),
  },
  {
    list: 'API tokens of a person',
    index: 'api_tokens_by_user_created',
    firstColumn: 'created_at',
    read: (store, seeded, page) => store.listUserApiTokensPage(seeded.userId, page),
  },
  {
    list: 'custom prices',
    index: 'custom_prices_by_workspace_effective',
    firstColumn: 'effective_from_ms',
    read: (store, seeded, page) => store.listCustomPricesPage(seeded.workspaceId, page),
  },
  {
    list: 'budgets',
    index: 'budgets_by_workspace_created',
    firstColumn: 'created_at',
    read: (store, seeded, page) => store.budgets.listBudgetUsagePage({ workspaceId: seeded.workspaceId, now: new Date() }, page),
  },
  {
    list: 'budget alerts',
    index: 'budget_alerts_by_workspace_created',
    firstColumn: 'created_at',
    read: (store, seeded, page) => store.budgets.listBudgetAlertsPage(seeded.workspaceId, page),
  },
  {
    list: 'insights',
    index: 'insights_by_workspace_observed',
    firstColumn: 'observed_at_ms',
    read: (store, seeded, page) => store.listInsightsPage({ workspaceId: seeded.workspaceId }, page),
  },
  {
    list: 'rate limits',
    index: 'call_rate_limits_latest',
    firstColumn: 'device_id',
    read: (store, seeded, page) => store.listRateLimitsPage(seeded.workspaceId, page),
  },
];

interface Statement {
  sql: string;
  params: readonly unknown[];
}

interface Plan {
  /** The plan as text, for failure messages. */
  text: string;
  /** The steps that sort rows. */
  sorts: string[];
  /** The indexes read, each with the condition that bounds its range. */
  indexes: { name: string; condition: string }[];
}

type Explain = (statement: Statement) => Promise<Plan>;

/** Three of each item in the listed workspace, and one in another workspace that shares the tables. */
async function seed(store: Store): Promise<Seeded> {
  const [mine, other] = [await store.createWorkspace({ name: 'A' }), await store.createWorkspace({ name: 'B' })];
  const owner = await store.createUser({ email: 'owner@example.com', name: 'Owner', passwordHash: 'scrypt$hash' });
  let secrets = 0;
  const hash = () => {
    secrets += 1;
    return createHash('sha256').update(`secret ${secrets}`).digest('hex');
  };

  for (const [workspace, count] of [
    [mine, 3],
    [other, 1],
  ] as const) {
    for (let index = 0; index < count; index += 1) {
      const workspaceId = workspace.id;
      const device = await store.createDevice({ workspaceId, name: `laptop ${index}` });
      await store.createRouteToken({ workspaceId, deviceId: device.id, name: 'token', tokenSha256: hash() });
      await store.createInvite({
        workspaceId,
        role: 'member',
        email: null,
        tokenSha256: hash(),
        createdByUserId: null,
        expiresAt: '2030-01-01T00:00:00.000Z',
      });
      const member = await store.createUser({ email: `member${secrets}@example.com`, name: 'Member', passwordHash: 'scrypt$hash' });
      await store.addMembership({ workspaceId, userId: member.id, role: 'member' });
      await store.createApiToken({ workspaceId, userId: owner.id, name: 'script', tokenSha256: hash() });
      await store.createCustomPrice({
        workspaceId,
        model: `model-${index}`,
        provider: null,
        effectiveFrom: `2026-0${index + 1}-01T00:00:00.000Z`,
        input_mtok: 1,
        output_mtok: 2,
        cache_read_mtok: null,
        cache_write_mtok: null,
        cache_write_1h_mtok: null,
        createdBy: null,
      });
      const budget = await store.budgets.createBudget({
        workspaceId,
        name: 'daily API spend',
        scope: 'workspace',
        scopeId: null,
        costKind: 'api',
        period: 'day',
        amountUsd: 10,
        alertThreshold: 0.8,
        action: 'alert',
        webhookUrl: null,
        emails: [],
        createdBy: null,
      });
      await store.budgets.recordBudgetAlert({
        workspaceId,
        budgetId: budget.id,
        budgetName: budget.name,
        periodStartMs: budgetPeriodBounds('day', new Date()).startMs,
        level: 'threshold',
        spentUsd: 8,
        amountUsd: 10,
        message: 'daily API spend reached 80%',
        emails: [],
        webhook: { state: 'none', attempts: 0, nextAttemptAtMs: null, lastError: null },
        email: { state: 'none', attempts: 0, nextAttemptAtMs: null, lastError: null },
      });
      await store.upsertInsights([
        {
          id: randomUUID(),
          workspaceId,
          kind: 'version_change',
          groupId: randomUUID(),
          versionId: null,
          observedAtMs: Date.UTC(2026, 0, index + 1),
          summary: 'new version',
          details: '{}',
        },
      ]);
      const record = {
        ...fullRecord({ id: randomUUID(), workspace_id: workspaceId, device_id: device.id }),
        rate_limits: { 'retry-after': '1' },
      };
      await store.insertCalls([{ record, bodies: null }]);
    }
  }
  return { workspaceId: mine.id, userId: owner.id };
}

/**
 * Record each statement the store reads with, by wrapping the SQL runner that its `sql()` hands out.
 * `sql()` is protected, so the test reaches it through a cast.
 */
function recordReads(store: Store): Statement[] {
  type Runner = { all(sql: string, params: readonly unknown[]): Promise<unknown[]> };
  const target = store as unknown as { sql(): Runner };
  const original = target.sql.bind(store);
  const statements: Statement[] = [];
  vi.spyOn(target, 'sql').mockImplementation(() => {
    const runner = original();
    return {
      ...runner,
      all: (sql: string, params: readonly unknown[]) => {
        statements.push({ sql, params });
        return runner.all(sql, params);
      },
    };
  });
  return statements;
}

function describePlans(name: string, open: () => Promise<{ store: Store; explain: Explain; close(): Promise<void> }>): void {
  describe(`${name}: list page plans`, () => {
    let opened: Awaited<ReturnType<typeof open>>;
    let seeded: Seeded;
    let reads: Statement[];

    beforeEach(async () => {
      opened = await open();
      seeded = await seed(opened.store);
      reads = recordReads(opened.store);
    });

    afterEach(async () => {
      vi.restoreAllMocks();
      await opened.close();
    });

    /** Read one page and return the first statement it ran, which is the page query. */
    async function pageQuery(query: PageQuery, page: PageRequest): Promise<{ page: ListPage<unknown>; statement: Statement }> {
      reads.length = 0;
      const result = await query.read(opened.store, seeded, page);
      expect(reads.length, `${query.list} ran no query`).toBeGreaterThan(0);
      return { page: result, statement: reads[0]! };
    }

    describe.each(PAGE_QUERIES)('$list', (query) => {
      it('reads its index without sorting', async () => {
        const { statement } = await pageQuery(query, { limit: 1 });

        const plan = await opened.explain(statement);

        expect(
          plan.indexes.map((index) => index.name),
          plan.text,
        ).toContain(query.index);
        expect(plan.sorts, plan.text).toEqual([]);
      });

      it('starts the index range at the cursor', async () => {
        const first = await pageQuery(query, { limit: 1 });
        expect(first.page.nextCursor).not.toBeNull();
        const { statement } = await pageQuery(query, { limit: 1, cursor: first.page.nextCursor! });

        const plan = await opened.explain(statement);

        const used = plan.indexes.find((index) => index.name === query.index);
        expect(used?.condition, plan.text).toMatch(new RegExp(`\\b${query.firstColumn}\\s*[<>]`));
        expect(plan.sorts, plan.text).toEqual([]);
      });
    });
  });
}

describePlans('SqliteStore', async () => {
  const dir = await mkdtemp(join(tmpdir(), 'tokenwise-plans-'));
  const store = new SqliteStore(join(dir, 'tokenwise.db'));
  const db = new Database(join(dir, 'tokenwise.db'), { readonly: true });
  return {
    store,
    explain: async ({ sql, params }) => {
      const bound = params.map((value) => (typeof value === 'boolean' ? Number(value) : value));
      const details = db
        .prepare<unknown[], { detail: string }>(`EXPLAIN QUERY PLAN ${sql}`)
        .all(...bound)
        .map((row) => row.detail);
      return {
        text: details.join('\n'),
        sorts: details.filter((detail) => detail.includes('TEMP B-TREE')),
        indexes: details.flatMap((detail) => {
          const match = /USING (?:COVERING )?INDEX (\w+)(?: \((.*)\))?/.exec(detail);
          return match ? [{ name: match[1]!, condition: match[2] ?? '' }] : [];
        }),
      };
    },
    close: async () => {
      db.close();
      await store.close();
      await rm(dir, { recursive: true, force: true });
    },
  };
});

interface PostgresPlanNode {
  'Node Type': string;
  'Index Name'?: string;
  'Index Cond'?: string;
  Plans?: PostgresPlanNode[];
}

describeWithPostgres('PostgresStore', () => {
  describePlans('PostgresStore', async () => {
    const schema: TestSchema = await createTestSchema();
    const store = await PostgresStore.open(schema.url);
    const client = new pg.Client({ connectionString: schema.url });
    await client.connect();
    // The test tables hold a few rows, where a sequential scan and a sort cost less than any index. With
    // both disabled the planner still sorts when no index has the list's order, so a Sort node still
    // means a missing or unusable index, as it would in a large table.
    await client.query('SET enable_seqscan = off; SET enable_sort = off; SET enable_incremental_sort = off');
    return {
      store,
      explain: async ({ sql, params }) => {
        let placeholder = 0;
        const numbered = sql.replace(/\?/g, () => {
          placeholder += 1;
          return `$${placeholder}`;
        });
        const result = await client.query<{ 'QUERY PLAN': { Plan: PostgresPlanNode }[] }>(`EXPLAIN (FORMAT JSON) ${numbered}`, [...params]);
        const nodes: PostgresPlanNode[] = [];
        const visit = (node: PostgresPlanNode) => {
          nodes.push(node);
          for (const child of node.Plans ?? []) visit(child);
        };
        visit(result.rows[0]!['QUERY PLAN'][0]!.Plan);
        return {
          text: JSON.stringify(result.rows[0]!['QUERY PLAN'], null, 1),
          sorts: nodes.filter((node) => node['Node Type'].endsWith('Sort')).map((node) => node['Node Type']),
          indexes: nodes.flatMap((node) => (node['Index Name'] ? [{ name: node['Index Name'], condition: node['Index Cond'] ?? '' }] : [])),
        };
      },
      close: async () => {
        await client.end();
        await store.close();
        await schema.drop();
      },
    };
  });
});
