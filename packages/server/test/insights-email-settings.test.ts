import { randomUUID } from 'node:crypto';
import type { CallRecord } from '@tokenwise/core';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { createTestSchema, describeWithPostgres, type TestSchema } from '../../storage/test/postgres-test-database.js';
import { invitePerson, type Person, setUpOwner } from './helpers/accounts.js';
import { sampleRecord } from './helpers/sample-record.js';
import { type SmtpSink, startSmtpSink } from './helpers/smtp-sink.js';
import { startTestServer, type TestServer } from './helpers/test-server.js';

/**
 * Who gets the insights email and how often: the workspace's frequency, each person's own choice, one
 * email per period across runs and app processes, retries after the SMTP server refused, skipped periods
 * without calls, privacy mode and workspace scoping of the settings routes.
 */

const DAY = 86_400_000;
const INGEST_SECRET = 'insights-email-settings-ingest-secret-0123456';

let smtp: SmtpSink;

beforeAll(async () => {
  smtp = await startSmtpSink();
});

afterAll(async () => {
  await smtp.close();
});

beforeEach(() => {
  smtp.messages.length = 0;
  smtp.rejectRecipients = false;
});

/** Store calls of the last full week and of yesterday before `nowMs`, so both emails have calls to report. */
async function seedAround(running: TestServer, workspaceId: string, nowMs: number): Promise<void> {
  const todayMs = Math.floor(nowMs / DAY) * DAY;
  const monday = todayMs - ((new Date(todayMs).getUTCDay() + 6) % 7) * DAY;
  const times = [monday - 6 * DAY, monday - 3 * DAY, todayMs - DAY + 3_600_000];
  const calls = times.map((at): { record: CallRecord; bodies: null } => ({
    record: sampleRecord({ id: randomUUID(), started_at: new Date(at).toISOString(), workspace_id: workspaceId }),
    bodies: null,
  }));
  const response = await fetch(`${running.server.url}/api/v1/ingest`, {
    method: 'POST',
    headers: { authorization: `Bearer ${INGEST_SECRET}`, 'content-type': 'application/json' },
    body: JSON.stringify({ calls }),
  });
  expect(response.status).toBe(200);
}

interface SettingsJson {
  workspace_frequency: string;
  my_frequency: string | null;
  effective_frequency: string | null;
  email: string | null;
  smtp_configured: boolean;
  sends: { user_id: string; frequency: string; status: string; attempts: number; error: string | null }[];
  error?: { message: string };
}

async function settings(person: Person, method = 'GET', body?: unknown, workspace?: string) {
  const path = `/api/v1/insights/email-settings${workspace ? `?workspace=${workspace}` : ''}`;
  const response = await person.browser.api(method, path, body);
  return { status: response.status, body: (await response.json()) as SettingsJson };
}

