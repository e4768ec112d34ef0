import { keepPreviousData, useQuery } from '@tanstack/react-query';
import { Link } from 'wouter';
import { api, apiAllWithFirstPage, currentWorkspaceId } from '../api/client.js';
import { type InsightList, type PromptGroup, type PromptGroupList, SCORER_LABELS, type ScoreSummary } from '../api/insights-types.js';
import { useHasCalls } from '../api/queries.js';
import { StackedBarChart } from '../components/chart.js';
import { ErrorNotice, PageHead, QueryView } from '../components/common.js';
import { EmptyState } from '../components/empty-state.js';
import { RangePicker } from '../components/range-picker.js';
import { formatAgo, formatCount, formatPercent, formatTime, formatTokens, formatUsd } from '../lib/format.js';
import { rangeQuery } from '../lib/range.js';
import { useSearchParams } from '../lib/use-search-params.js';

const SCORE_GROUPINGS = [
  { value: 'tool', label: 'Tool' },
  { value: 'model', label: 'Model' },
  { value: 'group', label: 'Prompt' },
  { value: 'session', label: 'Session' },
] as const;

/** Calls grouped by prompt template, the insights raised from them, and the call scores. */
export function PromptsPage() {
  const hasCalls = useHasCalls();
  const [params, update] = useSearchParams();
  const range = rangeQuery(params, '7d');
  const scoreGrouping = params.get('scores_by') ?? 'tool';

  const groups = useQuery({
    queryKey: ['prompt-groups', currentWorkspaceId(), range],
    queryFn: async ({ signal }): Promise<PromptGroupList> => {
      const { items, firstPage } = await apiAllWithFirstPage<PromptGroup, PromptGroupList>('/prompts', 'groups', {
        query: { ...range },
        signal,
      });
      return { ...firstPage, groups: items, next_cursor: null };
    },
    enabled: hasCalls.data === true,
    placeholderData: keepPreviousData,
  });
  const insights = useQuery({
    queryKey: ['insights', currentWorkspaceId(), range],
    queryFn: ({ signal }) => api<InsightList>('/insights', { query: { ...range, limit: 20 }, signal }),
    enabled: hasCalls.data === true,
  });
  const scores = useQuery({
    queryKey: ['insight-scores', currentWorkspaceId(), range, scoreGrouping],
    queryFn: ({ signal }) => api<ScoreSummary>('/insights/scores', { query: { ...range, group_by: scoreGrouping }, signal }),
    enabled: hasCalls.data === true,
    placeholderData: keepPreviousData,
  });

  if (hasCalls.isError) return <ErrorNotice error={hasCalls.error} />;
  if (hasCalls.data === false) {
    return (
      <>
        <PageHead title="Prompts" />
        <EmptyState />
      </>
    );
  }

  return (
    <>
      <PageHead title="Prompts">
        <RangePicker fallback="7d" />
      </PageHead>
      <p className="muted" style={{ marginTop: -6 }}>
        Calls grouped by prompt template: the tool and the opening of its system prompt. A changed system prompt or tool list is a new
        version. Updated about once a minute.
      </p>

      <QueryView query={groups} what="The prompt groups">
        {(data) => (
          <>
            {data.privacy.note && (
              <p className="notice" role="status">
                {data.privacy.note}
              </p>
            )}
            {!data.status.up_to_date && (
              <p className="notice" role="status">
                The insights job is still reading recent calls; they appear here within a minute.
              </p>
            )}
            <InsightsPanel query={insights} />
            <GroupTable groups={data.groups} />
          </>
        )}
      </QueryView>

      <section aria-labelledby="scores-heading" style={{ marginTop: 24 }}>
        <div className="page-head">
          <h2 id="scores-heading">Call scores</h2>
          <label className="field" style={{ flexDirection: 'row', alignItems: 'center', gap: 8 }}>
            By
            <select value={scoreGrouping} onChange={(event) => update({ scores_by: event.target.value })}>
              {SCORE_GROUPINGS.map((grouping) => (
                <option key={grouping.value} value={grouping.value}>
                  {grouping.label}
                </option>
              ))}
            </select>
          </label>
        </div>
        <QueryView query={scores} what="The call scores">
          {(data) => <ScoreTable summary={data} />}
        </QueryView>
      </section>
    </>
  );
}

function InsightsPanel({ query }: { query: ReturnType<typeof useQuery<InsightList>> }) {
  if (query.isPending || query.isError) return null;
  const insights = query.data.insights;
  if (insights.length === 0) return null;
  return (
    <section className="panel" aria-labelledby="insights-heading" style={{ marginBottom: 16 }}>
      <h2 id="insights-heading" style={{ marginTop: 0 }}>
        Insights
      </h2>
      <ul style={{ margin: 0, paddingLeft: 18 }}>
        {insights.map((insight) => (
          <li key={insight.id} style={{ marginBottom: 6 }}>
            <span className={`badge ${insight.kind === 'metric_shift' ? 'warn' : 'ok'}`}>
              {insight.kind === 'metric_shift' ? 'metric shift' : 'new version'}
            </span>{' '}
            <Link
              href={`/prompts/${encodeURIComponent(insight.group_id)}${insight.version_id ? `?version=${encodeURIComponent(insight.version_id)}` : ''}`}
            >
              {insight.summary}
            </Link>{' '}
            <span className="muted small">{formatAgo(insight.observed_at)}</span>
          </li>
        ))}
      </ul>
    </section>
  );
}

