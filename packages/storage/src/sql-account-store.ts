import { randomUUID } from 'node:crypto';
import { TokenwiseError } from '@tokenwise/core';
import type {
  AccountStore,
  CallDeletion,
  DeviceChanges,
  DeviceCode,
  DeviceCodeStatus,
  Invite,
  IssuedDevice,
  Membership,
  MembershipWithUser,
  MembershipWithWorkspace,
  NewDeviceCode,
  PasswordReset,
  Role,
  Session,
  User,
  WorkspaceChanges,
} from './account-store.js';
import type { BudgetStore } from './budget-store.js';
import type { ListPage, PageRequest } from './call-queries.js';
import { recomputeRollupsSteps } from './call-rollups.js';
import { type ListOrder, listPageQuery, toListPage } from './list-page.js';
import { SqlBudgetStore } from './sql-budget-store.js';
import { readBoolean, type SqlParam, type SqlRunner, type SqlStep } from './sql-runner.js';
import type { ApiToken, Device, NewApiToken, NewDevice, RouteToken, Workspace } from './store.js';
import { checkSha256, type TokenRow, toApiToken, toRouteToken } from './store-rows.js';

const DAY_MS = 86_400_000;

/** Creation time, then id, the order of every list of accounts, devices and tokens. */
function byCreation(list: string, table = ''): ListOrder {
  const prefix = table === '' ? '' : `${table}.`;
  return {
    list,
    columns: [
      { sql: `${prefix}created_at`, field: 'created_at', type: 'text' },
      { sql: `${prefix}id`, field: 'id', type: 'text' },
    ],
  };
}

// Each order but a person's workspaces has an index of its own (schema version 9), so a page is an index
// range read; test/list-index-plans.test.ts checks the query plans. A person's workspaces are sorted
// after the join, by columns of `workspaces`, which is cheap for the few workspaces one person has.
const DEVICE_ORDER = byCreation('devices');
const MEMBER_ORDER = byCreation('members', 'm');
const INVITE_ORDER = byCreation('invites');
const ROUTE_TOKEN_ORDER = byCreation('route-tokens');
const API_TOKEN_ORDER = byCreation('api-tokens');
const USER_WORKSPACE_ORDER: ListOrder = {
  list: 'workspaces',
  columns: [
    { sql: 'w.created_at', field: 'w_created_at', type: 'text' },
    { sql: 'w.id', field: 'w_id', type: 'text' },
  ],
};

type Row = Record<string, unknown>;

/**
 * The account, workspace and device half of a store, written once in SQL that SQLite and PostgreSQL both
 * run, so the two stores cannot drift apart. Each store supplies its runner and its clock.
 */
export abstract class SqlAccountStore implements AccountStore {
  /** The runner of this store; it fails with `store_failed` once the store is closed. */
  protected abstract sql(): SqlRunner;

  /**
   * Remove what a committed deletion may have left in the database's files (SQLite's WAL). Every method
   * that deletes calls, bodies, prompts or accounts awaits it before it returns, so that a deletion the
   * API confirms leaves no copy on disk. The default does nothing: see the override for each store.
   */
  protected async eraseDeletedData(): Promise<void> {}
  protected abstract now(): string;
  readonly budgets: BudgetStore = new SqlBudgetStore(
    () => this.sql(),
    () => this.now(),
  );

  async createWorkspace(input: { name: string; keepBodies?: boolean; bodyRetentionDays?: number | null }): Promise<Workspace> {
    const workspace: Workspace = {
      id: randomUUID(),
      name: input.name,
      keepBodies: input.keepBodies ?? true,
      redactBodies: true,
      bodyRetentionDays: checkRetention(input.bodyRetentionDays ?? null),
      budgetsFailClosed: false,
      createdAt: this.now(),
    };
    await this.sql().run(...insertWorkspace(workspace));
    return workspace;
  }

  async getWorkspace(id: string): Promise<Workspace | null> {
    const [row] = await this.sql().all<Row>(`SELECT ${WORKSPACE_COLUMNS} FROM workspaces WHERE id = ?`, [id]);
    return row ? toWorkspace(row) : null;
  }

  async listWorkspaces(): Promise<Workspace[]> {
    const rows = await this.sql().all<Row>(`SELECT ${WORKSPACE_COLUMNS} FROM workspaces ORDER BY created_at, id`, []);
    return rows.map(toWorkspace);
  }

  async updateWorkspace(id: string, changes: WorkspaceChanges): Promise<Workspace | null> {
    const assignments: string[] = [];
    const params: SqlParam[] = [];
    if (changes.name !== undefined) {
      assignments.push('name = ?');
      params.push(changes.name);
    }
    if (changes.keepBodies !== undefined) {
      assignments.push('keep_bodies = ?');
      params.push(changes.keepBodies);
    }
    if (changes.redactBodies !== undefined) {
      assignments.push('redact_bodies = ?');
      params.push(changes.redactBodies);
    }
    if (changes.bodyRetentionDays !== undefined) {
      assignments.push('body_retention_days = ?');
      params.push(checkRetention(changes.bodyRetentionDays));
    }
    if (changes.budgetsFailClosed !== undefined) {
      assignments.push('budgets_fail_closed = ?');
      params.push(changes.budgetsFailClosed);
    }
    if (assignments.length > 0) await this.sql().run(`UPDATE workspaces SET ${assignments.join(', ')} WHERE id = ?`, [...params, id]);
    return this.getWorkspace(id);
  }

