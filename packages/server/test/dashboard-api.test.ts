import { once } from 'node:events';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { CallRecord } from '@tokenwise/core';
import { FAKE_CREDENTIALS } from '@tokenwise/testkit';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { invitePerson, type PairedDevice, type Person, pairDevice, setUpOwner } from './helpers/accounts.js';
import { startTestServer, type TestServer } from './helpers/test-server.js';

/**
 * The dashboard's API against a real server whose calls went through the proxy to a small upstream that
 * answers every Messages request with fixed usage and Anthropic's rate-limit headers. Ada owns the
 * workspace, Carol is a member; each paired a device.
 */
let upstream: Server;
let upstreamUrl: string;
let running: TestServer;
let ada: Person;
let carol: Person;
let adaDevice: PairedDevice;
let carolDevice: PairedDevice;
let adaId: string;
let carolId: string;

const USAGE = { input_tokens: 100, output_tokens: 20, cache_read_input_tokens: 300, cache_creation_input_tokens: 40 };

beforeAll(async () => {
  upstream = createServer((req, res) => {
    req.resume();
    req.on('end', () => {
      const body = JSON.stringify({
        id: 'msg_dashboard',
        type: 'message',
        role: 'assistant',
        model: 'claude-sonnet-4-5-20250929',
        content: [{ type: 'text', text: 'done' }],
        stop_reason: 'end_turn',
        usage: USAGE,
      });
      res.writeHead(200, {
        'content-type': 'application/json',
        'request-id': 'req_dashboard',
        'anthropic-ratelimit-unified-status': 'allowed',
        'anthropic-ratelimit-unified-5h-utilization': '0.25',
      });
      res.end(body);
    });
  });
  upstream.listen(0, '127.0.0.1');
  await once(upstream, 'listening');
  upstreamUrl = `http://127.0.0.1:${(upstream.address() as AddressInfo).port}`;

  running = await startTestServer({ upstreams: { anthropic: upstreamUrl } });
  ada = await setUpOwner(running.server);
  carol = await invitePerson(ada, 'carol@example.com', 'Carol', { role: 'member' });
  adaDevice = await pairDevice(running.server, ada, 'ada-laptop');
  carolDevice = await pairDevice(running.server, carol, 'carol-desktop');
  const members = (await json<{ members: { user_id: string; email: string }[] }>(await ada.browser.api('GET', '/api/v1/members'))).members;
  adaId = members.find((member) => member.email === ada.email)!.user_id;
  carolId = members.find((member) => member.email === carol.email)!.user_id;

  await prompt(adaDevice, 'Please fix the MIGRATION script', 'session-ada');
  await prompt(adaDevice, 'and run the tests', 'session-ada');
  await prompt(carolDevice, 'write the docs', '=cmd|calc');
  await waitForCalls(3);
});

afterAll(async () => {
  await running?.dispose();
  upstream?.close();
});

async function json<T>(response: Response): Promise<T> {
  expect(response.headers.get('content-type')).toContain('application/json');
  return (await response.json()) as T;
}

async function prompt(device: PairedDevice, text: string, sessionId: string): Promise<void> {
  const response = await fetch(`${running.server.url}/r/${device.token}/anthropic/v1/messages`, {
    method: 'POST',
    headers: {
      'content-type': 'application/json',
      'x-api-key': FAKE_CREDENTIALS.anthropicApiKey,
      'anthropic-version': '2023-06-01',
      'user-agent': 'claude-cli/2.1.197 (external, sdk-cli)',
      'x-claude-code-session-id': sessionId,
    },
    body: JSON.stringify({ model: 'claude-sonnet-4-5', max_tokens: 64, messages: [{ role: 'user', content: text }] }),
  });
  expect(response.status).toBe(200);
  await response.arrayBuffer();
}

async function listCalls(query = ''): Promise<{ calls: CallRecord[]; next_cursor: string | null; search: unknown }> {
  return json(await ada.browser.api('GET', `/api/v1/calls${query}`));
}

async function waitForCalls(count: number): Promise<CallRecord[]> {
  let calls: CallRecord[] = [];
  await vi.waitFor(async () => {
    calls = (await listCalls('?limit=1000')).calls;
    expect(calls).toHaveLength(count);
  });
  return calls;
}

