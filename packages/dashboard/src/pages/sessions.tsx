import { keepPreviousData, useInfiniteQuery } from '@tanstack/react-query';
import { Link } from 'wouter';
import { ApiError, api, currentWorkspaceId } from '../api/client.js';
import { useHasCalls } from '../api/queries.js';
import type { SessionList } from '../api/types.js';
import { ErrorNotice, NotAvailable, PageHead } from '../components/common.js';
import { EmptyState } from '../components/empty-state.js';
import { RangePicker } from '../components/range-picker.js';
import { readFilters } from '../lib/call-filters.js';
import { formatCount, formatDuration, formatTime, formatTokens, formatUsd, shortId } from '../lib/format.js';
import { rangeQuery } from '../lib/range.js';
import { useSearchParams } from '../lib/use-search-params.js';

export function SessionsPage() {
  const hasCalls = useHasCalls();
  const [params] = useSearchParams();
  const range = rangeQuery(params, '7d');
  const { q: _q, session_id: _session, ...filters } = readFilters(params);

  const sessions = useInfiniteQuery({
    queryKey: ['sessions', currentWorkspaceId(), range, filters],
    queryFn: ({ pageParam, signal }) =>
      api<SessionList>('/sessions', { query: { ...range, ...filters, limit: 50, cursor: pageParam }, signal }),
    initialPageParam: undefined as string | undefined,
    getNextPageParam: (last) => last.next_cursor ?? undefined,
    enabled: hasCalls.data === true,
    placeholderData: keepPreviousData,
  });

  if (hasCalls.isError) return <ErrorNotice error={hasCalls.error} />;
  if (hasCalls.data === false) {
    return (
      <>
        <PageHead title="Sessions" />
        <EmptyState />
      </>
    );
  }

  const rows = sessions.data?.pages.flatMap((page) => page.sessions) ?? [];
  const maxCost = Math.max(0, ...rows.map((session) => (session.api_usd ?? 0) + (session.api_equivalent_usd ?? 0)));
  return (
    <>
      <PageHead title="Sessions">
        <RangePicker fallback="7d" />
      </PageHead>
      <p className="muted" style={{ marginTop: -6 }}>
        An agent session is every call of one Claude Code session or Codex conversation. Most recent activity first.
      </p>
      {sessions.isError ? (
        sessions.error instanceof ApiError && sessions.error.notAvailable ? (
          <NotAvailable what="The session list" />
        ) : (
          <ErrorNotice error={sessions.error} />
        )
      ) : sessions.isPending ? (
        <p className="muted">Loading sessions…</p>
      ) : rows.length === 0 ? (
        <p className="notice">No session in this range. Calls without a session id (plain SDK calls) are on the Calls page.</p>
      ) : (
        <div className="panel table-scroll">
          <table className="simple">
            <caption className="muted small" style={{ textAlign: 'left', captionSide: 'bottom', paddingTop: 8 }}>
              Costs cover the calls inside the range.
            </caption>
            <thead>
              <tr>
                <th>Session</th>
                <th>Tool</th>
                <th>Last call</th>
                <th className="num">Duration</th>
                <th className="num">Calls</th>
                <th className="num">Tokens in / out</th>
                <th className="num">Cost</th>
                <th>Models</th>
              </tr>
            </thead>
            <tbody>
              {rows.map((session) => {
                const total = (session.api_usd ?? 0) + (session.api_equivalent_usd ?? 0);
                return (
                  <tr key={session.session_id}>
                    <td>
                      <Link href={`/sessions/${encodeURIComponent(session.session_id)}`} className="mono">
                        {shortId(session.session_id, 12)}
                      </Link>
                    </td>
                    <td>{session.tools.join(', ') || session.tool}</td>
                    <td>{formatTime(session.last_call_at)}</td>
                    <td className="num">{formatDuration(session.duration_ms)}</td>
                    <td className="num">
                      {formatCount(session.calls)}
                      {session.errors > 0 && <span className="badge error"> {session.errors} errors</span>}
                    </td>
                    <td className="num">
                      {formatTokens(session.tokens.input)} / {formatTokens(session.tokens.output)}
                    </td>
                    <td className="num" style={{ minWidth: 120 }}>
                      {formatUsd(session.api_usd)}
                      {session.api_equivalent_usd ? (
                        <div className="muted small">+ {formatUsd(session.api_equivalent_usd)} plan</div>
                      ) : null}
                      <div className="bar-track" aria-hidden="true">
                        <div className="bar-fill" style={{ left: 0, width: `${maxCost > 0 ? (total / maxCost) * 100 : 0}%` }} />
                      </div>
                    </td>
                    <td className="small">{session.models.join(', ')}</td>
                  </tr>
                );
              })}
            </tbody>
          </table>
          {sessions.hasNextPage && (
            <button type="button" onClick={() => sessions.fetchNextPage()} disabled={sessions.isFetchingNextPage} style={{ marginTop: 10 }}>
              {sessions.isFetchingNextPage ? 'Loading…' : 'Load more sessions'}
            </button>
          )}
        </div>
      )}
    </>
  );
}
