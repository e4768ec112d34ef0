import { type CallRecord, extractPromptText } from '@tokenwise/core';
import { toBodyRow } from './body-columns.js';
import type { PackedBodies } from './body-packer.js';
import type { CallToInsert } from './store.js';

/** A row of `call_prompts`: the lowercased prompt text that `q` searches. */
export interface PromptRow {
  call_id: string;
  text: string;
}

/** A row of `call_rate_limits`: the rate-limit headers of one call, with what the per-device summary groups by. */
export interface RateLimitRow {
  call_id: string;
  workspace_id: string | null;
  device_id: string | null;
  route: string;
  tool: string;
  provider: string;
  started_at_ms: number;
  /** JSON object of header name to value. */
  headers: string;
}

export const promptColumns = ['call_id', 'text'] as const satisfies readonly (keyof PromptRow)[];
export const rateLimitColumns = [
  'call_id',
  'workspace_id',
  'device_id',
  'route',
  'tool',
  'provider',
  'started_at_ms',
  'headers',
] as const satisfies readonly (keyof RateLimitRow)[];

/**
 * The packed bodies of a call: as the caller packed them, or compressed here (on libuv's thread pool)
 * from bodies given as text, which the caller masked already.
 */
export async function packedBodiesOf(call: CallToInsert): Promise<PackedBodies | null> {
  if ('packed' in call) return call.packed;
  if (call.bodies === null) return null;
  const promptText = extractPromptText(call.record.api_shape, call.bodies.request?.text ?? null);
  return { row: await toBodyRow(call.bodies), promptText: promptText === null ? null : promptText.toLowerCase() };
}

/**
 * The rows a call adds beside its `calls` row. The prompt text comes from the kept request body, so a call
 * without bodies (privacy mode) has none; the rate-limit headers hold no prompt data and are kept always.
 */
export function sideRowsOf(record: CallRecord, packed: PackedBodies | null): { prompt: PromptRow | null; rateLimits: RateLimitRow | null } {
  const promptText = packed?.promptText ?? null;
  const rateLimits =
    record.rate_limits === undefined
      ? null
      : {
          call_id: record.id,
          workspace_id: record.workspace_id,
          device_id: record.device_id,
          route: record.route,
          tool: record.tool,
          provider: record.provider,
          started_at_ms: Date.parse(record.started_at),
          headers: JSON.stringify(record.rate_limits),
        };
  return { prompt: promptText === null ? null : { call_id: record.id, text: promptText }, rateLimits };
}