  async deleteWorkspace(id: string): Promise<boolean> {
    const changes = await this.sql().transaction(deleteWorkspaceSteps(id));
    if (changes !== null) await this.eraseDeletedData();
    return changes !== null;
  }

  async createDevice(input: NewDevice): Promise<Device> {
    const device = this.newDevice({ workspaceId: input.workspaceId, name: input.name, os: input.os ?? null, userId: input.userId ?? null });
    if (input.createdAt !== undefined) device.createdAt = input.createdAt.toISOString();
    await this.sql().run(...insertDevice(device));
    return device;
  }

  async getDevice(id: string): Promise<Device | null> {
    const [row] = await this.sql().all<Row>(`SELECT ${DEVICE_COLUMNS} FROM devices WHERE id = ?`, [id]);
    return row ? toDevice(row) : null;
  }

  async listDevices(workspaceId: string): Promise<Device[]> {
    const rows = await this.sql().all<Row>(`SELECT ${DEVICE_COLUMNS} FROM devices WHERE workspace_id = ? ORDER BY created_at, id`, [
      workspaceId,
    ]);
    return rows.map(toDevice);
  }

  async listDevicesPage(workspaceId: string, page: PageRequest): Promise<ListPage<Device>> {
    const query = listPageQuery(DEVICE_ORDER, page);
    const rows = await this.sql().all<Row>(
      `SELECT ${DEVICE_COLUMNS} FROM devices WHERE workspace_id = ?${query.after} ORDER BY ${query.orderBy} LIMIT ?`,
      [workspaceId, ...query.params, query.limit],
    );
    return toListPage(rows, page, DEVICE_ORDER, toDevice);
  }

  async listRouteTokensPage(workspaceId: string, page: PageRequest): Promise<ListPage<RouteToken>> {
    const query = listPageQuery(ROUTE_TOKEN_ORDER, page);
    const rows = await this.sql().all<Row>(
      `SELECT * FROM route_tokens WHERE workspace_id = ?${query.after} ORDER BY ${query.orderBy} LIMIT ?`,
      [workspaceId, ...query.params, query.limit],
    );
    return toListPage(rows, page, ROUTE_TOKEN_ORDER, (row) => toRouteToken(row as unknown as TokenRow));
  }

  async updateDevice(id: string, changes: DeviceChanges): Promise<Device | null> {
    const assignments: string[] = [];
    const params: SqlParam[] = [];
    if (changes.name !== undefined) {
      assignments.push('name = ?');
      params.push(changes.name);
    }
    if (changes.privacyMode !== undefined) {
      assignments.push('privacy_mode = ?');
      params.push(changes.privacyMode);
    }
    if (changes.lastSeenAt !== undefined) {
      assignments.push('last_seen_at = ?');
      params.push(changes.lastSeenAt.toISOString());
    }
    if (assignments.length > 0) await this.sql().run(`UPDATE devices SET ${assignments.join(', ')} WHERE id = ?`, [...params, id]);
    return this.getDevice(id);
  }

  async revokeDevice(id: string): Promise<string[]> {
    const active = await this.sql().all<{ id: string }>('SELECT id FROM route_tokens WHERE device_id = ? AND revoked_at IS NULL', [id]);
    const now = this.now();
    await this.sql().transaction([
      { sql: 'UPDATE devices SET revoked_at = ? WHERE id = ? AND revoked_at IS NULL', params: [now, id] },
      { sql: 'UPDATE route_tokens SET revoked_at = ? WHERE device_id = ? AND revoked_at IS NULL', params: [now, id] },
    ]);
    return active.map((row) => row.id);
  }

  async deleteDevice(id: string, options: { withCalls: boolean }): Promise<boolean> {
    const steps: SqlStep[] = [];
    if (options.withCalls) {
      steps.push(...callChildrenDeletes('device_id = ?', [id]), { sql: 'DELETE FROM calls WHERE device_id = ?', params: [id] });
    }
    steps.push(
      { sql: 'DELETE FROM route_tokens WHERE device_id = ?', params: [id] },
      { sql: 'UPDATE device_codes SET device_id = NULL WHERE device_id = ?', params: [id] },
      ...budgetDeletes("scope = 'device' AND scope_id = ?", [id]),
      { sql: "DELETE FROM budget_spend WHERE scope = 'device' AND scope_id = ?", params: [id] },
      { sql: 'DELETE FROM devices WHERE id = ?', params: [id], requireChange: true },
    );
    const deleted = (await this.sql().transaction(steps)) !== null;
    if (deleted) await this.eraseDeletedData();
    return deleted;
  }

  async touchRouteToken(id: string, usedAt: Date): Promise<void> {
    const at = usedAt.toISOString();
    await this.sql().transaction([
      { sql: 'UPDATE route_tokens SET last_used_at = ? WHERE id = ?', params: [at, id] },
      { sql: 'UPDATE devices SET last_seen_at = ? WHERE id = (SELECT device_id FROM route_tokens WHERE id = ?)', params: [at, id] },
    ]);
  }

  async createApiToken(input: NewApiToken): Promise<ApiToken> {
    const token: ApiToken = {
      id: randomUUID(),
      workspaceId: input.workspaceId,
      userId: input.userId ?? null,
      name: input.name,
      tokenSha256: checkSha256(input.tokenSha256),
      createdAt: this.now(),
      revokedAt: null,
      lastUsedAt: null,
    };
    await this.sql().run('INSERT INTO api_tokens (id, workspace_id, user_id, name, token_sha256, created_at) VALUES (?, ?, ?, ?, ?, ?)', [
      token.id,
      token.workspaceId,
      token.userId,
      token.name,
      token.tokenSha256,
      token.createdAt,
    ]);
    return token;
  }

