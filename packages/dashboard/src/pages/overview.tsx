import { keepPreviousData, useQuery } from '@tanstack/react-query';
import { useMemo } from 'react';
import { Link } from 'wouter';
import { api, currentWorkspaceId } from '../api/client.js';
import { useHasCalls } from '../api/queries.js';
import type { GroupBy, Overview, OverviewSeries } from '../api/types.js';
import { LineChart, StackedBarChart } from '../components/chart.js';
import { ErrorNotice, Field, PageHead, QueryView, Stat } from '../components/common.js';
import { EmptyState } from '../components/empty-state.js';
import { RangePicker } from '../components/range-picker.js';
import {
  formatCount,
  formatDuration,
  formatDurationTicks,
  formatPercent,
  formatRange,
  formatTime,
  formatTokens,
  formatUsd,
  formatUsdTicks,
  shortId,
} from '../lib/format.js';
import { rangeQuery } from '../lib/range.js';
import { useSearchParams } from '../lib/use-search-params.js';

const GROUPS: { value: GroupBy; label: string }[] = [
  { value: 'tool', label: 'Tool' },
  { value: 'model', label: 'Model' },
  { value: 'device', label: 'Device' },
  { value: 'person', label: 'Person' },
  { value: 'provider', label: 'Provider' },
];

/** The metrics the main chart can stack: cost, calls, or one kind of token. */
const METRICS = [
  { value: 'cost', label: 'Cost', title: 'Cost (API spend and API-equivalent)' },
  { value: 'calls', label: 'Calls', title: 'Calls' },
  { value: 'tokens', label: 'Tokens', title: 'Tokens (input and output)' },
  { value: 'input', label: 'Input', title: 'Input tokens (with cache reads and writes)' },
  { value: 'cache_read', label: 'Cache read', title: 'Cache read tokens' },
  { value: 'cache_write', label: 'Cache write', title: 'Cache write tokens' },
  { value: 'output', label: 'Output', title: 'Output tokens' },
] as const;

type Metric = (typeof METRICS)[number]['value'];

export function OverviewPage() {
  const hasCalls = useHasCalls();
  const [params, update] = useSearchParams();
  const groupBy = (GROUPS.find((group) => group.value === params.get('group'))?.value ?? 'tool') as GroupBy;
  const metric = METRICS.find((item) => item.value === params.get('metric'))?.value ?? 'cost';
  const range = rangeQuery(params, '24h');

  const overview = useQuery({
    queryKey: ['overview', currentWorkspaceId(), range, groupBy],
    queryFn: ({ signal }) => api<Overview>('/overview', { query: { ...range, group_by: groupBy }, signal }),
    enabled: hasCalls.data === true,
    placeholderData: keepPreviousData,
    refetchInterval: 60_000,
  });

  if (hasCalls.isError) return <ErrorNotice error={hasCalls.error} />;
  if (hasCalls.data === false) {
    return (
      <>
        <PageHead title="Overview" />
        <EmptyState />
      </>
    );
  }

  return (
    <>
      <PageHead title="Overview">
        <RangePicker fallback="24h" />
        <Field label="Stack by">
          {(id) => (
            <select id={id} value={groupBy} onChange={(event) => update({ group: event.target.value })}>
              {GROUPS.map((group) => (
                <option key={group.value} value={group.value}>
                  {group.label}
                </option>
              ))}
            </select>
          )}
        </Field>
      </PageHead>
      <QueryView query={overview} what="The overview">
        {(data) => <OverviewBody data={data} metric={metric} onMetric={(next) => update({ metric: next })} />}
      </QueryView>
    </>
  );
}

