import { randomUUID } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { findLocalWorkspace } from '@tokenwise/server';
import { SqliteStore } from '@tokenwise/storage';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { fullRecord } from '../../storage/test/sample-calls.js';
import { runCli, startServe } from './helpers/cli-process.js';

const DAY = 86_400_000;

let dataDir: string;

beforeEach(async () => {
  dataDir = await mkdtemp(join(tmpdir(), 'tokenwise-insights-cli-'));
});

afterEach(async () => {
  await rm(dataDir, { recursive: true, force: true });
});

/** Store three calls of last week (Monday to Monday, UTC) in the local workspace: $1.25 in all, one error. */
async function seedLastWeek(): Promise<string> {
  const todayMs = Math.floor(Date.now() / DAY) * DAY;
  const weekFrom = todayMs - ((new Date(todayMs).getUTCDay() + 6) % 7) * DAY - 7 * DAY;
  const store = new SqliteStore(join(dataDir, 'tokenwise.db'));
  try {
    const workspace = (await findLocalWorkspace(store))!;
    const calls = [0.5, 0.75, 0].map((usd, index) => ({
      record: fullRecord({
        id: randomUUID(),
        started_at: new Date(weekFrom + (index + 1) * DAY).toISOString(),
        workspace_id: workspace.id,
        status: usd === 0 ? 'error' : 'success',
        cost: { ...fullRecord().cost, usd, basis: 'exact' },
      }),
      bodies: null,
    }));
    await store.insertCalls(calls);
    return workspace.id;
  } finally {
    await store.close();
  }
}

/** Start and stop `serve` once, so the data directory has its local workspace. */
async function initDataDir(): Promise<void> {
  const serve = await startServe(['--port', '0', '--data-dir', dataDir]);
  expect(await serve.stop()).toBe(0);
}

describe('tokenwise insights preview', () => {
  it('prints the weekly email from the database when no server runs', async () => {
    await initDataDir();
    await seedLastWeek();

    const result = await runCli(['insights', 'preview', '--data-dir', dataDir]);

    expect(result.code).toBe(0);
    expect(result.stdout).toMatch(/^Subject: Tokenwise weekly insights: local: \$1\.25 \(new\), 3 calls\n/);
    expect(result.stdout).toContain('Spend: $1.25 (new; before: $0.00)');
    expect(result.stdout).toContain('Errors: 1 (33.3% of calls; before: –)');
    expect(result.stdout).toContain('Dashboard: http://127.0.0.1:4747/?from=');
  });

  it('prints the HTML and the daily email', async () => {
    await initDataDir();
    await seedLastWeek();

    const html = await runCli(['insights', 'preview', '--data-dir', dataDir, '--html'], {
      TOKENWISE_PUBLIC_URL: 'https://tokenwise.example.com',
    });
    const daily = await runCli(['insights', 'preview', '--data-dir', dataDir, '--period', 'day']);

    expect(html.code).toBe(0);
    expect(html.stdout).toMatch(/^<!doctype html>/);
    expect(html.stdout).toContain('href="https://tokenwise.example.com/settings#insights-email"');
    expect(daily.code).toBe(0);
    expect(daily.stdout).toMatch(/^Subject: Tokenwise daily insights: local: /);
  });

  it('reads through the running server', async () => {
    await initDataDir();
    const workspaceId = await seedLastWeek();
    const serve = await startServe([
      '--port',
      '0',
      '--data-dir',
      dataDir,
      '--smtp-url',
      'smtp://127.0.0.1:9',
      '--mail-from',
      'ops@example.com',
    ]);
    try {
      const result = await runCli(['insights', 'preview', '--data-dir', dataDir, '--json']);
      const other = await runCli(['insights', 'preview', '--data-dir', dataDir, '--workspace', 'no-such-workspace']);

      expect(result.code).toBe(0);
      const body = JSON.parse(result.stdout) as {
        subject: string;
        report: { workspace: { id: string }; totals: { current: { calls: number } } };
      };
      expect(body.report.workspace.id).toBe(workspaceId);
      expect(body.report.totals.current.calls).toBe(3);
      expect(body.subject).toMatch(/^Tokenwise weekly insights: local: \$1\.25 /);
      expect(other.code).toBe(1);
      expect(other.stderr).toContain('returned HTTP 404: no workspace "no-such-workspace" for this caller');
      expect(serve.stdout()).toContain('"msg":"insights email on"');
      expect(serve.stdout()).toContain('"smtp":"smtp://127.0.0.1:9"');
    } finally {
      await serve.stop();
    }
  });

  it('names a bad period and a missing workspace', async () => {
    await initDataDir();

    const period = await runCli(['insights', 'preview', '--data-dir', dataDir, '--period', 'month']);
    const workspace = await runCli(['insights', 'preview', '--data-dir', dataDir, '--workspace', 'nope']);
    const subcommand = await runCli(['insights', 'send']);

    expect(period.code).toBe(2);
    expect(period.stderr).toBe('tokenwise: invalid --period "month": expected week or day\n');
    expect(workspace.code).toBe(1);
    expect(workspace.stderr).toContain(`no workspace with id "nope" in ${dataDir}: check --workspace`);
    expect(subcommand.code).toBe(2);
    expect(subcommand.stderr).toContain('unknown subcommand "insights send": expected preview');
  });

  it('rejects a mail sender without an SMTP server', async () => {
    const result = await runCli(['serve', '--port', '0', '--data-dir', dataDir, '--mail-from', 'ops@example.com']);

    expect(result.code).toBe(2);
    expect(result.stderr).toContain('--mail-from was given without --smtp-url: add the SMTP server to send email through');
  });
});
