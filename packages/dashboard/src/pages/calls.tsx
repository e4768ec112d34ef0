import { type InfiniteData, useInfiniteQuery, useQuery, useQueryClient } from '@tanstack/react-query';
import type { ColumnDef, VisibilityState } from '@tanstack/react-table';
import type { CallRecord } from '@tokenwise/core';
import { useCallback, useMemo, useRef, useState } from 'react';
import { Link, useLocation } from 'wouter';
import { type CallScores, useCallScoresOfPages } from '../api/call-scores.js';
import { useCallStream } from '../api/call-stream.js';
import { ApiError, api, apiAll, apiUrl, currentWorkspaceId } from '../api/client.js';
import { useHasCalls } from '../api/queries.js';
import type { CallList, Device, Facets } from '../api/types.js';
import { useWorkspace } from '../api/workspace-context.js';
import { ErrorNotice, Field, NotAvailable, PageHead, StatusBadge } from '../components/common.js';
import { DataTable } from '../components/data-table.js';
import { EmptyState } from '../components/empty-state.js';
import { RangePicker } from '../components/range-picker.js';
import { describeScore, ScoreBadges } from '../components/score-badges.js';
import { type CallFilters, matchesLive, readFilters } from '../lib/call-filters.js';
import { formatDuration, formatTime, formatTokens, formatUsd, shortId } from '../lib/format.js';
import { type RangeQuery, rangeQuery } from '../lib/range.js';
import { useSearchParams } from '../lib/use-search-params.js';

const PAGE_SIZE = 200;
const COLUMNS_STORAGE_KEY = 'tokenwise.calls.columns';

type Page = CallList;