  async listUserApiTokens(userId: string): Promise<ApiToken[]> {
    const rows = await this.sql().all<TokenRow>(
      'SELECT * FROM api_tokens WHERE user_id = ? AND revoked_at IS NULL ORDER BY created_at, id',
      [userId],
    );
    return rows.map(toApiToken);
  }

  async listUserApiTokensPage(userId: string, page: PageRequest): Promise<ListPage<ApiToken>> {
    const query = listPageQuery(API_TOKEN_ORDER, page);
    const rows = await this.sql().all<Row>(
      `SELECT * FROM api_tokens WHERE user_id = ? AND revoked_at IS NULL${query.after} ORDER BY ${query.orderBy} LIMIT ?`,
      [userId, ...query.params, query.limit],
    );
    return toListPage(rows, page, API_TOKEN_ORDER, (row) => toApiToken(row as unknown as TokenRow));
  }

  async createUser(input: { email: string; name: string; passwordHash: string }): Promise<User> {
    const now = this.now();
    const user: User = {
      id: randomUUID(),
      email: normalizeEmail(input.email),
      name: input.name,
      passwordHash: input.passwordHash,
      createdAt: now,
      passwordChangedAt: now,
    };
    if (await this.findUserByEmail(user.email)) {
      throw new TokenwiseError('invalid_argument', `an account with the email ${user.email} exists already: sign in instead`);
    }
    await this.sql().run('INSERT INTO users (id, email, name, password_hash, created_at, password_changed_at) VALUES (?, ?, ?, ?, ?, ?)', [
      user.id,
      user.email,
      user.name,
      user.passwordHash,
      user.createdAt,
      user.passwordChangedAt,
    ]);
    return user;
  }

  async getUser(id: string): Promise<User | null> {
    const [row] = await this.sql().all<Row>(`SELECT ${USER_COLUMNS} FROM users WHERE id = ?`, [id]);
    return row ? toUser(row) : null;
  }

  async findUserByEmail(email: string): Promise<User | null> {
    const [row] = await this.sql().all<Row>(`SELECT ${USER_COLUMNS} FROM users WHERE email = ?`, [normalizeEmail(email)]);
    return row ? toUser(row) : null;
  }

  async countUsers(): Promise<number> {
    const [row] = await this.sql().all<{ count: number | string }>('SELECT count(*) AS count FROM users', []);
    return Number(row?.count ?? 0);
  }

  async setUserPassword(userId: string, passwordHash: string): Promise<void> {
    await this.sql().transaction([
      { sql: 'UPDATE users SET password_hash = ?, password_changed_at = ? WHERE id = ?', params: [passwordHash, this.now(), userId] },
      { sql: 'DELETE FROM sessions WHERE user_id = ?', params: [userId] },
    ]);
  }

  async deleteUser(userId: string, soleWorkspaceIds: readonly string[]): Promise<void> {
    const steps: SqlStep[] = soleWorkspaceIds.flatMap((workspaceId) => deleteWorkspaceSteps(workspaceId));
    steps.push(
      { sql: 'DELETE FROM sessions WHERE user_id = ?', params: [userId] },
      { sql: 'DELETE FROM memberships WHERE user_id = ?', params: [userId] },
      { sql: 'DELETE FROM api_tokens WHERE user_id = ?', params: [userId] },
      { sql: 'DELETE FROM password_resets WHERE user_id = ?', params: [userId] },
      ...budgetDeletes("scope = 'user' AND scope_id = ?", [userId]),
      { sql: "DELETE FROM budget_spend WHERE scope = 'user' AND scope_id = ?", params: [userId] },
      { sql: 'UPDATE password_resets SET created_by = NULL WHERE created_by = ?', params: [userId] },
      { sql: 'UPDATE devices SET user_id = NULL WHERE user_id = ?', params: [userId] },
      { sql: 'UPDATE device_codes SET user_id = NULL WHERE user_id = ?', params: [userId] },
      { sql: 'UPDATE invites SET created_by = NULL WHERE created_by = ?', params: [userId] },
      { sql: 'UPDATE invites SET accepted_by = NULL WHERE accepted_by = ?', params: [userId] },
      { sql: 'DELETE FROM insights_email_preferences WHERE user_id = ?', params: [userId] },
      { sql: 'DELETE FROM insights_email_sends WHERE user_id = ?', params: [userId] },
      { sql: 'DELETE FROM users WHERE id = ?', params: [userId], requireChange: true },
    );
    if ((await this.sql().transaction(steps)) === null) {
      throw new TokenwiseError('not_found', `no user with id "${userId}"`);
    }
    await this.eraseDeletedData();
  }

  async addMembership(input: { workspaceId: string; userId: string; role: Role }): Promise<Membership> {
    const membership: Membership = { id: randomUUID(), ...input, createdAt: this.now() };
    await this.sql().run(...insertMembership(membership));
    return membership;
  }

  async getMembership(workspaceId: string, userId: string): Promise<Membership | null> {
    const [row] = await this.sql().all<Row>(`SELECT ${MEMBERSHIP_COLUMNS} FROM memberships WHERE workspace_id = ? AND user_id = ?`, [
      workspaceId,
      userId,
    ]);
    return row ? toMembership(row) : null;
  }

