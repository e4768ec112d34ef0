import { once } from 'node:events';
import type { IncomingMessage } from 'node:http';
import type { CallRecord } from '@tokenwise/core';
import { FAKE_CREDENTIALS, type FakeProvider, startFakeProvider } from '@tokenwise/testkit';
import { afterAll, afterEach, beforeAll, describe, expect, it, vi } from 'vitest';
import { WebSocket } from 'ws';
import { invitePerson, setUpOwner } from './helpers/accounts.js';
import { type SmtpReceiver, startSmtpReceiver, startWebhookReceiver, type WebhookReceiver } from './helpers/alert-receivers.js';
import { anthropicCall, startTestServer, type TestServer } from './helpers/test-server.js';

interface BudgetJson {
  id: string;
  name: string;
  scope: string;
  amount_usd: number;
  spent_usd: number;
  action: string;
  state: string;
  webhook_url: string | null;
  resets_at: string;
}

interface AlertJson {
  level: string;
  message: string;
  webhook: { state: string; attempts: number; last_error: string | null };
  email: { state: string; attempts: number };
  emails: string[];
}

let upstream: FakeProvider;
let webhook: WebhookReceiver;
const servers: TestServer[] = [];

beforeAll(async () => {
  upstream = await startFakeProvider();
  webhook = await startWebhookReceiver();
});

afterAll(async () => {
  await webhook.close();
  await upstream.close();
});

afterEach(async () => {
  for (const server of servers.splice(0)) await server.dispose();
  webhook.delivered.length = 0;
});

async function start(options: Parameters<typeof startTestServer>[0] = {}): Promise<TestServer> {
  const server = await startTestServer({
    upstreams: { anthropic: upstream.url, openai: upstream.url, gemini: upstream.url },
    allowPrivateWebhooks: true,
    budgetTimings: { refreshIntervalMs: 100, alertIntervalMs: 3_600_000, alertRetryBaseMs: 1 },
    ...options,
  });
  servers.push(server);
  return server;
}

async function json<T>(response: Response): Promise<T> {
  return (await response.json()) as T;
}

async function createBudget(server: TestServer, body: Record<string, unknown>): Promise<BudgetJson> {
  const response = await server.api('/api/v1/budgets', {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify(body),
  });
  expect(response.status).toBe(201);
  return (await json<{ budget: BudgetJson }>(response)).budget;
}

async function budgetOf(server: TestServer, id: string): Promise<BudgetJson> {
  return (await json<{ budget: BudgetJson }>(await server.api(`/api/v1/budgets/${id}`))).budget;
}

/** Make one Anthropic call, wait until it is stored, and return its cost in USD. */
async function costOfOneCall(server: TestServer): Promise<number> {
  expect((await anthropicCall(server.server.url, server.server.routeToken)).status).toBe(200);
  let cost = 0;
  await vi.waitFor(async () => {
    const { calls } = await json<{ calls: CallRecord[] }>(await server.api('/api/v1/calls?limit=1'));
    expect(calls[0]?.cost.basis).toBe('exact');
    cost = calls[0]!.cost.usd!;
  });
  expect(cost).toBeGreaterThan(0);
  return cost;
}

/** The alert at the budget's amount; the threshold alert of the same run is recorded too, but not sent. */
async function limitAlert(server: TestServer): Promise<AlertJson | undefined> {
  const { alerts } = await json<{ alerts: AlertJson[] }>(await server.api('/api/v1/budget-alerts'));
  return alerts.find((alert) => alert.level === 'limit');
}

function openaiCall(server: TestServer): Promise<Response> {
  return fetch(`${server.server.url}/r/${server.server.routeToken}/openai/v1/chat/completions`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', authorization: `Bearer ${FAKE_CREDENTIALS.openaiApiKey}` },
    body: JSON.stringify({ model: 'gpt-5', messages: [{ role: 'user', content: 'say hi' }] }),
  });
}

function geminiCall(server: TestServer): Promise<Response> {
  return fetch(`${server.server.url}/r/${server.server.routeToken}/gemini/v1beta/models/gemini-2.5-pro:generateContent`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', 'x-goog-api-key': FAKE_CREDENTIALS.googleApiKey },
    body: JSON.stringify({ contents: [{ role: 'user', parts: [{ text: 'say hi' }] }] }),
  });
}