export function CallsPage() {
  const hasCalls = useHasCalls();
  const { workspace } = useWorkspace();
  const [params, update] = useSearchParams();
  const filters = readFilters(params);
  const range = rangeQuery(params, '7d');
  const [, navigate] = useLocation();
  const [live, setLive] = useState(true);
  const [columnVisibility, setColumnVisibility] = useState<VisibilityState>(readColumnChoice);
  const queryClient = useQueryClient();

  const devices = useQuery({
    queryKey: ['devices', currentWorkspaceId()],
    queryFn: async () => ({ devices: await apiAll<Device>('/devices', 'devices') }),
  });
  const deviceNames = useMemo(() => new Map((devices.data?.devices ?? []).map((device) => [device.id, device.name])), [devices.data]);

  const queryKey = ['calls', currentWorkspaceId(), range, filters];
  const calls = useInfiniteQuery({
    queryKey,
    queryFn: ({ pageParam, signal }) =>
      api<Page>('/calls', { query: { ...range, ...filters, limit: PAGE_SIZE, cursor: pageParam }, signal }),
    initialPageParam: undefined as string | undefined,
    getNextPageParam: (last) => last.next_cursor ?? undefined,
    enabled: hasCalls.data === true,
  });

  const liveRange = useMemo(() => liveWindow(range), [range]);
  // The stream handler reads the current filters through a ref, so a filter change does not reconnect.
  const current = useRef({ filters, liveRange, queryKey });
  current.current = { filters, liveRange, queryKey };
  const onCall = useCallback(
    (call: CallRecord) => {
      const { filters: active, liveRange: timeWindow, queryKey: key } = current.current;
      const match = matchesLive(call, active, timeWindow);
      if (match === 'unknown') {
        void queryClient.invalidateQueries({ queryKey: key });
        return;
      }
      if (!match) return;
      queryClient.setQueryData<InfiniteData<Page, string | undefined>>(key, (data) => {
        if (!data || data.pages.length === 0) return data;
        if (data.pages.some((page) => page.calls.some((item) => item.id === call.id))) return data;
        const [first, ...rest] = data.pages;
        return { ...data, pages: [{ ...first!, calls: [call, ...first!.calls] }, ...rest] };
      });
    },
    [queryClient],
  );
  const streamState = useCallStream(live && hasCalls.data === true, onCall);

  const rows = useMemo(() => calls.data?.pages.flatMap((page) => page.calls) ?? [], [calls.data]);
  const pageIds = useMemo(() => calls.data?.pages.map((page) => page.calls.map((call) => call.id)) ?? [], [calls.data]);
  const scores = useCallScoresOfPages(pageIds);
  const search = calls.data?.pages[0]?.search ?? null;
  const columns = useMemo(() => callColumns(deviceNames, scores.byCallId), [deviceNames, scores.byCallId]);
  const { hasNextPage, isFetchingNextPage, fetchNextPage } = calls;
  const loadMore = useCallback(() => {
    if (hasNextPage && !isFetchingNextPage) void fetchNextPage();
  }, [hasNextPage, isFetchingNextPage, fetchNextPage]);

  if (hasCalls.isError) return <ErrorNotice error={hasCalls.error} />;
  if (hasCalls.data === false) {
    return (
      <>
        <PageHead title="Calls" />
        <EmptyState />
      </>
    );
  }

  const exportQuery = { ...range, ...filters, workspace: currentWorkspaceId() };
  return (
    <>
      <PageHead title="Calls">
        <RangePicker fallback="7d" />
      </PageHead>
      <FilterBar filters={filters} range={range} onChange={update} />
      {workspace.privacy_mode && (
        <p className="notice" role="status" style={{ margin: '10px 0 0' }}>
          <strong>Privacy mode is on for this workspace.</strong> New calls are recorded with their tokens, cost and timings but without
          prompts or answers, so prompt search and the conversation view cannot show them. An owner can turn it off in Settings.
        </p>
      )}
      <div className="row" style={{ margin: '10px 0' }}>
        <label className="check">
          <input type="checkbox" checked={live} onChange={(event) => setLive(event.target.checked)} />
          Live
        </label>
        <span className="muted small" aria-live="polite">
          {live ? streamLabel(streamState) : 'paused'} · {rows.length.toLocaleString('en-US')} calls loaded
          {hasNextPage ? ', more on scroll' : ''}
        </span>
        <span style={{ marginLeft: 'auto' }} />
        <ColumnChooser columns={columns} visibility={columnVisibility} onChange={setColumnVisibility} />
        <a className="button" href={apiUrl('/calls/export', { ...exportQuery, format: 'csv' })} download>
          Export CSV
        </a>
        <a className="button" href={apiUrl('/calls/export', { ...exportQuery, format: 'jsonl' })} download>
          Export JSON Lines
        </a>
      </div>
      {scores.error !== null && (
        <p className="notice warn" role="status" style={{ marginBottom: 10 }}>
          The scores could not be loaded: {scores.error instanceof Error ? scores.error.message : String(scores.error)}
        </p>
      )}
      {search && !search.available && (
        <div className="notice warn" role="status" style={{ marginBottom: 10 }}>
          {search.note ?? 'Prompt search finds nothing here: this workspace stores no request bodies.'}
        </div>
      )}
      {calls.isError ? (
        calls.error instanceof ApiError && calls.error.notAvailable ? (
          <NotAvailable what="The call list" />
        ) : (
          <ErrorNotice error={calls.error} />
        )
      ) : calls.isPending ? (
        <p className="muted">Loading calls…</p>
      ) : rows.length === 0 ? (
        <p className="notice">No call matches these filters in this range.</p>
      ) : (
        <DataTable
          data={rows}
          columns={columns}
          columnVisibility={columnVisibility}
          getRowId={(row) => row.id}
          onRowOpen={(row) => navigate(`/calls/${row.id}`)}
          onEndReached={loadMore}
          label="Calls, newest first"
        />
      )}
    </>
  );
}

function streamLabel(state: string): string {
  if (state === 'live') return 'live: new calls appear at the top';
  if (state === 'reconnecting') return 'reconnecting to the live stream…';
  return 'connecting to the live stream…';
}

function liveWindow(range: RangeQuery): { from: Date | null; to: Date | null } {
  if (range.from && range.to) return { from: new Date(range.from), to: new Date(range.to) };
  return { from: null, to: null };
}

function readColumnChoice(): VisibilityState {
  try {
    const stored = localStorage.getItem(COLUMNS_STORAGE_KEY);
    if (stored) return JSON.parse(stored) as VisibilityState;
  } catch {
    // Unreadable or unavailable storage: the default columns.
  }
  return { provider: false, route: false, cache_write: false, ttft: false, device: false, id: false, reasoning: false };
}

