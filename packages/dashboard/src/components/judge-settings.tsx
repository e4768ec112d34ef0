import { useMutation, useQuery, useQueryClient } from '@tanstack/react-query';
import { useEffect, useState } from 'react';
import { Link } from 'wouter';
import { api, currentWorkspaceId } from '../api/client.js';
import { formatCount, formatTime, formatUsd } from '../lib/format.js';
import { useOptimisticFlag } from '../lib/use-optimistic-flag.js';
import { ErrorNotice, Field, QueryView } from './common.js';

interface JudgeSettingsJson {
  judge: {
    enabled: boolean;
    route: string;
    model: string;
    rubric: string;
    sample_rate: number;
    pass_score: number;
    updated_at: string | null;
  };
  routes: string[];
  key_configured: boolean;
  warnings: string[];
  last_30_days: {
    judge_calls: number;
    judge_cost_usd: number;
    scored: number;
    failing: number;
    failed_judgings: number;
    average_score: number | null;
  };
}

interface ScoresJson {
  scores: { call_id: string; call_started_at: string; status: string; score: number | null; reason: string | null; error: string | null }[];
}

/**
 * Show the optional LLM judge: an owner turns it on and picks the route, model, rubric and sample rate; everyone
 * sees what the judge's own calls cost and the lowest scores. The provider key is the server's, never
 * typed here.
 */