describe('me', () => {
  it('gives a browser its CSRF token, which works for changes', async () => {
    const me = await json<{ csrf_token: string; workspaces: { redaction: boolean }[] }>(await ada.browser.api('GET', '/api/v1/me'));

    const changed = await fetch(`${running.server.url}/api/v1/workspaces/${ada.workspaceId}`, {
      method: 'PATCH',
      headers: { cookie: ada.browser.cookieHeader(), 'content-type': 'application/json', 'x-csrf-token': me.csrf_token },
      body: JSON.stringify({ name: 'Ada team' }),
    });

    expect(me.csrf_token).toMatch(/^[A-Za-z0-9_-]{20,}$/);
    expect(me.workspaces[0]!.redaction).toBe(true);
    expect(changed.status).toBe(200);
  });

  it('gives a bearer token no CSRF token', async () => {
    const me = await json<Record<string, unknown>>(await running.api('/api/v1/me'));

    expect(me).not.toHaveProperty('csrf_token');
  });
});

describe('calls', () => {
  it('filters by person, tool and session', async () => {
    const carols = await listCalls(`?user_id=${carolId}`);
    const codex = await listCalls('?tool=codex');
    const session = await listCalls('?session_id=session-ada&tool=claude-code');

    expect(carols.calls.map((call) => call.device_id)).toEqual([carolDevice.deviceId]);
    expect(codex.calls).toEqual([]);
    expect(session.calls).toHaveLength(2);
  });

  it('pages newest first with a cursor', async () => {
    const all = await listCalls('?limit=10');
    const first = await listCalls('?limit=2');
    const second = await listCalls(`?limit=2&cursor=${encodeURIComponent(first.next_cursor!)}`);

    expect([...first.calls, ...second.calls].map((call) => call.id)).toEqual(all.calls.map((call) => call.id));
    expect(second.next_cursor).toBeNull();
  });

  it('searches prompt text and says what it searched', async () => {
    const found = await listCalls('?q=migration');

    expect(found.calls).toHaveLength(1);
    expect(found.calls[0]!.session_id).toBe('session-ada');
    expect(found.search).toEqual({ q: 'migration', available: true, privacy_mode: false, note: null });
  });

  it('rejects an invalid filter with the value', async () => {
    const response = await ada.browser.api('GET', '/api/v1/calls?range=3y');

    expect(response.status).toBe(400);
    expect((await json<{ error: { message: string } }>(response)).error.message).toContain('invalid range "3y"');
  });

  it('exports the filtered calls as CSV, escaping formulas', async () => {
    const response = await ada.browser.api('GET', '/api/v1/calls/export?format=csv');
    const lines = (await response.text()).trimEnd().split('\r\n');

    expect(response.status).toBe(200);
    expect(response.headers.get('content-type')).toBe('text/csv; charset=utf-8');
    expect(response.headers.get('content-disposition')).toMatch(/^attachment; filename="tokenwise-calls-all-all\.csv"$/);
    expect(lines[0]).toBe(
      'id,started_at,tool,tool_version,provider,route,model,status,http_status,session_id,device_id,input_tokens,cache_read_tokens,cache_write_tokens,output_tokens,reasoning_tokens,cost_usd,cost_basis,ttft_ms,total_ms,error_type',
    );
    expect(lines).toHaveLength(4);
    expect(lines.some((line) => line.includes(",'=cmd|calc,"))).toBe(true);
  });

  it('exports the filtered calls as JSON Lines', async () => {
    const response = await ada.browser.api('GET', `/api/v1/calls/export?format=jsonl&user_id=${adaId}`);
    const records = (await response.text())
      .trimEnd()
      .split('\n')
      .map((line) => JSON.parse(line) as CallRecord);

    expect(response.headers.get('content-type')).toBe('application/x-ndjson; charset=utf-8');
    expect(records).toEqual((await listCalls(`?user_id=${adaId}`)).calls);
  });

  it('lists the values of each filter field', async () => {
    const facets = await json<{ tools: unknown; people: unknown; devices: unknown }>(await ada.browser.api('GET', '/api/v1/calls/facets'));

    expect(facets.tools).toEqual([{ value: 'claude-code', calls: 3 }]);
    expect(facets.people).toEqual([
      { value: adaId, label: 'Ada', calls: 2 },
      { value: carolId, label: 'Carol', calls: 1 },
    ]);
    expect(facets.devices).toEqual([
      { value: adaDevice.deviceId, label: 'ada-laptop', calls: 2 },
      { value: carolDevice.deviceId, label: 'carol-desktop', calls: 1 },
    ]);
  });
});

