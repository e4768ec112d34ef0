import { useMutation, useQuery, useQueryClient } from '@tanstack/react-query';
import { type FormEvent, useState } from 'react';
import { api, apiAll, currentWorkspaceId } from '../api/client.js';
import type { CustomPrice, Invite, Member, Workspace } from '../api/types.js';
import { useWorkspace } from '../api/workspace-context.js';
import { CopyLine, ErrorNotice, Field, PageHead, QueryView } from '../components/common.js';
import { InsightsEmailSettings } from '../components/insights-email-settings.js';
import { JudgeSettings } from '../components/judge-settings.js';
import { formatTime } from '../lib/format.js';
import { useOptimisticFlag } from '../lib/use-optimistic-flag.js';

export function SettingsPage() {
  const { workspace } = useWorkspace();
  const owner = workspace.role === 'owner';
  return (
    <>
      <PageHead title="Settings" />
      <div className="stack">
        <WorkspaceSettings workspace={workspace} owner={owner} />
        <Members owner={owner} />
        {owner && <Invites />}
        <Workspaces />
        <Prices owner={owner} />
        <InsightsEmailSettings owner={owner} />
        <JudgeSettings owner={owner} />
      </div>
    </>
  );
}

function useUpdateWorkspace(workspace: Workspace) {
  const queryClient = useQueryClient();
  return useMutation({
    mutationFn: (changes: Partial<Pick<Workspace, 'name' | 'privacy_mode' | 'redaction' | 'body_retention_days'>>) =>
      api<{ workspace: Workspace }>(`/workspaces/${encodeURIComponent(workspace.id)}`, { method: 'PATCH', body: changes }),
    onSuccess: () => queryClient.invalidateQueries({ queryKey: ['me'] }),
  });
}

function WorkspaceSettings({ workspace, owner }: { workspace: Workspace; owner: boolean }) {
  const update = useUpdateWorkspace(workspace);
  const [retention, setRetention] = useState(workspace.body_retention_days === null ? '' : String(workspace.body_retention_days));
  const [name, setName] = useState(workspace.name);
  const [privacyMode, setPrivacyMode] = useOptimisticFlag(workspace.privacy_mode, (on) => update.mutateAsync({ privacy_mode: on }));
  const [redaction, setRedaction] = useOptimisticFlag(workspace.redaction ?? true, (on) => update.mutateAsync({ redaction: on }));

  return (
    <section className="panel" aria-labelledby="privacy-title">
      <h2 id="privacy-title">Privacy and retention</h2>
      {!owner && <p className="muted">Only owners of the workspace change these settings.</p>}
      {update.error && <ErrorNotice error={update.error} />}
      <div className="stack" style={{ gap: 12 }}>
        <form
          className="row"
          onSubmit={(event) => {
            event.preventDefault();
            update.mutate({ name: name.trim() });
          }}
        >
          <Field label="Workspace name">
            {(id) => (
              <input id={id} value={name} onChange={(event) => setName(event.target.value)} disabled={!owner} required maxLength={100} />
            )}
          </Field>
          {owner && (
            <button type="submit" style={{ alignSelf: 'flex-end' }} disabled={update.isPending || name.trim() === workspace.name}>
              Rename
            </button>
          )}
        </form>
        <div>
          <label className="check">
            <input
              type="checkbox"
              checked={privacyMode}
              disabled={!owner || update.isPending}
              onChange={(event) => setPrivacyMode(event.target.checked)}
            />
            <strong>Privacy mode</strong>
          </label>
          <p className="muted small" style={{ margin: '2px 0 0 24px' }}>
            {privacyMode
              ? 'On: calls are recorded with their tokens, cost and timings, but no request or response body is stored.'
              : 'Off: request and response bodies are stored, so you can read prompts and answers here.'}
          </p>
        </div>
        <div>
          {workspace.redaction === undefined ? (
            <p className="small" style={{ margin: 0 }}>
              <strong>Secret redaction</strong> is always on for this server: API keys, tokens and private keys are masked in stored bodies
              and headers.
            </p>
          ) : (
            <>
              <label className="check">
                <input
                  type="checkbox"
                  checked={redaction}
                  disabled={!owner || update.isPending}
                  onChange={(event) => setRedaction(event.target.checked)}
                />
                <strong>Secret redaction</strong>
              </label>
              <p className="muted small" style={{ margin: '2px 0 0 24px' }}>
                Masks API keys, tokens and private keys in bodies, error messages and headers before they are stored. Credential headers are
                never stored either way.
              </p>
            </>
          )}
        </div>
        <form
          className="row"
          onSubmit={(event) => {
            event.preventDefault();
            update.mutate({ body_retention_days: retention.trim() === '' ? null : Number(retention) });
          }}
        >
          <Field label="Keep bodies for (days; empty keeps them until the call is deleted)">
            {(id) => (
              <input
                id={id}
                type="number"
                min={1}
                step={1}
                value={retention}
                onChange={(event) => setRetention(event.target.value)}
                disabled={!owner}
              />
            )}
          </Field>
          {owner && (
            <button type="submit" style={{ alignSelf: 'flex-end' }} disabled={update.isPending}>
              Save retention
            </button>
          )}
        </form>
      </div>
    </section>
  );
}