function GroupTable({ groups }: { groups: PromptGroup[] }) {
  if (groups.length === 0) {
    return <p className="notice">No prompt group in this range yet. Calls are grouped about a minute after they arrive.</p>;
  }
  const maxCost = Math.max(0, ...groups.map((group) => group.cost_usd));
  return (
    <div className="panel table-scroll">
      <table className="simple" aria-label="Prompt groups, most expensive first">
        <thead>
          <tr>
            <th>Prompt</th>
            <th className="num">Versions</th>
            <th className="num">Calls</th>
            <th className="num">Tokens in / out</th>
            <th className="num">Cost</th>
            <th>First / last seen</th>
            <th>People</th>
          </tr>
        </thead>
        <tbody>
          {groups.map((group) => (
            <tr key={group.id}>
              <td style={{ maxWidth: 420 }}>
                <Link href={`/prompts/${encodeURIComponent(group.id)}`}>{group.name}</Link>
                {group.note && <div className="muted small">{group.note}</div>}
              </td>
              <td className="num">{group.kind === 'template' ? formatCount(group.versions) : '–'}</td>
              <td className="num">
                {formatCount(group.calls)}
                {group.errors > 0 && (
                  <>
                    {' '}
                    <span className="badge error">{group.errors} errors</span>
                  </>
                )}
              </td>
              <td className="num">
                {formatTokens(group.tokens.input)} / {formatTokens(group.tokens.output)}
              </td>
              <td className="num" style={{ minWidth: 120 }}>
                {formatUsd(group.cost_usd)}
                {group.api_equivalent_usd > 0 && <div className="muted small">{formatUsd(group.api_equivalent_usd)} on a plan</div>}
                <div className="bar-track" aria-hidden="true">
                  <div className="bar-fill" style={{ left: 0, width: `${maxCost > 0 ? (group.cost_usd / maxCost) * 100 : 0}%` }} />
                </div>
              </td>
              <td className="small">
                {formatTime(group.first_call_at)}
                <br />
                {formatTime(group.last_call_at)}
              </td>
              <td className="small">
                {group.people.map((person) => person.name).join(', ') ||
                  `${group.device_ids.length} device${group.device_ids.length === 1 ? '' : 's'}`}
              </td>
            </tr>
          ))}
        </tbody>
      </table>
    </div>
  );
}

function ScoreTable({ summary }: { summary: ScoreSummary }) {
  const scorers = summary.scorers.map((scorer) => scorer.id);
  const trendScorers = scorers.filter((id) => summary.trend.some((bucket) => (bucket.failed[id] ?? 0) > 0));
  return (
    <>
      {summary.trend.length > 1 && trendScorers.length > 0 && (
        <div className="panel" style={{ marginBottom: 12 }}>
          <StackedBarChart
            label="Failed checks per time bucket, by scorer"
            buckets={summary.trend.map((bucket) => bucket.start)}
            series={trendScorers.map((id) => ({
              label: SCORER_LABELS[id] ?? id,
              values: summary.trend.map((bucket) => bucket.failed[id] ?? 0),
            }))}
            format={(value) => formatCount(value)}
            height={180}
          />
        </div>
      )}
      <div className="panel table-scroll">
        <table className="simple" aria-label="Failed checks per scorer">
          <thead>
            <tr>
              <th>{SCORE_GROUPINGS.find((grouping) => grouping.value === summary.group_by)?.label ?? 'Key'}</th>
              <th className="num">Calls</th>
              {scorers.map((id) => (
                <th key={id} className="num">
                  {SCORER_LABELS[id] ?? id}
                </th>
              ))}
            </tr>
          </thead>
          <tbody>
            {[
              { ...summary.totals, key: null, label: 'All calls', total: true },
              ...summary.groups.map((group) => ({ ...group, total: false })),
            ].map((row) => (
              <tr key={row.total ? 'all' : `key-${row.key ?? ''}`} style={row.total ? { fontWeight: 600 } : undefined}>
                <td className="small" style={{ maxWidth: 360 }}>
                  {summary.group_by === 'group' && row.key ? (
                    <Link href={`/prompts/${encodeURIComponent(row.key)}`}>{row.label}</Link>
                  ) : (
                    (row.label ?? 'none')
                  )}
                </td>
                <td className="num">{formatCount(row.calls)}</td>
                {scorers.map((id) => (
                  <td key={id} className="num">
                    {(row.failed[id] ?? 0) > 0 ? (
                      <>
                        {formatCount(row.failed[id])} <span className="muted small">({formatPercent(row.rates[id])})</span>
                      </>
                    ) : (
                      <span className="muted">0</span>
                    )}
                  </td>
                ))}
              </tr>
            ))}
          </tbody>
        </table>
        <p className="muted small" style={{ marginBottom: 0 }}>
          Retry and tool result checks need the request body, so calls in privacy mode are not checked by them.
        </p>
      </div>
    </>
  );
}
