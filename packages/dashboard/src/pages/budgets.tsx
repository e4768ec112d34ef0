import { useMutation, useQuery, useQueryClient } from '@tanstack/react-query';
import { type FormEvent, useState } from 'react';
import { api, apiAll, currentWorkspaceId } from '../api/client.js';
import type { Device, Member, Workspace } from '../api/types.js';
import { useWorkspace } from '../api/workspace-context.js';
import { ErrorNotice, Field, PageHead, QueryView } from '../components/common.js';
import { formatTime, formatUsd } from '../lib/format.js';
import { useOptimisticFlag } from '../lib/use-optimistic-flag.js';

/** A budget as `GET /api/v1/budgets` returns it (docs/budgets.md). */
interface Budget {
  id: string;
  name: string;
  scope: 'workspace' | 'device' | 'user';
  device_id: string | null;
  user_id: string | null;
  cost_kind: 'api' | 'api_equivalent';
  period: 'day' | 'week' | 'month';
  amount_usd: number;
  alert_threshold: number | null;
  action: 'alert' | 'block';
  webhook_url: string | null;
  emails: string[];
  spent_usd: number;
  resets_at: string;
  state: 'ok' | 'alerting' | 'used_up';
}

interface AlertDelivery {
  state: 'none' | 'pending' | 'sent' | 'failed';
  attempts: number;
  last_error: string | null;
}

interface BudgetAlert {
  id: string;
  budget_name: string;
  level: 'threshold' | 'limit';
  message: string;
  created_at: string;
  webhook: AlertDelivery;
  email: AlertDelivery;
}

const STATE_TEXT: Record<Budget['state'], string> = { ok: 'within budget', alerting: 'past the alert threshold', used_up: 'used up' };
const COST_TEXT: Record<Budget['cost_kind'], string> = { api: 'API spend', api_equivalent: 'API-equivalent cost' };

export function BudgetsPage() {
  const { workspace } = useWorkspace();
  const owner = workspace.role === 'owner';
  return (
    <>
      <PageHead title="Budgets" />
      <div className="stack">
        <BudgetList owner={owner} />
        {owner && <NewBudget />}
        <FailMode workspace={workspace} owner={owner} />
        <Alerts />
      </div>
    </>
  );
}

function BudgetList({ owner }: { owner: boolean }) {
  const queryClient = useQueryClient();
  const budgets = useQuery({
    queryKey: ['budgets', currentWorkspaceId()],
    queryFn: async () => ({ budgets: await apiAll<Budget>('/budgets', 'budgets') }),
  });
  const remove = useMutation({
    mutationFn: (budget: Budget) => api(`/budgets/${encodeURIComponent(budget.id)}`, { method: 'DELETE' }),
    onSuccess: () => queryClient.invalidateQueries({ queryKey: ['budgets'] }),
  });

  return (
    <section className="panel" aria-labelledby="budgets-title">
      <h2 id="budgets-title">Budgets</h2>
      {remove.error && <ErrorNotice error={remove.error} />}
      <QueryView query={budgets} what="Budgets">
        {(data) =>
          data.budgets.length === 0 ? (
            <p className="muted">No budgets yet.{owner ? ' Create one below.' : ' Owners of the workspace create them.'}</p>
          ) : (
            <div className="table-scroll">
              <table className="simple">
                <thead>
                  <tr>
                    <th>Name</th>
                    <th>Counts</th>
                    <th>Spent</th>
                    <th>At the amount</th>
                    <th>Resets</th>
                    {owner && (
                      <th>
                        <span className="muted">Actions</span>
                      </th>
                    )}
                  </tr>
                </thead>
                <tbody>
                  {data.budgets.map((budget) => (
                    <tr key={budget.id}>
                      <td>{budget.name}</td>
                      <td>
                        {COST_TEXT[budget.cost_kind]} per {budget.period}, {budget.scope === 'workspace' ? 'whole workspace' : budget.scope}
                      </td>
                      <td>
                        {formatUsd(budget.spent_usd)} of {formatUsd(budget.amount_usd)}{' '}
                        <meter
                          min={0}
                          max={budget.amount_usd}
                          value={Math.min(budget.spent_usd, budget.amount_usd)}
                          aria-label="Share spent"
                        />{' '}
                        <span className={budget.state === 'ok' ? 'badge ok' : 'badge error'}>{STATE_TEXT[budget.state]}</span>
                      </td>
                      <td>{budget.action === 'block' ? 'calls rejected (429)' : 'alert only'}</td>
                      <td>{formatTime(budget.resets_at)}</td>
                      {owner && (
                        <td>
                          <button
                            type="button"
                            className="danger"
                            onClick={() => {
                              if (window.confirm(`Delete the budget "${budget.name}"?`)) remove.mutate(budget);
                            }}
                          >
                            Delete
                          </button>
                        </td>
                      )}
                    </tr>
                  ))}
                </tbody>
              </table>
            </div>
          )
        }
      </QueryView>
    </section>
  );
}

