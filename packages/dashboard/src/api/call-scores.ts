import { keepPreviousData, type Query, type UseQueryResult, useQueries, useQuery } from '@tanstack/react-query';
import { useEffect, useMemo, useRef, useState } from 'react';
import { ApiError, api, currentWorkspaceId } from './client.js';
import type { CallScore } from './insights-types.js';

/** One call's entry in the response of `GET /insights/calls`. */
export interface CallScores {
  call_id: string;
  /** False until the insights job has read the call, and for an id of another workspace. */
  scored: boolean;
  prompt_group_id: string | null;
  prompt_version_id: string | null;
  scores: CallScore[];
}

interface CallScoresResponse {
  calls: CallScores[];
}

export interface ListScores {
  byCallId: Map<string, CallScores>;
  /** True when this server has no insights API (a proxy-only or older server). */
  unavailable: boolean;
  /** The first failed batch's error, other than `unavailable`. */
  error: unknown;
}

/** Call ids per request: the maximum `GET /insights/calls` accepts. */
export const SCORE_BATCH_SIZE = 200;
/** The insights job reads new calls every 60 s, so a batch with unscored calls is fetched again this often. */
const UNSCORED_REFETCH_MS = 60_000;
/** Minimum ms between two changes of the batches, so calls arriving live do not each send a request. */
const BATCH_CHANGE_INTERVAL_MS = 5_000;

function fetchScores(ids: readonly string[], signal: AbortSignal): Promise<CallScoresResponse> {
  return api<CallScoresResponse>('/insights/calls', { query: { ids: ids.join(',') }, signal });
}

function refetchWhileUnscored(query: Query<CallScoresResponse, Error, CallScoresResponse, readonly unknown[]>): number | false {
  return query.state.data?.calls.some((entry) => !entry.scored) ? UNSCORED_REFETCH_MS : false;
}

/** Fetch the scores of one call. `entry` is null while loading and when this server has no insights API. */
export function useCallScores(callId: string): { entry: CallScores | null; unavailable: boolean; error: unknown } {
  const query = useQuery({
    queryKey: ['call-scores', currentWorkspaceId(), [callId]],
    queryFn: ({ signal }) => fetchScores([callId], signal),
    refetchInterval: refetchWhileUnscored,
  });
  const unavailable = query.error instanceof ApiError && query.error.notAvailable;
  return { entry: query.data?.calls[0] ?? null, unavailable, error: unavailable ? null : query.error };
}

/**
 * Fetch the scores of a paged list's calls, one request per batch of up to 200 ids. Batches are cut from
 * the end of each page, so calls a live stream puts in front of the first page change only the first batch.
 */
export function useCallScoresOfPages(pages: readonly (readonly string[])[]): ListScores {
  const signature = pages
    .flatMap((ids) => batchesFromEnd(ids, SCORE_BATCH_SIZE))
    .map((batch) => batch.join(','))
    .join(' ');
  const settled = useThrottledValue(signature, BATCH_CHANGE_INTERVAL_MS);
  const batches = useMemo(() => (settled === '' ? [] : settled.split(' ').map((batch) => batch.split(','))), [settled]);

  const workspaceId = currentWorkspaceId();
  return useQueries({
    queries: batches.map((ids) => ({
      queryKey: ['call-scores', workspaceId, ids],
      queryFn: ({ signal }: { signal: AbortSignal }) => fetchScores(ids, signal),
      refetchInterval: refetchWhileUnscored,
      // A batch whose ids changed keeps showing its old entries until the new ones arrive.
      placeholderData: keepPreviousData,
    })),
    combine: combineBatches,
  });
}

/** Merge the batches into one map. It is module-level, so React Query re-runs it only when a batch's result changes. */
function combineBatches(results: UseQueryResult<CallScoresResponse>[]): ListScores {
  const byCallId = new Map<string, CallScores>();
  for (const result of results) for (const entry of result.data?.calls ?? []) byCallId.set(entry.call_id, entry);
  const failure = results.find((result) => result.error)?.error ?? null;
  const unavailable = failure instanceof ApiError && failure.notAvailable;
  return { byCallId, unavailable, error: unavailable ? null : failure };
}

/** Split ids into batches of at most `size`, the first batch taking the remainder. */
export function batchesFromEnd(ids: readonly string[], size: number): string[][] {
  const batches: string[][] = [];
  for (let end = ids.length; end > 0; end -= size) batches.unshift(ids.slice(Math.max(0, end - size), end));
  return batches;
}

/** Follow `value` at most once per `intervalMs`: the first change applies at once, later ones at the end of the interval. */
function useThrottledValue<T>(value: T, intervalMs: number): T {
  const [current, setCurrent] = useState(value);
  const lastChangeMs = useRef(0);
  useEffect(() => {
    if (Object.is(value, current)) return;
    const apply = () => {
      lastChangeMs.current = Date.now();
      setCurrent(value);
    };
    const waitMs = lastChangeMs.current + intervalMs - Date.now();
    if (waitMs <= 0) {
      apply();
      return;
    }
    const timer = setTimeout(apply, waitMs);
    return () => clearTimeout(timer);
  }, [value, current, intervalMs]);
  return current;
}
