import { useQuery } from '@tanstack/react-query';
import type { CallRecord } from '@tokenwise/core';
import { useEffect } from 'react';
import { Link } from 'wouter';
import { ApiError, api, currentWorkspaceId } from '../api/client.js';
import type { CallList, SessionDetail } from '../api/types.js';
import { ErrorNotice, PageHead, Stat, StatusBadge } from '../components/common.js';
import { formatCount, formatDuration, formatTime, formatTokens, formatUsd } from '../lib/format.js';
import { summarizeSession } from '../lib/session-summary.js';
import { useSearchParams } from '../lib/use-search-params.js';
import { CallView, loadDetail } from './call-detail.js';

/** Most calls of a session the timeline shows; a longer session shows its first ones and says so. */
const TIMELINE_LIMIT = 1000;

export function SessionDetailPage({ id }: { id: string }) {
  const sessionId = decodeURIComponent(id);
  const [params, update] = useSearchParams();
  const session = useQuery({
    queryKey: ['session', currentWorkspaceId(), sessionId],
    queryFn: ({ signal }) => loadSession(sessionId, signal),
  });

  const calls = session.data?.calls ?? [];
  const selectedId = params.get('call') ?? calls[0]?.id ?? null;
  const selectedIndex = calls.findIndex((call) => call.id === selectedId);
  const step = (delta: number) => {
    const next = calls[selectedIndex + delta];
    if (next) update({ call: next.id });
  };

  // j / k (or the arrow keys outside form fields) step through the calls.
  useEffect(() => {
    const onKey = (event: KeyboardEvent) => {
      const target = event.target as HTMLElement;
      if (target.closest('input, select, textarea, [role="tab"]') || event.altKey || event.ctrlKey || event.metaKey) return;
      if (event.key === 'j') step(1);
      else if (event.key === 'k') step(-1);
    };
    window.addEventListener('keydown', onKey);
    return () => window.removeEventListener('keydown', onKey);
  });

  if (session.isPending) return <p className="muted">Loading the session…</p>;
  if (session.isError) return <ErrorNotice error={session.error} />;
  if (!session.data) {
    return (
      <>
        <PageHead title="Session not found" />
        <p>
          This workspace has no call with session id <code>{sessionId}</code>. <Link href="/sessions">All sessions</Link>
        </p>
      </>
    );
  }

  const { session: summary } = session.data;
  const start = Date.parse(summary.first_call_at);
  const span = Math.max(summary.duration_ms, 1);
  return (
    <>
      <PageHead title={`Session of ${summary.tools.join(', ') || summary.tool}`}>
        <Link className="button" href={`/calls?session_id=${encodeURIComponent(sessionId)}&range=30d`}>
          Show in calls
        </Link>
      </PageHead>
      <p className="muted mono small" style={{ marginTop: -8 }}>
        {sessionId}
      </p>
      <section className="stats" aria-label="Session totals">
        <Stat label="Started" value={formatTime(summary.first_call_at)} sub={`lasted ${formatDuration(summary.duration_ms)}`} />
        <Stat label="Calls" value={formatCount(summary.calls)} sub={`${formatCount(summary.errors)} errors`} />
        <Stat
          label="API spend"
          value={formatUsd(summary.api_usd)}
          sub={summary.api_equivalent_usd ? `+ ${formatUsd(summary.api_equivalent_usd)} API-equivalent on a plan` : undefined}
        />
        <Stat
          label="Tokens in / out"
          value={`${formatTokens(summary.tokens.input)} / ${formatTokens(summary.tokens.output)}`}
          sub={`cache read ${formatTokens(summary.tokens.cache_read)}`}
        />
        <Stat label="Models" value={<span style={{ fontSize: 14 }}>{summary.models.join(', ') || '–'}</span>} />
      </section>

      <div className="grid session-layout">
        <section className="panel" aria-labelledby="timeline-title" style={{ maxHeight: '75vh', overflow: 'auto' }}>
          <div className="row" style={{ justifyContent: 'space-between' }}>
            <h2 id="timeline-title" style={{ margin: 0 }}>
              Timeline
            </h2>
            <div className="row">
              <button type="button" onClick={() => step(-1)} disabled={selectedIndex <= 0} aria-label="Previous call (k)">
                ↑ Prev
              </button>
              <button type="button" onClick={() => step(1)} disabled={selectedIndex >= calls.length - 1} aria-label="Next call (j)">
                Next ↓
              </button>
            </div>
          </div>
          <p className="muted small">
            Call {selectedIndex + 1} of {calls.length}
            {summary.calls > calls.length ? ` (the first ${calls.length} of ${summary.calls})` : ''}. Keys j and k step through.
          </p>
          <ol className="timeline" style={{ listStyle: 'none', padding: 0, margin: 0 }}>
            {calls.map((call, index) => (
              <li key={call.id}>
                <button type="button" aria-current={call.id === selectedId ? 'true' : undefined} onClick={() => update({ call: call.id })}>
                  <span className="muted small">+{formatDuration(Date.parse(call.started_at) - start)}</span>
                  <span style={{ minWidth: 0 }}>
                    <span className="small timeline-label">
                      #{index + 1} {call.model_answered ?? call.model_requested ?? '–'}
                    </span>
                    <span className="bar-track" aria-hidden="true" style={{ display: 'block', marginTop: 3 }}>
                      <span
                        className="bar-fill"
                        style={{
                          left: `${((Date.parse(call.started_at) - start) / span) * 100}%`,
                          width: `${Math.max((call.timing.total_ms / span) * 100, 0.8)}%`,
                        }}
                      />
                    </span>
                  </span>
                  <span className="small num">
                    {call.status === 'success' ? formatUsd(call.cost.usd) : <StatusBadge status={call.status} />}
                  </span>
                </button>
              </li>
            ))}
          </ol>
        </section>
        <div style={{ minWidth: 0 }}>{selectedId && <SelectedCall id={selectedId} />}</div>
      </div>
    </>
  );
}

function SelectedCall({ id }: { id: string }) {
  const detail = useQuery({ queryKey: ['call', currentWorkspaceId(), id], queryFn: ({ signal }) => loadDetail(id, signal) });
  if (detail.isPending) return <p className="muted">Loading the call…</p>;
  if (detail.isError) return <ErrorNotice error={detail.error} />;
  return (
    <div>
      <p className="small" style={{ margin: '0 0 6px' }}>
        <Link href={`/calls/${id}`}>Open this call on its own page</Link>
      </p>
      <CallView detail={detail.data} />
    </div>
  );
}

/** The session route, else the built call list filtered by session (newest first, so reversed). */
async function loadSession(sessionId: string, signal: AbortSignal): Promise<SessionDetail | null> {
  try {
    return await api<SessionDetail>(`/sessions/${encodeURIComponent(sessionId)}`, { query: { limit: TIMELINE_LIMIT }, signal });
  } catch (error) {
    if (error instanceof ApiError && error.status === 404 && !error.notAvailable) return null;
    if (!(error instanceof ApiError && error.notAvailable)) throw error;
  }
  const list = await api<CallList>('/calls', { query: { session_id: sessionId, limit: TIMELINE_LIMIT }, signal });
  const calls: CallRecord[] = [...list.calls].reverse();
  const summary = summarizeSession(sessionId, calls);
  return summary ? { session: summary, calls, next_cursor: null } : null;
}
