import type { ListPage, PageRequest } from './call-queries.js';
import type { Device, Workspace } from './store.js';

/** Members see a workspace's data; owners also manage its devices, members and settings. */
export type Role = 'owner' | 'member';

export const ROLES: readonly Role[] = ['owner', 'member'];

/** A person who signs in to the web UI. The email is stored lowercase and is unique. */
export interface User {
  id: string;
  email: string;
  name: string;
  /** A self-describing scrypt hash (`scrypt$N$r$p$salt$hash`); never the password. */
  passwordHash: string;
  createdAt: string;
  passwordChangedAt: string;
}

export interface Membership {
  id: string;
  workspaceId: string;
  userId: string;
  role: Role;
  createdAt: string;
}

export interface MembershipWithWorkspace extends Membership {
  workspace: Workspace;
}

export interface MembershipWithUser extends Membership {
  user: Pick<User, 'id' | 'email' | 'name'>;
}

/** A signed-in browser: the cookie carries the token, the store only its SHA-256. */
export interface Session {
  id: string;
  userId: string;
  tokenSha256: string;
  createdAt: string;
  expiresAt: string;
  lastSeenAt: string;
  userAgent: string | null;
}

/**
 * A link that lets a person join. With a workspace the person becomes a member (or owner) of it; without
 * one the new account gets a workspace of its own.
 */
export interface Invite {
  id: string;
  workspaceId: string | null;
  role: Role;
  /** When set, only this email can accept the invite. */
  email: string | null;
  tokenSha256: string;
  createdByUserId: string | null;
  createdAt: string;
  expiresAt: string;
  acceptedAt: string | null;
  acceptedByUserId: string | null;
  revokedAt: string | null;
}

/** A one-time link that sets a new password. */
export interface PasswordReset {
  id: string;
  userId: string;
  tokenSha256: string;
  /** Null when made from the server's shell (`tokenwise users reset-password`). */
  createdByUserId: string | null;
  createdAt: string;
  expiresAt: string;
  usedAt: string | null;
}

/**
 * `pending` until a person approves or denies the code in the browser, `approved` until the device's
 * next poll picks up its route token, then `issued`.
 */
export type DeviceCodeStatus = 'pending' | 'approved' | 'denied' | 'issued';

/** One device authorization request (RFC 8628). Only hashes of the device code are stored. */
export interface DeviceCode {
  id: string;
  deviceCodeSha256: string;
  /** Eight letters without separator, uppercase. */
  userCode: string;
  /** The name the device gave (its host name) and its operating system, both as the device sent them. */
  deviceName: string;
  os: string | null;
  status: DeviceCodeStatus;
  /** Set on approval: where the device's calls will go, and who approved. */
  workspaceId: string | null;
  userId: string | null;
  /** Set when the route token was issued. */
  deviceId: string | null;
  /** Minimum seconds between two polls; grows by 5 on every `slow_down`. */
  intervalS: number;
  createdAt: string;
  expiresAt: string;
  lastPolledAt: string | null;
}

export interface NewDeviceCode {
  deviceCodeSha256: string;
  userCode: string;
  deviceName: string;
  os: string | null;
  intervalS: number;
  expiresAt: string;
}

export interface WorkspaceChanges {
  name?: string;
  /** False turns privacy mode on. */
  keepBodies?: boolean;
  /** False stores body text as sent, without masking the secrets in it. */
  redactBodies?: boolean;
  /** Days a call's bodies are kept; null keeps them until the call is deleted. */
  bodyRetentionDays?: number | null;
  /** True refuses calls while blocking budgets cannot be checked (fail-closed). */
  budgetsFailClosed?: boolean;
}

export interface DeviceChanges {
  name?: string;
  /** True drops the bodies of this device's calls even when the workspace keeps bodies. */
  privacyMode?: boolean;
  /** Its last call, for data recorded elsewhere (`tokenwise dev seed`); the proxy updates it through `touchRouteToken`. */
  lastSeenAt?: Date;
}

/** Calls to delete: always within one workspace, narrowed by every other field given. */
export interface CallDeletion {
  workspaceId: string;
  ids?: readonly string[];
  deviceIds?: readonly string[];
  sessionId?: string;
  since?: Date;
  until?: Date;
}

/** A device to create together with its route token, as the device flow issues it. */
export interface IssuedDevice {
  device: { workspaceId: string; name: string; os: string | null; userId: string | null };
  routeToken: { name: string; tokenSha256: string };
}

/**
 * Accounts, workspaces, devices and everything pairing and deletion need. Every method that changes more
 * than one row does so in one transaction. Lookups by secret take the secret's SHA-256.
 */
export interface AccountStore {
  createUser(input: { email: string; name: string; passwordHash: string }): Promise<User>;
  getUser(id: string): Promise<User | null>;
  findUserByEmail(email: string): Promise<User | null>;
  countUsers(): Promise<number>;
  /** Sets the password and ends every session of the user. */
  setUserPassword(userId: string, passwordHash: string): Promise<void>;
  /**
   * Deletes the user with their sessions, memberships, API tokens and password resets, and every workspace
   * in `soleWorkspaceIds` with all its data. Devices the user paired elsewhere stay with their workspace.
   */
  deleteUser(userId: string, soleWorkspaceIds: readonly string[]): Promise<void>;

