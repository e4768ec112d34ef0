import type { CallBodies, CallRecord } from '@tokenwise/core';
import type { AccountStore } from './account-store.js';
import type { PackedBodies } from './body-packer.js';
import type { BudgetStore } from './budget-store.js';
import type { CallQueryStore, ListPage, PageRequest } from './call-queries.js';
import type { InsightStore } from './insight-store.js';
import type { ReportStore } from './report-store.js';

/** One finished call as the proxy hands it over: the immutable record and, unless privacy mode is on, its bodies. */
export interface CallToStore {
  record: CallRecord;
  bodies: CallBodies | null;
}

/**
 * A finished call whose bodies a `BodyPacker` already masked and compressed; `insertCalls` stores them as
 * they are. Null `packed` means no bodies, as null `bodies` does.
 */
export interface PackedCall {
  record: CallRecord;
  packed: PackedBodies | null;
}

/** What `insertCalls` takes: a call with its bodies as text, or already packed. */
export type CallToInsert = CallToStore | PackedCall;

/**
 * Position of a call in storage order (the order calls were stored, not the order they started). Opaque
 * to callers: pass back what a store returned, e.g. as an SSE event id.
 */
export type CallCursor = string;

export interface StoredCallRef {
  id: string;
  cursor: CallCursor;
}

export interface ListedCall {
  cursor: CallCursor;
  record: CallRecord;
}

export interface ListCallsQuery {
  /** Maximum number of calls returned, at least 1. */
  limit: number;
  /** Only calls that started at or after this time. */
  since?: Date;
  /**
   * Only calls stored after this cursor. With `after` the result is in storage order, oldest first, so a
   * follower can page forward without skipping a call. Without it the result is newest first by start time.
   */
  after?: CallCursor;
  /** Only calls of this workspace; every request on behalf of a person or token sets it. */
  workspaceId?: string;
  deviceId?: string;
  sessionId?: string;
  /** Only calls that started before this time. */
  until?: Date;
}

export interface Workspace {
  id: string;
  name: string;
  /** False in privacy mode: no request or response bodies are captured or stored. */
  keepBodies: boolean;
  /** True masks secrets in body text before it is stored (the default); credential headers are never kept. */
  redactBodies: boolean;
  /** Days a call's bodies are kept before the retention job deletes them; null keeps them. */
  bodyRetentionDays: number | null;
  /** True makes the proxy refuse calls (503) while blocking budgets cannot be checked; false lets them through. */
  budgetsFailClosed: boolean;
  createdAt: string;
}

/** A machine whose AI tools send calls through one route token. */
export interface Device {
  id: string;
  workspaceId: string;
  name: string;
  /** Operating system as the device reported it when it paired, e.g. `linux`; null when unknown. */
  os: string | null;
  /** The person who paired it; null for devices made from the server's shell or by an API token. */
  userId: string | null;
  createdAt: string;
  /** Last call through any of its route tokens, at most a minute old. */
  lastSeenAt: string | null;
  /** True keeps no bodies of this device's calls, whatever the workspace keeps. */
  privacyMode: boolean;
  revokedAt: string | null;
}

/** A route token as stored: only the SHA-256 of the token, never the token itself. */
export interface RouteToken {
  id: string;
  workspaceId: string;
  deviceId: string | null;
  name: string;
  tokenSha256: string;
  createdAt: string;
  revokedAt: string | null;
  lastUsedAt: string | null;
}

/**
 * A token for the HTTP API (`Authorization: Bearer`), stored as its SHA-256 only. A person's token acts as
 * that person in its workspace; a token without a user (the local owner token) acts as an owner.
 */
export interface ApiToken {
  id: string;
  workspaceId: string;
  userId: string | null;
  name: string;
  tokenSha256: string;
  createdAt: string;
  revokedAt: string | null;
  lastUsedAt: string | null;
}

export interface NewDevice {
  workspaceId: string;
  name: string;
  os?: string | null;
  userId?: string | null;
  /** When it was paired; now by default. `tokenwise dev seed` dates its devices before their first call. */
  createdAt?: Date;
}