function ColumnChooser({
  columns,
  visibility,
  onChange,
}: {
  columns: ColumnDef<CallRecord, unknown>[];
  visibility: VisibilityState;
  onChange: (visibility: VisibilityState) => void;
}) {
  return (
    <details className="column-chooser">
      <summary className="button">Columns</summary>
      <fieldset className="panel" style={{ position: 'absolute', zIndex: 5, display: 'grid', gap: 4, marginTop: 4 }}>
        <legend className="small muted">Shown columns</legend>
        {columns.map((column) => {
          const id = column.id!;
          return (
            <label key={id} className="check">
              <input
                type="checkbox"
                // Named apart from the filter of the same field ("Tool" filters, "Tool column" shows).
                aria-label={`${String(column.header)} column`}
                checked={visibility[id] !== false}
                onChange={(event) => {
                  const next = { ...visibility, [id]: event.target.checked };
                  onChange(next);
                  try {
                    localStorage.setItem(COLUMNS_STORAGE_KEY, JSON.stringify(next));
                  } catch {
                    // The choice lasts until the page reloads.
                  }
                }}
              />
              {String(column.header)}
            </label>
          );
        })}
      </fieldset>
    </details>
  );
}

function FilterBar({
  filters,
  range,
  onChange,
}: {
  filters: CallFilters;
  range: RangeQuery;
  onChange: (changes: Record<string, string | null>) => void;
}) {
  const facets = useQuery({
    queryKey: ['facets', currentWorkspaceId(), range],
    queryFn: () => api<Facets>('/calls/facets', { query: { ...range } }),
  });
  const [q, setQ] = useState(filters.q ?? '');
  const facetsMissing = facets.error instanceof ApiError && facets.error.notAvailable;

  const select = (key: keyof CallFilters, label: string, options: { value: string; label?: string; calls?: number }[] | undefined) => {
    const current = filters[key] ?? '';
    const known = options ?? [];
    const withCurrent = current && !known.some((option) => option.value === current) ? [{ value: current }, ...known] : known;
    if (facetsMissing) {
      return (
        <Field key={key} label={<>{label}</>}>
          {(id) => (
            <input
              id={id}
              defaultValue={current}
              placeholder="any"
              size={12}
              onKeyDown={(event) => {
                if (event.key === 'Enter') onChange({ [key]: event.currentTarget.value.trim() || null });
              }}
              onBlur={(event) => onChange({ [key]: event.currentTarget.value.trim() || null })}
            />
          )}
        </Field>
      );
    }
    return (
      <Field key={key} label={<>{label}</>}>
        {(id) => (
          <select id={id} value={current} onChange={(event) => onChange({ [key]: event.target.value || null })}>
            <option value="">any</option>
            {withCurrent.map((option) => (
              <option key={option.value} value={option.value}>
                {option.label ?? option.value}
                {option.calls !== undefined ? ` (${option.calls.toLocaleString('en-US')})` : ''}
              </option>
            ))}
          </select>
        )}
      </Field>
    );
  };

  const anyFilter = Object.keys(filters).length > 0;
  return (
    <div className="panel row" style={{ alignItems: 'flex-end' }}>
      <form
        className="row"
        onSubmit={(event) => {
          event.preventDefault();
          onChange({ q: q.trim() || null });
        }}
      >
        <Field label="Search prompts">
          {(id) => (
            <input
              id={id}
              type="search"
              value={q}
              onChange={(event) => setQ(event.target.value)}
              placeholder="text in the prompt"
              size={22}
            />
          )}
        </Field>
        <button type="submit" style={{ alignSelf: 'flex-end' }}>
          Search
        </button>
      </form>
      {select('tool', 'Tool', facets.data?.tools)}
      {select('model', 'Model', facets.data?.models)}
      {select('provider', 'Provider', facets.data?.providers)}
      {select('status', 'Status', facets.data?.statuses)}
      {select('device_id', 'Device', facets.data?.devices)}
      {select('user_id', 'Person', facets.data?.people)}
      {filters.session_id && (
        <span className="badge">
          session {shortId(filters.session_id, 10)}{' '}
          <button type="button" aria-label="Remove the session filter" onClick={() => onChange({ session_id: null })}>
            ×
          </button>
        </span>
      )}
      {anyFilter && (
        <button
          type="button"
          onClick={() => {
            setQ('');
            onChange(Object.fromEntries(Object.keys(filters).map((key) => [key, null])));
          }}
        >
          Clear filters
        </button>
      )}
    </div>
  );
}