function NewBudget() {
  const queryClient = useQueryClient();
  const devices = useQuery({
    queryKey: ['devices', currentWorkspaceId()],
    queryFn: async () => ({ devices: await apiAll<Device>('/devices', 'devices') }),
  });
  const members = useQuery({
    queryKey: ['members', currentWorkspaceId()],
    queryFn: async () => ({ members: await apiAll<Member>('/members', 'members') }),
  });
  const [name, setName] = useState('');
  const [scope, setScope] = useState<Budget['scope']>('workspace');
  const [scopeId, setScopeId] = useState('');
  const [costKind, setCostKind] = useState<Budget['cost_kind']>('api');
  const [period, setPeriod] = useState<Budget['period']>('day');
  const [amount, setAmount] = useState('');
  const [block, setBlock] = useState(false);
  const [threshold, setThreshold] = useState('80');
  const [webhook, setWebhook] = useState('');
  const [emails, setEmails] = useState('');

  const create = useMutation({
    mutationFn: () =>
      api('/budgets', {
        method: 'POST',
        body: {
          ...(name.trim() ? { name: name.trim() } : {}),
          scope,
          ...(scope === 'device' ? { device_id: scopeId } : {}),
          ...(scope === 'user' ? { user_id: scopeId } : {}),
          cost_kind: costKind,
          period,
          amount_usd: Number(amount),
          action: block ? 'block' : 'alert',
          alert_threshold: threshold.trim() === '' ? null : Number(threshold) / 100,
          ...(webhook.trim() ? { webhook_url: webhook.trim() } : {}),
          emails: emails
            .split(',')
            .map((email) => email.trim())
            .filter(Boolean),
        },
      }),
    onSuccess: () => {
      setName('');
      setAmount('');
      void queryClient.invalidateQueries({ queryKey: ['budgets'] });
    },
  });
  const submit = (event: FormEvent) => {
    event.preventDefault();
    create.mutate();
  };

  return (
    <section className="panel" aria-labelledby="new-budget-title">
      <h2 id="new-budget-title">New budget</h2>
      <form className="stack" style={{ gap: 12 }} onSubmit={submit}>
        <div className="row">
          <Field label="Name (optional)">
            {(id) => <input id={id} value={name} maxLength={100} onChange={(event) => setName(event.target.value)} />}
          </Field>
          <Field label="Counts the calls of">
            {(id) => (
              <select
                id={id}
                value={scope}
                onChange={(event) => {
                  setScope(event.target.value as Budget['scope']);
                  setScopeId('');
                }}
              >
                <option value="workspace">the whole workspace</option>
                <option value="device">one device</option>
                <option value="user">one person</option>
              </select>
            )}
          </Field>
          {scope === 'device' && (
            <Field label="Device">
              {(id) => (
                <select id={id} value={scopeId} required onChange={(event) => setScopeId(event.target.value)}>
                  <option value="">Choose…</option>
                  {(devices.data?.devices ?? []).map((device) => (
                    <option key={device.id} value={device.id}>
                      {device.name}
                    </option>
                  ))}
                </select>
              )}
            </Field>
          )}
          {scope === 'user' && (
            <Field label="Person">
              {(id) => (
                <select id={id} value={scopeId} required onChange={(event) => setScopeId(event.target.value)}>
                  <option value="">Choose…</option>
                  {(members.data?.members ?? []).map((member) => (
                    <option key={member.user_id} value={member.user_id}>
                      {member.name} ({member.email})
                    </option>
                  ))}
                </select>
              )}
            </Field>
          )}
        </div>
        <div className="row">
          <Field label="Cost">
            {(id) => (
              <select id={id} value={costKind} onChange={(event) => setCostKind(event.target.value as Budget['cost_kind'])}>
                <option value="api">API spend</option>
                <option value="api_equivalent">API-equivalent cost of subscriptions</option>
              </select>
            )}
          </Field>
          <Field label="Per (UTC)">
            {(id) => (
              <select id={id} value={period} onChange={(event) => setPeriod(event.target.value as Budget['period'])}>
                <option value="day">day</option>
                <option value="week">week</option>
                <option value="month">month</option>
              </select>
            )}
          </Field>
          <Field label="Amount (USD)">
            {(id) => (
              <input
                id={id}
                type="number"
                min={0.01}
                step={0.01}
                required
                value={amount}
                onChange={(event) => setAmount(event.target.value)}
              />
            )}
          </Field>
          <Field label="Alert at (% of the amount; empty: none)">
            {(id) => (
              <input id={id} type="number" min={1} max={99} value={threshold} onChange={(event) => setThreshold(event.target.value)} />
            )}
          </Field>
        </div>
        <label className="check">
          <input type="checkbox" checked={block} onChange={(event) => setBlock(event.target.checked)} />
          <strong>Reject further calls at the amount</strong> <span className="muted small">(otherwise alerts only)</span>
        </label>
        <div className="row">
          <Field label="Slack-compatible webhook URL (optional)">
            {(id) => <input id={id} type="url" value={webhook} onChange={(event) => setWebhook(event.target.value)} />}
          </Field>
          <Field label="Email alerts to (comma-separated; empty: the owners)">
            {(id) => <input id={id} value={emails} onChange={(event) => setEmails(event.target.value)} />}
          </Field>
        </div>
        <div>
          <button type="submit" className="primary" disabled={create.isPending}>
            Create budget
          </button>
        </div>
      </form>
      {create.error && <ErrorNotice error={create.error} />}
    </section>
  );
}

