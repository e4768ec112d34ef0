import { useQuery } from '@tanstack/react-query';
import type { CallBodies, CallRecord } from '@tokenwise/core';
import { type ReactNode, useId, useMemo, useState } from 'react';
import { Link } from 'wouter';
import { useCallScores } from '../api/call-scores.js';
import { ApiError, api, currentWorkspaceId } from '../api/client.js';
import { SCORER_LABELS } from '../api/insights-types.js';
import type { BodyInfo, CallDetail } from '../api/types.js';
import { CopyButton, ErrorNotice, PageHead, StatusBadge } from '../components/common.js';
import { ConversationView } from '../components/conversation-view.js';
import { describeScore, ScoreBadges } from '../components/score-badges.js';
import { parseConversation } from '../lib/conversation.js';
import { buildCurl } from '../lib/curl.js';
import { formatBytes, formatCount, formatDuration, formatTime, formatUsd } from '../lib/format.js';

/**
 * Everything about one call. It reads `/calls/{id}/detail`, which leaves large bodies out; a server
 * without that route answers `/calls/{id}` with the record and every body inline, which this page shows
 * the same way.
 */
export function CallDetailPage({ id }: { id: string }) {
  const detail = useQuery({
    queryKey: ['call', currentWorkspaceId(), id],
    queryFn: ({ signal }) => loadDetail(id, signal),
  });

  if (detail.isPending) return <p className="muted">Loading the call…</p>;
  if (detail.isError) {
    if (detail.error instanceof ApiError && detail.error.status === 404) {
      return (
        <>
          <PageHead title="Call not found" />
          <p>
            No call with id <code>{id}</code> in this workspace. It may have been deleted. <Link href="/calls">All calls</Link>
          </p>
        </>
      );
    }
    return <ErrorNotice error={detail.error} />;
  }
  return <CallView detail={detail.data} />;
}

export async function loadDetail(id: string, signal: AbortSignal): Promise<CallDetail> {
  const path = `/calls/${encodeURIComponent(id)}`;
  try {
    return await api<CallDetail>(`${path}/detail`, { signal });
  } catch (error) {
    if (!(error instanceof ApiError && error.notAvailable)) throw error;
  }
  const basic = await api<{ call: CallRecord; bodies: CallBodies | null }>(path, { signal });
  const body = (captured: CallBodies['request']): BodyInfo | null =>
    captured && {
      bytes: captured.bytes,
      truncated: captured.truncated,
      content_type: captured.content_type,
      encoding_error: captured.encoding_error,
      text: captured.text,
      url: '',
    };
  return {
    call: basic.call,
    device: null,
    cost: basic.call.cost,
    timing: basic.call.timing,
    rate_limits: null,
    bodies: {
      kept: basic.bodies !== null,
      reason: basic.bodies === null ? 'not_captured' : null,
      request: body(basic.bodies?.request ?? null),
      response: body(basic.bodies?.response ?? null),
    },
    request_headers: basic.bodies?.request_headers ?? {},
    response_headers: basic.bodies?.response_headers ?? {},
    curl: null,
  };
}

const NO_BODY_REASONS: Record<string, string> = {
  privacy_mode:
    'The workspace is in privacy mode, so its bodies are not stored. Tokens, cost and timings are recorded as usual; an owner can turn privacy mode off in Settings for the calls that follow.',
  device_privacy_mode:
    'The device is in privacy mode, so its bodies are not stored. Tokens, cost and timings are recorded as usual; its owner can turn privacy mode off on the Devices page.',
  deleted_by_retention: 'The bodies were deleted after the retention period.',
  not_captured: 'No bodies were stored for this call (privacy mode, or deleted by retention).',
};

type Tab = 'conversation' | 'request' | 'response' | 'headers';

