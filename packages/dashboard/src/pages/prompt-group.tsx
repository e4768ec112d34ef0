import { useInfiniteQuery, useQuery } from '@tanstack/react-query';
import { Link } from 'wouter';
import { ApiError, api, currentWorkspaceId } from '../api/client.js';
import type { DiffHunk, PromptGroupDetail, PromptMetrics, PromptVersion, ScoredCallList, VersionDiff } from '../api/insights-types.js';
import { ErrorNotice, PageHead, QueryView, Stat, StatusBadge } from '../components/common.js';
import { ScoreBadges } from '../components/score-badges.js';
import { formatCount, formatDuration, formatPercent, formatTime, formatTokens, formatUsd } from '../lib/format.js';
import { useSearchParams } from '../lib/use-search-params.js';

/** Show one prompt group: its versions with their metrics, the diff between two of them, its insights and its scored calls. */
export function PromptGroupPage({ id }: { id: string }) {
  const groupId = decodeURIComponent(id);
  const [params, update] = useSearchParams();
  const detail = useQuery({
    queryKey: ['prompt-group', currentWorkspaceId(), groupId],
    queryFn: ({ signal }) => api<PromptGroupDetail>(`/prompts/${encodeURIComponent(groupId)}`, { signal }),
    retry: (count, error) => !(error instanceof ApiError && error.status === 404) && count < 2,
  });

  if (detail.isPending) return <p className="muted">Loading the prompt group…</p>;
  if (detail.isError) {
    if (detail.error instanceof ApiError && detail.error.status === 404) {
      return (
        <>
          <PageHead title="Prompt group not found" />
          <p>
            This workspace has no prompt group <code>{groupId}</code>. <Link href="/prompts">All prompts</Link>
          </p>
        </>
      );
    }
    return <ErrorNotice error={detail.error} />;
  }

  const { group, versions, insights } = detail.data;
  const selected = versions.find((version) => version.id === params.get('version')) ?? versions.at(-1) ?? null;
  return (
    <>
      <PageHead title={group.name} />
      <p className="muted small" style={{ marginTop: -8 }}>
        <Link href="/prompts">Prompts</Link> · {group.tool} ·{' '}
        {group.people.length > 0 ? `${group.people.map((person) => person.name).join(', ')} · ` : ''}
        {group.device_ids.length} device{group.device_ids.length === 1 ? '' : 's'}
      </p>
      {group.note && (
        <p className="notice" role="status">
          {group.note}
        </p>
      )}
      <section className="stats" aria-label="Prompt group totals">
        <Stat label="Calls" value={formatCount(group.calls)} sub={`${formatCount(group.errors)} errors`} />
        <Stat
          label="Cost"
          value={formatUsd(group.cost_usd)}
          sub={group.api_equivalent_usd > 0 ? `${formatUsd(group.api_equivalent_usd)} API-equivalent on a plan` : undefined}
        />
        <Stat label="Tokens in / out" value={`${formatTokens(group.tokens.input)} / ${formatTokens(group.tokens.output)}`} />
        <Stat label="Seen" value={formatTime(group.first_call_at)} sub={`last ${formatTime(group.last_call_at)}`} />
      </section>

      {insights.length > 0 && (
        <section className="panel" aria-labelledby="group-insights" style={{ marginBottom: 16 }}>
          <h2 id="group-insights" style={{ marginTop: 0 }}>
            Insights
          </h2>
          <ul style={{ margin: 0, paddingLeft: 18 }}>
            {insights.map((insight) => (
              <li key={insight.id}>
                <span className={`badge ${insight.kind === 'metric_shift' ? 'warn' : 'ok'}`}>
                  {insight.kind === 'metric_shift' ? 'metric shift' : 'new version'}
                </span>{' '}
                {insight.summary} <span className="muted small">{formatTime(insight.observed_at)}</span>
              </li>
            ))}
          </ul>
        </section>
      )}

      {versions.length > 0 && (
        <section aria-labelledby="versions-heading">
          <h2 id="versions-heading">Versions</h2>
          <VersionTable versions={versions} selectedId={selected?.id ?? null} onSelect={(versionId) => update({ version: versionId })} />
        </section>
      )}
      {selected && <VersionDiffView groupId={group.id} version={selected} />}

      <section aria-labelledby="calls-heading" style={{ marginTop: 24 }}>
        <h2 id="calls-heading">Calls</h2>
        <GroupCalls groupId={group.id} versions={versions} />
      </section>
    </>
  );
}

