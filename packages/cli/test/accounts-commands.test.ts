import { hostname } from 'node:os';
import { join } from 'node:path';
import { SqliteStore } from '@tokenwise/storage';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runCli } from './helpers/cli-process.js';
import { startLocalServer } from './helpers/connect-home.js';

let local: Awaited<ReturnType<typeof startLocalServer>>;

beforeAll(async () => {
  local = await startLocalServer();
});

afterAll(async () => {
  await local?.close();
});

describe('tokenwise users reset-password', () => {
  it('prints a one-time link that opens the reset page', async () => {
    const store = new SqliteStore(join(local.dataDir, 'tokenwise.db'));
    await store.createUser({ email: 'ada@example.com', name: 'Ada', passwordHash: 'scrypt$x' });
    await store.close();

    const result = await runCli(['users', 'reset-password', 'ADA@example.com', '--data-dir', local.dataDir]);

    expect(result.code, result.stderr).toBe(0);
    expect(result.stderr).toContain('One-time password reset link for ada@example.com');
    const link = result.stdout.trim();
    expect(link).toMatch(new RegExp(`^${local.server.url}/reset-password\\?token=twp_[\\w-]{43}$`));
    const page = await fetch(link);
    expect(page.status).toBe(200);
    const text = await page.text();
    expect(text).toContain('Set a new password');
    expect(text).toContain('For Ada (ada@example.com).');
    expect(text).toContain('New password (at least 10 characters)');
  });

  it('uses --public-url for the link', async () => {
    const result = await runCli([
      'users',
      'reset-password',
      'ada@example.com',
      '--data-dir',
      local.dataDir,
      '--public-url',
      'https://tw.example.com',
    ]);

    expect(result.stdout).toMatch(/^https:\/\/tw\.example\.com\/reset-password\?token=twp_/);
  });

  it('names an unknown email', async () => {
    const result = await runCli(['users', 'reset-password', 'nobody@example.com', '--data-dir', local.dataDir]);

    expect(result.code).toBe(1);
    expect(result.stderr).toContain('no account with the email "nobody@example.com" on this server');
  });
});

describe('tokenwise devices', () => {
  it('lists the local device and revokes it so its route token stops at once', async () => {
    const listed = await runCli(['devices', 'list', '--json', '--data-dir', local.dataDir]);
    expect(listed.code, listed.stderr).toBe(0);
    const devices = listed.stdout
      .trim()
      .split('\n')
      .map((line) => JSON.parse(line) as { id: string; name: string; revoked_at: string | null });
    const device = devices.find((item) => item.name === hostname());
    expect(device?.revoked_at).toBeNull();

    const table = await runCli(['devices', 'list', '--data-dir', local.dataDir]);
    expect(table.stdout).toMatch(/^ID\s+NAME\s+OS\s+PAIRED\s+LAST SEEN\s+STATUS\n/);

    const revoked = await runCli(['devices', 'revoke', device!.id.slice(0, 8), '--data-dir', local.dataDir]);
    expect(revoked.code, revoked.stderr).toBe(0);
    expect(revoked.stderr).toContain(`Revoked device ${device!.id}`);

    const call = await fetch(`${local.server.url}/r/${local.server.routeToken}/anthropic/v1/messages`, { method: 'POST', body: '{}' });
    expect(call.status).toBe(401);
    const again = await runCli(['devices', 'revoke', device!.id, '--data-dir', local.dataDir]);
    expect(again.code).toBe(1);
    expect(again.stderr).toContain('was already revoked');
  });
});