function Members({ owner }: { owner: boolean }) {
  const { me } = useWorkspace();
  const queryClient = useQueryClient();
  const members = useQuery({
    queryKey: ['members', currentWorkspaceId()],
    queryFn: async () => ({ members: await apiAll<Member>('/members', 'members') }),
  });
  const change = useMutation({
    mutationFn: ({ member, role }: { member: Member; role: string }) =>
      api(`/members/${encodeURIComponent(member.user_id)}`, { method: 'PATCH', body: { role } }),
    onSuccess: () => queryClient.invalidateQueries({ queryKey: ['members'] }),
  });
  const remove = useMutation({
    mutationFn: (member: Member) => api(`/members/${encodeURIComponent(member.user_id)}`, { method: 'DELETE' }),
    onSuccess: () => queryClient.invalidateQueries({ queryKey: ['members'] }),
  });

  return (
    <section className="panel" aria-labelledby="members-title">
      <h2 id="members-title">Members</h2>
      {(change.error || remove.error) && <ErrorNotice error={change.error ?? remove.error} />}
      <QueryView query={members} what="The member list">
        {(data) => (
          <div className="table-scroll">
            <table className="simple">
              <thead>
                <tr>
                  <th>Name</th>
                  <th>Email</th>
                  <th>Role</th>
                  <th>
                    <span className="muted">Actions</span>
                  </th>
                </tr>
              </thead>
              <tbody>
                {data.members.map((member) => (
                  <tr key={member.user_id}>
                    <td>{member.name}</td>
                    <td>{member.email}</td>
                    <td>
                      {owner && member.user_id !== me.user?.id ? (
                        <select
                          aria-label={`Role of ${member.name}`}
                          value={member.role}
                          onChange={(event) => change.mutate({ member, role: event.target.value })}
                        >
                          <option value="member">member</option>
                          <option value="owner">owner</option>
                        </select>
                      ) : (
                        member.role
                      )}
                    </td>
                    <td>
                      {(owner || member.user_id === me.user?.id) && (
                        <button
                          type="button"
                          className="danger"
                          onClick={() => {
                            const leaving = member.user_id === me.user?.id;
                            if (window.confirm(leaving ? 'Leave this workspace?' : `Remove ${member.name} from this workspace?`))
                              remove.mutate(member);
                          }}
                        >
                          {member.user_id === me.user?.id ? 'Leave' : 'Remove'}
                        </button>
                      )}
                    </td>
                  </tr>
                ))}
              </tbody>
            </table>
          </div>
        )}
      </QueryView>
    </section>
  );
}