function anthropicOauthCall(server: TestServer): Promise<Response> {
  return fetch(`${server.server.url}/r/${server.server.routeToken}/anthropic/v1/messages`, {
    method: 'POST',
    headers: {
      'content-type': 'application/json',
      authorization: `Bearer ${FAKE_CREDENTIALS.anthropicOauth}`,
      'anthropic-version': '2023-06-01',
    },
    body: JSON.stringify({ model: 'claude-sonnet-4-5', max_tokens: 64, messages: [{ role: 'user', content: 'say hi' }] }),
  });
}

describe('blocking daily budget', () => {
  it('refuses the next call once spent and alerts the webhook', async () => {
    const server = await start();
    const callUsd = await costOfOneCall(server);
    const budget = await createBudget(server, {
      name: 'Team daily',
      period: 'day',
      amount_usd: callUsd * 3.5,
      action: 'block',
      alert_threshold: 0.5,
      webhook_url: webhook.url,
    });
    expect(budget.spent_usd).toBeCloseTo(callUsd, 9);
    expect(budget.webhook_url).toBe(`${new URL(webhook.url).origin}/…`);

    const statuses: number[] = [];
    let rejected: Response | null = null;
    for (let attempt = 0; attempt < 10 && rejected === null; attempt += 1) {
      const response = await anthropicCall(server.server.url, server.server.routeToken);
      statuses.push(response.status);
      if (response.status === 429) rejected = response;
      else await response.arrayBuffer();
    }

    // 2.5 calls of room: two fit, the third may use the last half call, the fourth is rejected.
    expect(statuses).toEqual([200, 200, 200, 429]);
    expect(rejected!.headers.get('content-type')).toBe('application/json');
    expect(Number(rejected!.headers.get('retry-after'))).toBeGreaterThan(0);
    expect(rejected!.headers.get('x-should-retry')).toBe('false');
    const body = await json<{ type: string; error: { type: string; message: string } }>(rejected!);
    expect(body.type).toBe('error');
    expect(body.error.type).toBe('rate_limit_error');
    expect(body.error.message).toContain('Tokenwise budget "Team daily"');
    expect(body.error.message).toContain('is used up');
    expect(body.error.message).toContain(`It resets at ${budget.resets_at}`);

    await vi.waitFor(async () => expect((await budgetOf(server, budget.id)).spent_usd).toBeCloseTo(callUsd * 4, 9));
    expect((await budgetOf(server, budget.id)).state).toBe('used_up');

    await server.server.runBudgetAlerts();
    const texts = webhook.delivered.map((payload) => (payload as { text: string }).text);
    expect(texts).toHaveLength(1);
    expect(texts[0]).toContain('Tokenwise budget "Team daily"');
    expect(texts[0]).toContain('is used up');
    expect(texts[0]).toContain('refuses further calls with 429');

    const { alerts } = await json<{ alerts: AlertJson[] }>(await server.api('/api/v1/budget-alerts'));
    expect(alerts.map((alert) => alert.level).sort()).toEqual(['limit', 'threshold']);
    expect(alerts.find((alert) => alert.level === 'limit')?.webhook).toMatchObject({ state: 'sent', attempts: 1 });
    // The soft alert came in the same run as the limit, so only the limit was sent.
    expect(alerts.find((alert) => alert.level === 'threshold')?.webhook.state).toBe('none');
  });

  it('rejects in each provider shape', async () => {
    const server = await start();
    const callUsd = await costOfOneCall(server);
    await createBudget(server, { name: 'Tiny', period: 'day', amount_usd: callUsd / 2, action: 'block' });

    const openai = await openaiCall(server);
    expect(openai.status).toBe(429);
    const openaiBody = await json<{ error: { message: string; type: string; code: string; param: null } }>(openai);
    expect(openaiBody.error.type).toBe('insufficient_quota');
    expect(openaiBody.error.code).toBe('budget_exceeded');
    expect(openaiBody.error.param).toBeNull();
    expect(openaiBody.error.message).toContain('Tokenwise budget "Tiny"');

    const gemini = await geminiCall(server);
    expect(gemini.status).toBe(429);
    const geminiBody = await json<{ error: { code: number; status: string; message: string } }>(gemini);
    expect(geminiBody.error.code).toBe(429);
    expect(geminiBody.error.status).toBe('RESOURCE_EXHAUSTED');
    expect(geminiBody.error.message).toContain('Tokenwise budget "Tiny"');

    const anthropic = await anthropicCall(server.server.url, server.server.routeToken);
    expect(anthropic.status).toBe(429);
    expect((await json<{ error: { type: string } }>(anthropic)).error.type).toBe('rate_limit_error');
  });

  it('lets API-equivalent traffic past an API budget', async () => {
    const server = await start();
    const callUsd = await costOfOneCall(server);
    await createBudget(server, { period: 'day', amount_usd: callUsd / 2, action: 'block', cost_kind: 'api' });

    expect((await anthropicCall(server.server.url, server.server.routeToken)).status).toBe(429);
    const subscription = await anthropicOauthCall(server);
    expect(subscription.status).toBe(200);
    await subscription.arrayBuffer();
  });

  it('refuses a WebSocket upgrade in the OpenAI shape', async () => {
    const server = await start();
    const callUsd = await costOfOneCall(server);
    await createBudget(server, { name: 'Tiny', period: 'day', amount_usd: callUsd / 2, action: 'block' });

    const client = new WebSocket(`ws://127.0.0.1:${new URL(server.server.url).port}/r/${server.server.routeToken}/openai/v1/responses`, {
      headers: { authorization: `Bearer ${FAKE_CREDENTIALS.openaiApiKey}`, 'openai-beta': 'responses_websockets=2026-02-06' },
    });
    client.on('error', () => {});
    const [, response] = (await once(client, 'unexpected-response')) as [unknown, IncomingMessage];
    const chunks: Buffer[] = [];
    for await (const chunk of response) chunks.push(chunk as Buffer);
    client.terminate();

    expect(response.statusCode).toBe(429);
    const body = JSON.parse(Buffer.concat(chunks).toString('utf8')) as { error: { type: string; message: string } };
    expect(body.error.type).toBe('insufficient_quota');
    expect(body.error.message).toContain('Tokenwise budget "Tiny"');
  });

  it('lets model lists through', async () => {
    const server = await start();
    const callUsd = await costOfOneCall(server);
    await createBudget(server, { period: 'day', amount_usd: callUsd / 2, action: 'block' });

    const models = await fetch(`${server.server.url}/r/${server.server.routeToken}/openai/v1/models`, {
      headers: { authorization: `Bearer ${FAKE_CREDENTIALS.openaiApiKey}` },
    });
    expect(models.status).toBe(200);
    await models.arrayBuffer();
  });
});

