import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { invitePerson, type Person, setUpOwner } from './helpers/accounts.js';
import { startTestServer, type TestServer } from './helpers/test-server.js';

/**
 * Cursor pagination of the short lists over HTTP. Ada's workspace contains a few of each item, and Bob's
 * own workspace one of each, so a page that leaked across workspaces would show it.
 */
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
] as const;

type ListRoute = (typeof LISTS)[number];
interface ListBody {
  next_cursor: string | null;
  [key: string]: unknown;
}

beforeAll(async () => {
  running = await startTestServer();
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
    }
  }
  for (const name of ['Side project', 'Experiments']) {
    expect((await ada.browser.api('POST', '/api/v1/workspaces', { name })).status).toBe(201);
  }
});

afterAll(async () => {
  await running?.dispose();
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
