import { hostname } from 'node:os';
import type { Store, Workspace } from '@tokenwise/storage';
import { type DataDirPaths, readLocalTokens, writeLocalTokens } from './data-dir.js';
import { generateApiToken, generateRouteToken, hashToken } from './tokens.js';

const LOCAL_WORKSPACE_SETTING = 'local_workspace_id';

export interface LocalSetup {
  workspace: Workspace;
  /** Plaintext route token of this machine, printed in the base URLs. */
  routeToken: string;
  /** Plaintext owner API token, written to server.json for the CLI. */
  apiToken: string;
  /** True when this start created the local workspace. */
  firstStart: boolean;
  /** Things the person should know, e.g. that the route token changed and tools must be pointed again. */
  notices: string[];
}

/** Return the workspace of a single-user local install without creating it; null before the first start. */
export async function findLocalWorkspace(store: Store): Promise<Workspace | null> {
  const id = await store.getSetting(LOCAL_WORKSPACE_SETTING);
  return id === null ? null : store.getWorkspace(id);
}

/** Return the workspace of a single-user local install, creating it on first use. */
export async function ensureLocalWorkspace(store: Store): Promise<{ workspace: Workspace; created: boolean }> {
  const existing = await findLocalWorkspace(store);
  if (existing) return { workspace: existing, created: false };

  const workspace = await store.createWorkspace({ name: 'local' });
  await store.setSetting(LOCAL_WORKSPACE_SETTING, workspace.id);
  return { workspace, created: true };
}

/**
 * Make sure the local workspace, its route token and the owner API token exist, and return their
 * plaintext from the data directory's token file. A token from that file whose hash the store lacks (a
 * new database) is registered again, so tools already pointed at it keep working; a revoked one is
 * replaced, and a notice asks the person to point their tools again.
 */
export async function ensureLocalSetup(store: Store, paths: DataDirPaths): Promise<LocalSetup> {
  const { workspace, created } = await ensureLocalWorkspace(store);
  const saved = await readLocalTokens(paths);
  const notices: string[] = [];

  let routeToken = saved?.route_token ?? null;
  const routeRow = routeToken === null ? null : await store.findRouteTokenByHash(hashToken(routeToken));
  if (routeToken === null || routeRow?.revokedAt) {
    if (routeRow?.revokedAt)
      notices.push('the local route token was revoked, so a new one was made: point your tools at the new base URLs');
    routeToken = generateRouteToken();
    const device = await store.createDevice({ workspaceId: workspace.id, name: hostname(), os: process.platform });
    await store.createRouteToken({ workspaceId: workspace.id, deviceId: device.id, name: 'local', tokenSha256: hashToken(routeToken) });
  } else if (routeRow === null) {
    const device = await store.createDevice({ workspaceId: workspace.id, name: hostname(), os: process.platform });
    await store.createRouteToken({ workspaceId: workspace.id, deviceId: device.id, name: 'local', tokenSha256: hashToken(routeToken) });
  }

  let apiToken = saved?.api_token ?? null;
  const apiRow = apiToken === null ? null : await store.findApiTokenByHash(hashToken(apiToken));
  if (apiToken === null || apiRow?.revokedAt) {
    apiToken = generateApiToken();
    await store.createApiToken({ workspaceId: workspace.id, name: 'local owner', tokenSha256: hashToken(apiToken) });
  } else if (apiRow === null) {
    await store.createApiToken({ workspaceId: workspace.id, name: 'local owner', tokenSha256: hashToken(apiToken) });
  }

  if (saved?.route_token !== routeToken || saved?.api_token !== apiToken) {
    await writeLocalTokens(paths, { route_token: routeToken, api_token: apiToken });
  }

  return { workspace, routeToken, apiToken, firstStart: created, notices };
}