describe('alert-only budget', () => {
  it('keeps calls flowing past the limit', async () => {
    const server = await start();
    const callUsd = await costOfOneCall(server);
    const budget = await createBudget(server, { period: 'week', amount_usd: callUsd * 1.5, webhook_url: webhook.url });
    expect(budget.action).toBe('alert');

    for (let call = 0; call < 3; call += 1) {
      const response = await anthropicCall(server.server.url, server.server.routeToken);
      expect(response.status).toBe(200);
      await response.arrayBuffer();
    }
    await vi.waitFor(async () => expect((await budgetOf(server, budget.id)).spent_usd).toBeCloseTo(callUsd * 4, 9));

    await server.server.runBudgetAlerts();
    const texts = webhook.delivered.map((payload) => (payload as { text: string }).text);
    expect(texts).toHaveLength(1);
    expect(texts[0]).toContain('Calls still go through: this budget only alerts.');
  });

  it('sends the soft alert once when only the threshold is crossed', async () => {
    const server = await start();
    const callUsd = await costOfOneCall(server);
    await createBudget(server, {
      name: 'Month',
      period: 'month',
      amount_usd: callUsd * 1.2,
      alert_threshold: 0.8,
      webhook_url: webhook.url,
    });

    await server.server.runBudgetAlerts();
    await server.server.runBudgetAlerts();

    const texts = webhook.delivered.map((payload) => (payload as { text: string }).text);
    expect(texts).toHaveLength(1);
    expect(texts[0]).toMatch(/Tokenwise budget "Month" in workspace "[^"]+" reached 83%/);
  });
});