function Invites() {
  const queryClient = useQueryClient();
  const invites = useQuery({
    queryKey: ['invites', currentWorkspaceId()],
    queryFn: async () => ({ invites: await apiAll<Invite>('/invites', 'invites') }),
  });
  const [role, setRole] = useState<'member' | 'owner'>('member');
  const [email, setEmail] = useState('');
  const [created, setCreated] = useState<string | null>(null);
  const create = useMutation({
    mutationFn: () =>
      api<{ url: string }>('/invites', { method: 'POST', body: { role, ...(email.trim() ? { email: email.trim() } : {}) } }),
    onSuccess: (result) => {
      setCreated(result.url);
      setEmail('');
      void queryClient.invalidateQueries({ queryKey: ['invites'] });
    },
  });
  const revoke = useMutation({
    mutationFn: (invite: Invite) => api(`/invites/${encodeURIComponent(invite.id)}`, { method: 'DELETE' }),
    onSuccess: () => queryClient.invalidateQueries({ queryKey: ['invites'] }),
  });
  const submit = (event: FormEvent) => {
    event.preventDefault();
    create.mutate();
  };

  return (
    <section className="panel" aria-labelledby="invites-title">
      <h2 id="invites-title">Invites</h2>
      <form className="row" onSubmit={submit}>
        <Field label="Role">
          {(id) => (
            <select id={id} value={role} onChange={(event) => setRole(event.target.value as 'member' | 'owner')}>
              <option value="member">member</option>
              <option value="owner">owner</option>
            </select>
          )}
        </Field>
        <Field label="Email (optional: only this address can accept)">
          {(id) => <input id={id} type="email" value={email} onChange={(event) => setEmail(event.target.value)} />}
        </Field>
        <button type="submit" className="primary" style={{ alignSelf: 'flex-end' }} disabled={create.isPending}>
          Create invite link
        </button>
      </form>
      {create.error && <ErrorNotice error={create.error} />}
      {created && (
        <div style={{ marginTop: 10 }}>
          <p className="small" style={{ margin: '0 0 4px' }}>
            Send this link to the person. It is shown only now.
          </p>
          <CopyLine text={created} label="Invite link" />
        </div>
      )}
      <QueryView query={invites} what="The invite list">
        {(data) => {
          const open = data.invites.filter(
            (invite) => !invite.accepted_at && !invite.revoked_at && invite.expires_at > new Date().toISOString(),
          );
          if (open.length === 0) return <p className="muted small">No open invite.</p>;
          return (
            <table className="simple" style={{ marginTop: 10 }}>
              <thead>
                <tr>
                  <th>Role</th>
                  <th>Email</th>
                  <th>Expires</th>
                  <th>
                    <span className="muted">Actions</span>
                  </th>
                </tr>
              </thead>
              <tbody>
                {open.map((invite) => (
                  <tr key={invite.id}>
                    <td>{invite.own_workspace ? 'own workspace' : invite.role}</td>
                    <td>{invite.email ?? 'anyone with the link'}</td>
                    <td>{formatTime(invite.expires_at)}</td>
                    <td>
                      <button type="button" onClick={() => revoke.mutate(invite)}>
                        Revoke
                      </button>
                    </td>
                  </tr>
                ))}
              </tbody>
            </table>
          );
        }}
      </QueryView>
    </section>
  );
}

function Workspaces() {
  const { me, workspace, switchWorkspace } = useWorkspace();
  const queryClient = useQueryClient();
  const [name, setName] = useState('');
  const create = useMutation({
    mutationFn: () => api<{ workspace: Workspace }>('/workspaces', { method: 'POST', body: { name: name.trim() }, withoutWorkspace: true }),
    onSuccess: async (result) => {
      setName('');
      await queryClient.invalidateQueries({ queryKey: ['me'] });
      switchWorkspace(result.workspace.id);
    },
  });
  return (
    <section className="panel" aria-labelledby="workspaces-title">
      <h2 id="workspaces-title">Workspaces</h2>
      <ul style={{ paddingLeft: 18, marginTop: 0 }}>
        {me.workspaces.map((item) => (
          <li key={item.id}>
            {item.id === workspace.id ? (
              <strong>{item.name} (shown now)</strong>
            ) : (
              <button type="button" onClick={() => switchWorkspace(item.id)}>
                Switch to {item.name}
              </button>
            )}{' '}
            <span className="muted small">{item.role}</span>
          </li>
        ))}
      </ul>
      {me.user && (
        <form
          className="row"
          onSubmit={(event) => {
            event.preventDefault();
            create.mutate();
          }}
        >
          <Field label="New workspace">
            {(id) => <input id={id} value={name} onChange={(event) => setName(event.target.value)} required maxLength={100} />}
          </Field>
          <button type="submit" style={{ alignSelf: 'flex-end' }} disabled={create.isPending}>
            Create
          </button>
        </form>
      )}
      {create.error && <ErrorNotice error={create.error} />}
    </section>
  );
}

const PRICE_FIELDS = [
  ['input_mtok', 'Input'],
  ['output_mtok', 'Output'],
  ['cache_read_mtok', 'Cache read'],
  ['cache_write_mtok', 'Cache write 5 min'],
  ['cache_write_1h_mtok', 'Cache write 1 h'],
] as const;