export function CallView({ detail }: { detail: CallDetail }) {
  const { call } = detail;
  const [tab, setTab] = useState<Tab>('conversation');
  const request = useBody(detail.bodies.request, tab !== 'headers');
  const response = useBody(detail.bodies.response, tab === 'conversation' || tab === 'response');
  const conversation = useMemo(
    () => (request.text === null ? null : parseConversation(call.api_shape, request.text, response.text)),
    [call.api_shape, request.text, response.text],
  );
  const curl =
    detail.curl ??
    (detail.bodies.kept
      ? buildCurl({
          origin: window.location.origin,
          route: call.route,
          provider: call.provider,
          method: call.method,
          path: call.path,
          headers: detail.request_headers,
          body: request.text,
        })
      : null);

  const model = call.model_answered ?? call.model_requested ?? 'unknown model';
  return (
    <>
      <PageHead title={model}>
        <StatusBadge status={call.status} httpStatus={call.http_status} />
        {curl && <CopyButton text={curl} label="Copy as curl" />}
      </PageHead>
      <p className="muted" style={{ marginTop: -8 }}>
        {call.tool}
        {call.tool_version ? ` ${call.tool_version}` : ''} · {call.provider} · {formatTime(call.started_at)}
        {call.session_id && (
          <>
            {' · '}
            <Link href={`/sessions/${encodeURIComponent(call.session_id)}?call=${call.id}`}>session</Link>
          </>
        )}
        {detail.device && <> · device {detail.device.name}</>}
      </p>
      {call.error && (
        <div className="notice error" role="alert" style={{ marginBottom: 12 }}>
          <strong>{call.error.type}</strong>
          {call.error.message ? `: ${call.error.message}` : ''}
          {call.error.retry_after_s !== null && ` (retry after ${call.error.retry_after_s} s)`}
        </div>
      )}

      <div className="grid" style={{ gridTemplateColumns: 'minmax(0, 1fr)' }}>
        <div className="grid cols-2" style={{ gridTemplateColumns: 'repeat(auto-fit, minmax(260px, 1fr))' }}>
          <TokensPanel call={call} />
          <CostPanel detail={detail} />
          <TimingPanel detail={detail} />
          <ScoresPanel callId={call.id} />
        </div>

        <section className="panel">
          <div className="tabs" role="tablist" aria-label="Call content">
            {(
              [
                ['conversation', 'Conversation'],
                ['request', 'Raw request'],
                ['response', 'Raw response'],
                ['headers', 'Headers'],
              ] as const
            ).map(([value, label]) => (
              <button
                key={value}
                type="button"
                role="tab"
                id={`tab-${value}`}
                aria-selected={tab === value}
                aria-controls="call-tabpanel"
                tabIndex={tab === value ? 0 : -1}
                onClick={() => setTab(value)}
                onKeyDown={(event) => moveTab(event, setTab)}
              >
                {label}
              </button>
            ))}
          </div>
          <div role="tabpanel" id="call-tabpanel" aria-labelledby={`tab-${tab}`}>
            {!detail.bodies.kept ? (
              tab === 'headers' ? (
                <HeadersView detail={detail} />
              ) : (
                <p className="notice">{NO_BODY_REASONS[detail.bodies.reason ?? 'not_captured'] ?? NO_BODY_REASONS.not_captured}</p>
              )
            ) : tab === 'conversation' ? (
              <BodyGate states={[request, response]}>
                {conversation ? (
                  <ConversationView conversation={conversation} />
                ) : (
                  <p className="muted">
                    {detail.bodies.request?.truncated
                      ? 'Only the beginning of this request was stored (it was cut at the body cap), so its JSON is incomplete and cannot be shown as a conversation. The Raw request tab shows the stored part.'
                      : 'This request is not a conversation this page can read; the Raw request tab shows it.'}
                  </p>
                )}
              </BodyGate>
            ) : tab === 'request' ? (
              <RawBody info={detail.bodies.request} state={request} />
            ) : tab === 'response' ? (
              <RawBody info={detail.bodies.response} state={response} />
            ) : (
              <HeadersView detail={detail} />
            )}
          </div>
        </section>
        {detail.rate_limits && Object.keys(detail.rate_limits).length > 0 && (
          <section className="panel">
            <h2>Rate limits reported with this call</h2>
            <HeaderTable headers={detail.rate_limits} />
          </section>
        )}
      </div>
    </>
  );
}