describe('call detail', () => {
  async function migrationCall(): Promise<CallRecord> {
    return (await listCalls('?q=migration')).calls[0]!;
  }

  it('shows bodies, costs, timings, rate limits and a curl command without credentials', async () => {
    const call = await migrationCall();

    const detail = await json<{
      bodies: { kept: boolean; request: { text: string; url: string } };
      request_headers: Record<string, string>;
      curl: string;
      timing: Record<string, number | null>;
      cost: { price_source: string; price_data_version: string | null };
      rate_limits: Record<string, string>;
      device: { name: string };
    }>(await ada.browser.api('GET', `/api/v1/calls/${call.id}/detail`));

    expect(detail.bodies.kept).toBe(true);
    expect(detail.bodies.request.text).toContain('Please fix the MIGRATION script');
    expect(detail.bodies.request.url).toBe(`/api/v1/calls/${call.id}/bodies/request`);
    expect(detail.request_headers).not.toHaveProperty('x-api-key');
    expect(detail.request_headers['anthropic-version']).toBe('2023-06-01');
    expect(detail.curl).toContain(`"${running.server.url}/r/$TOKENWISE_ROUTE_TOKEN/anthropic/v1/messages"`);
    expect(detail.curl).toContain('-H "x-api-key: $ANTHROPIC_API_KEY"');
    expect(detail.curl).toContain('Please fix the MIGRATION script');
    expect(detail.curl).not.toContain(adaDevice.token);
    expect(detail.curl).not.toContain(FAKE_CREDENTIALS.anthropicApiKey);
    expect(detail.timing.proxy_before_ms).toBeGreaterThanOrEqual(0);
    expect(detail.timing.proxy_after_ms).toBeGreaterThanOrEqual(0);
    expect(detail.timing.proxy_overhead_ms).toBeCloseTo(detail.timing.proxy_before_ms! + detail.timing.proxy_after_ms!, 3);
    expect(detail.cost.price_source).toBe('bundled');
    expect(detail.cost.price_data_version).toMatch(/^@pydantic\/genai-prices@/);
    expect(detail.rate_limits).toEqual({
      'anthropic-ratelimit-unified-5h-utilization': '0.25',
      'anthropic-ratelimit-unified-status': 'allowed',
    });
    expect(detail.device.name).toBe('ada-laptop');
  });

  it('serves a body on its own', async () => {
    const call = await migrationCall();

    const body = await ada.browser.api('GET', `/api/v1/calls/${call.id}/bodies/request`);
    const missing = await ada.browser.api('GET', `/api/v1/calls/${call.id}/bodies/headers`);

    expect(body.status).toBe(200);
    expect(body.headers.get('x-tokenwise-content-type')).toBe('application/json');
    expect(JSON.parse(await body.text())).toMatchObject({ messages: [{ role: 'user', content: 'Please fix the MIGRATION script' }] });
    expect(missing.status).toBe(404);
  });
});

