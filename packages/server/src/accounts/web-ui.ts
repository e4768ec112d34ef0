import type { IncomingMessage, ServerResponse } from 'node:http';
import { TokenwiseError } from '@tokenwise/core';
import type { DeviceCode, Invite, MembershipWithWorkspace, Store, User } from '@tokenwise/storage';
import type { Logger } from 'pino';
import { sendApiError } from '../api-responses.js';
import { type DashboardFiles, isDashboardPath, isReservedPath, wantsAppPage, withoutTrailingSlash } from '../dashboard-files.js';
import type { RouteAuthorizer } from '../route-authorizer.js';
import type { AccountService } from './account-service.js';
import { clientAddress } from './client-address.js';
import type { DeviceFlow } from './device-flow.js';
import { createHostCheck, originMatchesHost } from './host-check.js';
import { MIN_PASSWORD_LENGTH } from './passwords.js';
import { readFields, stringField } from './request-body.js';
import { formatUserCode } from './secrets.js';
import type { SignedIn, WebAuth } from './web-auth.js';
import { csrfField, errorBox, type Html, html, redirect, sendPage } from './web-pages.js';

export interface WebUiOptions {
  store: Store;
  accounts: AccountService;
  webAuth: WebAuth;
  deviceFlow: DeviceFlow;
  authorizer: RouteAuthorizer;
  logger: Logger;
  publicUrl: string | undefined;
  /** The origin this server is reached at, for the commands the pages show. */
  baseUrl(req: IncomingMessage): string;
  /** Take the client address of the sign-in limit from `X-Forwarded-For`; see `clientAddress`. */
  trustProxy?: boolean;
  /** The dashboard's build; when available it replaces the plain home page at `/` and serves its own routes. */
  dashboard?: DashboardFiles;
}

const PAGES = new Set([
  '/',
  '/setup',
  '/login',
  '/logout',
  '/device',
  '/invite',
  '/reset-password',
  '/workspaces/privacy',
  '/devices/revoke',
]);

interface Request {
  req: IncomingMessage;
  res: ServerResponse;
  url: URL;
  signedIn: SignedIn | null;
  /** Fields of a POST, after the CSRF check; empty for GET. */
  fields: Record<string, unknown>;
  csrf: string;
}

/**
 * The browser pages: one-time setup of the owner account, sign-in, device approval (`/device`), invites,
 * password resets, and a home page with the person's workspaces and devices. Plain HTML forms, each POST
 * checked for its CSRF token and `Origin`; every page checks `Host` against the names this server is known
 * by. Until the owner account exists, every page but `/setup` only explains how to set up.
 */