const TAB_ORDER: Tab[] = ['conversation', 'request', 'response', 'headers'];

/** Arrow keys move between tabs, as the WAI-ARIA tabs pattern describes. */
function moveTab(event: React.KeyboardEvent<HTMLButtonElement>, setTab: (tab: Tab) => void): void {
  if (event.key !== 'ArrowRight' && event.key !== 'ArrowLeft') return;
  const current = TAB_ORDER.indexOf(event.currentTarget.id.replace('tab-', '') as Tab);
  const next = TAB_ORDER[(current + (event.key === 'ArrowRight' ? 1 : TAB_ORDER.length - 1)) % TAB_ORDER.length]!;
  setTab(next);
  document.getElementById(`tab-${next}`)?.focus();
}

interface BodyState {
  text: string | null;
  loading: boolean;
  error: unknown;
  /** Size of a body not loaded yet, so the page can offer to load it. */
  pendingBytes: number | null;
  /** True when the store kept only the beginning of the body (cut at the body cap), so `pendingBytes` is the size sent. */
  truncated: boolean;
  load(): void;
}

/** A body inline in the detail, or fetched from its URL when the person asks for it (bodies over 256 KiB). */
function useBody(info: BodyInfo | null, wanted: boolean): BodyState {
  const [requested, setRequested] = useState(false);
  const lazy = info !== null && info.text === null && info.url !== '';
  const large = lazy && info!.bytes > 2 * 1024 * 1024;
  const query = useQuery({
    queryKey: ['body', info?.url],
    queryFn: async ({ signal }) => {
      const response = await fetch(info!.url, {
        credentials: 'same-origin',
        signal,
        headers: { 'x-tokenwise-workspace': currentWorkspaceId() ?? '' },
      });
      if (!response.ok)
        throw new ApiError(response.status, `http_${response.status}`, `Loading the body failed with HTTP ${response.status}.`);
      return response.text();
    },
    enabled: lazy && wanted && (!large || requested),
    staleTime: Number.POSITIVE_INFINITY,
  });
  if (!lazy) return { text: info?.text ?? null, loading: false, error: null, pendingBytes: null, truncated: false, load() {} };
  return {
    text: query.data ?? null,
    loading: query.isFetching,
    error: query.error,
    pendingBytes: query.data === undefined && large && !requested ? info!.bytes : null,
    truncated: info!.truncated,
    load: () => setRequested(true),
  };
}

function BodyGate({ states, children }: { states: BodyState[]; children: ReactNode }) {
  const pending = states.find((state) => state.pendingBytes !== null);
  if (pending) {
    return (
      <p>
        {pending.truncated
          ? `This body was ${formatBytes(pending.pendingBytes)} when sent; only its beginning, up to the server's body cap, is stored.`
          : `This call's body is ${formatBytes(pending.pendingBytes)}.`}{' '}
        <button
          type="button"
          onClick={() => {
            for (const state of states) state.load();
          }}
        >
          {pending.truncated ? 'Load the stored part' : 'Load it'}
        </button>
      </p>
    );
  }
  const failed = states.find((state) => state.error);
  if (failed) return <ErrorNotice error={failed.error} />;
  if (states.some((state) => state.loading)) return <p className="muted">Loading the bodies…</p>;
  return <>{children}</>;
}