/** Show a call's failed checks, "passed", or a dash while the insights job has not read the call. */
function ScoresCell({ entry }: { entry: CallScores | undefined }) {
  if (!entry) return <>–</>;
  if (!entry.scored) return <span title="Not scored yet: the insights job reads new calls every minute.">–</span>;
  const reasons = entry.scores.filter((score) => !score.passed).map(describeScore);
  return (
    <span title={reasons.length > 0 ? reasons.join('\n') : undefined}>
      <ScoreBadges scores={entry.scores} wrap={false} />
    </span>
  );
}

function callColumns(deviceNames: Map<string, string>, scores: Map<string, CallScores>): ColumnDef<CallRecord, unknown>[] {
  const numeric = { numeric: true };
  // The default columns add up to about 1,020 px, the width of the main area of a 1280 px window.
  return [
    {
      id: 'time',
      header: 'Time',
      size: 115,
      // The row itself takes the focus and opens on Enter, so the link stays out of the tab order.
      cell: ({ row }) => (
        <Link href={`/calls/${row.original.id}`} tabIndex={-1}>
          {formatTime(row.original.started_at)}
        </Link>
      ),
    },
    { id: 'tool', header: 'Tool', size: 95, cell: ({ row }) => row.original.tool },
    {
      id: 'model',
      header: 'Model',
      size: 130,
      cell: ({ row }) => (
        <span title={row.original.model_answered ?? undefined}>{row.original.model_answered ?? row.original.model_requested ?? '–'}</span>
      ),
    },
    {
      id: 'status',
      header: 'Status',
      size: 90,
      cell: ({ row }) => <StatusBadge status={row.original.status} httpStatus={row.original.http_status} />,
    },
    { id: 'scores', header: 'Scores', size: 110, cell: ({ row }) => <ScoresCell entry={scores.get(row.original.id)} /> },
    { id: 'input', header: 'Input', size: 60, meta: numeric, cell: ({ row }) => formatTokens(row.original.usage.input_tokens) },
    {
      id: 'cache_read',
      header: 'Cache read',
      size: 95,
      meta: numeric,
      cell: ({ row }) => formatTokens(row.original.usage.cache_read_tokens),
    },
    {
      id: 'cache_write',
      header: 'Cache write',
      size: 90,
      meta: numeric,
      cell: ({ row }) => formatTokens(row.original.usage.cache_write_tokens),
    },
    { id: 'output', header: 'Output', size: 70, meta: numeric, cell: ({ row }) => formatTokens(row.original.usage.output_tokens) },
    { id: 'reasoning', header: 'Reasoning', size: 90, meta: numeric, cell: ({ row }) => formatTokens(row.original.usage.reasoning_tokens) },
    {
      id: 'cost',
      header: 'Cost',
      size: 80,
      meta: numeric,
      cell: ({ row }) => {
        const cost = row.original.cost;
        return (
          <span title={`basis: ${cost.basis}`}>
            {formatUsd(cost.usd)}
            {cost.basis === 'api_equivalent' ? <span className="muted small"> plan</span> : null}
          </span>
        );
      },
    },
    { id: 'ttft', header: 'First token', size: 95, meta: numeric, cell: ({ row }) => formatDuration(row.original.timing.ttft_ms) },
    { id: 'latency', header: 'Latency', size: 80, meta: numeric, cell: ({ row }) => formatDuration(row.original.timing.total_ms) },
    {
      id: 'session',
      header: 'Session',
      size: 95,
      cell: ({ row }) =>
        row.original.session_id ? (
          <Link href={`/sessions/${encodeURIComponent(row.original.session_id)}`} className="mono">
            {shortId(row.original.session_id)}
          </Link>
        ) : (
          '–'
        ),
    },
    {
      id: 'device',
      header: 'Device',
      size: 120,
      cell: ({ row }) => (row.original.device_id ? (deviceNames.get(row.original.device_id) ?? shortId(row.original.device_id)) : '–'),
    },
    { id: 'provider', header: 'Provider', size: 90, cell: ({ row }) => row.original.provider },
    { id: 'route', header: 'Route', size: 90, cell: ({ row }) => row.original.route },
    { id: 'id', header: 'Call id', size: 110, cell: ({ row }) => <span className="mono">{shortId(row.original.id)}</span> },
  ];
}
