import { FAKE_CREDENTIALS, type FakeProvider, startFakeProvider } from '@tokenwise/testkit';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { invitePerson, type PairedDevice, type Person, pairDevice, setUpOwner } from './helpers/accounts.js';
import { startTestServer, type TestServer } from './helpers/test-server.js';

/**
 * Cursor pagination of the short lists over HTTP. Ada's workspace contains a few of each item, and Bob's
 * own workspace one of each, so a page that leaked across workspaces would show it. Calls through the
 * proxy to the fake provider give both workspaces prompt groups, insights, rate limits and budget alerts.
 */
let provider: FakeProvider;
let running: TestServer;
let ada: Person;
let bob: Person;

/** Each list route with the key of its items and the field that identifies one. */
const LISTS = [
  { path: '/api/v1/devices', key: 'devices', id: 'id' },
  { path: '/api/v1/route-tokens', key: 'route_tokens', id: 'id' },
  { path: '/api/v1/api-tokens', key: 'api_tokens', id: 'id' },
  { path: '/api/v1/members', key: 'members', id: 'user_id' },
  { path: '/api/v1/invites', key: 'invites', id: 'id' },
  { path: '/api/v1/prices', key: 'prices', id: 'id' },
  { path: '/api/v1/workspaces', key: 'workspaces', id: 'id' },
  { path: '/api/v1/budgets', key: 'budgets', id: 'id' },
  { path: '/api/v1/budget-alerts', key: 'alerts', id: 'id' },
  { path: '/api/v1/prompts', key: 'groups', id: 'id' },
  { path: '/api/v1/insights', key: 'insights', id: 'id' },
  { path: '/api/v1/rate-limits', key: 'rate_limits', id: 'call_id' },
] as const;

/**
 * The system prompts each person's devices send: a group whose prompt changes three times (for Bob once),
 * so the insights job raises a version change for each change, and groups with one version.
 */
const PROMPTS = {
  ada: [
    [
      'You are the payments helper.\nBe brief.',
      'You are the payments helper.\nBe exact.',
      'You are the payments helper.\nBe kind.',
      'You are the payments helper.\nBe calm.',
    ],
    ['You are the website helper.\nBe brief.'],
    ['You are the release helper.\nBe brief.'],
  ],
  bob: [['You are the notes helper.\nBe brief.', 'You are the notes helper.\nBe exact.']],
};

interface ListRoute {
  path: string;
  key: string;
  id: string;
}
interface ListBody {
  next_cursor: string | null;
  [key: string]: unknown;
}

beforeAll(async () => {
  provider = await startFakeProvider({ extraResponseHeaders: { 'anthropic-ratelimit-unified-5h-utilization': '0.42' } });
  running = await startTestServer({ upstreams: { anthropic: provider.url } });
  ada = await setUpOwner(running.server);
  await invitePerson(ada, 'carol@example.com', 'Carol', { role: 'member' });
  await invitePerson(ada, 'dan@example.com', 'Dan', { role: 'member' });
  bob = await invitePerson(ada, 'bob@example.com', 'Bob');

  for (const person of [ada, bob]) {
    const count = person === ada ? 4 : 1;
    for (let index = 0; index < count; index += 1) {
      await expectCreated(person, '/api/v1/route-tokens', { name: `laptop ${index}` });
      await expectCreated(person, '/api/v1/api-tokens', { name: `script ${index}` });
      await expectCreated(person, '/api/v1/invites', { role: 'member' });
      await expectCreated(person, '/api/v1/prices', {
        model: `model-${index}`,
        effective_from: '2026-01-01T00:00:00Z',
        input_mtok: 1,
        output_mtok: 2,
      });
      // The amount is less than one call, so the calls below cross the threshold and the amount: two alerts per budget.
      await expectCreated(person, '/api/v1/budgets', { name: `team ${index}`, period: 'day', amount_usd: 0.000001 });
    }
  }

  // Each group comes from a device of its own, so each workspace has a rate-limit snapshot per group.
  for (const [person, groups] of [
    [ada, PROMPTS.ada],
    [bob, PROMPTS.bob],
  ] as const) {
    for (const [index, versions] of groups.entries()) {
      const device = await pairDevice(running.server, person, `laptop ${index}`);
      for (const system of versions) await sendSystemPrompt(device, system);
    }
    const sent = groups.flat().length;
    await vi.waitFor(async () => {
      const { calls } = (await (await listResponse(person, { path: '/api/v1/calls', key: 'calls', id: 'id' }, {})).json()) as {
        calls: unknown[];
      };
      expect(calls).toHaveLength(sent);
    });
  }
  await running.server.runInsights();
  await running.server.runBudgetAlerts();
  for (const name of ['Side project', 'Experiments']) {
    expect((await ada.browser.api('POST', '/api/v1/workspaces', { name })).status).toBe(201);
  }
});

afterAll(async () => {
  await running?.dispose();
  await provider?.close();
});