function RawBody({ info, state }: { info: BodyInfo | null; state: BodyState }) {
  const pretty = useMemo(() => prettyJson(state.text), [state.text]);
  if (!info) return <p className="muted">No body on this side.</p>;
  return (
    <div className="stack">
      <p className="muted small" style={{ margin: 0 }}>
        {info.content_type ?? 'unknown type'} · {formatBytes(info.bytes)}
        {info.truncated && ' · cut at the body cap: only the beginning was stored'}
        {info.encoding_error && ` · could not be decoded: ${info.encoding_error}`}
      </p>
      <BodyGate states={[state]}>
        {state.text !== null && (
          <>
            <div className="row">
              <CopyButton text={state.text} label="Copy body" />
            </div>
            {/* biome-ignore lint/a11y/noNoninteractiveTabindex: a scrolling region takes the focus so the keyboard can scroll it */}
            <section className="code-scroll" aria-label="Body" tabIndex={0}>
              <pre className="code">{pretty}</pre>
            </section>
          </>
        )}
      </BodyGate>
    </div>
  );
}

function prettyJson(text: string | null): string {
  if (text === null) return '';
  try {
    return JSON.stringify(JSON.parse(text), null, 2);
  } catch {
    return text;
  }
}

function HeadersView({ detail }: { detail: CallDetail }) {
  return (
    <div className="stack">
      <p className="muted small" style={{ margin: 0 }}>
        Credentials (authorization, API keys, cookies) are removed before headers are stored.
      </p>
      <h2>Request headers</h2>
      <HeaderTable headers={detail.request_headers} />
      <h2>Response headers</h2>
      <HeaderTable headers={detail.response_headers} />
    </div>
  );
}

function HeaderTable({ headers }: { headers: Record<string, string> }) {
  const entries = Object.entries(headers);
  if (entries.length === 0) return <p className="muted">None stored.</p>;
  return (
    <div className="table-scroll">
      <table className="simple">
        <tbody>
          {entries.map(([name, value]) => (
            <tr key={name}>
              <th className="mono" style={{ width: '35%' }}>
                {name}
              </th>
              <td className="mono" style={{ overflowWrap: 'anywhere' }}>
                {value}
              </td>
            </tr>
          ))}
        </tbody>
      </table>
    </div>
  );
}

function Facts({ title, rows }: { title: string; rows: [string, ReactNode][] }) {
  return (
    <section className="panel">
      <h2>{title}</h2>
      <dl className="facts">
        {rows.map(([label, value]) => (
          <div key={label} style={{ display: 'contents' }}>
            <dt>{label}</dt>
            <dd>{value}</dd>
          </div>
        ))}
      </dl>
    </section>
  );
}

/** Show the insights job's checks of the call and a link to its prompt group; render nothing without the insights API. */
function ScoresPanel({ callId }: { callId: string }) {
  const headingId = useId();
  const { entry, unavailable, error } = useCallScores(callId);
  if (unavailable) return null;

  let content: ReactNode;
  if (error) {
    content = <ErrorNotice error={error} />;
  } else if (!entry) {
    content = <p className="muted">Loading the scores…</p>;
  } else if (!entry.scored) {
    content = <p className="muted">Not scored yet: the insights job reads new calls every minute.</p>;
  } else {
    const failed = entry.scores.filter((score) => !score.passed);
    content = (
      <div className="stack">
        <ScoreBadges scores={entry.scores} />
        {failed.length > 0 && (
          <ul className="small" style={{ margin: 0, paddingLeft: 18 }}>
            {failed.map((score) => (
              <li key={score.scorer}>
                {SCORER_LABELS[score.scorer] ?? score.scorer}: {describeScore(score)}
              </li>
            ))}
          </ul>
        )}
        {entry.prompt_group_id && <Link href={`/prompts/${encodeURIComponent(entry.prompt_group_id)}`}>Prompt group of this call</Link>}
      </div>
    );
  }
  return (
    <section className="panel" aria-labelledby={headingId}>
      <h2 id={headingId}>Scores</h2>
      {content}
    </section>
  );
}