function OverviewBody({ data, metric, onMetric }: { data: Overview; metric: Metric; onMetric: (metric: Metric) => void }) {
  const { totals } = data;
  const stacked = useMemo(
    () => data.series.map((series) => ({ label: series.label, values: metricValues(series, metric) })),
    [data, metric],
  );
  const latency = useMemo(
    () => [
      { label: 'p50', values: data.latency.p50_ms },
      { label: 'p95', values: data.latency.p95_ms },
    ],
    [data],
  );
  const formatMetric = metric === 'cost' ? formatUsd : metric === 'calls' ? formatCount : formatTokens;
  const title = METRICS.find((item) => item.value === metric)!.title;
  // A model that cost nothing at all is not "expensive"; an unpriced one (null cost) stays, since its cost is unknown.
  const topModels = data.top_models.filter((model) => model.api_usd !== 0 || (model.api_equivalent_usd ?? 0) !== 0);

  return (
    <div className="stack">
      <p className="muted small" style={{ margin: 0 }}>
        {formatRange(data.from, data.to)}, in {data.bucket} buckets
      </p>
      <section className="stats" aria-label="Totals">
        <Stat
          label="API spend"
          value={formatUsd(totals.cost.api_usd)}
          sub={totals.cost.unpriced_calls ? `${totals.cost.unpriced_calls} calls without a price` : 'billed to API keys'}
        />
        <Stat
          label="Subscription, API-equivalent"
          value={formatUsd(totals.cost.api_equivalent_usd)}
          sub="what plan usage would cost at API prices"
        />
        <Stat
          label="Calls"
          value={formatCount(totals.calls)}
          sub={`${formatCount(totals.errors)} errors · ${formatCount(totals.sessions)} sessions`}
        />
        <Stat
          label="Tokens in / out"
          value={`${formatTokens(totals.tokens.input)} / ${formatTokens(totals.tokens.output)}`}
          sub={`cache read ${formatTokens(totals.tokens.cache_read)} · write ${formatTokens(totals.tokens.cache_write)}`}
        />
        <Stat label="Cache hit ratio" value={formatPercent(totals.cache_hit_ratio)} sub="cache reads over input tokens" />
        <Stat
          label="Latency p50 / p95"
          value={`${formatDuration(totals.latency_ms.p50)} / ${formatDuration(totals.latency_ms.p95)}`}
          sub={`first token p50 ${formatDuration(totals.ttft_ms.p50)}`}
        />
      </section>

      <section className="panel" aria-labelledby="chart-title">
        <div className="row" style={{ justifyContent: 'space-between', marginBottom: 8 }}>
          <h2 id="chart-title" style={{ margin: 0 }}>
            {title} by {data.group_by}
          </h2>
          <fieldset className="segmented" aria-label="Chart metric" style={{ padding: 0, margin: 0 }}>
            {METRICS.map((item) => (
              <button key={item.value} type="button" aria-pressed={metric === item.value} onClick={() => onMetric(item.value)}>
                {item.label}
              </button>
            ))}
          </fieldset>
        </div>
        <StackedBarChart
          buckets={data.buckets}
          series={stacked}
          format={formatMetric}
          formatTicks={metric === 'cost' ? formatUsdTicks : undefined}
          label={`${metric} per ${data.bucket}, stacked by ${data.group_by}`}
        />
      </section>

      <div className="grid cols-2">
        <section className="panel" aria-labelledby="latency-title">
          <h2 id="latency-title">Latency of successful calls</h2>
          <LineChart
            buckets={data.buckets}
            series={latency}
            format={formatDuration}
            formatTicks={formatDurationTicks}
            label="p50 and p95 latency per bucket"
            height={180}
          />
        </section>
        <section className="panel" aria-labelledby="split-title">
          <h2 id="split-title">By {data.group_by}</h2>
          <GroupTable data={data} />
        </section>
      </div>

      <div className="grid cols-2">
        <section className="panel" aria-labelledby="top-sessions-title">
          <h2 id="top-sessions-title">Most expensive sessions</h2>
          {data.top_sessions.length === 0 ? (
            <p className="muted">No session in this range.</p>
          ) : (
            <div className="table-scroll">
              <table className="simple">
                <thead>
                  <tr>
                    <th>Session</th>
                    <th>Tool</th>
                    <th className="num">Calls</th>
                    <th className="num">Cost</th>
                    <th>Last call</th>
                  </tr>
                </thead>
                <tbody>
                  {data.top_sessions.map((session) => (
                    <tr key={session.session_id}>
                      <td>
                        <Link href={`/sessions/${encodeURIComponent(session.session_id)}`} className="mono">
                          {shortId(session.session_id, 10)}
                        </Link>
                      </td>
                      <td>{session.tool}</td>
                      <td className="num">{formatCount(session.calls)}</td>
                      <td className="num">
                        <CostCell api={session.api_usd} equivalent={session.api_equivalent_usd} />
                      </td>
                      <td>{formatTime(session.last_call_at)}</td>
                    </tr>
                  ))}
                </tbody>
              </table>
            </div>
          )}
        </section>
        <section className="panel" aria-labelledby="top-models-title">
          <h2 id="top-models-title">Most expensive models</h2>
          {topModels.length === 0 ? (
            <p className="muted">No model with a cost in this range.</p>
          ) : (
            <div className="table-scroll">
              <table className="simple">
                <thead>
                  <tr>
                    <th>Model</th>
                    <th className="num">Calls</th>
                    <th className="num">Tokens in / out</th>
                    <th className="num">Cost</th>
                  </tr>
                </thead>
                <tbody>
                  {topModels.map((model) => (
                    <tr key={`${model.provider}/${model.model}`}>
                      <td>
                        {model.model ? (
                          <Link href={`/calls?model=${encodeURIComponent(model.model)}`}>{model.model}</Link>
                        ) : (
                          <span className="muted">no model ({model.provider})</span>
                        )}
                      </td>
                      <td className="num">{formatCount(model.calls)}</td>
                      <td className="num">
                        {formatTokens(model.input_tokens)} / {formatTokens(model.output_tokens)}
                      </td>
                      <td className="num">
                        <CostCell api={model.api_usd} equivalent={model.api_equivalent_usd} />
                      </td>
                    </tr>
                  ))}
                </tbody>
              </table>
            </div>
          )}
        </section>
      </div>
    </div>
  );
}