export function createWebUi(options: WebUiOptions) {
  const { store, accounts, webAuth, deviceFlow, authorizer, logger } = options;
  const hostAllowed = createHostCheck(options.publicUrl);

  async function handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const url = new URL(req.url ?? '/', 'http://localhost');
    const appFallback = !PAGES.has(url.pathname) && !isDashboardPath(url.pathname);
    if (appFallback && !wantsAppPage(req, url.pathname)) {
      sendApiError(
        res,
        404,
        'not_found',
        `nothing at ${url.pathname}: the proxy is under /r/{route-token}/{route}/, the API under /api/v1/`,
      );
      return;
    }
    if (!hostAllowed(req.headers.host)) {
      const message = `This server is not known as "${req.headers.host ?? ''}". Open it by its IP address or localhost, or start tokenwise serve with --public-url set to the address you use.`;
      sendPage(res, 421, 'Unknown host', html`<h1>Unknown host</h1><p>${message}</p>`);
      return;
    }
    if (req.method !== 'GET' && req.method !== 'HEAD' && req.method !== 'POST') {
      res.setHeader('allow', 'GET, HEAD, POST');
      sendPage(res, 405, 'Method not allowed', html`<h1>Method not allowed</h1>`);
      return;
    }

    const signedIn = await webAuth.signedIn(req);
    let fields: Record<string, unknown> = {};
    if (req.method === 'POST') {
      fields = await readFields(req);
      if (!originMatchesHost(header(req.headers.origin), req.headers.host) || !webAuth.checkCsrf(req, signedIn, fields.csrf_token)) {
        logger.info({ path: url.pathname }, 'form rejected: missing or wrong CSRF token or origin');
        sendPage(res, 403, 'Form expired', html`<h1>This form expired</h1><p>Go back, reload the page and try again.</p>`);
        return;
      }
    }
    const request: Request = { req, res, url, signedIn, fields, csrf: webAuth.csrfToken(req, res, signedIn) };

    if (url.pathname === '/setup') return setup(request);
    if (await accounts.needsSetup()) {
      sendPage(
        res,
        503,
        'Set up Tokenwise',
        html`<h1>Tokenwise is not set up yet</h1><p>Open the setup link that <code>tokenwise serve</code> printed when it started. Restart it for a new link.</p>`,
      );
      return;
    }

    switch (url.pathname) {
      case '/':
        return home(request);
      case '/login':
        return login(request);
      case '/logout':
        return logout(request);
      case '/device':
        return device(request);
      case '/invite':
        return invite(request);
      case '/reset-password':
        return resetPassword(request);
      case '/workspaces/privacy':
        return setPrivacy(request);
      case '/devices/revoke':
        return revokeDevice(request);
      default: {
        const canonical = withoutTrailingSlash(url.pathname);
        if (canonical !== null) {
          redirect(res, canonical + url.search);
          return;
        }
        // Every other browser path gets the app, which shows its own "Page not found" for paths it lacks.
        if (isDashboardPath(url.pathname) || appFallback) return home(request);
      }
    }
  }

  function requireSignIn(request: Request): SignedIn | null {
    if (request.signedIn) return request.signedIn;
    redirect(request.res, `/login?next=${encodeURIComponent(request.url.pathname + request.url.search)}`);
    return null;
  }

  async function setup(request: Request): Promise<void> {
    const { res, url, fields } = request;
    if (!(await accounts.needsSetup())) {
      redirect(res, '/login');
      return;
    }
    const code = stringField(fields, 'code') ?? url.searchParams.get('code') ?? '';
    if (!(await accounts.checkSetupCode(code))) {
      sendPage(
        res,
        403,
        'Set up Tokenwise',
        html`<h1>This setup link is not valid</h1><p>Use the newest link <code>tokenwise serve</code> printed; each start replaces it.</p>`,
      );
      return;
    }

    let error: string | null = null;
    if (request.req.method === 'POST') {
      try {
        const user = await accounts.completeSetup(code, accountFields(fields));
        await webAuth.signIn(request.req, res, user);
        redirect(res, '/');
        return;
      } catch (failure) {
        error = clientMessage(failure);
      }
    }
    sendPage(
      res,
      error ? 400 : 200,
      'Set up Tokenwise',
      html`<h1>Create the owner account</h1>
        <p class="note">This account owns the local workspace and every call recorded so far.</p>
        ${errorBox(error)}
        <form method="post" action="/setup">
          ${csrfField(request.csrf)}<input type="hidden" name="code" value="${code}">
          ${accountInputs(fields)}
          <button type="submit">Create account</button>
        </form>`,
    );
  }

  async function login(request: Request): Promise<void> {
    const { req, res, url, fields } = request;
    const next = safeNext(stringField(fields, 'next') ?? url.searchParams.get('next'));
    if (request.signedIn && req.method !== 'POST') {
      redirect(res, next);
      return;
    }

    let error: string | null = null;
    let status = 200;
    if (req.method === 'POST') {
      const email = stringField(fields, 'email') ?? '';
      const result = await accounts.signIn(
        email,
        stringField(fields, 'password', true) ?? '',
        clientAddress(req, options.trustProxy ?? false),
      );
      if (result.ok) {
        await webAuth.signIn(req, res, result.user);
        redirect(res, next);
        return;
      }
      // The same response for an unknown email and a wrong password, so the form does not reveal who has an account.
      status = result.retryAfterS > 0 ? 429 : 401;
      error =
        result.retryAfterS > 0
          ? `Too many failed sign-ins. Try again in ${Math.ceil(result.retryAfterS / 60)} minutes.`
          : 'Wrong email or password.';
      if (result.retryAfterS > 0) res.setHeader('retry-after', String(result.retryAfterS));
    }
    sendPage(
      res,
      status,
      'Sign in',
      html`<h1>Sign in to Tokenwise</h1>${errorBox(error)}
        <form method="post" action="/login">
          ${csrfField(request.csrf)}<input type="hidden" name="next" value="${next}">
          <label for="email">Email</label><input id="email" type="email" name="email" autocomplete="username" required value="${stringField(fields, 'email') ?? ''}">
          <label for="password">Password</label><input id="password" type="password" name="password" autocomplete="current-password" required>
          <button type="submit">Sign in</button>
        </form>
        <p class="note">Forgot your password? Ask an owner of your workspace for a reset link.</p>`,
    );
  }

  async function logout(request: Request): Promise<void> {
    if (request.req.method === 'POST') await webAuth.signOut(request.req, request.res);
    redirect(request.res, '/login');
  }

  async function home(request: Request): Promise<void> {
    const signedIn = requireSignIn(request);
    if (!signedIn) return;
    if (options.dashboard?.available) {
      options.dashboard.sendIndex(request.req, request.res, request.csrf);
      return;
    }
    const memberships = await store.listMembershipsOfUser(signedIn.user.id);
    const sections: Html[] = [];
    for (const membership of memberships) sections.push(await workspaceSection(request, membership));
    sendPage(
      request.res,
      200,
      'Tokenwise',
      html`<header><h1>Tokenwise</h1>
        <form class="inline" method="post" action="/logout">${csrfField(request.csrf)}<button type="submit">Sign out</button></form></header>
        <p>Signed in as ${signedIn.user.name} (${signedIn.user.email}).</p>
        <p class="note">Pair a machine: run <code>npx tokenwise connect --server ${options.baseUrl(request.req)}</code> on it.</p>
        ${sections}
        <meta name="csrf-token" content="${request.csrf}">`,
    );
  }

  async function workspaceSection(request: Request, membership: MembershipWithWorkspace): Promise<Html> {
    const { workspace, role } = membership;
    const devices = await store.listDevices(workspace.id);
    const canManage = (deviceUserId: string | null) => role === 'owner' || deviceUserId === request.signedIn?.user.id;
    const rows = devices.map(
      (device) => html`<tr><td>${device.name}</td><td>${device.os ?? ''}</td><td>${device.lastSeenAt ?? 'never'}</td>
        <td>${
          device.revokedAt
            ? 'revoked'
            : canManage(device.userId)
              ? html`<form class="inline" method="post" action="/devices/revoke">${csrfField(request.csrf)}
                  <input type="hidden" name="device_id" value="${device.id}"><button type="submit">Revoke</button></form>`
              : 'active'
        }</td></tr>`,
    );
    const privacy = !workspace.keepBodies;
    return html`<h2>${workspace.name} <span class="note">(${role})</span></h2>
      <p>Privacy mode is <strong>${privacy ? 'on' : 'off'}</strong>: ${
        privacy
          ? 'request and response bodies are not stored.'
          : `bodies are stored${workspace.bodyRetentionDays ? ` for ${workspace.bodyRetentionDays} days` : ''}, with secrets masked.`
      }
      ${
        role === 'owner'
          ? html`<form class="inline" method="post" action="/workspaces/privacy">${csrfField(request.csrf)}
              <input type="hidden" name="workspace_id" value="${workspace.id}"><input type="hidden" name="privacy_mode" value="${privacy ? 'off' : 'on'}">
              <button type="submit">Turn privacy mode ${privacy ? 'off' : 'on'}</button></form>`
          : ''
      }</p>
      <table><thead><tr><th>Device</th><th>OS</th><th>Last seen</th><th></th></tr></thead><tbody>${rows}</tbody></table>`;
  }

  async function setPrivacy(request: Request): Promise<void> {
    const signedIn = requireSignIn(request);
    if (!signedIn || request.req.method !== 'POST') return notFound(request);
    const workspaceId = stringField(request.fields, 'workspace_id') ?? '';
    const membership = await store.getMembership(workspaceId, signedIn.user.id);
    if (membership?.role !== 'owner') return notFound(request);
    await store.updateWorkspace(workspaceId, { keepBodies: stringField(request.fields, 'privacy_mode') !== 'on' });
    authorizer.forget({ workspaceId });
    logger.info({ workspace_id: workspaceId, user_id: signedIn.user.id }, 'workspace privacy mode changed');
    redirect(request.res, '/');
  }

  async function revokeDevice(request: Request): Promise<void> {
    const signedIn = requireSignIn(request);
    if (!signedIn || request.req.method !== 'POST') return notFound(request);
    const device = await store.getDevice(stringField(request.fields, 'device_id') ?? '');
    const membership = device ? await store.getMembership(device.workspaceId, signedIn.user.id) : null;
    if (!device || !membership || (membership.role !== 'owner' && device.userId !== signedIn.user.id)) return notFound(request);
    await authorizer.revokeDevice(device.id);
    logger.info({ device_id: device.id, workspace_id: device.workspaceId, user_id: signedIn.user.id }, 'device revoked');
    redirect(request.res, '/');
  }

  async function device(request: Request): Promise<void> {
    const signedIn = requireSignIn(request);
    if (!signedIn) return;
    const { req, res, url, fields } = request;
    const typed = stringField(fields, 'user_code') ?? url.searchParams.get('user_code') ?? '';
    const code = typed === '' ? null : await deviceFlow.findPending(typed);
    const memberships = await store.listMembershipsOfUser(signedIn.user.id);

    if (req.method === 'POST' && code && (fields.action === 'approve' || fields.action === 'deny')) {
      const error = await decideDevice(signedIn.user, code, memberships, fields);
      if (error === null) {
        const approved = fields.action === 'approve';
        sendPage(
          res,
          200,
          approved ? 'Device approved' : 'Device denied',
          approved
            ? html`<h1>Device approved</h1><p>${code.deviceName} is paired. Return to its terminal: connect finishes there.</p>`
            : html`<h1>Device denied</h1><p>${code.deviceName} gets no access. You can close this page.</p>`,
        );
        return;
      }
      return devicePage(request, code, memberships, error);
    }
    const error =
      typed !== '' && !code ? 'This code is unknown, was used already or has expired. Start pairing again on the device.' : null;
    return devicePage(request, code, memberships, error);
  }

  async function decideDevice(
    user: User,
    code: DeviceCode,
    memberships: MembershipWithWorkspace[],
    fields: Record<string, unknown>,
  ): Promise<string | null> {
    if (fields.action === 'deny') {
      return (await deviceFlow.decide(code, user, { approve: false })) ? null : 'This code was decided already or has expired.';
    }
    const membership = memberships.find((item) => item.workspaceId === stringField(fields, 'workspace_id'));
    if (!membership) return 'Pick one of your workspaces for this device.';
    return (await deviceFlow.decide(code, user, { approve: true, workspace: membership.workspace }))
      ? null
      : 'This code was decided already or has expired. Start pairing again on the device.';
  }

  function devicePage(request: Request, code: DeviceCode | null, memberships: MembershipWithWorkspace[], error: string | null): void {
    const form = code
      ? html`<p>A device asks to send its AI tools' calls through Tokenwise. Check that the code matches the one in its terminal.</p>
        <p class="code">${formatUserCode(code.userCode)}</p>
        <table><tr><th>Device</th><td>${code.deviceName}</td></tr><tr><th>OS</th><td>${code.os ?? 'unknown'}</td></tr>
        <tr><th>Requested</th><td>${formatRequestTime(code.createdAt, new Date())}</td></tr></table>
        <form method="post" action="/device">${csrfField(request.csrf)}<input type="hidden" name="user_code" value="${code.userCode}">
          <label for="workspace">Workspace</label>
          <select id="workspace" name="workspace_id">${memberships.map(
            (membership) => html`<option value="${membership.workspaceId}">${membership.workspace.name}</option>`,
          )}</select>
          <button type="submit" name="action" value="approve">Approve</button>
          <button type="submit" name="action" value="deny">Deny</button>
        </form>`
      : html`<form method="get" action="/device">
          <label for="user_code">Code shown on the device</label>
          <input id="user_code" type="text" name="user_code" autocomplete="off" placeholder="BCDF-GHJK" required>
          <button type="submit">Continue</button></form>`;
    sendPage(request.res, error ? 400 : 200, 'Pair a device', html`<h1>Pair a device</h1>${errorBox(error)}${form}`);
  }

  async function invite(request: Request): Promise<void> {
    const { req, res, url, fields, signedIn } = request;
    const token = stringField(fields, 'token') ?? url.searchParams.get('token') ?? '';
    const open = token === '' ? null : await accounts.findOpenInvite(token);
    if (!open) {
      sendPage(res, 404, 'Invite', html`<h1>This invite is not valid</h1><p>It was used, revoked or has expired. Ask for a new one.</p>`);
      return;
    }
    const workspace = open.workspaceId === null ? null : await store.getWorkspace(open.workspaceId);
    const target = workspace ? `join the workspace "${workspace.name}" as ${open.role}` : 'get a workspace of your own';

    let error: string | null = null;
    if (req.method === 'POST') {
      try {
        if (signedIn) {
          await accounts.acceptInvite(open, signedIn.user);
        } else {
          const { user } = await accounts.registerWithInvite(open, accountFields(fields));
          await webAuth.signIn(req, res, user);
        }
        redirect(res, '/');
        return;
      } catch (failure) {
        error = clientMessage(failure);
      }
    }
    sendPage(res, error ? 400 : 200, 'Invite', inviteBody(request, open, token, target, error));
  }

  function inviteBody(request: Request, open: Invite, token: string, target: string, error: string | null): Html {
    if (request.signedIn) {
      return html`<h1>Invite</h1><p>You are invited to ${target}.</p>${errorBox(error)}
        <form method="post" action="/invite">${csrfField(request.csrf)}<input type="hidden" name="token" value="${token}">
        <button type="submit">Accept as ${request.signedIn.user.email}</button></form>`;
    }
    return html`<h1>Invite</h1><p>You are invited to ${target}. Create your account:</p>${errorBox(error)}
      <form method="post" action="/invite">${csrfField(request.csrf)}<input type="hidden" name="token" value="${token}">
        ${accountInputs(request.fields, open.email)}
        <button type="submit">Create account</button></form>
      <p class="note">Have an account? <a href="/login?next=${encodeURIComponent(`/invite?token=${token}`)}">Sign in</a> to accept with it.</p>`;
  }

  async function resetPassword(request: Request): Promise<void> {
    const { req, res, url, fields } = request;
    const token = stringField(fields, 'token') ?? url.searchParams.get('token') ?? '';
    const reset = token === '' ? null : await accounts.findOpenReset(token);
    if (!reset) {
      sendPage(
        res,
        404,
        'Reset password',
        html`<h1>This reset link is not valid</h1><p>It was used or has expired. Ask for a new one.</p>`,
      );
      return;
    }
    const account = await store.getUser(reset.userId);
    let error: string | null = null;
    if (req.method === 'POST') {
      try {
        const password = stringField(fields, 'password', true) ?? '';
        if (password !== stringField(fields, 'password_repeat', true))
          throw new TokenwiseError('invalid_argument', 'the two passwords differ');
        const user = await accounts.resetPassword(reset, password);
        await webAuth.signIn(req, res, user);
        redirect(res, '/');
        return;
      } catch (failure) {
        error = clientMessage(failure);
      }
    }
    sendPage(
      res,
      error ? 400 : 200,
      'Reset password',
      html`<h1>Set a new password</h1>${account ? html`<p>For ${account.name} (${account.email}).</p>` : html``}${errorBox(error)}
        <form method="post" action="/reset-password">${csrfField(request.csrf)}<input type="hidden" name="token" value="${token}">${
          account ? html`<input type="hidden" name="username" autocomplete="username" value="${account.email}">` : html``
        }
          <label for="password">New password (at least ${MIN_PASSWORD_LENGTH} characters)</label><input id="password" type="password" name="password" autocomplete="new-password" minlength="${MIN_PASSWORD_LENGTH}" required>
          <label for="password_repeat">Repeat it</label><input id="password_repeat" type="password" name="password_repeat" autocomplete="new-password" required>
          <button type="submit">Set password</button></form>
        <p class="note">Setting the password signs this account out of every other browser.</p>`,
    );
  }

  function notFound(request: Request): void {
    sendPage(request.res, 404, 'Not found', html`<h1>Not found</h1><p><a href="/">Home</a></p>`);
  }

  return {
    matches(path: string): boolean {
      // With the dashboard built, every path that is not reserved comes here, and `handle` answers the ones
      // that are not a browser's page request with the JSON 404 the rest of the server uses.
      return PAGES.has(path) || (options.dashboard?.available === true && !isReservedPath(path));
    },
    handle(req: IncomingMessage, res: ServerResponse): void {
      handle(req, res).catch((error: unknown) => {
        if (error instanceof TokenwiseError && error.code === 'invalid_argument') {
          if (!res.headersSent) sendPage(res, 400, 'Invalid request', html`<h1>Invalid request</h1>${errorBox(error.message)}`);
          return;
        }
        logger.error({ err: error, path: new URL(req.url ?? '/', 'http://localhost').pathname }, 'page request failed');
        if (res.headersSent) res.destroy();
        else sendPage(res, 500, 'Server error', html`<h1>Something failed</h1><p>Details are in the server log.</p>`);
      });
    },
  };
}

