import { useMutation, useQuery, useQueryClient } from '@tanstack/react-query';
import { useEffect, useRef, useState } from 'react';
import { api, apiAll, apiUrl, currentWorkspaceId } from '../api/client.js';
import { useWorkspace } from '../api/workspace-context.js';
import { formatTime } from '../lib/format.js';
import { ErrorNotice, Field, QueryView } from './common.js';

type Frequency = 'weekly' | 'daily' | 'off';

interface EmailSettings {
  workspace_frequency: Frequency;
  my_frequency: Frequency | null;
  effective_frequency: Frequency | null;
  email: string | null;
  smtp_configured: boolean;
  mail_from: string | null;
  sends: { user_id: string; frequency: string; period_start: string; status: string; attempts: number; error: string | null }[];
}

const FREQUENCY_LABELS: Record<Frequency, string> = { weekly: 'Weekly', daily: 'Daily', off: 'Off' };

/**
 * Show the insights email's settings: how often the workspace and the signed-in person get it, what was sent lately, and a
 * preview of the next email. The preview is the server's own HTML in a sandboxed frame, because the page's
 * content security policy rightly allows no inline styles, and an email needs them.
 */
export function InsightsEmailSettings({ owner }: { owner: boolean }) {
  const { me } = useWorkspace();
  const queryClient = useQueryClient();
  const settings = useQuery({
    queryKey: ['insights-email-settings', currentWorkspaceId()],
    queryFn: () => api<EmailSettings>('/insights/email-settings'),
  });
  const update = useMutation({
    mutationFn: (changes: { workspace_frequency?: Frequency; my_frequency?: Frequency | 'default' }) =>
      api<EmailSettings>('/insights/email-settings', { method: 'PATCH', body: changes }),
    onSuccess: (data) => queryClient.setQueryData(['insights-email-settings', currentWorkspaceId()], data),
  });
  const [period, setPeriod] = useState<'week' | 'day'>('week');
  const [previewShown, setPreviewShown] = useState(false);
  const names = new Map<string, string>();
  const members = useQuery({
    queryKey: ['insights-email-people', currentWorkspaceId()],
    queryFn: async () => ({ members: await apiAll<{ user_id: string; name: string }>('/members', 'members') }),
  });
  for (const member of members.data?.members ?? []) names.set(member.user_id, member.name);

  // The email links to /settings#insights-email. The browser looks for that fragment at load, before this
  // section exists, so scroll to it once the settings are shown.
  const section = useRef<HTMLElement>(null);
  const loaded = settings.data !== undefined;
  useEffect(() => {
    if (loaded && window.location.hash === '#insights-email') section.current?.scrollIntoView({ block: 'start' });
  }, [loaded]);

  return (
    <section ref={section} className="panel" id="insights-email" aria-labelledby="insights-email-title">
      <h2 id="insights-email-title">Insights email</h2>
      <p className="muted small" style={{ marginTop: 0 }}>
        Cost and calls by tool, model and person against the period before, top sessions, new prompt versions, error and refusal rates,
        unusual days and the LLM judge's scores, with links back here. Weeks run from Monday, days from midnight, in UTC.
      </p>
      {update.error && <ErrorNotice error={update.error} />}
      <QueryView query={settings} what="The insights email">
        {(data) => (
          <div className="stack" style={{ gap: 12 }}>
            {!data.smtp_configured && (
              <p className="notice" role="status">
                This server sends no email: its operator starts it with <code>--smtp-url</code>. The preview below still shows what it would
                send.
              </p>
            )}
            <div className="row">
              <Field label="For everyone in this workspace">
                {(id) => (
                  <select
                    id={id}
                    value={data.workspace_frequency}
                    disabled={!owner || update.isPending}
                    onChange={(event) => update.mutate({ workspace_frequency: event.target.value as Frequency })}
                  >
                    {(['weekly', 'daily', 'off'] as const).map((value) => (
                      <option key={value} value={value}>
                        {FREQUENCY_LABELS[value]}
                      </option>
                    ))}
                  </select>
                )}
              </Field>
              {me.user && (
                <Field label={`For you (${data.email ?? me.user.email})`}>
                  {(id) => (
                    <select
                      id={id}
                      value={data.my_frequency ?? 'default'}
                      disabled={update.isPending}
                      onChange={(event) => update.mutate({ my_frequency: event.target.value as Frequency | 'default' })}
                    >
                      <option value="default">As the workspace ({FREQUENCY_LABELS[data.workspace_frequency].toLowerCase()})</option>
                      {(['weekly', 'daily', 'off'] as const).map((value) => (
                        <option key={value} value={value}>
                          {FREQUENCY_LABELS[value]}
                        </option>
                      ))}
                    </select>
                  )}
                </Field>
              )}
            </div>
            {!owner && <p className="muted small">Only owners change the workspace's frequency; everyone chooses their own.</p>}
            {data.workspace_frequency === 'off' && <p className="muted small">The workspace is off, so nobody gets the email.</p>}
            {data.sends.length > 0 && (
              <div className="table-scroll">
                <table className="simple">
                  <caption className="muted small" style={{ textAlign: 'left' }}>
                    Sent lately
                  </caption>
                  <thead>
                    <tr>
                      <th>Period from</th>
                      <th>Email</th>
                      <th>Person</th>
                      <th>Status</th>
                    </tr>
                  </thead>
                  <tbody>
                    {data.sends.map((send) => (
                      <tr key={`${send.user_id}-${send.frequency}-${send.period_start}`}>
                        <td>{formatTime(send.period_start)}</td>
                        <td>{send.frequency}</td>
                        <td>{names.get(send.user_id) ?? send.user_id}</td>
                        <td title={send.error ?? undefined}>
                          {send.status}
                          {send.error && <span className="muted small"> ({send.error})</span>}
                        </td>
                      </tr>
                    ))}
                  </tbody>
                </table>
              </div>
            )}
          </div>
        )}
      </QueryView>
      <div className="row" style={{ marginTop: 12, alignItems: 'flex-end' }}>
        <Field label="Preview">
          {(id) => (
            <select id={id} value={period} onChange={(event) => setPeriod(event.target.value as 'week' | 'day')}>
              <option value="week">Weekly email (last full week)</option>
              <option value="day">Daily email (yesterday)</option>
            </select>
          )}
        </Field>
        <button type="button" onClick={() => setPreviewShown(!previewShown)}>
          {previewShown ? 'Hide the preview' : 'Show the preview'}
        </button>
      </div>
      {previewShown && (
        <iframe
          title="Preview of the insights email"
          sandbox=""
          style={{ width: '100%', height: 720, marginTop: 12, border: '1px solid var(--border)', borderRadius: 8, background: '#f5f6f8' }}
          src={apiUrl('/insights/email-preview', { period, format: 'html', workspace: currentWorkspaceId() })}
        />
      )}
    </section>
  );
}
