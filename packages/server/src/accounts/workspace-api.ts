import type { IncomingMessage, ServerResponse } from 'node:http';
import { TokenwiseError } from '@tokenwise/core';
import { type ApiToken, type Device, type Invite, ROLES, type Role, type Store, type User, type Workspace } from '@tokenwise/storage';
import type { Logger } from 'pino';
import { sendApiError, sendJson } from '../api-responses.js';
import { parseListPage } from '../list-page-params.js';
import type { RouteAuthorizer } from '../route-authorizer.js';
import { parseSince } from '../since.js';
import { generateApiToken, hashToken } from '../tokens.js';
import { type AccountService, checkName } from './account-service.js';
import { type Caller, type Principals, WORKSPACE_HEADER, type WorkspaceScope } from './principal.js';
import { readFields, stringField } from './request-body.js';
import type { WebAuth } from './web-auth.js';

export interface WorkspaceApiOptions {
  store: Store;
  accounts: AccountService;
  principals: Principals;
  authorizer: RouteAuthorizer;
  logger: Logger;
  /** The origin links are built on (invites, password resets). */
  baseUrl(req: IncomingMessage): string;
  /** Gives `GET /me` the CSRF token a signed-in browser sends with its changes. */
  webAuth?: Pick<WebAuth, 'csrfToken'>;
  clock?: () => Date;
}

/** Calls deleted by id in one request at most. */
const MAX_DELETE_IDS = 1000;
/** `POST /calls/delete` body limit: room for MAX_DELETE_IDS UUIDs (38 bytes each in JSON) with spacing. */
const MAX_DELETE_BODY_BYTES = 64 * 1024;

interface Context {
  req: IncomingMessage;
  res: ServerResponse;
  url: URL;
  caller: Caller;
  params: string[];
}

type Handler = (context: Context) => Promise<void>;

/**
 * The API of accounts, workspaces, members, invites, devices and deletion, under `/api/v1`. Every list
 * takes `limit` and `cursor` and returns `next_cursor` (see `parseListPage`):
 *
 *   GET    /me                                the caller and their workspaces
 *   DELETE /me                                {password} delete the account; workspaces it alone belongs to go with it
 *   GET    /workspaces                        the caller's workspaces
 *   POST   /workspaces                        {name} a new workspace the caller owns
 *   GET    /workspaces/{id}                   settings: privacy_mode, redaction, body_retention_days, budgets_fail_closed
 *   PATCH  /workspaces/{id}                   {name?, privacy_mode?, redaction?, body_retention_days?, budgets_fail_closed?} (owner)
 *   DELETE /workspaces/{id}                   the workspace with all its calls, devices and tokens (owner)
 *   GET    /api-tokens                        the caller's personal API tokens (never the secret)
 *   POST   /api-tokens                        {name} a personal token for the current workspace, shown once
 *   DELETE /api-tokens/{id}                   revoke one
 *   GET    /devices                           devices of the workspace, with call counts and rate limits
 *   GET    /devices/{id}
 *   PATCH  /devices/{id}                      {name?, privacy_mode?} (owner, or the person who paired it)
 *   POST   /devices/{id}/revoke               its route tokens stop working at once (owner or its person)
 *   DELETE /devices/{id}?calls=delete|keep    revoke and delete it, with or without its calls
 *   GET    /members                           people of the workspace
 *   PATCH  /members/{user_id}                 {role} (owner)
 *   DELETE /members/{user_id}                 remove someone (owner), or leave
 *   POST   /members/{user_id}/password-reset  a one-time link that sets a new password (owner)
 *   GET    /invites                           open and past invites (owner)
 *   POST   /invites                           {role?, email?, expires_in_hours?, own_workspace?} -> {url} (owner)
 *   DELETE /invites/{id}                      revoke an open invite (owner)
 *   DELETE /calls/{id}                        one call with its bodies
 *   POST   /calls/delete                      {ids?, device_id?, session_id?, since?, until?} -> {deleted}
 *   DELETE /sessions/{session_id}             every call of one session
 *
 * Members may delete calls, revoke and delete only devices they paired. An id of another workspace is
 * rejected with 404 like an unknown one.
 */
/** The fields of `PATCH /workspaces/{id}`. */
const WORKSPACE_FIELDS = ['name', 'privacy_mode', 'redaction', 'body_retention_days', 'budgets_fail_closed'];