  async listMembershipsOfUser(userId: string): Promise<MembershipWithWorkspace[]> {
    const rows = await this.sql().all<Row>(
      `SELECT ${prefixed('m', MEMBERSHIP_COLUMNS)}, ${prefixed('w', WORKSPACE_COLUMNS, 'w_')}
       FROM memberships m JOIN workspaces w ON w.id = m.workspace_id
       WHERE m.user_id = ? ORDER BY w.created_at, w.id`,
      [userId],
    );
    return rows.map((row) => ({ ...toMembership(row), workspace: toWorkspace(unprefix(row, 'w_')) }));
  }

  async listMembershipsOfUserPage(userId: string, page: PageRequest): Promise<ListPage<MembershipWithWorkspace>> {
    const query = listPageQuery(USER_WORKSPACE_ORDER, page);
    const rows = await this.sql().all<Row>(
      `SELECT ${prefixed('m', MEMBERSHIP_COLUMNS)}, ${prefixed('w', WORKSPACE_COLUMNS, 'w_')}
       FROM memberships m JOIN workspaces w ON w.id = m.workspace_id
       WHERE m.user_id = ?${query.after} ORDER BY ${query.orderBy} LIMIT ?`,
      [userId, ...query.params, query.limit],
    );
    return toListPage(rows, page, USER_WORKSPACE_ORDER, (row) => ({ ...toMembership(row), workspace: toWorkspace(unprefix(row, 'w_')) }));
  }

  async listMembers(workspaceId: string): Promise<MembershipWithUser[]> {
    const rows = await this.sql().all<Row>(
      `SELECT ${prefixed('m', MEMBERSHIP_COLUMNS)}, u.email AS u_email, u.name AS u_name
       FROM memberships m JOIN users u ON u.id = m.user_id
       WHERE m.workspace_id = ? ORDER BY m.created_at, m.id`,
      [workspaceId],
    );
    return rows.map(toMemberWithUser);
  }

  async listMembersPage(workspaceId: string, page: PageRequest): Promise<ListPage<MembershipWithUser>> {
    const query = listPageQuery(MEMBER_ORDER, page);
    const rows = await this.sql().all<Row>(
      `SELECT ${prefixed('m', MEMBERSHIP_COLUMNS)}, u.email AS u_email, u.name AS u_name
       FROM memberships m JOIN users u ON u.id = m.user_id
       WHERE m.workspace_id = ?${query.after} ORDER BY ${query.orderBy} LIMIT ?`,
      [workspaceId, ...query.params, query.limit],
    );
    return toListPage(rows, page, MEMBER_ORDER, toMemberWithUser);
  }

  async setMembershipRole(workspaceId: string, userId: string, role: Role): Promise<boolean> {
    return (
      (await this.sql().run('UPDATE memberships SET role = ? WHERE workspace_id = ? AND user_id = ?', [role, workspaceId, userId])) > 0
    );
  }

  async removeMembership(workspaceId: string, userId: string): Promise<boolean> {
    return (await this.sql().run('DELETE FROM memberships WHERE workspace_id = ? AND user_id = ?', [workspaceId, userId])) > 0;
  }

  async createSession(input: { userId: string; tokenSha256: string; expiresAt: string; userAgent: string | null }): Promise<Session> {
    const now = this.now();
    const session: Session = {
      id: randomUUID(),
      userId: input.userId,
      tokenSha256: checkSha256(input.tokenSha256),
      createdAt: now,
      expiresAt: input.expiresAt,
      lastSeenAt: now,
      userAgent: input.userAgent,
    };
    await this.sql().run(
      'INSERT INTO sessions (id, user_id, token_sha256, created_at, expires_at, last_seen_at, user_agent) VALUES (?, ?, ?, ?, ?, ?, ?)',
      [session.id, session.userId, session.tokenSha256, session.createdAt, session.expiresAt, session.lastSeenAt, session.userAgent],
    );
    return session;
  }

  async findSessionByHash(tokenSha256: string): Promise<Session | null> {
    const [row] = await this.sql().all<Row>(`SELECT ${SESSION_COLUMNS} FROM sessions WHERE token_sha256 = ?`, [tokenSha256]);
    return row ? toSession(row) : null;
  }

  async touchSession(id: string, seenAt: Date): Promise<void> {
    await this.sql().run('UPDATE sessions SET last_seen_at = ? WHERE id = ?', [seenAt.toISOString(), id]);
  }

  async deleteSession(id: string): Promise<void> {
    await this.sql().run('DELETE FROM sessions WHERE id = ?', [id]);
  }

  async createInvite(input: Omit<Invite, 'id' | 'createdAt' | 'acceptedAt' | 'acceptedByUserId' | 'revokedAt'>): Promise<Invite> {
    const invite: Invite = {
      id: randomUUID(),
      ...input,
      email: input.email === null ? null : normalizeEmail(input.email),
      tokenSha256: checkSha256(input.tokenSha256),
      createdAt: this.now(),
      acceptedAt: null,
      acceptedByUserId: null,
      revokedAt: null,
    };
    await this.sql().run(
      `INSERT INTO invites (id, workspace_id, role, email, token_sha256, created_by, created_at, expires_at)
       VALUES (?, ?, ?, ?, ?, ?, ?, ?)`,
      [
        invite.id,
        invite.workspaceId,
        invite.role,
        invite.email,
        invite.tokenSha256,
        invite.createdByUserId,
        invite.createdAt,
        invite.expiresAt,
      ],
    );
    return invite;
  }