function VersionTable({
  versions,
  selectedId,
  onSelect,
}: {
  versions: PromptVersion[];
  selectedId: string | null;
  onSelect: (id: string) => void;
}) {
  return (
    <div className="panel table-scroll">
      <table className="simple" aria-label="Prompt versions, oldest first">
        <thead>
          <tr>
            <th>Version</th>
            <th>Tool version</th>
            <th>First seen</th>
            <th className="num">Calls</th>
            <th className="num">Tokens / call</th>
            <th className="num">Cost / call</th>
            <th className="num">Cache hits</th>
            <th className="num">Errors</th>
            <th className="num">Latency</th>
            <th>Changes</th>
          </tr>
        </thead>
        <tbody>
          {versions.map((version) => (
            <tr key={version.id} aria-selected={version.id === selectedId}>
              <td>
                <button type="button" onClick={() => onSelect(version.id)} aria-pressed={version.id === selectedId}>
                  v{version.number}
                </button>
              </td>
              <td className="mono small">{version.tool_version ?? 'unknown'}</td>
              <td className="small">{formatTime(version.first_seen_at)}</td>
              <td className="num">{formatCount(version.calls)}</td>
              <td className="num">{formatTokens(version.metrics.tokens_per_call)}</td>
              <td className="num">{formatUsd(version.metrics.cost_per_call_usd)}</td>
              <td className="num">{formatPercent(version.metrics.cache_hit_ratio)}</td>
              <td className="num">{formatPercent(version.metrics.error_rate)}</td>
              <td className="num">{formatDuration(version.metrics.latency_ms)}</td>
              <td className="small">{describeChanges(version)}</td>
            </tr>
          ))}
        </tbody>
      </table>
    </div>
  );
}

function describeChanges(version: PromptVersion): string {
  if (version.number === 1) return 'first seen';
  const changes = version.changes_from_previous;
  if (!changes) return 'text no longer kept';
  const parts = [`+${changes.instruction_lines_added} −${changes.instruction_lines_removed} lines`];
  if (changes.tools_added.length > 0) parts.push(`tools added: ${changes.tools_added.join(', ')}`);
  if (changes.tools_removed.length > 0) parts.push(`removed: ${changes.tools_removed.join(', ')}`);
  if (changes.tools_changed.length > 0) parts.push(`changed: ${changes.tools_changed.join(', ')}`);
  return parts.join('; ');
}

const METRIC_ROWS: { key: keyof PromptMetrics; label: string; format: (value: number | null) => string }[] = [
  { key: 'calls', label: 'Calls', format: formatCount },
  { key: 'tokens_per_call', label: 'Tokens per call', format: formatTokens },
  { key: 'cost_per_call_usd', label: 'Cost per call', format: formatUsd },
  { key: 'cache_hit_ratio', label: 'Cache hit ratio', format: (value) => formatPercent(value) },
  { key: 'error_rate', label: 'Error rate', format: (value) => formatPercent(value) },
  { key: 'latency_ms', label: 'Latency (mean)', format: formatDuration },
];

function VersionDiffView({ groupId, version }: { groupId: string; version: PromptVersion }) {
  const diff = useQuery({
    queryKey: ['prompt-diff', currentWorkspaceId(), groupId, version.id],
    queryFn: ({ signal }) =>
      api<VersionDiff>(`/prompts/${encodeURIComponent(groupId)}/versions/${encodeURIComponent(version.id)}/diff`, { signal }),
  });
  return (
    <section aria-labelledby="diff-heading" style={{ marginTop: 16 }}>
      <h2 id="diff-heading">{version.number === 1 ? `Version 1` : `Version ${version.number} against version ${version.number - 1}`}</h2>
      <QueryView query={diff} what="The diff">
        {(data) => (
          <div className="grid" style={{ gridTemplateColumns: 'minmax(0, 1fr)' }}>
            {data.before && <MetricComparison before={data.before.metrics} after={data.after.metrics} />}
            {data.note && <p className="notice">{data.note}</p>}
            {data.diff && (
              <>
                <div className="panel">
                  <h3 style={{ marginTop: 0 }}>
                    Instructions{' '}
                    <span className="muted small">
                      +{data.diff.instructions.added_lines} −{data.diff.instructions.removed_lines} lines
                    </span>
                  </h3>
                  {data.diff.instructions.hunks.length === 0 ? (
                    <p className="muted">The instructions did not change.</p>
                  ) : (
                    <Hunks hunks={data.diff.instructions.hunks} label="Instructions diff" />
                  )}
                </div>
                <div className="panel">
                  <h3 style={{ marginTop: 0 }}>Tools</h3>
                  <p>
                    Added: {data.diff.tools.added.join(', ') || 'none'} · Removed: {data.diff.tools.removed.join(', ') || 'none'} ·
                    Unchanged: {data.diff.tools.unchanged}
                  </p>
                  {data.diff.tools.changed.map((tool) => (
                    <details key={tool.name}>
                      <summary>
                        Changed: <strong>{tool.name}</strong>{' '}
                        <span className="muted small">
                          {[tool.description_changed && 'description', tool.schema_changed && 'parameters'].filter(Boolean).join(' and ')}
                        </span>
                      </summary>
                      <Hunks hunks={tool.hunks} label={`Diff of the tool ${tool.name}`} />
                    </details>
                  ))}
                </div>
              </>
            )}
          </div>
        )}
      </QueryView>
    </section>
  );
}