export interface NewRouteToken {
  workspaceId: string;
  deviceId: string | null;
  name: string;
  /** Lowercase hex SHA-256 of the token. */
  tokenSha256: string;
}

export interface NewApiToken {
  workspaceId: string;
  userId?: string | null;
  name: string;
  /** Lowercase hex SHA-256 of the token. */
  tokenSha256: string;
}

/**
 * Everything Tokenwise persists. Every implementation (SQLite and PostgreSQL) must pass the same
 * contract suite, so callers never depend on which one they hold. Methods are async because network
 * stores are. Times are ISO 8601 strings in UTC.
 */
export interface Store extends AccountStore, CallQueryStore, InsightStore, ReportStore {
  /**
   * Store a batch of calls in one transaction: either every new call is stored or none is. A call whose id
   * is already stored is skipped (a re-sent record never doubles). Returns the calls actually added, in
   * storage order.
   */
  insertCalls(calls: readonly CallToInsert[]): Promise<StoredCallRef[]>;
  listCalls(query: ListCallsQuery): Promise<ListedCall[]>;
  /** The record exactly as inserted, with its bodies when they were kept; null for an unknown id. */
  getCall(id: string): Promise<CallToStore | null>;
  /** Cursor of the call stored last, null when no call is stored; a follower starts from it to see only new calls. */
  latestCursor(): Promise<CallCursor | null>;

  /** Budgets, their spend counters and alerts (see `BudgetStore`). */
  readonly budgets: BudgetStore;

  createWorkspace(input: { name: string; keepBodies?: boolean; bodyRetentionDays?: number | null }): Promise<Workspace>;
  getWorkspace(id: string): Promise<Workspace | null>;
  createDevice(input: NewDevice): Promise<Device>;
  getDevice(id: string): Promise<Device | null>;

  createRouteToken(input: NewRouteToken): Promise<RouteToken>;
  /** Looks a token up by its hash, revoked or not; the caller decides what a revoked token means. */
  findRouteTokenByHash(tokenSha256: string): Promise<RouteToken | null>;
  listRouteTokens(workspaceId: string): Promise<RouteToken[]>;
  /** Route tokens of the workspace, revoked ones too, oldest first (then by id), one page at a time. */
  listRouteTokensPage(workspaceId: string, page: PageRequest): Promise<ListPage<RouteToken>>;
  /** Marks the token revoked; returns false when no active token has this id. */
  revokeRouteToken(id: string): Promise<boolean>;
  /** Records the use of a token and of its device (`lastSeenAt`). */
  touchRouteToken(id: string, usedAt: Date): Promise<void>;

  createApiToken(input: NewApiToken): Promise<ApiToken>;
  findApiTokenByHash(tokenSha256: string): Promise<ApiToken | null>;
  /** Active (not revoked) API tokens of every workspace. */
  listActiveApiTokens(): Promise<ApiToken[]>;
  /** Active API tokens of one person, for listing them. */
  listUserApiTokens(userId: string): Promise<ApiToken[]>;
  /** The same tokens as `listUserApiTokens`, oldest first (then by id), one page at a time. */
  listUserApiTokensPage(userId: string, page: PageRequest): Promise<ListPage<ApiToken>>;
  revokeApiToken(id: string): Promise<boolean>;

  getSetting(key: string): Promise<string | null>;
  setSetting(key: string, value: string): Promise<void>;

  /**
   * Resolves when the store responds and its schema is the version this code supports; rejects with
   * `store_failed` when it is unreachable or a newer Tokenwise has migrated it since. `/readyz` calls it.
   */
  checkReady(): Promise<void>;
  /**
   * Run `task` while holding the lock `name`, so a step such as first-start setup runs once even when several
   * servers start at once. With PostgreSQL the lock covers every process sharing the database, with SQLite
   * only this process, because one server owns a SQLite file.
   */
  withLock<T>(name: string, task: () => Promise<T>): Promise<T>;

  /** Releases the connection; later calls fail with `store_failed`. Calling it twice is harmless. */
  close(): Promise<void>;
}