export function createWorkspaceApi(options: WorkspaceApiOptions) {
  const { store, accounts, principals, authorizer, logger } = options;
  const clock = options.clock ?? (() => new Date());

  const routes: [method: string, pattern: RegExp, handler: Handler][] = [
    ['GET', /^\/me$/, getMe],
    ['DELETE', /^\/me$/, deleteMe],
    ['GET', /^\/workspaces$/, listWorkspaces],
    ['POST', /^\/workspaces$/, createWorkspace],
    ['GET', /^\/workspaces\/([^/]+)$/, getWorkspace],
    ['PATCH', /^\/workspaces\/([^/]+)$/, updateWorkspace],
    ['DELETE', /^\/workspaces\/([^/]+)$/, deleteWorkspace],
    ['GET', /^\/api-tokens$/, listApiTokens],
    ['POST', /^\/api-tokens$/, createApiToken],
    ['DELETE', /^\/api-tokens\/([^/]+)$/, revokeApiToken],
    ['GET', /^\/devices$/, listDevices],
    ['GET', /^\/devices\/([^/]+)$/, getDevice],
    ['PATCH', /^\/devices\/([^/]+)$/, updateDevice],
    ['POST', /^\/devices\/([^/]+)\/revoke$/, revokeDevice],
    ['DELETE', /^\/devices\/([^/]+)$/, deleteDevice],
    ['GET', /^\/members$/, listMembers],
    ['PATCH', /^\/members\/([^/]+)$/, updateMember],
    ['DELETE', /^\/members\/([^/]+)$/, removeMember],
    ['POST', /^\/members\/([^/]+)\/password-reset$/, resetMemberPassword],
    ['GET', /^\/invites$/, listInvites],
    ['POST', /^\/invites$/, createInvite],
    ['DELETE', /^\/invites\/([^/]+)$/, revokeInvite],
    ['DELETE', /^\/calls\/([^/]+)$/, deleteCall],
    ['POST', /^\/calls\/delete$/, deleteCalls],
    ['DELETE', /^\/sessions\/([^/]+)$/, deleteSession],
  ];

  /** Return the caller's scope in the current workspace, or send the error response and return null. */
  async function scopeOf(context: Context, requested?: string): Promise<WorkspaceScope | null> {
    const scope = await principals.workspace(context.caller, context.req, requested);
    if (!scope) {
      const named = requested ?? context.req.headers[WORKSPACE_HEADER] ?? context.url.searchParams.get('workspace');
      if (named) {
        sendApiError(
          context.res,
          404,
          'not_found',
          `no workspace with id "${String(named)}" among this account's workspaces: GET /api/v1/me lists them`,
        );
      } else if (context.caller.via === 'api_token') {
        sendApiError(context.res, 401, 'unauthorized', 'the API token is no longer valid for its workspace: create a new one');
      } else {
        sendApiError(
          context.res,
          400,
          'invalid_argument',
          'name one of your workspaces in the x-tokenwise-workspace header or ?workspace=',
        );
      }
    }
    return scope;
  }

  function requireOwner(context: Context, scope: WorkspaceScope, action: string): boolean {
    if (scope.role === 'owner') return true;
    sendApiError(context.res, 403, 'forbidden', `only owners of the workspace ${action}`);
    return false;
  }

  function requireUser(context: Context, action: string): User | null {
    if (context.caller.user) return context.caller.user;
    sendApiError(
      context.res,
      400,
      'invalid_argument',
      `the local owner API token belongs to no account, so it cannot ${action}: sign in to the web UI`,
    );
    return null;
  }

  async function getMe(context: Context): Promise<void> {
    const { caller } = context;
    if (!caller.user) {
      const scope = await principals.workspace(caller, context.req);
      sendJson(context.res, 200, { user: null, workspaces: scope ? [describeWorkspace(scope.workspace, scope.role)] : [] });
      return;
    }
    const memberships = await store.listMembershipsOfUser(caller.user.id);
    const csrf =
      caller.via === 'session' && options.webAuth
        ? { csrf_token: options.webAuth.csrfToken(context.req, context.res, caller.signedIn) }
        : {};
    sendJson(context.res, 200, {
      user: describeUser(caller.user),
      workspaces: memberships.map((membership) => describeWorkspace(membership.workspace, membership.role)),
      ...csrf,
    });
  }

  async function deleteMe(context: Context): Promise<void> {
    const { caller, res } = context;
    if (caller.via !== 'session') {
      sendApiError(res, 400, 'invalid_argument', 'delete your account in a signed-in browser session, with your password');
      return;
    }
    const fields = await readFields(context.req, { accept: ['password'] });
    if (!(await accounts.checkPassword(caller.user, stringField(fields, 'password', true) ?? ''))) {
      sendApiError(res, 403, 'forbidden', 'wrong password: enter your current password to delete the account');
      return;
    }
    const plan = await planAccountDeletion(store, caller.user);
    if (plan.blocking.length > 0) {
      sendApiError(
        res,
        409,
        'conflict',
        `you are the only owner of ${plan.blocking.map((workspace) => `"${workspace.name}"`).join(', ')}, which others belong to: make someone else owner or delete the workspace first`,
      );
      return;
    }
    for (const workspaceId of plan.soleWorkspaceIds) {
      for (const device of await store.listDevices(workspaceId)) await authorizer.revokeDevice(device.id);
    }
    await store.deleteUser(caller.user.id, plan.soleWorkspaceIds);
    for (const workspaceId of plan.soleWorkspaceIds) authorizer.forget({ workspaceId });
    principals.forgetRevokedTokens();
    logger.info({ user_id: caller.user.id, workspaces_deleted: plan.soleWorkspaceIds.length }, 'account deleted');
    sendJson(res, 200, { deleted: true, workspaces_deleted: plan.soleWorkspaceIds });
  }

  async function listWorkspaces(context: Context): Promise<void> {
    const page = parseListPage(context.url.searchParams);
    const user = context.caller.user;
    if (!user) {
      const scope = await principals.workspace(context.caller, context.req);
      sendJson(context.res, 200, { workspaces: scope ? [describeWorkspace(scope.workspace, scope.role)] : [], next_cursor: null });
      return;
    }
    const memberships = await store.listMembershipsOfUserPage(user.id, page);
    sendJson(context.res, 200, {
      workspaces: memberships.items.map((membership) => describeWorkspace(membership.workspace, membership.role)),
      next_cursor: memberships.nextCursor,
    });
  }

  async function createWorkspace(context: Context): Promise<void> {
    const user = requireUser(context, 'create workspaces');
    if (!user) return;
    const fields = await readFields(context.req, { accept: ['name'] });
    const workspace = await accounts.createWorkspace(user.id, checkName(fields.name, 'workspace name'));
    logger.info({ workspace_id: workspace.id, user_id: user.id }, 'workspace created');
    sendJson(context.res, 201, { workspace: describeWorkspace(workspace, 'owner') });
  }

  async function getWorkspace(context: Context): Promise<void> {
    const scope = await scopeOf(context, context.params[0]);
    if (scope) sendJson(context.res, 200, { workspace: describeWorkspace(scope.workspace, scope.role) });
  }

  async function updateWorkspace(context: Context): Promise<void> {
    const scope = await scopeOf(context, context.params[0]);
    if (!scope || !requireOwner(context, scope, 'change its settings')) return;
    const fields = await readFields(context.req, { accept: WORKSPACE_FIELDS });
    const changes: Parameters<Store['updateWorkspace']>[1] = {};
    if (fields.name !== undefined) changes.name = checkName(fields.name, 'workspace name');
    if (fields.privacy_mode !== undefined) changes.keepBodies = !booleanField(fields, 'privacy_mode');
    if (fields.redaction !== undefined) changes.redactBodies = booleanField(fields, 'redaction');
    if (fields.body_retention_days !== undefined) changes.bodyRetentionDays = retentionField(fields.body_retention_days);
    if (fields.budgets_fail_closed !== undefined) changes.budgetsFailClosed = booleanField(fields, 'budgets_fail_closed');

    const workspace = await store.updateWorkspace(scope.workspace.id, changes);
    // The proxy of this process applies a new privacy mode to the next call; other processes within their token cache time.
    authorizer.forget({ workspaceId: scope.workspace.id });
    logger.info(
      {
        workspace_id: scope.workspace.id,
        privacy_mode: workspace ? !workspace.keepBodies : null,
        redaction: workspace?.redactBodies ?? null,
        budgets_fail_closed: workspace?.budgetsFailClosed ?? null,
      },
      'workspace settings changed',
    );
    sendJson(context.res, 200, { workspace: describeWorkspace(workspace ?? scope.workspace, scope.role) });
  }

  async function deleteWorkspace(context: Context): Promise<void> {
    const scope = await scopeOf(context, context.params[0]);
    if (!scope || !requireOwner(context, scope, 'delete it')) return;
    const devices = await store.listDevices(scope.workspace.id);
    for (const device of devices) await authorizer.revokeDevice(device.id);
    await store.deleteWorkspace(scope.workspace.id);
    authorizer.forget({ workspaceId: scope.workspace.id });
    principals.forgetRevokedTokens();
    logger.info({ workspace_id: scope.workspace.id, devices: devices.length }, 'workspace deleted');
    sendJson(context.res, 200, { id: scope.workspace.id, deleted: true });
  }

  async function listApiTokens(context: Context): Promise<void> {
    const user = requireUser(context, 'list personal API tokens');
    if (!user) return;
    const tokens = await store.listUserApiTokensPage(user.id, parseListPage(context.url.searchParams));
    sendJson(context.res, 200, { api_tokens: tokens.items.map(describeApiToken), next_cursor: tokens.nextCursor });
  }

  async function createApiToken(context: Context): Promise<void> {
    const user = requireUser(context, 'create personal API tokens');
    if (!user) return;
    const scope = await scopeOf(context);
    if (!scope) return;
    const fields = await readFields(context.req, { accept: ['name'] });
    const name = fields.name === undefined ? 'script' : checkName(fields.name, 'token name');
    const token = generateApiToken();
    const created = await store.createApiToken({ workspaceId: scope.workspace.id, userId: user.id, name, tokenSha256: hashToken(token) });
    logger.info({ api_token_id: created.id, user_id: user.id, workspace_id: scope.workspace.id }, 'API token created');
    sendJson(context.res, 201, { ...describeApiToken(created), token });
  }

  async function revokeApiToken(context: Context): Promise<void> {
    const user = context.caller.user;
    const id = context.params[0]!;
    const owned = user !== null && (await store.listUserApiTokens(user.id)).some((token) => token.id === id);
    if (!owned) {
      notFound(context.res, 'API token', id);
      return;
    }
    await store.revokeApiToken(id);
    principals.forgetRevokedTokens();
    logger.info({ api_token_id: id, user_id: user?.id }, 'API token revoked');
    sendJson(context.res, 200, { id, revoked: true });
  }

  async function listDevices(context: Context): Promise<void> {
    const page = parseListPage(context.url.searchParams);
    const scope = await scopeOf(context);
    if (!scope) return;
    const devices = await store.listDevicesPage(scope.workspace.id, page);
    sendJson(context.res, 200, { devices: await withCallStats(scope, devices.items), next_cursor: devices.nextCursor });
  }

  /** Describe devices with their call counts and the newest rate-limit headers their calls received. */
  async function withCallStats(scope: WorkspaceScope, devices: Device[]) {
    const stats = await store.deviceCallStats(
      devices.map((device) => device.id),
      new Date(clock().getTime() - 86_400_000),
    );
    const rateLimits = await store.latestRateLimits(scope.workspace.id);
    return devices.map((device, index) => ({
      ...describeDevice(device, scope.workspace),
      calls_total: stats[index]?.calls ?? 0,
      calls_24h: stats[index]?.callsSince ?? 0,
      last_call_at: stats[index]?.lastCallAt ?? null,
      rate_limits: rateLimits
        .filter((snapshot) => snapshot.deviceId === device.id)
        .map((snapshot) => ({
          provider: snapshot.provider,
          route: snapshot.route,
          tool: snapshot.tool,
          observed_at: snapshot.observedAt,
          call_id: snapshot.callId,
          headers: snapshot.headers,
        })),
    }));
  }

  /** Return the device of the path in the caller's workspace, or send the error and return null; `manage` also checks the right to change it. */
  async function deviceOf(context: Context, manage: boolean): Promise<{ scope: WorkspaceScope; device: Device } | null> {
    const scope = await scopeOf(context);
    if (!scope) return null;
    const id = context.params[0]!;
    const device = await store.getDevice(id);
    if (!device || device.workspaceId !== scope.workspace.id) {
      notFound(context.res, 'device', id);
      return null;
    }
    if (manage && scope.role !== 'owner' && (context.caller.user === null || device.userId !== context.caller.user.id)) {
      sendApiError(context.res, 403, 'forbidden', 'only owners of the workspace and the person who paired a device manage it');
      return null;
    }
    return { scope, device };
  }

  async function getDevice(context: Context): Promise<void> {
    const found = await deviceOf(context, false);
    if (found) sendJson(context.res, 200, { device: (await withCallStats(found.scope, [found.device]))[0] });
  }

  async function updateDevice(context: Context): Promise<void> {
    const found = await deviceOf(context, true);
    if (!found) return;
    const fields = await readFields(context.req, { accept: ['name', 'privacy_mode'] });
    const changes: Parameters<Store['updateDevice']>[1] = {};
    if (fields.name !== undefined) changes.name = checkName(fields.name, 'device name');
    if (fields.privacy_mode !== undefined) changes.privacyMode = booleanField(fields, 'privacy_mode');
    const device = await store.updateDevice(found.device.id, changes);
    authorizer.forget({ deviceId: found.device.id });
    logger.info({ device_id: found.device.id, privacy_mode: device?.privacyMode ?? null }, 'device settings changed');
    sendJson(context.res, 200, { device: describeDevice(device ?? found.device, found.scope.workspace) });
  }

  async function revokeDevice(context: Context): Promise<void> {
    const found = await deviceOf(context, true);
    if (!found) return;
    const tokenIds = await authorizer.revokeDevice(found.device.id);
    logger.info({ device_id: found.device.id, workspace_id: found.scope.workspace.id, tokens: tokenIds.length }, 'device revoked');
    sendJson(context.res, 200, {
      device: describeDevice((await store.getDevice(found.device.id)) ?? found.device, found.scope.workspace),
    });
  }

  async function deleteDevice(context: Context): Promise<void> {
    const found = await deviceOf(context, true);
    if (!found) return;
    const calls = context.url.searchParams.get('calls') ?? 'keep';
    if (calls !== 'keep' && calls !== 'delete') {
      sendApiError(context.res, 400, 'invalid_argument', `invalid calls "${calls}": expected keep or delete`);
      return;
    }
    await authorizer.revokeDevice(found.device.id);
    await store.deleteDevice(found.device.id, { withCalls: calls === 'delete' });
    logger.info({ device_id: found.device.id, workspace_id: found.scope.workspace.id, calls }, 'device deleted');
    sendJson(context.res, 200, { id: found.device.id, deleted: true, calls_deleted: calls === 'delete' });
  }

  async function listMembers(context: Context): Promise<void> {
    const page = parseListPage(context.url.searchParams);
    const scope = await scopeOf(context);
    if (!scope) return;
    const members = await store.listMembersPage(scope.workspace.id, page);
    sendJson(context.res, 200, {
      members: members.items.map((member) => ({
        user_id: member.userId,
        email: member.user.email,
        name: member.user.name,
        role: member.role,
        joined_at: member.createdAt,
      })),
      next_cursor: members.nextCursor,
    });
  }

  /** Return the member of the path in the caller's workspace, or send the error and return null. */
  async function memberOf(context: Context): Promise<{ scope: WorkspaceScope; userId: string; role: Role } | null> {
    const scope = await scopeOf(context);
    if (!scope) return null;
    const userId = context.params[0]!;
    const membership = await store.getMembership(scope.workspace.id, userId);
    if (!membership) {
      notFound(context.res, 'member', userId);
      return null;
    }
    return { scope, userId, role: membership.role };
  }

  async function lastOwnerLeaves(context: Context, scope: WorkspaceScope, userId: string): Promise<boolean> {
    const owners = (await store.listMembers(scope.workspace.id)).filter((member) => member.role === 'owner');
    if (owners.length !== 1 || owners[0]!.userId !== userId) return false;
    sendApiError(context.res, 409, 'conflict', 'a workspace needs an owner: make someone else owner first, or delete the workspace');
    return true;
  }

  async function updateMember(context: Context): Promise<void> {
    const found = await memberOf(context);
    if (!found || !requireOwner(context, found.scope, 'change roles')) return;
    const fields = await readFields(context.req, { accept: ['role'] });
    const role = stringField(fields, 'role');
    if (!role || !(ROLES as readonly string[]).includes(role)) {
      sendApiError(context.res, 400, 'invalid_argument', `invalid role "${role ?? ''}": expected owner or member`);
      return;
    }
    if (role === 'member' && (await lastOwnerLeaves(context, found.scope, found.userId))) return;
    await store.setMembershipRole(found.scope.workspace.id, found.userId, role as Role);
    logger.info({ workspace_id: found.scope.workspace.id, user_id: found.userId, role }, 'member role changed');
    sendJson(context.res, 200, { user_id: found.userId, role });
  }

  async function removeMember(context: Context): Promise<void> {
    const found = await memberOf(context);
    if (!found) return;
    const leaving = context.caller.user?.id === found.userId;
    if (!leaving && !requireOwner(context, found.scope, 'remove members')) return;
    if (found.role === 'owner' && (await lastOwnerLeaves(context, found.scope, found.userId))) return;
    await store.removeMembership(found.scope.workspace.id, found.userId);
    logger.info({ workspace_id: found.scope.workspace.id, user_id: found.userId, leaving }, 'member removed');
    sendJson(context.res, 200, { user_id: found.userId, removed: true });
  }

  async function resetMemberPassword(context: Context): Promise<void> {
    const found = await memberOf(context);
    if (!found || !requireOwner(context, found.scope, 'reset passwords')) return;
    const { reset, token } = await accounts.createPasswordReset(found.userId, context.caller.user?.id ?? null);
    sendJson(context.res, 201, { url: `${options.baseUrl(context.req)}/reset-password?token=${token}`, expires_at: reset.expiresAt });
  }

  async function listInvites(context: Context): Promise<void> {
    const page = parseListPage(context.url.searchParams);
    const scope = await scopeOf(context);
    if (!scope || !requireOwner(context, scope, 'see invites')) return;
    const invites = await store.listInvitesPage(scope.workspace.id, page);
    sendJson(context.res, 200, { invites: invites.items.map(describeInvite), next_cursor: invites.nextCursor });
  }

  async function createInvite(context: Context): Promise<void> {
    const scope = await scopeOf(context);
    if (!scope || !requireOwner(context, scope, 'invite people')) return;
    const fields = await readFields(context.req, { accept: ['role', 'email', 'expires_in_hours', 'own_workspace'] });
    const role = stringField(fields, 'role') ?? 'member';
    if (!(ROLES as readonly string[]).includes(role)) {
      sendApiError(context.res, 400, 'invalid_argument', `invalid role "${role}": expected owner or member`);
      return;
    }
    const ownWorkspace = fields.own_workspace === undefined ? false : booleanField(fields, 'own_workspace');
    const hours = fields.expires_in_hours === undefined ? undefined : Number(fields.expires_in_hours);
    const { invite, token } = await accounts.createInvite({
      workspaceId: ownWorkspace ? null : scope.workspace.id,
      role: role as Role,
      email: stringField(fields, 'email') || null,
      createdByUserId: context.caller.user?.id ?? null,
      lifetimeHours: hours,
    });
    logger.info({ invite_id: invite.id, workspace_id: invite.workspaceId, role }, 'invite created');
    sendJson(context.res, 201, { ...describeInvite(invite), url: `${options.baseUrl(context.req)}/invite?token=${token}` });
  }

  async function revokeInvite(context: Context): Promise<void> {
    const scope = await scopeOf(context);
    if (!scope) return;
    const id = context.params[0]!;
    const invite = (await store.listInvites(scope.workspace.id)).find((item) => item.id === id);
    if (!invite) {
      notFound(context.res, 'invite', id);
      return;
    }
    if (!requireOwner(context, scope, 'revoke invites')) return;
    if (!(await store.revokeInvite(id))) {
      sendApiError(context.res, 409, 'conflict', `the invite "${id}" was accepted or revoked already`);
      return;
    }
    sendJson(context.res, 200, { id, revoked: true });
  }

  /**
   * Delete calls of the caller's workspace matching `deletion`: owners any, members only those of devices
   * they paired.
   */
  async function deleteWhere(context: Context, scope: WorkspaceScope, deletion: Omit<Parameters<Store['deleteCalls']>[0], 'workspaceId'>) {
    let deviceIds = deletion.deviceIds;
    if (scope.role !== 'owner') {
      const userId = context.caller.user?.id;
      const own = (await store.listDevices(scope.workspace.id)).filter((device) => device.userId === userId).map((device) => device.id);
      deviceIds = deviceIds === undefined ? own : deviceIds.filter((id) => own.includes(id));
    }
    const deleted = await store.deleteCalls({ ...deletion, deviceIds, workspaceId: scope.workspace.id });
    logger.info({ workspace_id: scope.workspace.id, deleted }, 'calls deleted');
    return deleted;
  }

  async function deleteCall(context: Context): Promise<void> {
    const scope = await scopeOf(context);
    if (!scope) return;
    const id = context.params[0]!;
    if ((await deleteWhere(context, scope, { ids: [id] })) === 0) {
      if (await othersCallsExist(scope, { ids: [id] })) sendMembersDeleteRule(context);
      else notFound(context.res, 'call', id);
      return;
    }
    sendJson(context.res, 200, { id, deleted: true });
  }

  /**
   * Tell whether a member's deletion that deleted nothing matched calls the member can read but not
   * delete: calls of the workspace from devices someone else paired.
   */
  async function othersCallsExist(scope: WorkspaceScope, match: { ids?: readonly string[]; sessionId?: string }): Promise<boolean> {
    if (scope.role === 'owner') return false;
    if (match.sessionId !== undefined) {
      return (await store.listCalls({ workspaceId: scope.workspace.id, sessionId: match.sessionId, limit: 1 })).length > 0;
    }
    for (const id of match.ids ?? []) {
      if ((await store.getCall(id))?.record.workspace_id === scope.workspace.id) return true;
    }
    return false;
  }

  function sendMembersDeleteRule(context: Context): void {
    sendApiError(
      context.res,
      403,
      'forbidden',
      'members delete only calls of devices they paired: ask an owner of the workspace to delete the others',
    );
  }

  async function deleteCalls(context: Context): Promise<void> {
    const scope = await scopeOf(context);
    if (!scope) return;
    const fields = await readFields(context.req, {
      accept: ['ids', 'device_id', 'session_id', 'since', 'until', 'all'],
      maxBytes: MAX_DELETE_BODY_BYTES,
      tooLargeHint: `send at most ${MAX_DELETE_IDS} ids per request`,
    });
    const deletion: Omit<Parameters<Store['deleteCalls']>[0], 'workspaceId'> = {};
    if (fields.ids !== undefined) deletion.ids = idList(fields.ids);
    const deviceId = stringField(fields, 'device_id');
    if (deviceId) {
      const device = await store.getDevice(deviceId);
      if (device?.workspaceId !== scope.workspace.id) {
        notFound(context.res, 'device', deviceId);
        return;
      }
      deletion.deviceIds = [deviceId];
    }
    const sessionId = stringField(fields, 'session_id');
    if (sessionId) deletion.sessionId = sessionId;
    const since = stringField(fields, 'since');
    if (since) deletion.since = parseSince(since, clock(), 'since');
    const until = stringField(fields, 'until');
    if (until) deletion.until = parseSince(until, clock(), 'until');
    if (Object.keys(deletion).length === 0 && fields.all !== true) {
      sendApiError(
        context.res,
        400,
        'invalid_argument',
        'name the calls to delete: ids, device_id, session_id, since or until (or "all": true)',
      );
      return;
    }

    const deleted = await deleteWhere(context, scope, deletion);
    // Ids of calls in another workspace are unknown here, like any unknown id.
    if (deleted === 0 && deletion.ids !== undefined) {
      if (await othersCallsExist(scope, { ids: deletion.ids })) sendMembersDeleteRule(context);
      else sendApiError(context.res, 404, 'not_found', 'none of these call ids is in this workspace');
      return;
    }
    sendJson(context.res, 200, { deleted });
  }

  async function deleteSession(context: Context): Promise<void> {
    const scope = await scopeOf(context);
    if (!scope) return;
    const sessionId = context.params[0]!;
    const deleted = await deleteWhere(context, scope, { sessionId });
    if (deleted === 0) {
      if (await othersCallsExist(scope, { sessionId })) sendMembersDeleteRule(context);
      else notFound(context.res, 'session with calls', sessionId);
      return;
    }
    sendJson(context.res, 200, { session_id: sessionId, deleted });
  }

  /** Serve the request when one of these endpoints matches; false when none does. */
  return async function handle(req: IncomingMessage, res: ServerResponse, url: URL, caller: Caller): Promise<boolean> {
    const path = url.pathname.replace(/\/+$/, '').slice('/api/v1'.length);
    const method = req.method ?? 'GET';
    let pathMatched = false;
    for (const [routeMethod, pattern, handler] of routes) {
      const match = pattern.exec(path);
      if (!match) continue;
      pathMatched = true;
      if (routeMethod !== method) continue;
      await handler({ req, res, url, caller, params: match.slice(1).map(decodeSegment) });
      return true;
    }
    if (!pathMatched) return false;
    sendApiError(res, 405, 'method_not_allowed', `${method} is not allowed on ${url.pathname}`);
    return true;
  };
}