describe('insights email settings', () => {
  let running: TestServer;
  let clockMs: number;
  let ada: Person;
  let bob: Person;

  beforeEach(async () => {
    clockMs = Date.now();
    running = await startTestServer({
      ingestSecret: INGEST_SECRET,
      mail: { smtpUrl: smtp.url, from: 'tokenwise@example.com' },
      reportClock: () => new Date(clockMs),
      insightsEmailIntervalMs: 3_600_000,
    });
    ada = await setUpOwner(running.server);
    bob = await invitePerson(ada, 'bob@example.com', 'Bob', { role: 'member' });
    await seedAround(running, ada.workspaceId, clockMs);
  });

  afterEach(async () => {
    await running.dispose();
  });

  it('sends weekly by default and daily to who asks', async () => {
    const defaults = await settings(bob);
    expect(defaults.body).toMatchObject({
      workspace_frequency: 'weekly',
      my_frequency: null,
      effective_frequency: 'weekly',
      email: 'bob@example.com',
    });
    expect(defaults.body.smtp_configured).toBe(true);

    const changed = await settings(bob, 'PATCH', { my_frequency: 'daily' });
    expect(changed.status).toBe(200);
    expect(changed.body).toMatchObject({ workspace_frequency: 'weekly', my_frequency: 'daily', effective_frequency: 'daily' });

    await running.server.runInsightsEmails();
    await running.server.runInsightsEmails();

    const subjects = Object.fromEntries(smtp.messages.map((message) => [message.to[0], message.parsed.subject]));
    expect(smtp.messages).toHaveLength(2);
    expect(subjects['ada@example.com']).toMatch(/^Tokenwise weekly insights: local: /);
    expect(subjects['bob@example.com']).toMatch(/^Tokenwise daily insights: local: /);

    // Bob's own sends only; the owner sees everyone's.
    expect((await settings(bob)).body.sends.map((send) => send.frequency)).toEqual(['daily']);
    expect((await settings(ada)).body.sends).toHaveLength(2);
  });

  it('sends nothing while the workspace is off', async () => {
    expect((await settings(bob, 'PATCH', { my_frequency: 'daily' })).status).toBe(200);
    const off = await settings(ada, 'PATCH', { workspace_frequency: 'off' });
    expect(off.body).toMatchObject({ workspace_frequency: 'off', effective_frequency: 'off' });

    await running.server.runInsightsEmails();
    expect(smtp.messages).toEqual([]);

    await settings(ada, 'PATCH', { workspace_frequency: 'weekly' });
    await settings(bob, 'PATCH', { my_frequency: 'off' });
    await running.server.runInsightsEmails();
    expect(smtp.messages.map((message) => message.to)).toEqual([['ada@example.com']]);
  });

  it('tries a refused email again at the next run', async () => {
    smtp.rejectRecipients = true;
    await running.server.runInsightsEmails();

    const failed = (await settings(ada)).body.sends;
    expect(failed.map((send) => send.status)).toEqual(['failed', 'failed']);
    expect(failed[0]!.error).toMatch(/^sending email through smtp:\/\/127\.0\.0\.1:\d+ failed: .*mailbox .* is unavailable \(test\)/);
    expect(running.logs.text()).toContain('insights email failed; it is tried again at the next run');

    smtp.rejectRecipients = false;
    await running.server.runInsightsEmails();

    expect(smtp.messages).toHaveLength(2);
    expect((await settings(ada)).body.sends.map((send) => [send.status, send.attempts])).toEqual([
      ['sent', 2],
      ['sent', 2],
    ]);
  });

  it('skips a period without calls', async () => {
    clockMs += 70 * DAY;

    await running.server.runInsightsEmails();

    expect(smtp.messages).toEqual([]);
    expect((await settings(ada)).body.sends.map((send) => send.status)).toEqual(['skipped', 'skipped']);
  });

  it('shows figures only in privacy mode', async () => {
    expect((await ada.browser.api('PATCH', `/api/v1/workspaces/${ada.workspaceId}`, { privacy_mode: true })).status).toBe(200);

    const preview = (await (await running.api('/api/v1/insights/email-preview?format=text')).text()) as string;

    expect(preview).toContain('Privacy mode is on for this workspace, so this email shows figures only.');
  });

  it('keeps the settings to members and owners', async () => {
    const eve = await invitePerson(ada, 'eve@example.com', 'Eve');

    const denied = await settings(bob, 'PATCH', { workspace_frequency: 'daily' });
    expect(denied.status).toBe(403);
    expect(denied.body.error?.message).toBe("only owners of the workspace change the workspace's email frequency");
    expect((await settings(eve, 'GET', undefined, ada.workspaceId)).status).toBe(404);
    expect((await eve.browser.api('GET', `/api/v1/insights/email-preview?workspace=${ada.workspaceId}`)).status).toBe(404);

    const invalid = await settings(ada, 'PATCH', { my_frequency: 'hourly' });
    expect(invalid.status).toBe(400);
    expect(invalid.body.error?.message).toBe('invalid my_frequency "hourly": expected weekly, daily, off or default');
    const tokenOnly = await running.api('/api/v1/insights/email-settings', {
      method: 'PATCH',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ my_frequency: 'daily' }),
    });
    expect(tokenOnly.status).toBe(400);
    expect((await running.api('/api/v1/insights/email-preview', { method: 'POST' })).status).toBe(405);
  });

  it('serves the preview as HTML for the dashboard frame', async () => {
    const response = await running.api('/api/v1/insights/email-preview?format=html&period=day');

    expect(response.status).toBe(200);
    expect(response.headers.get('content-type')).toBe('text/html; charset=utf-8');
    expect(response.headers.get('content-security-policy')).toBe("default-src 'none'; style-src 'unsafe-inline'; img-src data:; sandbox");
    expect(await response.text()).toContain('Tokenwise daily insights: local');
  });
});

describeWithPostgres('insights email with several app processes', () => {
  let schema: TestSchema;
  const servers: TestServer[] = [];

  beforeEach(async () => {
    schema = await createTestSchema();
  });

  afterEach(async () => {
    for (const server of servers.splice(0)) await server.dispose();
    await schema.drop();
  });

  it('mails each person once per period', async () => {
    const options = {
      databaseUrl: schema.url,
      ingestSecret: INGEST_SECRET,
      mail: { smtpUrl: smtp.url, from: 'tokenwise@example.com' },
      insightsEmailIntervalMs: 3_600_000,
    };
    // Each start makes a new setup link, so the owner signs up before the other processes start.
    servers.push(await startTestServer(options));
    const ada = await setUpOwner(servers[0]!.server);
    servers.push(await startTestServer({ ...options, role: 'app' }), await startTestServer({ ...options, role: 'app' }));
    await invitePerson(ada, 'bob@example.com', 'Bob', { role: 'member' });
    await seedAround(servers[0]!, ada.workspaceId, Date.now());

    await Promise.all(servers.map((server) => server.server.runInsightsEmails()));
    await Promise.all(servers.map((server) => server.server.runInsightsEmails()));

    expect(smtp.messages.map((message) => message.to[0]).sort()).toEqual(['ada@example.com', 'bob@example.com']);
  });
});