/** Real API spend, with the subscription's API-equivalent beside it rather than added in. */
function CostCell({ api: apiUsd, equivalent }: { api: number | null; equivalent: number | null }) {
  return (
    <>
      {formatUsd(apiUsd)}
      {equivalent ? <div className="muted small">+ {formatUsd(equivalent)} plan</div> : null}
    </>
  );
}

function GroupTable({ data }: { data: Overview }) {
  const rows = data.series
    .map((series) => ({
      key: series.key,
      label: series.label,
      calls: sum(series.calls),
      api: sum(series.api_usd),
      equivalent: sum(series.api_equivalent_usd),
      tokens: sum(series.input_tokens) + sum(series.output_tokens),
    }))
    .sort((a, b) => b.api + b.equivalent - (a.api + a.equivalent) || b.calls - a.calls);
  const filterKey = { tool: 'tool', model: 'model', provider: 'provider', device: 'device_id', person: 'user_id' }[data.group_by];
  return (
    <div className="table-scroll">
      <table className="simple">
        <thead>
          <tr>
            <th>{data.group_by[0]!.toUpperCase() + data.group_by.slice(1)}</th>
            <th className="num">Calls</th>
            <th className="num">Tokens</th>
            <th className="num">API spend</th>
            <th className="num">API-equivalent</th>
          </tr>
        </thead>
        <tbody>
          {rows.map((row) => (
            <tr key={row.key}>
              <td>
                {row.key.startsWith('__') ? (
                  row.label
                ) : (
                  <Link href={`/calls?${filterKey}=${encodeURIComponent(row.key)}`}>{row.label}</Link>
                )}
              </td>
              <td className="num">{formatCount(row.calls)}</td>
              <td className="num">{formatTokens(row.tokens)}</td>
              <td className="num">{formatUsd(row.api)}</td>
              <td className="num">{formatUsd(row.equivalent)}</td>
            </tr>
          ))}
        </tbody>
      </table>
    </div>
  );
}

function metricValues(series: OverviewSeries, metric: Metric): number[] {
  switch (metric) {
    case 'cost':
      return series.cost_usd;
    case 'calls':
      return series.calls;
    case 'tokens':
      return series.input_tokens.map((input, index) => input + (series.output_tokens[index] ?? 0));
    case 'input':
      return series.input_tokens;
    case 'cache_read':
      return series.cache_read_tokens;
    case 'cache_write':
      return series.cache_write_tokens;
    case 'output':
      return series.output_tokens;
  }
}

function sum(values: number[]): number {
  return values.reduce((total, value) => total + (value ?? 0), 0);
}