function FailMode({ workspace, owner }: { workspace: Workspace; owner: boolean }) {
  const queryClient = useQueryClient();
  // Absent on a server without budgets; then the section is left out.
  const serverValue = (workspace as Workspace & { budgets_fail_closed?: boolean }).budgets_fail_closed;
  const update = useMutation({
    mutationFn: (on: boolean) =>
      api(`/workspaces/${encodeURIComponent(workspace.id)}`, { method: 'PATCH', body: { budgets_fail_closed: on } }),
    onSuccess: () => queryClient.invalidateQueries({ queryKey: ['me'] }),
  });
  const [failClosed, setFailClosed] = useOptimisticFlag(serverValue ?? false, (on) => update.mutateAsync(on));
  if (serverValue === undefined) return null;

  return (
    <section className="panel" aria-labelledby="fail-mode-title">
      <h2 id="fail-mode-title">When the database is unreachable</h2>
      {update.error && <ErrorNotice error={update.error} />}
      <label className="check">
        <input
          type="checkbox"
          checked={failClosed}
          disabled={!owner || update.isPending}
          onChange={(event) => setFailClosed(event.target.checked)}
        />
        <strong>Reject calls while blocking budgets cannot be checked</strong>
      </label>
      <p className="muted small" style={{ margin: '2px 0 0 24px' }}>
        {failClosed
          ? 'On: calls get 503 until the database is back, so no spend goes unchecked.'
          : 'Off: calls go through and the server logs a warning; their spend counts once stored.'}
      </p>
    </section>
  );
}

/** The number of alerts the page shows, the newest ones. */
const NEWEST_ALERTS = 100;

function Alerts() {
  const alerts = useQuery({
    queryKey: ['budget-alerts', currentWorkspaceId()],
    queryFn: () => api<{ alerts: BudgetAlert[]; next_cursor: string | null }>('/budget-alerts', { query: { limit: NEWEST_ALERTS } }),
  });
  const delivery = (channel: AlertDelivery) =>
    channel.state === 'none' ? '-' : `${channel.state}${channel.last_error ? ` (${channel.last_error})` : ''}`;

  return (
    <section className="panel" aria-labelledby="alerts-title">
      <h2 id="alerts-title">Alerts</h2>
      <QueryView query={alerts} what="Budget alerts">
        {(data) =>
          data.alerts.length === 0 ? (
            <p className="muted">No alerts yet.</p>
          ) : (
            <div className="table-scroll">
              <table className="simple">
                <thead>
                  <tr>
                    <th>When</th>
                    <th>Alert</th>
                    <th>Webhook</th>
                    <th>Email</th>
                  </tr>
                </thead>
                <tbody>
                  {data.alerts.map((alert) => (
                    <tr key={alert.id}>
                      <td>{formatTime(alert.created_at)}</td>
                      <td>{alert.message}</td>
                      <td>{delivery(alert.webhook)}</td>
                      <td>{delivery(alert.email)}</td>
                    </tr>
                  ))}
                </tbody>
              </table>
              {data.next_cursor !== null && (
                <p className="muted small">
                  The newest {NEWEST_ALERTS} alerts. <code>tokenwise budgets alerts --all</code> lists every one.
                </p>
              )}
            </div>
          )
        }
      </QueryView>
    </section>
  );
}