function accountInputs(fields: Record<string, unknown>, fixedEmail: string | null = null): Html {
  const email = fixedEmail ?? (typeof fields.email === 'string' ? fields.email : '');
  const name = typeof fields.name === 'string' ? fields.name : '';
  return html`<label for="email">Email</label><input id="email" type="email" name="email" autocomplete="username" required value="${email}"${
    fixedEmail ? html` readonly` : ''
  }>
    <label for="name">Name</label><input id="name" type="text" name="name" autocomplete="name" required value="${name}">
    <label for="password">Password (at least 10 characters)</label><input id="password" type="password" name="password" autocomplete="new-password" required>
    <label for="password_repeat">Repeat the password</label><input id="password_repeat" type="password" name="password_repeat" autocomplete="new-password" required>`;
}

function accountFields(fields: Record<string, unknown>) {
  const password = stringField(fields, 'password', true) ?? '';
  if (password !== (stringField(fields, 'password_repeat', true) ?? ''))
    throw new TokenwiseError('invalid_argument', 'the two passwords differ');
  return { email: stringField(fields, 'email') ?? '', name: stringField(fields, 'name') ?? '', password };
}

/** Return the local path to continue at after sign-in; anything else (another host, `//evil`) becomes `/`. */
/**
 * Format a time for a server-rendered page, which cannot know the browser's time zone: UTC, with how long
 * ago it was, such as "Dec 5, 01:21:56 UTC (2 min ago)".
 */
export function formatRequestTime(iso: string, now: Date): string {
  const date = new Date(iso);
  if (Number.isNaN(date.getTime())) return iso;
  const text = date.toLocaleString('en-US', {
    timeZone: 'UTC',
    month: 'short',
    day: 'numeric',
    hour: '2-digit',
    minute: '2-digit',
    second: '2-digit',
    hourCycle: 'h23',
  });
  const seconds = Math.max(0, Math.round((now.getTime() - date.getTime()) / 1000));
  const ago = seconds < 60 ? 'just now' : seconds < 3600 ? `${Math.floor(seconds / 60)} min ago` : `${Math.floor(seconds / 3600)} h ago`;
  return `${text} UTC (${ago})`;
}

function safeNext(next: string | null | undefined): string {
  if (!next?.startsWith('/') || next.startsWith('//') || next.startsWith('/\\')) return '/';
  return next;
}

function clientMessage(error: unknown): string {
  if (error instanceof TokenwiseError && error.code === 'invalid_argument') return capitalize(error.message);
  throw error;
}

function capitalize(text: string): string {
  return text.charAt(0).toUpperCase() + text.slice(1);
}

function header(value: string | string[] | undefined): string | undefined {
  return Array.isArray(value) ? value[0] : value;
}
