import type { CallRecord } from '@tokenwise/core';

/** Response shapes of the prompts and insights routes, as docs/api.md specifies them. */

export interface PromptMetrics {
  calls: number;
  tokens_per_call: number | null;
  input_tokens_per_call: number | null;
  output_tokens_per_call: number | null;
  cost_per_call_usd: number | null;
  cache_hit_ratio: number | null;
  error_rate: number | null;
  latency_ms: number | null;
}

export interface PromptSums {
  calls: number;
  errors: number;
  api_usd: number;
  api_equivalent_usd: number;
  cost_usd: number;
  tokens: { input: number; output: number; cache_read: number; cache_write: number };
}

export interface PromptGroup extends PromptSums {
  id: string;
  kind: 'template' | 'not_kept' | 'unreadable';
  tool: string;
  name: string;
  opening: string | null;
  versions: number;
  first_call_at: string | null;
  last_call_at: string | null;
  device_ids: string[];
  people: { user_id: string; name: string }[];
  metrics: PromptMetrics;
  note: string | null;
}

export interface JobStatus {
  /** True once the insights job has read every call of this workspace. */
  up_to_date: boolean;
}

export interface PromptGroupList {
  groups: PromptGroup[];
  /** Null on the last page. The prompts page follows it to read every group. */
  next_cursor: string | null;
  privacy: { privacy_mode: boolean; private_devices: number; note: string | null };
  status: JobStatus;
}

export interface DiffSummary {
  instruction_lines_added: number;
  instruction_lines_removed: number;
  tools_added: string[];
  tools_removed: string[];
  tools_changed: string[];
}

export interface PromptVersion extends PromptSums {
  id: string;
  number: number;
  fingerprint: string;
  first_seen_at: string;
  first_call_id: string;
  last_call_at: string | null;
  tool_version: string | null;
  tool_count: number;
  text_kept: boolean;
  previous_version_id: string | null;
  changes_from_previous: DiffSummary | null;
  metrics: PromptMetrics;
}

export interface Insight {
  id: string;
  kind: 'version_change' | 'metric_shift';
  group_id: string;
  version_id: string | null;
  observed_at: string;
  created_at: string;
  updated_at: string;
  summary: string;
  details: Record<string, unknown>;
}

export interface PromptGroupDetail {
  group: PromptGroup;
  versions: PromptVersion[];
  insights: Insight[];
}

export interface DiffHunk {
  old_start: number;
  old_lines: number;
  new_start: number;
  new_lines: number;
  lines: string[];
}

export interface VersionDiff {
  before: { id: string; number: number; tool_version: string | null; first_seen_at: string; metrics: PromptMetrics } | null;
  after: { id: string; number: number; tool_version: string | null; first_seen_at: string; metrics: PromptMetrics };
  diff: {
    instructions: { added_lines: number; removed_lines: number; hunks: DiffHunk[] };
    tools: {
      added: string[];
      removed: string[];
      unchanged: number;
      changed: { name: string; description_changed: boolean; schema_changed: boolean; hunks: DiffHunk[] }[];
    };
  } | null;
  note: string | null;
}

export interface CallScore {
  scorer: string;
  passed: boolean;
  value: number | null;
  detail: Record<string, unknown>;
}

export type ScoredCall = CallRecord & { prompt_version_id: string | null; scores: CallScore[] };

export interface ScoredCallList {
  calls: ScoredCall[];
  next_cursor: string | null;
}

export interface ScoreCounts {
  calls: number;
  body_calls: number;
  failed: Record<string, number>;
  rates: Record<string, number | null>;
}

export interface ScoreSummary {
  group_by: 'group' | 'session' | 'tool' | 'model';
  scorers: { id: string; needs_body: boolean }[];
  totals: ScoreCounts;
  groups: (ScoreCounts & { key: string | null; label: string | null })[];
  trend: (ScoreCounts & { bucket: number; start: string })[];
}

export interface InsightList {
  insights: Insight[];
  next_cursor: string | null;
  status: JobStatus;
}

/** Readable names of the scorers, as the pages show them. */
export const SCORER_LABELS: Record<string, string> = {
  provider_error: 'Provider error',
  refusal: 'Refusal',
  max_tokens: 'Cut at max tokens',
  stream_cut: 'Stream cut',
  tool_error: 'Tool result error',
  retry: 'Retry',
  slow: 'Slow',
};