  async findInviteByHash(tokenSha256: string): Promise<Invite | null> {
    const [row] = await this.sql().all<Row>(`SELECT ${INVITE_COLUMNS} FROM invites WHERE token_sha256 = ?`, [tokenSha256]);
    return row ? toInvite(row) : null;
  }

  async listInvites(workspaceId: string): Promise<Invite[]> {
    const rows = await this.sql().all<Row>(`SELECT ${INVITE_COLUMNS} FROM invites WHERE workspace_id = ? ORDER BY created_at, id`, [
      workspaceId,
    ]);
    return rows.map(toInvite);
  }

  async listInvitesPage(workspaceId: string, page: PageRequest): Promise<ListPage<Invite>> {
    const query = listPageQuery(INVITE_ORDER, page);
    const rows = await this.sql().all<Row>(
      `SELECT ${INVITE_COLUMNS} FROM invites WHERE workspace_id = ?${query.after} ORDER BY ${query.orderBy} LIMIT ?`,
      [workspaceId, ...query.params, query.limit],
    );
    return toListPage(rows, page, INVITE_ORDER, toInvite);
  }

  async revokeInvite(id: string): Promise<boolean> {
    const changed = await this.sql().run('UPDATE invites SET revoked_at = ? WHERE id = ? AND revoked_at IS NULL AND accepted_at IS NULL', [
      this.now(),
      id,
    ]);
    return changed > 0;
  }

  async acceptInvite(
    id: string,
    input: { userId: string; now: Date; newWorkspace: { name: string; bodyRetentionDays: number | null } },
  ): Promise<Membership | null> {
    const [row] = await this.sql().all<Row>(`SELECT ${INVITE_COLUMNS} FROM invites WHERE id = ?`, [id]);
    if (!row) return null;
    const invite = toInvite(row);
    const now = input.now.toISOString();

    const steps: SqlStep[] = [
      {
        sql: `UPDATE invites SET accepted_at = ?, accepted_by = ?
              WHERE id = ? AND accepted_at IS NULL AND revoked_at IS NULL AND expires_at > ?`,
        params: [now, input.userId, id, now],
        requireChange: true,
      },
    ];
    let membership: Membership;
    if (invite.workspaceId === null) {
      const workspace: Workspace = {
        id: randomUUID(),
        name: input.newWorkspace.name,
        keepBodies: true,
        redactBodies: true,
        bodyRetentionDays: checkRetention(input.newWorkspace.bodyRetentionDays),
        budgetsFailClosed: false,
        createdAt: now,
      };
      membership = { id: randomUUID(), workspaceId: workspace.id, userId: input.userId, role: 'owner', createdAt: now };
      steps.push(statement(insertWorkspace(workspace)));
    } else {
      membership = { id: randomUUID(), workspaceId: invite.workspaceId, userId: input.userId, role: invite.role, createdAt: now };
    }
    steps.push(statement(insertMembership(membership, true)));

    return (await this.sql().transaction(steps)) === null ? null : membership;
  }

  async createPasswordReset(input: {
    userId: string;
    tokenSha256: string;
    createdByUserId: string | null;
    expiresAt: string;
  }): Promise<PasswordReset> {
    const reset: PasswordReset = {
      id: randomUUID(),
      userId: input.userId,
      tokenSha256: checkSha256(input.tokenSha256),
      createdByUserId: input.createdByUserId,
      createdAt: this.now(),
      expiresAt: input.expiresAt,
      usedAt: null,
    };
    await this.sql().run(
      'INSERT INTO password_resets (id, user_id, token_sha256, created_by, created_at, expires_at) VALUES (?, ?, ?, ?, ?, ?)',
      [reset.id, reset.userId, reset.tokenSha256, reset.createdByUserId, reset.createdAt, reset.expiresAt],
    );
    return reset;
  }

  async findPasswordResetByHash(tokenSha256: string): Promise<PasswordReset | null> {
    const [row] = await this.sql().all<Row>(`SELECT ${RESET_COLUMNS} FROM password_resets WHERE token_sha256 = ?`, [tokenSha256]);
    return row ? toPasswordReset(row) : null;
  }

  async usePasswordReset(id: string, passwordHash: string, now: Date): Promise<boolean> {
    const at = now.toISOString();
    const changes = await this.sql().transaction([
      {
        sql: 'UPDATE password_resets SET used_at = ? WHERE id = ? AND used_at IS NULL AND expires_at > ?',
        params: [at, id, at],
        requireChange: true,
      },
      {
        sql: 'UPDATE users SET password_hash = ?, password_changed_at = ? WHERE id = (SELECT user_id FROM password_resets WHERE id = ?)',
        params: [passwordHash, at, id],
      },
      { sql: 'DELETE FROM sessions WHERE user_id = (SELECT user_id FROM password_resets WHERE id = ?)', params: [id] },
    ]);
    return changes !== null;
  }

  async createDeviceCode(input: NewDeviceCode): Promise<DeviceCode> {
    const code: DeviceCode = {
      id: randomUUID(),
      deviceCodeSha256: checkSha256(input.deviceCodeSha256),
      userCode: input.userCode,
      deviceName: input.deviceName,
      os: input.os,
      status: 'pending',
      workspaceId: null,
      userId: null,
      deviceId: null,
      intervalS: input.intervalS,
      createdAt: this.now(),
      expiresAt: input.expiresAt,
      lastPolledAt: null,
    };
    await this.sql().run(
      `INSERT INTO device_codes (id, device_code_sha256, user_code, device_name, os, status, interval_s, created_at, expires_at)
       VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)`,
      [
        code.id,
        code.deviceCodeSha256,
        code.userCode,
        code.deviceName,
        code.os,
        code.status,
        code.intervalS,
        code.createdAt,
        code.expiresAt,
      ],
    );
    return code;
  }

