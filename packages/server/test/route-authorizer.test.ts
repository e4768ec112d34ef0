import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createRouteAuthorizer, hashToken, type RouteAuthorizer } from '@tokenwise/server';
import { SqliteStore, type Workspace } from '@tokenwise/storage';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { createLogCapture } from './helpers/log-capture.js';
import { createServerLoggerForTest } from './helpers/test-logger.js';

describe('route authorizer', () => {
  let dir: string;
  let store: SqliteStore;
  let workspace: Workspace;
  let now: number;
  let authorizer: RouteAuthorizer;

  beforeEach(async () => {
    dir = await mkdtemp(join(tmpdir(), 'tokenwise-auth-'));
    store = new SqliteStore(join(dir, 'tokenwise.db'));
    workspace = await store.createWorkspace({ name: 'local', keepBodies: false });
    now = Date.parse('2026-12-04T10:00:00.000Z');
    authorizer = createRouteAuthorizer({
      store,
      logger: createServerLoggerForTest(createLogCapture()),
      cacheTtlMs: 30_000,
      negativeCacheTtlMs: 2_000,
      touchIntervalMs: 60_000,
      clock: () => now,
    });
  });

  afterEach(async () => {
    await store.close();
    await rm(dir, { recursive: true, force: true });
  });

  const addToken = (token: string) =>
    store.createRouteToken({ workspaceId: workspace.id, deviceId: null, name: 'test', tokenSha256: hashToken(token) });

  it('grants a known token its workspace and privacy mode', async () => {
    await addToken('twr_known_token');

    expect(await authorizer.authorize('twr_known_token')).toEqual({
      workspaceId: workspace.id,
      deviceId: null,
      keepBodies: false,
      redactBodies: true,
      userId: null,
      budgetsFailClosed: false,
    });
  });

  it('refuses an unknown token', async () => {
    expect(await authorizer.authorize('twr_unknown_token')).toBeNull();
  });

  it('trusts a cached grant until it expires', async () => {
    const token = await addToken('twr_cached_token');
    await authorizer.authorize('twr_cached_token');
    await store.revokeRouteToken(token.id);

    expect(await authorizer.authorize('twr_cached_token')).not.toBeNull();
    now += 30_000;
    expect(await authorizer.authorize('twr_cached_token')).toBeNull();
  });

  it('refuses a token revoked through it at once', async () => {
    const token = await addToken('twr_revoked_token');
    await authorizer.authorize('twr_revoked_token');

    expect(await authorizer.revoke(token.id)).toBe(true);

    expect(await authorizer.authorize('twr_revoked_token')).toBeNull();
  });

  it('accepts a new token once the negative entry expires', async () => {
    expect(await authorizer.authorize('twr_late_token')).toBeNull();
    await addToken('twr_late_token');

    expect(await authorizer.authorize('twr_late_token')).toBeNull();
    now += 2_000;
    expect(await authorizer.authorize('twr_late_token')).not.toBeNull();
  });

  it('records use at most once per interval', async () => {
    await addToken('twr_used_token');

    await authorizer.authorize('twr_used_token');
    const lastUsedAt = async () => (await store.findRouteTokenByHash(hashToken('twr_used_token')))?.lastUsedAt;
    await vi.waitFor(async () => expect(await lastUsedAt()).not.toBeNull());
    const firstUse = await lastUsedAt();
    now += 10_000;
    await authorizer.authorize('twr_used_token');
    // A second write, had one been sent, lands on the writer thread well within this wait.
    await new Promise((resolve) => setTimeout(resolve, 200));

    expect(firstUse).toBe('2026-12-04T10:00:00.000Z');
    expect((await store.findRouteTokenByHash(hashToken('twr_used_token')))?.lastUsedAt).toBe(firstUse);
  });

  it('keeps a cached grant while the store fails', async () => {
    await addToken('twr_stale_token');
    const grant = await authorizer.authorize('twr_stale_token');
    await store.close();
    now += 30_000;

    expect(await authorizer.authorize('twr_stale_token')).toEqual(grant);
    now += 59 * 60 * 1000;
    expect(await authorizer.authorize('twr_stale_token')).toEqual(grant);
    now += 2 * 60 * 1000;
    await expect(authorizer.authorize('twr_stale_token')).rejects.toMatchObject({ code: 'store_failed' });
  });

  it('keeps no grant revoked through it while the store fails', async () => {
    const token = await addToken('twr_revoked_then_down');
    await authorizer.authorize('twr_revoked_then_down');
    await authorizer.revoke(token.id);
    await store.close();
    now += 30_000;

    await expect(authorizer.authorize('twr_revoked_then_down')).rejects.toMatchObject({ code: 'store_failed' });
  });

  it('rejects when the store fails', async () => {
    await store.close();

    await expect(authorizer.authorize('twr_any_token_at_all')).rejects.toMatchObject({ code: 'store_failed' });
  });
});
