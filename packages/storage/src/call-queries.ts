import type { CallRecord, CustomPrice } from '@tokenwise/core';
import type { ListedCall } from './store.js';

/**
 * The calls of one workspace a dashboard query reads. Every list narrows the calls to its values, and an
 * empty list matches no call. Times are `[from, to)`.
 */
export interface CallFilter {
  workspaceId: string;
  from?: Date;
  to?: Date;
  tools?: readonly string[];
  /** The call's model: `model_answered`, else `model_requested`. */
  models?: readonly string[];
  providers?: readonly string[];
  routes?: readonly string[];
  deviceIds?: readonly string[];
  statuses?: readonly string[];
  sessionIds?: readonly string[];
  /** Text the prompt contains; matched lowercased, so case-insensitively. */
  promptText?: string;
}

/** One page of a keyset-paginated list; `nextCursor` is null on the last page. */
export interface CallPage {
  calls: ListedCall[];
  nextCursor: string | null;
}

/** One page of a keyset-paginated list of accounts, devices, tokens or prices; `nextCursor` is null on the last page. */
export interface ListPage<T> {
  items: T[];
  nextCursor: string | null;
}

export interface PageRequest {
  limit: number;
  /** A `nextCursor` this store returned for the same query. */
  cursor?: string;
}

/** The field the overview's series stack by. The server groups devices by their person for the people view. */
export type CallGrouping = 'tool' | 'model' | 'provider' | 'route' | 'device';

/** Sums over a set of calls. Costs and token counts are sums over the calls that report them. */
export interface CallSums {
  calls: number;
  errors: number;
  apiUsd: number;
  apiEquivalentUsd: number;
  inputTokens: number;
  cacheReadTokens: number;
  cacheWriteTokens: number;
  outputTokens: number;
}

export interface CallTotals extends CallSums {
  uncachedInputTokens: number;
  reasoningTokens: number;
  sessions: number;
  /** Calls whose model has no price (basis `unpriced`) and whose usage was not reported (basis `unknown`). */
  unpricedCalls: number;
  unknownCostCalls: number;
  /** Cache-read and input tokens over the calls that report both, for the cache hit ratio. */
  cacheRatioReadTokens: number;
  cacheRatioInputTokens: number;
}

/** p50 and p95 (nearest rank) of a timing in ms; null without calls. */
export interface Percentiles {
  p50: number | null;
  p95: number | null;
}

export interface BucketLatency {
  bucket: number;
  totalMs: Percentiles;
  ttftMs: Percentiles;
}

export interface GroupedSums extends CallSums {
  /** Index of the time bucket: `floor((started_at - from) / bucketMs)`. */
  bucket: number;
  /** The group's value; null when the calls have none (no model, no device). */
  key: string | null;
}

export interface SessionSummary {
  sessionId: string;
  tools: string[];
  models: string[];
  deviceIds: string[];
  firstCallAt: string;
  lastCallAt: string;
  /** From the first call's start to the last call's end, in ms. */
  durationMs: number;
  sums: CallSums;
}

export interface ModelSummary {
  model: string | null;
  provider: string;
  sums: CallSums;
}

export interface OverviewQuery {
  filter: CallFilter & { from: Date; to: Date };
  bucketMs: number;
  groupBy: CallGrouping;
  /** Entries of the top sessions and top models lists. */
  top: number;
}

export interface Overview {
  totals: CallTotals;
  latency: Percentiles;
  ttft: Percentiles;
  groups: GroupedSums[];
  bucketLatency: BucketLatency[];
  topSessions: SessionSummary[];
  topModels: ModelSummary[];
}

export interface FacetValue {
  value: string;
  calls: number;
}

export interface CallFacets {
  tools: FacetValue[];
  models: FacetValue[];
  providers: FacetValue[];
  statuses: FacetValue[];
  devices: FacetValue[];
}

export interface DeviceCallStats {
  deviceId: string;
  calls: number;
  callsSince: number;
  lastCallAt: string | null;
}

/** The rate-limit headers of the newest call of one device, route and tool. */
export interface RateLimitSnapshot {
  deviceId: string;
  route: string;
  tool: string;
  provider: string;
  callId: string;
  observedAt: string;
  headers: Record<string, string>;
}

/** A workspace's own price for one model from `effectiveFrom` on. */
export interface StoredCustomPrice extends Required<CustomPrice> {
  id: string;
  workspaceId: string;
  /** The price key (model without its date suffix) it applies to. */
  model: string;
  /** Provider id it is limited to; null for any provider. */
  provider: string | null;
  effectiveFrom: string;
  createdAt: string;
  createdBy: string | null;
}

export type NewCustomPrice = Omit<StoredCustomPrice, 'id' | 'createdAt'>;

/** A new cost for a stored call, from re-pricing. */
export interface CallCostUpdate {
  id: string;
  cost: CallRecord['cost'];
}

/**
 * The reads the dashboard needs, over the narrow calls table and its side tables. Each takes the
 * workspace it reads, so no query crosses workspaces.
 */
export interface CallQueryStore {
  /** Calls newest first (by start time, then storage order), one page at a time. */
  searchCalls(filter: CallFilter, page: PageRequest): Promise<CallPage>;
  /** The calls of one session oldest first, one page at a time. */
  listSessionCalls(workspaceId: string, sessionId: string, page: PageRequest): Promise<CallPage>;
  overview(query: OverviewQuery): Promise<Overview>;
  /** Sessions with a call matching `filter`, the latest activity first. */
  listSessions(filter: CallFilter, page: PageRequest): Promise<{ sessions: SessionSummary[]; nextCursor: string | null }>;
  /** One session over all its calls; null when the workspace has no call of it. */
  getSession(workspaceId: string, sessionId: string): Promise<SessionSummary | null>;
  /** The most frequent values of each filter field among the matching calls, at most `limit` each. */
  callFacets(filter: CallFilter, limit: number): Promise<CallFacets>;
  /** Call counts of the given devices: all of them, and those started at or after `since`. */
  deviceCallStats(deviceIds: readonly string[], since: Date): Promise<DeviceCallStats[]>;
  latestRateLimits(workspaceId: string): Promise<RateLimitSnapshot[]>;
  /** One page of `latestRateLimits`, ordered by device id, route and tool. */
  listRateLimitsPage(workspaceId: string, page: PageRequest): Promise<ListPage<RateLimitSnapshot>>;
  /** Whether any call of the workspace has prompt text to search. */
  hasPromptText(workspaceId: string): Promise<boolean>;

  listCustomPrices(workspaceId: string): Promise<StoredCustomPrice[]>;
  /** The workspace's custom prices, newest `effectiveFrom` first, then newest created, then by id; one page at a time. */
  listCustomPricesPage(workspaceId: string, page: PageRequest): Promise<ListPage<StoredCustomPrice>>;
  createCustomPrice(price: NewCustomPrice): Promise<StoredCustomPrice>;
  deleteCustomPrice(workspaceId: string, id: string): Promise<boolean>;
  /** Custom prices of every workspace, for the price book new calls are priced with. */
  listAllCustomPrices(): Promise<StoredCustomPrice[]>;
  /** Replace the cost of stored calls in one transaction; returns how many calls changed. */
  updateCallCosts(updates: readonly CallCostUpdate[]): Promise<number>;
}