  async findDeviceCodeByHash(deviceCodeSha256: string): Promise<DeviceCode | null> {
    const [row] = await this.sql().all<Row>(`SELECT ${DEVICE_CODE_COLUMNS} FROM device_codes WHERE device_code_sha256 = ?`, [
      deviceCodeSha256,
    ]);
    return row ? toDeviceCode(row) : null;
  }

  async findDeviceCodeByUserCode(userCode: string): Promise<DeviceCode | null> {
    const [row] = await this.sql().all<Row>(`SELECT ${DEVICE_CODE_COLUMNS} FROM device_codes WHERE user_code = ?`, [userCode]);
    return row ? toDeviceCode(row) : null;
  }

  async recordDeviceCodePoll(id: string, polledAt: Date, intervalS: number): Promise<void> {
    await this.sql().run('UPDATE device_codes SET last_polled_at = ?, interval_s = ? WHERE id = ?', [
      polledAt.toISOString(),
      intervalS,
      id,
    ]);
  }

  async decideDeviceCode(
    id: string,
    decision: { status: 'approved' | 'denied'; workspaceId: string | null; userId: string },
    now: Date,
  ): Promise<boolean> {
    const changed = await this.sql().run(
      `UPDATE device_codes SET status = ?, workspace_id = ?, user_id = ?
       WHERE id = ? AND status = 'pending' AND expires_at > ?`,
      [decision.status, decision.workspaceId, decision.userId, id, now.toISOString()],
    );
    return changed > 0;
  }

  async issueDeviceCode(id: string, issued: IssuedDevice): Promise<{ device: Device; routeTokenId: string } | null> {
    const device = this.newDevice(issued.device);
    const routeTokenId = randomUUID();
    const changes = await this.sql().transaction([
      {
        sql: "UPDATE device_codes SET status = 'issued', device_id = ? WHERE id = ? AND status = 'approved'",
        params: [device.id, id],
        requireChange: true,
      },
      statement(insertDevice(device)),
      {
        sql: `INSERT INTO route_tokens (id, workspace_id, device_id, name, token_sha256, created_at) VALUES (?, ?, ?, ?, ?, ?)`,
        params: [
          routeTokenId,
          device.workspaceId,
          device.id,
          issued.routeToken.name,
          checkSha256(issued.routeToken.tokenSha256),
          device.createdAt,
        ],
      },
    ]);
    return changes === null ? null : { device, routeTokenId };
  }

  async purgeExpiredCredentials(now: Date): Promise<number> {
    const at = now.toISOString();
    const changes = await this.sql().transaction([
      { sql: 'DELETE FROM sessions WHERE expires_at <= ?', params: [at] },
      { sql: 'DELETE FROM device_codes WHERE expires_at <= ?', params: [at] },
      { sql: 'DELETE FROM invites WHERE expires_at <= ? AND accepted_at IS NULL', params: [at] },
      { sql: 'DELETE FROM password_resets WHERE expires_at <= ?', params: [at] },
    ]);
    return (changes ?? []).reduce((sum, count) => sum + count, 0);
  }

  async deleteCalls(deletion: CallDeletion): Promise<number> {
    const conditions = ['workspace_id = ?'];
    const params: SqlParam[] = [deletion.workspaceId];
    if (deletion.ids !== undefined) {
      if (deletion.ids.length === 0) return 0;
      conditions.push(`id IN (${deletion.ids.map(() => '?').join(', ')})`);
      params.push(...deletion.ids);
    }
    if (deletion.deviceIds !== undefined) {
      if (deletion.deviceIds.length === 0) return 0;
      conditions.push(`device_id IN (${deletion.deviceIds.map(() => '?').join(', ')})`);
      params.push(...deletion.deviceIds);
    }
    if (deletion.sessionId !== undefined) {
      conditions.push('session_id = ?');
      params.push(deletion.sessionId);
    }
    if (deletion.since !== undefined) {
      conditions.push('started_at_ms >= ?');
      params.push(deletion.since.getTime());
    }
    if (deletion.until !== undefined) {
      conditions.push('started_at_ms < ?');
      params.push(deletion.until.getTime());
    }

    const where = conditions.join(' AND ');
    const steps = [...callChildrenDeletes(where, params), { sql: `DELETE FROM calls WHERE ${where}`, params }];
    const changes = await this.sql().transaction(steps);
    const deleted = changes?.at(-1) ?? 0;
    if (deleted > 0) await this.eraseDeletedData();
    return deleted;
  }

  async deleteExpiredBodies(now: Date): Promise<number> {
    // The prompt text is taken from the request body, so it expires with it, and so does the LLM judge's
    // reason, which describes the bodies; the score stays.
    const expired = `SELECT c.id FROM calls c JOIN workspaces w ON w.id = c.workspace_id
         WHERE w.body_retention_days IS NOT NULL AND c.started_at_ms < ? - w.body_retention_days * ${DAY_MS}`;
    const changes = await this.sql().transaction([
      { sql: `DELETE FROM call_prompts WHERE call_id IN (${expired})`, params: [now.getTime()] },
      { sql: `DELETE FROM call_bodies WHERE call_id IN (${expired})`, params: [now.getTime()] },
      { sql: `UPDATE judge_scores SET reason = NULL WHERE reason IS NOT NULL AND call_id IN (${expired})`, params: [now.getTime()] },
    ]);
    const deleted = changes?.[1] ?? 0;
    if ((changes ?? []).some((count) => count > 0)) await this.eraseDeletedData();
    return deleted;
  }