describe('alert delivery', () => {
  it('retries a failing webhook with backoff', async () => {
    const server = await start();
    const callUsd = await costOfOneCall(server);
    await createBudget(server, { period: 'day', amount_usd: callUsd / 2, webhook_url: webhook.url });
    webhook.failNext(2, 503);
    const attemptsBefore = webhook.attempts();

    await server.server.runBudgetAlerts();
    let alert: AlertJson | undefined;
    await vi.waitFor(async () => {
      await server.server.runBudgetAlerts();
      alert = await limitAlert(server);
      expect(alert?.webhook.state).toBe('sent');
    });

    expect(alert!.webhook.attempts).toBe(3);
    expect(webhook.attempts() - attemptsBefore).toBe(3);
    expect(webhook.delivered).toHaveLength(1);
  });

  it('gives up on a webhook that rejects the payload', async () => {
    const server = await start();
    const callUsd = await costOfOneCall(server);
    await createBudget(server, { period: 'day', amount_usd: callUsd / 2, webhook_url: webhook.url });
    webhook.failNext(1, 404);

    await server.server.runBudgetAlerts();

    const alert = await limitAlert(server);
    expect(alert?.webhook).toMatchObject({ state: 'failed', attempts: 1, last_error: 'the webhook returned HTTP 404' });
    expect(webhook.delivered).toHaveLength(0);
  });

  it('emails the recipients through SMTP', async () => {
    const smtp: SmtpReceiver = await startSmtpReceiver();
    try {
      const server = await start({ mail: { smtpUrl: smtp.url, from: 'Tokenwise <tokenwise@example.com>' } });
      const callUsd = await costOfOneCall(server);
      await createBudget(server, {
        name: 'Mailed',
        period: 'day',
        amount_usd: callUsd / 2,
        emails: ['ops@example.com', 'lead@example.com'],
      });

      await server.server.runBudgetAlerts();

      expect(smtp.mails).toHaveLength(1);
      expect(smtp.mails[0]!.to.sort()).toEqual(['lead@example.com', 'ops@example.com']);
      expect(smtp.mails[0]!.subject).toBe('Tokenwise budget "Mailed" is used up');
      expect(smtp.mails[0]!.text).toContain('Calls still go through: this budget only alerts.');
      const alert = await limitAlert(server);
      expect(alert?.email).toMatchObject({ state: 'sent', attempts: 1 });
    } finally {
      await smtp.close();
    }
  });

  it('emails the owners when the budget names no address', async () => {
    const smtp: SmtpReceiver = await startSmtpReceiver();
    try {
      const server = await start({ mail: { smtpUrl: smtp.url, from: 'Tokenwise <tokenwise@example.com>' } });
      await setUpOwner(server.server, 'ada@example.com');
      const callUsd = await costOfOneCall(server);
      await createBudget(server, { period: 'day', amount_usd: callUsd / 2 });

      await server.server.runBudgetAlerts();

      expect(smtp.mails.map((mail) => mail.to)).toEqual([['ada@example.com']]);
    } finally {
      await smtp.close();
    }
  });

  it('refuses a private webhook address by default', async () => {
    const server = await start({ allowPrivateWebhooks: false });

    const response = await server.api('/api/v1/budgets', {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ period: 'day', amount_usd: 5, webhook_url: webhook.url }),
    });

    expect(response.status).toBe(400);
    expect((await json<{ error: { message: string } }>(response)).error.message).toContain('start it with --allow-private-webhooks');
  });
});