function MetricComparison({ before, after }: { before: PromptMetrics; after: PromptMetrics }) {
  return (
    <div className="panel table-scroll">
      <table className="simple" aria-label="Metrics before and after the change">
        <thead>
          <tr>
            <th>Metric</th>
            <th className="num">Before</th>
            <th className="num">After</th>
            <th className="num">Change</th>
          </tr>
        </thead>
        <tbody>
          {METRIC_ROWS.map((row) => {
            const old = before[row.key];
            const now = after[row.key];
            const change = old !== null && now !== null && old !== 0 ? ((now - old) / Math.abs(old)) * 100 : null;
            return (
              <tr key={row.key}>
                <td>{row.label}</td>
                <td className="num">{row.format(old)}</td>
                <td className="num">{row.format(now)}</td>
                <td className="num">{change === null ? '–' : `${change > 0 ? '+' : ''}${change.toFixed(1)}%`}</td>
              </tr>
            );
          })}
        </tbody>
      </table>
    </div>
  );
}

/** Diff hunks as preformatted lines, removed lines in the danger colour and added ones in the ok colour. */
function Hunks({ hunks, label }: { hunks: DiffHunk[]; label: string }) {
  return (
    <section aria-label={label} style={{ overflowX: 'auto' }}>
      {hunks.map((hunk) => (
        <pre
          key={`${hunk.old_start}-${hunk.new_start}`}
          className="mono small"
          style={{ margin: '8px 0', background: 'var(--code-bg)', padding: 8 }}
        >
          <span className="muted">{`@@ -${hunk.old_start},${hunk.old_lines} +${hunk.new_start},${hunk.new_lines} @@`}</span>
          {'\n'}
          {hunk.lines.map((line, index) => (
            <span
              // biome-ignore lint/suspicious/noArrayIndexKey: diff lines repeat, so their position is their identity
              key={index}
              data-change={line.startsWith('+') ? 'added' : line.startsWith('-') ? 'removed' : 'context'}
              style={{
                display: 'block',
                color: line.startsWith('+') ? 'var(--ok)' : line.startsWith('-') ? 'var(--danger)' : undefined,
                whiteSpace: 'pre-wrap',
              }}
            >
              {line}
            </span>
          ))}
        </pre>
      ))}
    </section>
  );
}

function GroupCalls({ groupId, versions }: { groupId: string; versions: PromptVersion[] }) {
  const numberOf = new Map(versions.map((version) => [version.id, version.number]));
  const calls = useInfiniteQuery({
    queryKey: ['prompt-group-calls', currentWorkspaceId(), groupId],
    queryFn: ({ pageParam, signal }) =>
      api<ScoredCallList>(`/prompts/${encodeURIComponent(groupId)}/calls`, { query: { limit: 100, cursor: pageParam }, signal }),
    initialPageParam: undefined as string | undefined,
    getNextPageParam: (last) => last.next_cursor ?? undefined,
  });
  if (calls.isPending) return <p className="muted">Loading the calls…</p>;
  if (calls.isError) return <ErrorNotice error={calls.error} />;
  const rows = calls.data.pages.flatMap((page) => page.calls);
  return (
    <div className="panel table-scroll">
      <table className="simple" aria-label="Calls of this prompt, newest first">
        <thead>
          <tr>
            <th>Time</th>
            <th>Version</th>
            <th>Model</th>
            <th>Status</th>
            <th className="num">Tokens in / out</th>
            <th className="num">Cost</th>
            <th className="num">Latency</th>
            <th>Scores</th>
          </tr>
        </thead>
        <tbody>
          {rows.map((call) => (
            <tr key={call.id}>
              <td className="small">
                <Link href={`/calls/${encodeURIComponent(call.id)}`}>{formatTime(call.started_at)}</Link>
              </td>
              <td>{call.prompt_version_id ? `v${numberOf.get(call.prompt_version_id) ?? '?'}` : '–'}</td>
              <td className="small">{call.model_answered ?? call.model_requested ?? 'unknown'}</td>
              <td>
                <StatusBadge status={call.status} httpStatus={call.http_status} />
              </td>
              <td className="num">
                {formatTokens(call.usage.input_tokens)} / {formatTokens(call.usage.output_tokens)}
              </td>
              <td className="num">{formatUsd(call.cost.usd)}</td>
              <td className="num">{formatDuration(call.timing.total_ms)}</td>
              <td>
                <ScoreBadges scores={call.scores} />
              </td>
            </tr>
          ))}
        </tbody>
      </table>
      {calls.hasNextPage && (
        <button type="button" onClick={() => calls.fetchNextPage()} disabled={calls.isFetchingNextPage} style={{ marginTop: 10 }}>
          {calls.isFetchingNextPage ? 'Loading…' : 'Load more calls'}
        </button>
      )}
    </div>
  );
}