  private newDevice(input: IssuedDevice['device']): Device {
    return {
      id: randomUUID(),
      workspaceId: input.workspaceId,
      name: input.name,
      os: input.os,
      userId: input.userId,
      createdAt: this.now(),
      lastSeenAt: null,
      privacyMode: false,
      revokedAt: null,
    };
  }
}

/** Lowercase the email and trim it, so one person cannot hold two accounts by changing letter case. */
export function normalizeEmail(email: string): string {
  return email.trim().toLowerCase();
}

function checkRetention(days: number | null): number | null {
  if (days === null) return null;
  if (!Number.isInteger(days) || days < 1 || days > 36_500) {
    throw new TokenwiseError(
      'invalid_argument',
      `invalid body retention ${days}: expected whole days from 1 to 36500, or null to keep bodies`,
    );
  }
  return days;
}

/**
 * Deletes of the rows that belong to the calls matching `where` (a condition on `calls`), to run before
 * deleting those calls, and the recount of the rollup hours they are in without them.
 */
function callChildrenDeletes(where: string, params: SqlParam[]): SqlStep[] {
  return [
    ...recomputeRollupsSteps({ sql: where, params }, { sql: `(${where}) IS NOT TRUE`, params }),
    ...['call_bodies', 'call_prompts', 'call_rate_limits', 'call_insights', 'call_scores', 'judge_scores'].map((table) => ({
      sql: `DELETE FROM ${table} WHERE call_id IN (SELECT id FROM calls WHERE ${where})`,
      params,
    })),
  ];
}

/** Deletes of the budgets matching `where` (a condition on `budgets`) with their leases and alerts. */
function budgetDeletes(where: string, params: SqlParam[]): SqlStep[] {
  return [
    { sql: `DELETE FROM budget_leases WHERE budget_id IN (SELECT id FROM budgets WHERE ${where})`, params },
    { sql: `DELETE FROM budget_alerts WHERE budget_id IN (SELECT id FROM budgets WHERE ${where})`, params },
    { sql: `DELETE FROM budgets WHERE ${where}`, params },
  ];
}

function statement([sql, params]: [string, SqlParam[]]): SqlStep {
  return { sql, params };
}

function insertWorkspace(workspace: Workspace): [string, SqlParam[]] {
  return [
    'INSERT INTO workspaces (id, name, keep_bodies, body_retention_days, created_at) VALUES (?, ?, ?, ?, ?)',
    [workspace.id, workspace.name, workspace.keepBodies, workspace.bodyRetentionDays, workspace.createdAt],
  ];
}

function insertDevice(device: Device): [string, SqlParam[]] {
  return [
    'INSERT INTO devices (id, workspace_id, name, os, user_id, created_at, privacy_mode) VALUES (?, ?, ?, ?, ?, ?, ?)',
    [device.id, device.workspaceId, device.name, device.os, device.userId, device.createdAt, device.privacyMode],
  ];
}

/** With `skipExisting`, a person already in the workspace keeps the membership they have. */
function insertMembership(membership: Membership, skipExisting = false): [string, SqlParam[]] {
  return [
    `INSERT INTO memberships (id, workspace_id, user_id, role, created_at) VALUES (?, ?, ?, ?, ?)${
      skipExisting ? ' ON CONFLICT (workspace_id, user_id) DO NOTHING' : ''
    }`,
    [membership.id, membership.workspaceId, membership.userId, membership.role, membership.createdAt],
  ];
}

/** Everything of one workspace, children first, the workspace row last; the transaction fails when it does not exist. */
function deleteWorkspaceSteps(id: string): SqlStep[] {
  return [
    ...callChildrenDeletes('workspace_id = ?', [id]),
    { sql: 'DELETE FROM calls WHERE workspace_id = ?', params: [id] },
    { sql: 'DELETE FROM custom_prices WHERE workspace_id = ?', params: [id] },
    ...budgetDeletes('workspace_id = ?', [id]),
    { sql: 'DELETE FROM budget_spend WHERE workspace_id = ?', params: [id] },
    { sql: 'DELETE FROM route_tokens WHERE workspace_id = ?', params: [id] },
    { sql: 'DELETE FROM api_tokens WHERE workspace_id = ?', params: [id] },
    { sql: 'DELETE FROM device_codes WHERE workspace_id = ?', params: [id] },
    { sql: 'DELETE FROM devices WHERE workspace_id = ?', params: [id] },
    { sql: 'DELETE FROM memberships WHERE workspace_id = ?', params: [id] },
    { sql: 'DELETE FROM invites WHERE workspace_id = ?', params: [id] },
    { sql: 'DELETE FROM prompt_groups WHERE workspace_id = ?', params: [id] },
    { sql: 'DELETE FROM prompt_versions WHERE workspace_id = ?', params: [id] },
    { sql: 'DELETE FROM insights WHERE workspace_id = ?', params: [id] },
    { sql: 'DELETE FROM insight_settings WHERE workspace_id = ?', params: [id] },
    { sql: 'DELETE FROM insights_email_settings WHERE workspace_id = ?', params: [id] },
    { sql: 'DELETE FROM insights_email_preferences WHERE workspace_id = ?', params: [id] },
    { sql: 'DELETE FROM insights_email_sends WHERE workspace_id = ?', params: [id] },
    { sql: 'DELETE FROM judge_settings WHERE workspace_id = ?', params: [id] },
    { sql: 'DELETE FROM workspaces WHERE id = ?', params: [id], requireChange: true },
  ];
}

