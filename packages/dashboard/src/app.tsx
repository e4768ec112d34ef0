import { useMutation, useQuery, useQueryClient } from '@tanstack/react-query';
import { useEffect, useMemo, useState } from 'react';
import { Link, Route, Switch, useLocation } from 'wouter';
import { api, currentWorkspaceId, setCurrentWorkspaceId } from './api/client.js';
import type { Me } from './api/types.js';
import { useWorkspace, WorkspaceContext, type WorkspaceContextValue } from './api/workspace-context.js';
import { ErrorNotice, Field } from './components/common.js';
import { ThemeSwitch } from './components/theme-switch.js';
import { BudgetsPage } from './pages/budgets.js';
import { CallDetailPage } from './pages/call-detail.js';
import { CallsPage } from './pages/calls.js';
import { DevicesPage } from './pages/devices.js';
import { OverviewPage } from './pages/overview.js';
import { PromptGroupPage } from './pages/prompt-group.js';
import { PromptsPage } from './pages/prompts.js';
import { SessionDetailPage } from './pages/session-detail.js';
import { SessionsPage } from './pages/sessions.js';
import { SettingsPage } from './pages/settings.js';

const NAV = [
  { href: '/', label: 'Overview' },
  { href: '/calls', label: 'Calls' },
  { href: '/sessions', label: 'Sessions' },
  { href: '/prompts', label: 'Prompts' },
  { href: '/devices', label: 'Devices' },
  { href: '/budgets', label: 'Budgets' },
  { href: '/settings', label: 'Settings' },
];

export function App() {
  const me = useQuery({ queryKey: ['me'], queryFn: () => api<Me>('/me', { withoutWorkspace: true }) });
  const queryClient = useQueryClient();
  const [workspaceId, setWorkspaceId] = useState(currentWorkspaceId());

  const context = useMemo((): WorkspaceContextValue | null => {
    if (!me.data || me.data.workspaces.length === 0) return null;
    const workspace = me.data.workspaces.find((item) => item.id === workspaceId) ?? me.data.workspaces[0]!;
    return {
      me: me.data,
      workspace,
      switchWorkspace(id) {
        setCurrentWorkspaceId(id);
        setWorkspaceId(id);
        queryClient.removeQueries({ predicate: (query) => query.queryKey[0] !== 'me' });
      },
    };
  }, [me.data, workspaceId, queryClient]);

  // Requests name the workspace in a header; keep the client's choice in step with the one shown.
  useEffect(() => {
    if (context && currentWorkspaceId() !== context.workspace.id) setCurrentWorkspaceId(context.workspace.id);
  }, [context]);

  if (me.isPending) return <p className="main muted">Loading…</p>;
  if (me.isError) {
    return (
      <main className="main">
        <ErrorNotice error={me.error} />
      </main>
    );
  }
  if (!context) {
    return (
      <main className="main">
        <h1>No workspace</h1>
        <p>This account belongs to no workspace. Create one, or ask an owner of another workspace for an invite link.</p>
        <CreateFirstWorkspace onCreated={(id) => setWorkspaceId(id)} />
        <SignOut />
      </main>
    );
  }

  return (
    <WorkspaceContext.Provider value={context}>
      <Shell key={context.workspace.id} />
    </WorkspaceContext.Provider>
  );
}

/** The form of an account left without a workspace (its last one was deleted): it may create a new one. */
function CreateFirstWorkspace({ onCreated }: { onCreated: (id: string) => void }) {
  const queryClient = useQueryClient();
  const [name, setName] = useState('');
  const create = useMutation({
    mutationFn: () =>
      api<{ workspace: { id: string } }>('/workspaces', { method: 'POST', body: { name: name.trim() }, withoutWorkspace: true }),
    onSuccess: async (result) => {
      setCurrentWorkspaceId(result.workspace.id);
      onCreated(result.workspace.id);
      await queryClient.invalidateQueries({ queryKey: ['me'] });
    },
  });
  return (
    <form
      className="row"
      onSubmit={(event) => {
        event.preventDefault();
        create.mutate();
      }}
    >
      <Field label="Workspace name">
        {(id) => <input id={id} value={name} onChange={(event) => setName(event.target.value)} required maxLength={100} />}
      </Field>
      <button type="submit" style={{ alignSelf: 'flex-end' }} disabled={create.isPending}>
        Create a workspace
      </button>
      {create.error && <ErrorNotice error={create.error} />}
    </form>
  );
}

function Shell() {
  return (
    <div className="shell">
      <a className="skip-link" href="#main">
        Skip to content
      </a>
      <Sidebar />
      <main className="main" id="main">
        <Switch>
          <Route path="/" component={OverviewPage} />
          <Route path="/calls" component={CallsPage} />
          <Route path="/calls/:id">{(params) => <CallDetailPage id={params.id} />}</Route>
          <Route path="/sessions" component={SessionsPage} />
          <Route path="/sessions/:id">{(params) => <SessionDetailPage id={params.id} />}</Route>
          <Route path="/prompts" component={PromptsPage} />
          <Route path="/prompts/:id">{(params) => <PromptGroupPage id={params.id} />}</Route>
          <Route path="/devices" component={DevicesPage} />
          <Route path="/budgets" component={BudgetsPage} />
          <Route path="/settings" component={SettingsPage} />
          <Route>
            <h1>Page not found</h1>
            <p>
              <Link href="/">Go to the overview</Link>
            </p>
          </Route>
        </Switch>
      </main>
    </div>
  );
}

function Sidebar() {
  const [location] = useLocation();
  const { me, workspace, switchWorkspace } = useWorkspace();
  const active = (href: string) => (href === '/' ? location === '/' : location === href || location.startsWith(`${href}/`));

  return (
    <header className="sidebar">
      <div className="brand">
        <span className="brand-mark" aria-hidden="true">
          T
        </span>
        Tokenwise
      </div>
      <nav className="nav" aria-label="Main">
        {NAV.map((item) => (
          <Link key={item.href} href={item.href} aria-current={active(item.href) ? 'page' : undefined}>
            {item.label}
          </Link>
        ))}
      </nav>
      <div className="sidebar-foot">
        {me.workspaces.length > 1 ? (
          <Field label="Workspace">
            {(id) => (
              <select id={id} value={workspace.id} onChange={(event) => switchWorkspace(event.target.value)}>
                {me.workspaces.map((item) => (
                  <option key={item.id} value={item.id}>
                    {item.name}
                  </option>
                ))}
              </select>
            )}
          </Field>
        ) : (
          <span className="who" title="Workspace">
            {workspace.name}
          </span>
        )}
        <ThemeSwitch />
        {me.user && (
          <span className="who small" title={me.user.email}>
            {me.user.name}
          </span>
        )}
        <SignOut />
      </div>
    </header>
  );
}

/** Sign-out is the server's form, so it works like every other page of the server (CSRF field, redirect). */
function SignOut() {
  const token = document.querySelector<HTMLMetaElement>('meta[name="csrf-token"]')?.content ?? '';
  return (
    <form method="post" action="/logout">
      <input type="hidden" name="csrf_token" value={token} />
      <button type="submit">Sign out</button>
    </form>
  );
}