  addMembership(input: { workspaceId: string; userId: string; role: Role }): Promise<Membership>;
  getMembership(workspaceId: string, userId: string): Promise<Membership | null>;
  listMembershipsOfUser(userId: string): Promise<MembershipWithWorkspace[]>;
  /** The person's workspaces, oldest workspace first (by creation time, then id), one page at a time. */
  listMembershipsOfUserPage(userId: string, page: PageRequest): Promise<ListPage<MembershipWithWorkspace>>;
  listMembers(workspaceId: string): Promise<MembershipWithUser[]>;
  /** People of the workspace in the order they joined (then by membership id), one page at a time. */
  listMembersPage(workspaceId: string, page: PageRequest): Promise<ListPage<MembershipWithUser>>;
  setMembershipRole(workspaceId: string, userId: string, role: Role): Promise<boolean>;
  removeMembership(workspaceId: string, userId: string): Promise<boolean>;

  createSession(input: { userId: string; tokenSha256: string; expiresAt: string; userAgent: string | null }): Promise<Session>;
  findSessionByHash(tokenSha256: string): Promise<Session | null>;
  touchSession(id: string, seenAt: Date): Promise<void>;
  deleteSession(id: string): Promise<void>;

  createInvite(input: Omit<Invite, 'id' | 'createdAt' | 'acceptedAt' | 'acceptedByUserId' | 'revokedAt'>): Promise<Invite>;
  findInviteByHash(tokenSha256: string): Promise<Invite | null>;
  listInvites(workspaceId: string): Promise<Invite[]>;
  /** Open and past invites of the workspace, oldest first (then by id), one page at a time. */
  listInvitesPage(workspaceId: string, page: PageRequest): Promise<ListPage<Invite>>;
  revokeInvite(id: string): Promise<boolean>;
  /**
   * Marks an open, unexpired invite accepted by `userId` and makes them a member of its workspace, or, for an
   * invite without one, the owner of a new workspace made from `newWorkspace`. Returns the membership, or
   * null when the invite was used, revoked or expired meanwhile.
   */
  acceptInvite(
    id: string,
    input: { userId: string; now: Date; newWorkspace: { name: string; bodyRetentionDays: number | null } },
  ): Promise<Membership | null>;

  createPasswordReset(input: {
    userId: string;
    tokenSha256: string;
    createdByUserId: string | null;
    expiresAt: string;
  }): Promise<PasswordReset>;
  findPasswordResetByHash(tokenSha256: string): Promise<PasswordReset | null>;
  /**
   * Uses an unused, unexpired reset: sets the password, ends the user's sessions and marks the reset used.
   * False when it was used or expired meanwhile.
   */
  usePasswordReset(id: string, passwordHash: string, now: Date): Promise<boolean>;

  createDeviceCode(input: NewDeviceCode): Promise<DeviceCode>;
  findDeviceCodeByHash(deviceCodeSha256: string): Promise<DeviceCode | null>;
  findDeviceCodeByUserCode(userCode: string): Promise<DeviceCode | null>;
  recordDeviceCodePoll(id: string, polledAt: Date, intervalS: number): Promise<void>;
  /** Approves or denies a pending, unexpired code; false when it was decided or expired meanwhile. */
  decideDeviceCode(
    id: string,
    decision: { status: 'approved' | 'denied'; workspaceId: string | null; userId: string },
    now: Date,
  ): Promise<boolean>;
  /**
   * Creates the device and its route token and marks an approved code issued, in one transaction. Returns
   * null when the code is not (or no longer) approved, so a token is issued once even to concurrent polls.
   */
  issueDeviceCode(id: string, issued: IssuedDevice): Promise<{ device: Device; routeTokenId: string } | null>;
  /** Deletes expired sessions, device codes, invites and password resets; returns how many rows went. */
  purgeExpiredCredentials(now: Date): Promise<number>;

  listWorkspaces(): Promise<Workspace[]>;
  updateWorkspace(id: string, changes: WorkspaceChanges): Promise<Workspace | null>;
  /** Deletes the workspace and everything in it: calls, bodies, devices, tokens, memberships, invites. */
  deleteWorkspace(id: string): Promise<boolean>;

  listDevices(workspaceId: string): Promise<Device[]>;
  /** Devices of the workspace, revoked ones too, oldest first (then by id), one page at a time. */
  listDevicesPage(workspaceId: string, page: PageRequest): Promise<ListPage<Device>>;
  updateDevice(id: string, changes: DeviceChanges): Promise<Device | null>;
  /** Marks the device revoked with every active route token of it; returns the ids of the tokens revoked. */
  revokeDevice(id: string): Promise<string[]>;
  /** Deletes the device and its route tokens, and with `withCalls` its calls and their bodies. */
  deleteDevice(id: string, options: { withCalls: boolean }): Promise<boolean>;

  /** Deletes matching calls with their bodies; returns how many calls were deleted. */
  deleteCalls(deletion: CallDeletion): Promise<number>;
  /** Deletes the bodies of calls older than their workspace's retention; returns how many body rows went. */
  deleteExpiredBodies(now: Date): Promise<number>;
}