const WORKSPACE_COLUMNS = 'id, name, keep_bodies, redact_bodies, body_retention_days, budgets_fail_closed, created_at';
const DEVICE_COLUMNS = 'id, workspace_id, name, os, user_id, created_at, last_seen_at, privacy_mode, revoked_at';
const USER_COLUMNS = 'id, email, name, password_hash, created_at, password_changed_at';
const MEMBERSHIP_COLUMNS = 'id, workspace_id, user_id, role, created_at';
const SESSION_COLUMNS = 'id, user_id, token_sha256, created_at, expires_at, last_seen_at, user_agent';
const INVITE_COLUMNS =
  'id, workspace_id, role, email, token_sha256, created_by, created_at, expires_at, accepted_at, accepted_by, revoked_at';
const RESET_COLUMNS = 'id, user_id, token_sha256, created_by, created_at, expires_at, used_at';
const DEVICE_CODE_COLUMNS =
  'id, device_code_sha256, user_code, device_name, os, status, workspace_id, user_id, device_id, interval_s, created_at, expires_at, last_polled_at';

/** `a, b` -> `m.a, m.b`, or with `alias` -> `w.a AS w_a, w.b AS w_b`. */
function prefixed(table: string, columns: string, alias?: string): string {
  return columns
    .split(', ')
    .map((column) => (alias ? `${table}.${column} AS ${alias}${column}` : `${table}.${column}`))
    .join(', ');
}

function unprefix(row: Row, prefix: string): Row {
  const result: Row = {};
  for (const [key, value] of Object.entries(row)) if (key.startsWith(prefix)) result[key.slice(prefix.length)] = value;
  return result;
}

const text = (value: unknown): string => String(value);
const optionalText = (value: unknown): string | null => (value === null || value === undefined ? null : String(value));
const optionalNumber = (value: unknown): number | null => (value === null || value === undefined ? null : Number(value));

function toWorkspace(row: Row): Workspace {
  return {
    id: text(row.id),
    name: text(row.name),
    keepBodies: readBoolean(row.keep_bodies),
    redactBodies: readBoolean(row.redact_bodies),
    bodyRetentionDays: optionalNumber(row.body_retention_days),
    budgetsFailClosed: readBoolean(row.budgets_fail_closed),
    createdAt: text(row.created_at),
  };
}

function toDevice(row: Row): Device {
  return {
    id: text(row.id),
    workspaceId: text(row.workspace_id),
    name: text(row.name),
    os: optionalText(row.os),
    userId: optionalText(row.user_id),
    createdAt: text(row.created_at),
    lastSeenAt: optionalText(row.last_seen_at),
    privacyMode: readBoolean(row.privacy_mode),
    revokedAt: optionalText(row.revoked_at),
  };
}

function toUser(row: Row): User {
  return {
    id: text(row.id),
    email: text(row.email),
    name: text(row.name),
    passwordHash: text(row.password_hash),
    createdAt: text(row.created_at),
    passwordChangedAt: text(row.password_changed_at),
  };
}

function toMembership(row: Row): Membership {
  return {
    id: text(row.id),
    workspaceId: text(row.workspace_id),
    userId: text(row.user_id),
    role: text(row.role) as Role,
    createdAt: text(row.created_at),
  };
}

function toMemberWithUser(row: Row): MembershipWithUser {
  const membership = toMembership(row);
  return { ...membership, user: { id: membership.userId, email: String(row.u_email), name: String(row.u_name) } };
}

function toSession(row: Row): Session {
  return {
    id: text(row.id),
    userId: text(row.user_id),
    tokenSha256: text(row.token_sha256),
    createdAt: text(row.created_at),
    expiresAt: text(row.expires_at),
    lastSeenAt: text(row.last_seen_at),
    userAgent: optionalText(row.user_agent),
  };
}

function toInvite(row: Row): Invite {
  return {
    id: text(row.id),
    workspaceId: optionalText(row.workspace_id),
    role: text(row.role) as Role,
    email: optionalText(row.email),
    tokenSha256: text(row.token_sha256),
    createdByUserId: optionalText(row.created_by),
    createdAt: text(row.created_at),
    expiresAt: text(row.expires_at),
    acceptedAt: optionalText(row.accepted_at),
    acceptedByUserId: optionalText(row.accepted_by),
    revokedAt: optionalText(row.revoked_at),
  };
}

function toPasswordReset(row: Row): PasswordReset {
  return {
    id: text(row.id),
    userId: text(row.user_id),
    tokenSha256: text(row.token_sha256),
    createdByUserId: optionalText(row.created_by),
    createdAt: text(row.created_at),
    expiresAt: text(row.expires_at),
    usedAt: optionalText(row.used_at),
  };
}

function toDeviceCode(row: Row): DeviceCode {
  return {
    id: text(row.id),
    deviceCodeSha256: text(row.device_code_sha256),
    userCode: text(row.user_code),
    deviceName: text(row.device_name),
    os: optionalText(row.os),
    status: text(row.status) as DeviceCodeStatus,
    workspaceId: optionalText(row.workspace_id),
    userId: optionalText(row.user_id),
    deviceId: optionalText(row.device_id),
    intervalS: Number(row.interval_s),
    createdAt: text(row.created_at),
    expiresAt: text(row.expires_at),
    lastPolledAt: optionalText(row.last_polled_at),
  };
}