describe('overview', () => {
  it('adds up exactly the stored calls', async () => {
    const calls = (await listCalls()).calls;
    const sum = (pick: (call: CallRecord) => number | null) => calls.reduce((total, call) => total + (pick(call) ?? 0), 0);

    const overview = await json<{
      totals: { calls: number; sessions: number; tokens: Record<string, number>; cost: Record<string, number>; cache_hit_ratio: number };
      buckets: string[];
      series: { key: string; calls: number[] }[];
      top_sessions: { session_id: string; calls: number }[];
      top_models: { model: string; calls: number }[];
    }>(await ada.browser.api('GET', '/api/v1/overview?range=24h&bucket=1h'));

    expect(overview.totals.calls).toBe(3);
    expect(overview.totals.sessions).toBe(2);
    expect(overview.totals.tokens.input).toBe(sum((call) => call.usage.input_tokens));
    expect(overview.totals.tokens.cache_read).toBe(sum((call) => call.usage.cache_read_tokens));
    expect(overview.totals.tokens.cache_write).toBe(sum((call) => call.usage.cache_write_tokens));
    expect(overview.totals.tokens.output).toBe(sum((call) => call.usage.output_tokens));
    expect(overview.totals.cost.api_usd).toBeCloseTo(
      sum((call) => call.cost.usd),
      9,
    );
    expect(overview.totals.cost.api_equivalent_usd).toBe(0);
    expect(overview.totals.cache_hit_ratio).toBeCloseTo(
      sum((call) => call.usage.cache_read_tokens) / sum((call) => call.usage.input_tokens),
      9,
    );
    expect(overview.buckets).toHaveLength(24);
    expect(overview.series.map((series) => series.key)).toEqual(['claude-code']);
    expect(overview.series[0]!.calls.reduce((total, count) => total + count, 0)).toBe(3);
    expect(overview.top_sessions[0]).toMatchObject({ session_id: 'session-ada', calls: 2 });
    expect(overview.top_models).toEqual([expect.objectContaining({ model: 'claude-sonnet-4-5-20250929', calls: 3 })]);
  });

  it('stacks by person with their names', async () => {
    const overview = await json<{ series: { key: string; label: string; calls: number[] }[] }>(
      await ada.browser.api('GET', '/api/v1/overview?range=7d&group_by=person'),
    );

    const byLabel = Object.fromEntries(overview.series.map((series) => [series.label, series.calls.reduce((a, b) => a + b, 0)]));
    expect(byLabel).toEqual({ Ada: 2, Carol: 1 });
    expect(overview.series.map((series) => series.key).sort()).toEqual([adaId, carolId].sort());
  });

  it('rejects more than 1000 buckets', async () => {
    const response = await ada.browser.api('GET', '/api/v1/overview?range=30d&bucket=5m');

    expect(response.status).toBe(400);
  });
});

describe('sessions', () => {
  it('lists sessions with their calls and cost', async () => {
    const page = await json<{ sessions: { session_id: string; calls: number; tool: string; models: string[]; device_ids: string[] }[] }>(
      await ada.browser.api('GET', '/api/v1/sessions'),
    );

    expect(page.sessions.map((session) => session.session_id).sort()).toEqual(['=cmd|calc', 'session-ada']);
    expect(page.sessions.find((session) => session.session_id === 'session-ada')).toMatchObject({
      calls: 2,
      tool: 'claude-code',
      models: ['claude-sonnet-4-5-20250929'],
      device_ids: [adaDevice.deviceId],
    });
  });

  it('opens one session with its timeline', async () => {
    const session = await json<{ session: { calls: number }; calls: CallRecord[] }>(
      await ada.browser.api('GET', '/api/v1/sessions/session-ada'),
    );
    const missing = await ada.browser.api('GET', '/api/v1/sessions/no-such-session');

    expect(session.session.calls).toBe(2);
    expect(session.calls.map((call) => call.started_at)).toEqual([...session.calls.map((call) => call.started_at)].sort());
    expect(missing.status).toBe(404);
  });
});

describe('devices', () => {
  it('show call counts and the newest rate limits', async () => {
    const { devices } = await json<{
      devices: {
        id: string;
        calls_total: number;
        calls_24h: number;
        last_call_at: string;
        rate_limits: { headers: Record<string, string> }[];
      }[];
    }>(await ada.browser.api('GET', '/api/v1/devices'));

    const laptop = devices.find((device) => device.id === adaDevice.deviceId)!;
    expect(laptop.calls_total).toBe(2);
    expect(laptop.calls_24h).toBe(2);
    expect(laptop.last_call_at).not.toBeNull();
    expect(laptop.rate_limits.map((entry) => entry.headers['anthropic-ratelimit-unified-5h-utilization'])).toEqual(['0.25']);
  });

  it('list the rate limits per device', async () => {
    const { rate_limits: rateLimits } = await json<{ rate_limits: { device_id: string; route: string; tool: string }[] }>(
      await ada.browser.api('GET', '/api/v1/rate-limits'),
    );

    expect(rateLimits.map((entry) => entry.device_id).sort()).toEqual([adaDevice.deviceId, carolDevice.deviceId].sort());
    expect(rateLimits.every((entry) => entry.route === 'anthropic' && entry.tool === 'claude-code')).toBe(true);
  });

  it('give the connect commands for this server', async () => {
    const connect = await json<{ server_url: string; commands: Record<string, string> }>(await ada.browser.api('GET', '/api/v1/connect'));

    expect(connect.server_url).toBe(running.server.url);
    expect(connect.commands.sh).toBe(`curl -fsSL ${running.server.url}/connect.sh | bash`);
    expect(connect.commands.npx).toBe(`npx tokenwise connect --server ${running.server.url}`);
  });
});