export function JudgeSettings({ owner }: { owner: boolean }) {
  const queryClient = useQueryClient();
  const workspaceId = currentWorkspaceId();
  const settings = useQuery({ queryKey: ['judge-settings', workspaceId], queryFn: () => api<JudgeSettingsJson>('/judge/settings') });
  const failing = useQuery({
    queryKey: ['judge-scores', workspaceId, settings.data?.judge.pass_score],
    queryFn: () => api<ScoresJson>('/judge/scores', { query: { below: settings.data?.judge.pass_score, limit: 10, range: '30d' } }),
    enabled: settings.data !== undefined,
  });
  const save = useMutation({
    mutationFn: (changes: Record<string, unknown>) => api<JudgeSettingsJson>('/judge/settings', { method: 'PATCH', body: changes }),
    onSuccess: (data) => queryClient.setQueryData(['judge-settings', workspaceId], data),
  });
  const [form, setForm] = useState({ route: '', model: '', rubric: '', sample_percent: '', pass_score: '' });
  useEffect(() => {
    const judge = settings.data?.judge;
    if (!judge) return;
    setForm({
      route: judge.route,
      model: judge.model,
      rubric: judge.rubric,
      sample_percent: String(Math.round(judge.sample_rate * 1000) / 10),
      pass_score: String(judge.pass_score),
    });
  }, [settings.data]);

  return (
    <section className="panel" aria-labelledby="judge-title">
      <h2 id="judge-title">LLM judge</h2>
      <p className="muted small" style={{ marginTop: 0 }}>
        Off unless an owner turns it on. It sends a sample of the calls whose bodies are kept, request and answer, to a model of your choice
        through this server's proxy, which scores each from 0 to 10 against your rubric. Its own calls are recorded as the tool{' '}
        <code>tokenwise-judge</code> and cost like any other.
      </p>
      {save.error && <ErrorNotice error={save.error} />}
      <QueryView query={settings} what="The LLM judge">
        {(data) => (
          <div className="stack" style={{ gap: 12 }}>
            {!data.key_configured && (
              <p className="notice" role="status">
                This server has no judge API key, so the judge cannot run: its operator sets <code>TOKENWISE_JUDGE_API_KEY</code> or{' '}
                <code>--judge-api-key-file</code>.
              </p>
            )}
            {data.warnings.map((warning) => (
              <p key={warning} className="notice" role="status">
                {warning}
              </p>
            ))}
            <JudgeSwitch
              enabled={data.judge.enabled}
              disabled={!owner || save.isPending}
              save={(enabled) => save.mutateAsync({ enabled })}
            />
            <form
              className="stack"
              style={{ gap: 8 }}
              onSubmit={(event) => {
                event.preventDefault();
                save.mutate({
                  route: form.route,
                  model: form.model.trim(),
                  rubric: form.rubric,
                  sample_rate: Number(form.sample_percent) / 100,
                  pass_score: Number(form.pass_score),
                });
              }}
            >
              <div className="row">
                <Field label="Route">
                  {(id) => (
                    <select
                      id={id}
                      value={form.route}
                      disabled={!owner}
                      onChange={(event) => setForm({ ...form, route: event.target.value })}
                    >
                      {data.routes.map((route) => (
                        <option key={route} value={route}>
                          {route}
                        </option>
                      ))}
                    </select>
                  )}
                </Field>
                <Field label="Model">
                  {(id) => (
                    <input
                      id={id}
                      value={form.model}
                      disabled={!owner}
                      required
                      maxLength={200}
                      onChange={(event) => setForm({ ...form, model: event.target.value })}
                    />
                  )}
                </Field>
                <Field label="Calls judged (%)">
                  {(id) => (
                    <input
                      id={id}
                      type="number"
                      min={0}
                      max={100}
                      step="any"
                      size={5}
                      value={form.sample_percent}
                      disabled={!owner}
                      required
                      onChange={(event) => setForm({ ...form, sample_percent: event.target.value })}
                    />
                  )}
                </Field>
                <Field label="Pass score (0 to 10)">
                  {(id) => (
                    <input
                      id={id}
                      type="number"
                      min={0}
                      max={10}
                      step="any"
                      size={4}
                      value={form.pass_score}
                      disabled={!owner}
                      required
                      onChange={(event) => setForm({ ...form, pass_score: event.target.value })}
                    />
                  )}
                </Field>
              </div>
              <Field label="Rubric">
                {(id) => (
                  <textarea
                    id={id}
                    rows={3}
                    value={form.rubric}
                    disabled={!owner}
                    required
                    maxLength={4000}
                    onChange={(event) => setForm({ ...form, rubric: event.target.value })}
                  />
                )}
              </Field>
              {owner && (
                <div>
                  <button type="submit" className="primary" disabled={save.isPending}>
                    Save the judge
                  </button>
                </div>
              )}
            </form>
            <p className="small" style={{ margin: 0 }}>
              Last 30 days: {formatCount(data.last_30_days.scored)} calls scored
              {data.last_30_days.average_score !== null && `, average ${data.last_30_days.average_score} of 10`},{' '}
              {formatCount(data.last_30_days.failing)} below the pass score
              {data.last_30_days.failed_judgings > 0 && `, ${formatCount(data.last_30_days.failed_judgings)} not scored`}. The judge's own
              calls: {formatCount(data.last_30_days.judge_calls)}, costing {formatUsd(data.last_30_days.judge_cost_usd)}.
            </p>
            {failing.data && failing.data.scores.length > 0 && (
              <div className="table-scroll">
                <table className="simple">
                  <caption className="muted small" style={{ textAlign: 'left' }}>
                    Lowest scores below the pass score
                  </caption>
                  <thead>
                    <tr>
                      <th>Call</th>
                      <th className="num">Score</th>
                      <th>Reason</th>
                    </tr>
                  </thead>
                  <tbody>
                    {failing.data.scores.map((score) => (
                      <tr key={score.call_id}>
                        <td>
                          <Link href={`/calls/${encodeURIComponent(score.call_id)}`}>{formatTime(score.call_started_at)}</Link>
                        </td>
                        <td className="num">{score.score}</td>
                        <td>{score.reason ?? '–'}</td>
                      </tr>
                    ))}
                  </tbody>
                </table>
              </div>
            )}
          </div>
        )}
      </QueryView>
    </section>
  );
}

function JudgeSwitch({ enabled, disabled, save }: { enabled: boolean; disabled: boolean; save: (enabled: boolean) => Promise<unknown> }) {
  const [shown, setShown] = useOptimisticFlag(enabled, save);
  return (
    <label className="check">
      <input type="checkbox" checked={shown} disabled={disabled} onChange={(event) => setShown(event.target.checked)} />
      <strong>Judge sampled calls</strong>
    </label>
  );
}