/** Plan an account deletion: workspaces only this person belongs to go with it, and those they alone own with others block it. */
export async function planAccountDeletion(store: Store, user: User): Promise<{ soleWorkspaceIds: string[]; blocking: Workspace[] }> {
  const soleWorkspaceIds: string[] = [];
  const blocking: Workspace[] = [];
  for (const membership of await store.listMembershipsOfUser(user.id)) {
    const members = await store.listMembers(membership.workspaceId);
    if (members.length === 1) soleWorkspaceIds.push(membership.workspaceId);
    else if (membership.role === 'owner' && members.filter((member) => member.role === 'owner').length === 1)
      blocking.push(membership.workspace);
  }
  return { soleWorkspaceIds, blocking };
}

function notFound(res: ServerResponse, what: string, id: string): void {
  sendApiError(res, 404, 'not_found', `no ${what} with id "${id}" in this workspace`);
}

function decodeSegment(segment: string | undefined): string {
  try {
    return decodeURIComponent(segment ?? '');
  } catch {
    throw new TokenwiseError('invalid_argument', `invalid percent-encoding in the path segment "${segment}"`);
  }
}

function booleanField(fields: Record<string, unknown>, name: string): boolean {
  const value = fields[name];
  if (value === true || value === 'true' || value === 'on' || value === '1') return true;
  if (value === false || value === 'false' || value === 'off' || value === '0') return false;
  throw new TokenwiseError('invalid_argument', `invalid ${name}: expected true or false`);
}