function Prices({ owner }: { owner: boolean }) {
  const queryClient = useQueryClient();
  const prices = useQuery({
    queryKey: ['prices', currentWorkspaceId()],
    queryFn: async () => ({ prices: await apiAll<CustomPrice>('/prices', 'prices') }),
  });
  const [form, setForm] = useState<Record<string, string>>({
    model: '',
    provider: '',
    effective_from: new Date().toISOString().slice(0, 10),
  });
  const [repriced, setRepriced] = useState<number | null>(null);
  const add = useMutation({
    mutationFn: () => {
      const body: Record<string, unknown> = {
        model: form.model!.trim(),
        provider: form.provider!.trim() || null,
        effective_from: new Date(`${form.effective_from}T00:00:00`).toISOString(),
      };
      for (const [key] of PRICE_FIELDS) if (form[key]?.trim()) body[key] = Number(form[key]);
      return api('/prices', { method: 'POST', body });
    },
    onSuccess: () => queryClient.invalidateQueries({ queryKey: ['prices'] }),
  });
  const remove = useMutation({
    mutationFn: (price: CustomPrice) => api(`/prices/${encodeURIComponent(price.id)}`, { method: 'DELETE' }),
    onSuccess: () => queryClient.invalidateQueries({ queryKey: ['prices'] }),
  });
  const reprice = useMutation({
    mutationFn: (model: string | null) => api<{ repriced: number }>('/prices/reprice', { method: 'POST', body: model ? { model } : {} }),
    onSuccess: (result) => {
      setRepriced(result.repriced);
      void queryClient.invalidateQueries({ predicate: (query) => query.queryKey[0] !== 'me' && query.queryKey[0] !== 'prices' });
    },
  });

  return (
    <section className="panel" aria-labelledby="prices-title">
      <h2 id="prices-title">Custom prices</h2>
      <p className="muted small" style={{ marginTop: 0 }}>
        Override the bundled price of a model, or add one it lacks, in USD per million tokens from a date on. New calls use it; past calls
        change when you re-price them.
      </p>
      <QueryView query={prices} what="Custom prices">
        {(data) => (
          <>
            {data.prices.length === 0 ? (
              <p className="muted small">No custom price: every call uses the bundled price data.</p>
            ) : (
              <div className="table-scroll">
                <table className="simple">
                  <thead>
                    <tr>
                      <th>Model</th>
                      <th>From</th>
                      {PRICE_FIELDS.map(([key, label]) => (
                        <th key={key} className="num">
                          {label}
                        </th>
                      ))}
                      <th>
                        <span className="muted">Actions</span>
                      </th>
                    </tr>
                  </thead>
                  <tbody>
                    {data.prices.map((price) => (
                      <tr key={price.id}>
                        <td>
                          {price.model}
                          {price.provider && <span className="muted small"> ({price.provider})</span>}
                        </td>
                        <td>{formatTime(price.effective_from)}</td>
                        {PRICE_FIELDS.map(([key]) => (
                          <td key={key} className="num">
                            {price[key] ?? '–'}
                          </td>
                        ))}
                        <td className="row">
                          {owner && (
                            <>
                              <button type="button" onClick={() => reprice.mutate(price.model)} disabled={reprice.isPending}>
                                Re-price past calls
                              </button>
                              <button type="button" className="danger" onClick={() => remove.mutate(price)}>
                                Delete
                              </button>
                            </>
                          )}
                        </td>
                      </tr>
                    ))}
                  </tbody>
                </table>
              </div>
            )}
            {repriced !== null && (
              <p className="notice" role="status">
                Re-priced {repriced.toLocaleString('en-US')} calls.
              </p>
            )}
            {(add.error || remove.error || reprice.error) && <ErrorNotice error={add.error ?? remove.error ?? reprice.error} />}
            {owner && (
              <form
                className="row"
                style={{ marginTop: 12, alignItems: 'flex-end' }}
                onSubmit={(event) => {
                  event.preventDefault();
                  add.mutate();
                }}
              >
                <Field label="Model">
                  {(id) => (
                    <input
                      id={id}
                      value={form.model}
                      onChange={(event) => setForm({ ...form, model: event.target.value })}
                      required
                      placeholder="claude-sonnet-4-5"
                    />
                  )}
                </Field>
                <Field label="Provider (optional)">
                  {(id) => (
                    <input
                      id={id}
                      value={form.provider}
                      onChange={(event) => setForm({ ...form, provider: event.target.value })}
                      placeholder="anthropic"
                      size={10}
                    />
                  )}
                </Field>
                <Field label="Effective from">
                  {(id) => (
                    <input
                      id={id}
                      type="date"
                      value={form.effective_from}
                      onChange={(event) => setForm({ ...form, effective_from: event.target.value })}
                      required
                    />
                  )}
                </Field>
                {PRICE_FIELDS.map(([key, label]) => (
                  <Field key={key} label={<>{label} $/MTok</>}>
                    {(id) => (
                      <input
                        id={id}
                        type="number"
                        min={0}
                        step="any"
                        size={6}
                        value={form[key] ?? ''}
                        onChange={(event) => setForm({ ...form, [key]: event.target.value })}
                        required={key === 'input_mtok' || key === 'output_mtok'}
                      />
                    )}
                  </Field>
                ))}
                <button type="submit" className="primary" disabled={add.isPending}>
                  Add price
                </button>
              </form>
            )}
          </>
        )}
      </QueryView>
    </section>
  );
}