describe('custom prices', () => {
  const price = {
    model: 'claude-sonnet-4-5',
    effective_from: '2020-01-01T00:00:00Z',
    input_mtok: 1000,
    output_mtok: 2000,
    cache_read_mtok: 100,
    cache_write_mtok: 500,
  };

  it('are set by owners only', async () => {
    const response = await carol.browser.api('POST', '/api/v1/prices', price);

    expect(response.status).toBe(403);
  });

  it('price new calls and re-price past ones on request', async () => {
    const created = await ada.browser.api('POST', '/api/v1/prices', price);
    expect(created.status).toBe(201);
    const { price: stored } = await json<{ price: { id: string } }>(created);

    await prompt(adaDevice, 'a priced call', 'session-priced');
    const calls = await waitForCalls(4);
    const priced = calls.find((call) => call.session_id === 'session-priced')!;
    // 100 uncached input at $1000, 300 cache reads at $100, 40 cache writes at $500, 20 output at $2000 per MTok.
    const expected = (100 * 1000 + 300 * 100 + 40 * 500 + 20 * 2000) / 1e6;
    expect(priced.cost.price_source).toBe(`custom:${stored.id}`);
    expect(priced.cost.usd).toBeCloseTo(expected, 9);

    // The price names the model without its date; the stored calls name the dated model that answered.
    expect(calls.every((call) => call.model_answered === 'claude-sonnet-4-5-20250929')).toBe(true);
    const repriced = await json<{ repriced: number }>(
      await ada.browser.api('POST', '/api/v1/prices/reprice', { model: 'claude-sonnet-4-5' }),
    );
    expect(repriced.repriced).toBe(3);
    const after = (await listCalls()).calls;
    expect(after.every((call) => call.cost.price_source === `custom:${stored.id}`)).toBe(true);
    expect(after.every((call) => Math.abs(call.cost.usd! - expected) < 1e-9)).toBe(true);

    expect((await json<{ prices: { id: string }[] }>(await carol.browser.api('GET', '/api/v1/prices'))).prices.map((p) => p.id)).toEqual([
      stored.id,
    ]);
    expect((await ada.browser.api('DELETE', `/api/v1/prices/${stored.id}`)).status).toBe(200);
    const back = await json<{ repriced: number }>(await ada.browser.api('POST', '/api/v1/prices/reprice', {}));
    expect(back.repriced).toBe(4);
    expect((await listCalls()).calls.every((call) => call.cost.price_source === 'bundled')).toBe(true);
  });

  it('reject an invalid price with the field', async () => {
    const response = await ada.browser.api('POST', '/api/v1/prices', { ...price, input_mtok: -1 });

    expect(response.status).toBe(400);
    expect((await json<{ error: { message: string } }>(response)).error.message).toContain('invalid input_mtok');
  });
});

describe('workspace settings', () => {
  it('turn redaction off and on for the next calls', async () => {
    const secret = 'DB_PASSWORD=correct-horse-battery-staple';
    expect((await ada.browser.api('PATCH', `/api/v1/workspaces/${ada.workspaceId}`, { redaction: false })).status).toBe(200);
    await prompt(adaDevice, `connect with ${secret}`, 'session-raw');
    expect((await ada.browser.api('PATCH', `/api/v1/workspaces/${ada.workspaceId}`, { redaction: true })).status).toBe(200);
    await prompt(adaDevice, `connect with ${secret}`, 'session-masked');
    const calls = await waitForCalls(6);

    const bodyOf = async (session: string) => {
      const call = calls.find((item) => item.session_id === session)!;
      return (await ada.browser.api('GET', `/api/v1/calls/${call.id}/bodies/request`)).text();
    };
    expect(await bodyOf('session-raw')).toContain(secret);
    expect(await bodyOf('session-masked')).not.toContain('correct-horse-battery-staple');
  });

  it('say in a search that privacy mode keeps no prompts', async () => {
    await ada.browser.api('PATCH', `/api/v1/workspaces/${ada.workspaceId}`, { privacy_mode: true });
    const found = await listCalls('?q=migration');
    await ada.browser.api('PATCH', `/api/v1/workspaces/${ada.workspaceId}`, { privacy_mode: false });

    expect(found.search).toMatchObject({ privacy_mode: true, note: expect.stringContaining('privacy mode') });
  });
});