function retentionField(value: unknown): number | null {
  if (value === null || value === '') return null;
  const days = typeof value === 'number' ? value : Number(value);
  if (!Number.isInteger(days))
    throw new TokenwiseError('invalid_argument', 'invalid body_retention_days: expected whole days, or null to keep bodies');
  return days;
}

function idList(value: unknown): string[] {
  if (!Array.isArray(value) || value.length > MAX_DELETE_IDS || !value.every((id) => typeof id === 'string')) {
    throw new TokenwiseError('invalid_argument', `invalid ids: expected a list of up to ${MAX_DELETE_IDS} call ids`);
  }
  return value as string[];
}

export function describeUser(user: User) {
  return { id: user.id, email: user.email, name: user.name, created_at: user.createdAt };
}

export function describeWorkspace(workspace: Workspace, role: Role) {
  return {
    id: workspace.id,
    name: workspace.name,
    role,
    privacy_mode: !workspace.keepBodies,
    redaction: workspace.redactBodies,
    body_retention_days: workspace.bodyRetentionDays,
    budgets_fail_closed: workspace.budgetsFailClosed,
    created_at: workspace.createdAt,
  };
}

/**
 * Describe a device of `workspace`. `privacy_mode` is the device's own setting, and
 * `effective_privacy_mode` what its calls get: a device can only be stricter than its workspace, so a
 * private workspace makes every device private, and `privacy_reason` says so.
 */
export function describeDevice(device: Device, workspace: Workspace) {
  const workspacePrivate = !workspace.keepBodies;
  return {
    id: device.id,
    name: device.name,
    os: device.os,
    user_id: device.userId,
    created_at: device.createdAt,
    last_seen_at: device.lastSeenAt,
    privacy_mode: device.privacyMode,
    effective_privacy_mode: device.privacyMode || workspacePrivate,
    privacy_reason: workspacePrivate
      ? "the workspace's privacy mode is on, so every device's calls are stored without bodies"
      : device.privacyMode
        ? "this device's privacy mode is on, so its calls are stored without bodies"
        : null,
    revoked_at: device.revokedAt,
  };
}

function describeApiToken(token: ApiToken) {
  return { id: token.id, name: token.name, workspace_id: token.workspaceId, created_at: token.createdAt, last_used_at: token.lastUsedAt };
}

function describeInvite(invite: Invite) {
  return {
    id: invite.id,
    role: invite.role,
    email: invite.email,
    own_workspace: invite.workspaceId === null,
    created_at: invite.createdAt,
    expires_at: invite.expiresAt,
    accepted_at: invite.acceptedAt,
    revoked_at: invite.revokedAt,
  };
}