function TokensPanel({ call }: { call: CallRecord }) {
  const usage = call.usage;
  return (
    <Facts
      title="Tokens"
      rows={[
        ['Input (all)', formatCount(usage.input_tokens)],
        ['Uncached input', formatCount(usage.uncached_input_tokens)],
        ['Cache read', formatCount(usage.cache_read_tokens)],
        ['Cache write 5 min', formatCount(usage.cache_write_5m_tokens)],
        ['Cache write 1 h', formatCount(usage.cache_write_1h_tokens)],
        ['Output (all)', formatCount(usage.output_tokens)],
        ['of which reasoning', formatCount(usage.reasoning_tokens)],
        [
          'Tool calls',
          `${call.tool_calls}${
            Object.keys(call.server_tool_calls).length
              ? ` + server ${Object.entries(call.server_tool_calls)
                  .map(([name, count]) => `${name} ×${count}`)
                  .join(', ')}`
              : ''
          }`,
        ],
        ['Stop reason', call.stop_reason ?? '–'],
      ]}
    />
  );
}

const BASIS_TEXT: Record<string, string> = {
  exact: 'API spend, every token priced',
  partial: 'API spend, a lower bound (some usage unreported)',
  api_equivalent: 'subscription: the API price of this call, not money spent',
  unknown: 'unknown: the provider reported no usage',
  none: 'nothing billable',
  unpriced: 'no price for this model: add one in Settings',
};

function CostPanel({ detail }: { detail: CallDetail }) {
  const cost = detail.cost;
  const breakdown = cost.breakdown as Record<string, number | undefined>;
  const component = (key: string) => (breakdown[key] === undefined ? '–' : formatUsd(breakdown[key]));
  return (
    <Facts
      title="Cost"
      rows={[
        ['Total', <strong key="total">{formatUsd(cost.usd)}</strong>],
        ['Basis', BASIS_TEXT[cost.basis] ?? cost.basis],
        ['Input', component('input')],
        ['Cache read', component('cache_read')],
        ['Cache write 5 min', component('cache_write_5m')],
        ['Cache write 1 h', component('cache_write_1h')],
        ['Output', component('output')],
        ['Price of', cost.price_key ?? '–'],
        ['Price data', `${cost.price_data_version ?? 'unknown version'}${cost.price_source ? ` (${cost.price_source})` : ''}`],
      ]}
    />
  );
}

/** Build Timing rows for the times the model server measured itself (Ollama does), skipping any it did not report. */
function modelServerRows(timing: CallDetail['timing']): [string, ReactNode][] {
  const rows: [string, ReactNode][] = [];
  const add = (label: string, ms: number | null | undefined) => {
    if (ms !== null && ms !== undefined) rows.push([label, formatDuration(ms)]);
  };
  add('Model load', timing.model_load_ms);
  add('Prompt evaluation', timing.prompt_eval_ms);
  add('Generation', timing.eval_ms);
  return rows;
}

function TimingPanel({ detail }: { detail: CallDetail }) {
  const timing = detail.timing;
  const call = detail.call;
  return (
    <Facts
      title="Timing"
      rows={[
        ['Headers after', formatDuration(timing.headers_ms)],
        ['First token after', formatDuration(timing.ttft_ms)],
        ['Total', formatDuration(timing.total_ms)],
        ...modelServerRows(timing),
        [
          'Proxy overhead',
          timing.proxy_overhead_ms === undefined || timing.proxy_overhead_ms === null
            ? 'not measured for this call'
            : `${formatDuration(timing.proxy_overhead_ms)} (before ${formatDuration(timing.proxy_before_ms)}, after ${formatDuration(timing.proxy_after_ms)})`,
        ],
        ['Streaming', call.streaming ? `yes (${call.stream_format})` : 'no'],
        ['Sizes', `${formatBytes(call.request_bytes)} sent, ${formatBytes(call.response_bytes)} received`],
        ['Request id', call.upstream_request_id ?? '–'],
        [
          'Call id',
          <span key="id" className="mono">
            {call.id}
          </span>,
        ],
      ]}
    />
  );
}