describe('budget API', () => {
  it('validates what it stores', async () => {
    const server = await start();
    const post = (body: unknown) =>
      server.api('/api/v1/budgets', { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) });

    const cases: [unknown, string][] = [
      [{ amount_usd: 5 }, 'missing period'],
      [{ period: 'year', amount_usd: 5 }, 'invalid period "year"'],
      [{ period: 'day' }, 'missing amount_usd'],
      [{ period: 'day', amount_usd: -1 }, 'invalid amount_usd -1'],
      [{ period: 'day', amount_usd: 5, alert_threshold: 80 }, 'invalid alert_threshold 80'],
      [{ period: 'day', amount_usd: 5, scope: 'device' }, 'missing device_id'],
      [{ period: 'day', amount_usd: 5, scope: 'device', device_id: 'nope' }, 'no device with id "nope" in this workspace'],
      [{ period: 'day', amount_usd: 5, scope: 'user', user_id: 'nope' }, 'no member with id "nope" in this workspace'],
      [{ period: 'day', amount_usd: 5, emails: ['not an address'] }, 'invalid email "not an address"'],
      [{ period: 'day', amount_usd: 5, webhook_url: 'ftp://example.com/x' }, 'invalid webhook_url'],
    ];
    for (const [body, message] of cases) {
      const response = await post(body);
      expect(response.status, JSON.stringify(body)).toBe(400);
      expect((await json<{ error: { message: string } }>(response)).error.message).toContain(message);
    }
  });

  it('changes and deletes a budget', async () => {
    const server = await start();
    const budget = await createBudget(server, { period: 'day', amount_usd: 5 });

    const changed = await server.api(`/api/v1/budgets/${budget.id}`, {
      method: 'PATCH',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ amount_usd: 7.5, action: 'block', alert_threshold: null }),
    });
    expect(changed.status).toBe(200);
    expect((await json<{ budget: BudgetJson }>(changed)).budget).toMatchObject({ amount_usd: 7.5, action: 'block', alert_threshold: null });

    const rescoped = await server.api(`/api/v1/budgets/${budget.id}`, {
      method: 'PATCH',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ scope: 'device' }),
    });
    expect(rescoped.status).toBe(400);

    expect((await server.api(`/api/v1/budgets/${budget.id}`, { method: 'DELETE' })).status).toBe(200);
    expect((await server.api(`/api/v1/budgets/${budget.id}`)).status).toBe(404);
    expect((await server.api('/api/v1/budgets', { method: 'PUT' })).status).toBe(405);
  });

  it('lets members read but not change budgets', async () => {
    const server = await start();
    const owner = await setUpOwner(server.server);
    const member = await invitePerson(owner, 'bob@example.com', 'Bob', { role: 'member' });
    const budget = await createBudget(server, { period: 'day', amount_usd: 3 });
    const workspace = { 'x-tokenwise-workspace': member.workspaceId };

    const listed = await member.browser.api('GET', '/api/v1/budgets', undefined, workspace);
    expect(((await listed.json()) as { budgets: BudgetJson[] }).budgets.map((entry) => entry.id)).toEqual([budget.id]);
    expect((await member.browser.api('GET', '/api/v1/budget-alerts', undefined, workspace)).status).toBe(200);
    expect((await member.browser.api('POST', '/api/v1/budgets', { period: 'day', amount_usd: 1 }, workspace)).status).toBe(403);
    expect((await member.browser.api('PATCH', `/api/v1/budgets/${budget.id}`, { amount_usd: 1 }, workspace)).status).toBe(403);
    expect((await member.browser.api('DELETE', `/api/v1/budgets/${budget.id}`, undefined, workspace)).status).toBe(403);
    expect((await budgetOf(server, budget.id)).amount_usd).toBe(3);
  });

  it('keeps budgets within their workspace', async () => {
    const server = await start();
    const owner = await setUpOwner(server.server);
    const created = await owner.browser.api(
      'POST',
      '/api/v1/budgets',
      { period: 'day', amount_usd: 3 },
      { 'x-tokenwise-workspace': owner.workspaceId },
    );
    expect(created.status).toBe(201);
    const budget = ((await created.json()) as { budget: BudgetJson }).budget;

    const other = await owner.browser.api('POST', '/api/v1/workspaces', { name: 'other' });
    const otherId = ((await other.json()) as { workspace: { id: string } }).workspace.id;
    const elsewhere = { 'x-tokenwise-workspace': otherId };
    expect((await owner.browser.api('GET', `/api/v1/budgets/${budget.id}`, undefined, elsewhere)).status).toBe(404);
    expect((await owner.browser.api('PATCH', `/api/v1/budgets/${budget.id}`, { amount_usd: 1 }, elsewhere)).status).toBe(404);
    expect((await owner.browser.api('DELETE', `/api/v1/budgets/${budget.id}`, undefined, elsewhere)).status).toBe(404);
    const listed = await owner.browser.api('GET', '/api/v1/budgets', undefined, elsewhere);
    expect(((await listed.json()) as { budgets: BudgetJson[] }).budgets).toEqual([]);
  });
});