describe.each(LISTS)('GET $path', (list) => {
  it('pages through the same items as one large page', async () => {
    const whole = await getList(ada, list, { limit: '500' });
    const items = whole[list.key] as Record<string, unknown>[];
    expect(items.length).toBeGreaterThanOrEqual(3);
    expect(whole.next_cursor).toBeNull();

    const pages = await readAllPages(ada, list, 2);

    expect(pages).toHaveLength(Math.ceil(items.length / 2));
    expect(pages.flat()).toEqual(items);
  });

  it('returns a short list whole without limit', async () => {
    const whole = await getList(ada, list, { limit: '500' });

    const body = await getList(ada, list, {});

    expect(body).toEqual(whole);
  });

  it.each(['0', '501', '2.5', 'ten'])('rejects limit=%s naming the range', async (limit) => {
    const response = await listResponse(ada, list, { limit });
    const body = (await response.json()) as { error: { code: string; message: string } };

    expect(response.status).toBe(400);
    expect(body.error.code).toBe('invalid_argument');
    expect(body.error.message).toBe(`invalid limit "${limit}": expected a whole number from 1 to 500`);
  });

  it('rejects a cursor it did not issue', async () => {
    const garbage = await listResponse(ada, list, { cursor: 'not-a-cursor' });
    const other = LISTS.find((candidate) => candidate.path !== list.path)!;
    const foreign = (await getList(ada, other, { limit: '1' })).next_cursor!;
    const mixed = await listResponse(ada, list, { cursor: foreign });

    expect(garbage.status).toBe(400);
    expect(((await garbage.json()) as { error: { message: string } }).error.message).toMatch(/^invalid cursor "not-a-cursor"/);
    expect(mixed.status).toBe(400);
    expect(((await mixed.json()) as { error: { message: string } }).error.message).toMatch(/belongs to another list/);
  });

  it("shows another workspace's caller only their own items for a cursor", async () => {
    const adaCursor = (await getList(ada, list, { limit: '1' })).next_cursor!;
    const bobAll = ((await getList(bob, list, { limit: '500' }))[list.key] as Record<string, unknown>[]).map((item) => item[list.id]);
    const adaAll = ((await getList(ada, list, { limit: '500' }))[list.key] as Record<string, unknown>[]).map((item) => item[list.id]);

    const bobAfterAdaCursor = ((await getList(bob, list, { cursor: adaCursor, limit: '500' }))[list.key] as Record<string, unknown>[]).map(
      (item) => item[list.id],
    );

    expect(bobAll.length).toBeGreaterThan(0);
    for (const id of bobAfterAdaCursor) {
      expect(bobAll).toContain(id);
      expect(adaAll).not.toContain(id);
    }
  });
});

/** Send one Messages call with the system prompt `system` through the proxy with the device's route token. */
async function sendSystemPrompt(device: PairedDevice, system: string): Promise<void> {
  const response = await fetch(`${running.server.url}/r/${device.token}/anthropic/v1/messages`, {
    method: 'POST',
    headers: {
      'content-type': 'application/json',
      'x-api-key': FAKE_CREDENTIALS.anthropicApiKey,
      'anthropic-version': '2023-06-01',
      'user-agent': 'claude-cli/2.1.197 (external, cli)',
    },
    body: JSON.stringify({ model: 'claude-sonnet-4-5', max_tokens: 64, system, messages: [{ role: 'user', content: 'say hi' }] }),
  });
  await response.arrayBuffer();
  expect(response.status).toBe(200);
}

async function expectCreated(person: Person, path: string, body: unknown): Promise<void> {
  const response = await person.browser.api('POST', path, body, { 'x-tokenwise-workspace': person.workspaceId });
  expect(response.status, path).toBe(201);
}

function listResponse(person: Person, list: ListRoute, query: Record<string, string>): Promise<Response> {
  const search = new URLSearchParams(query).toString();
  return person.browser.api('GET', `${list.path}${search ? `?${search}` : ''}`, undefined, { 'x-tokenwise-workspace': person.workspaceId });
}

async function getList(person: Person, list: ListRoute, query: Record<string, string>): Promise<ListBody> {
  const response = await listResponse(person, list, query);
  expect(response.status, `${list.path} ${JSON.stringify(query)}`).toBe(200);
  return (await response.json()) as ListBody;
}

/** Follow `next_cursor` from the first page to the last; returns the items of each page. */
async function readAllPages(person: Person, list: ListRoute, limit: number): Promise<unknown[][]> {
  const pages: unknown[][] = [];
  let cursor: string | null = null;
  do {
    const body: ListBody = await getList(person, list, { limit: String(limit), ...(cursor === null ? {} : { cursor }) });
    pages.push(body[list.key] as unknown[]);
    cursor = body.next_cursor;
    expect(pages.length).toBeLessThan(50);
  } while (cursor !== null);
  return pages;
}
