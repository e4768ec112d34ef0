import type { CallRecord } from '@tokenwise/core';

/** Response shapes of the API routes the dashboard reads, as docs/api.md specifies them. */

export type { CallRecord };

export type Role = 'owner' | 'member';

export interface Workspace {
  id: string;
  name: string;
  role: Role;
  privacy_mode: boolean;
  /** Absent on servers without the redaction switch. */
  redaction?: boolean;
  body_retention_days: number | null;
  created_at: string;
}

export interface User {
  id: string;
  email: string;
  name: string;
  created_at: string;
}

export interface Me {
  user: User | null;
  workspaces: Workspace[];
  csrf_token?: string;
}

export interface CostSums {
  api_usd: number | null;
  api_equivalent_usd: number | null;
  cost_usd: number | null;
  unpriced_calls?: number;
  unknown_cost_calls?: number;
}

export interface Percentiles {
  p50: number | null;
  p95: number | null;
}

export type GroupBy = 'tool' | 'model' | 'provider' | 'device' | 'person';

export interface OverviewSeries {
  key: string;
  label: string;
  calls: number[];
  errors: number[];
  api_usd: number[];
  api_equivalent_usd: number[];
  cost_usd: number[];
  input_tokens: number[];
  cache_read_tokens: number[];
  cache_write_tokens: number[];
  output_tokens: number[];
}

export interface TopSession {
  session_id: string;
  tool: string;
  calls: number;
  cost_usd: number | null;
  api_usd: number | null;
  api_equivalent_usd: number | null;
  first_call_at: string;
  last_call_at: string;
}

export interface TopModel {
  model: string;
  provider: string;
  calls: number;
  cost_usd: number | null;
  api_usd: number | null;
  api_equivalent_usd: number | null;
  input_tokens: number | null;
  output_tokens: number | null;
}

export interface Overview {
  from: string;
  to: string;
  bucket: string;
  bucket_ms: number;
  group_by: GroupBy;
  totals: {
    calls: number;
    errors: number;
    sessions: number;
    cost: CostSums;
    tokens: {
      input: number | null;
      uncached_input: number | null;
      cache_read: number | null;
      cache_write: number | null;
      output: number | null;
      reasoning: number | null;
    };
    latency_ms: Percentiles;
    ttft_ms: Percentiles;
    cache_hit_ratio: number | null;
  };
  buckets: string[];
  series: OverviewSeries[];
  latency: { p50_ms: (number | null)[]; p95_ms: (number | null)[]; ttft_p50_ms: (number | null)[]; ttft_p95_ms: (number | null)[] };
  top_sessions: TopSession[];
  top_models: TopModel[];
}

export interface CallList {
  calls: CallRecord[];
  next_cursor: string | null;
  search?: { q: string; available: boolean; privacy_mode: boolean; note: string | null } | null;
}

export interface Facet {
  value: string;
  label?: string;
  calls: number;
}

export interface Facets {
  tools: Facet[];
  models: Facet[];
  providers: Facet[];
  statuses: Facet[];
  devices: Facet[];
  people: Facet[];
}

export interface BodyInfo {
  bytes: number;
  truncated: boolean;
  content_type: string | null;
  encoding_error: string | null;
  /** Inline up to 256 KiB; null when larger, then fetched from `url`. */
  text: string | null;
  url: string;
}

export interface CallDetail {
  call: CallRecord;
  device: { id: string; name: string; user_id: string | null } | null;
  cost: CallRecord['cost'] & { price_source?: string | null };
  timing: CallRecord['timing'] & {
    proxy_before_ms?: number | null;
    proxy_after_ms?: number | null;
    proxy_overhead_ms?: number | null;
    model_load_ms?: number | null;
    prompt_eval_ms?: number | null;
    eval_ms?: number | null;
  };
  rate_limits: Record<string, string> | null;
  bodies: {
    kept: boolean;
    reason: string | null;
    request: BodyInfo | null;
    response: BodyInfo | null;
  };
  request_headers: Record<string, string>;
  response_headers: Record<string, string>;
  curl: string | null;
}

export interface SessionSummary {
  session_id: string;
  tool: string;
  tools: string[];
  first_call_at: string;
  last_call_at: string;
  duration_ms: number;
  calls: number;
  errors: number;
  cost_usd: number | null;
  api_usd: number | null;
  api_equivalent_usd: number | null;
  tokens: { input: number | null; cache_read: number | null; cache_write: number | null; output: number | null };
  models: string[];
  device_ids: string[];
}

export interface SessionList {
  sessions: SessionSummary[];
  next_cursor: string | null;
}

export interface SessionDetail {
  session: SessionSummary;
  calls: CallRecord[];
  next_cursor: string | null;
}

export interface RateLimitObservation {
  device_id?: string;
  provider: string;
  route: string;
  tool: string;
  observed_at: string;
  call_id?: string;
  headers: Record<string, string>;
}

export interface Device {
  id: string;
  name: string;
  os: string | null;
  user_id: string | null;
  created_at: string;
  last_seen_at: string | null;
  privacy_mode: boolean;
  revoked_at: string | null;
  calls_total?: number;
  calls_24h?: number;
  last_call_at?: string | null;
  rate_limits?: RateLimitObservation[];
}

export interface ConnectInfo {
  server_url: string;
  commands: Record<string, string>;
}

export interface Member {
  user_id: string;
  email: string;
  name: string;
  role: Role;
  joined_at?: string;
  created_at?: string;
}

export interface Invite {
  id: string;
  role: Role;
  email: string | null;
  expires_at: string;
  created_at: string;
  accepted_at?: string | null;
  revoked_at?: string | null;
  own_workspace?: boolean;
  url?: string;
}

export interface CustomPrice {
  id: string;
  model: string;
  provider: string | null;
  effective_from: string;
  input_mtok: number;
  output_mtok: number;
  cache_read_mtok: number | null;
  cache_write_mtok: number | null;
  cache_write_1h_mtok: number | null;
  created_at: string;
}
