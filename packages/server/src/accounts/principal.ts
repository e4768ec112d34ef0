import type { IncomingMessage } from 'node:http';
import type { ApiToken, Role, Store, User, Workspace } from '@tokenwise/storage';
import type { ApiTokenVerifier } from '../api-auth.js';
import { createHostCheck } from './host-check.js';
import type { SignedIn, WebAuth } from './web-auth.js';

/** The sender of an API request: a person's or the local owner's API token, or a signed-in browser. */
export type Caller = { via: 'api_token'; apiToken: ApiToken; user: User | null } | { via: 'session'; signedIn: SignedIn; user: User };

/** A caller acting in one workspace, with the role they have there. */
export interface WorkspaceScope {
  workspace: Workspace;
  role: Role;
}

export type CallerResult = { ok: true; caller: Caller } | { ok: false; status: 401 | 403 | 421; message: string };

/** Header that names the workspace a signed-in browser acts in; `?workspace=` works too. */
export const WORKSPACE_HEADER = 'x-tokenwise-workspace';
export const CSRF_HEADER = 'x-csrf-token';

/**
 * Resolve the caller of an API request and the workspace it acts in. A bearer token is checked first; a
 * session cookie counts only with a `Host` this server is known by and, for a request that changes
 * something, with the CSRF token in `x-csrf-token`.
 */
export function createPrincipals(options: { store: Store; verifier: ApiTokenVerifier; webAuth: WebAuth; publicUrl: string | undefined }) {
  const { store, verifier, webAuth } = options;
  const hostAllowed = createHostCheck(options.publicUrl);

  return {
    /** Make API tokens revoked or deleted through this process fail from the next request on. */
    forgetRevokedTokens(): void {
      verifier.invalidate();
    },

    async caller(req: IncomingMessage): Promise<CallerResult> {
      if (req.headers.authorization !== undefined) {
        const apiToken = await verifier.verify(req.headers.authorization);
        if (!apiToken) return { ok: false, status: 401, message: 'missing or invalid API token: send Authorization: Bearer <api token>' };
        if (apiToken.userId === null) return { ok: true, caller: { via: 'api_token', apiToken, user: null } };
        const user = await store.getUser(apiToken.userId);
        if (!user) return { ok: false, status: 401, message: 'the API token belongs to a deleted account: create a new one' };
        return { ok: true, caller: { via: 'api_token', apiToken, user } };
      }

      const signedIn = await webAuth.signedIn(req);
      if (!signedIn) return { ok: false, status: 401, message: 'missing or invalid API token: send Authorization: Bearer <api token>' };
      if (!hostAllowed(req.headers.host)) {
        return { ok: false, status: 421, message: `this server is not known as "${req.headers.host ?? ''}": start it with --public-url` };
      }
      const safe = req.method === 'GET' || req.method === 'HEAD' || req.method === 'OPTIONS';
      if (!safe && !webAuth.checkCsrf(req, signedIn, req.headers[CSRF_HEADER])) {
        return { ok: false, status: 403, message: `missing or wrong CSRF token: send the token of the page in ${CSRF_HEADER}` };
      }
      return { ok: true, caller: { via: 'session', signedIn, user: signedIn.user } };
    },

    /**
     * The workspace a caller acts in: the API token's own, or for a browser the one it names (header or
     * `?workspace=`), else its only workspace. `requested` (an id from the path) must match. Null when the
     * caller is no member of it, which the API rejects with 404 like an unknown id.
     */
    async workspace(caller: Caller, req: IncomingMessage, requested?: string): Promise<WorkspaceScope | null> {
      if (caller.via === 'api_token') {
        const id = caller.apiToken.workspaceId;
        if (requested !== undefined && requested !== id) return null;
        const workspace = await store.getWorkspace(id);
        if (!workspace) return null;
        if (caller.user === null) return { workspace, role: 'owner' };
        const membership = await store.getMembership(id, caller.user.id);
        return membership ? { workspace, role: membership.role } : null;
      }

      const named =
        requested ??
        headerValue(req.headers[WORKSPACE_HEADER]) ??
        new URL(req.url ?? '/', 'http://localhost').searchParams.get('workspace');
      if (named) {
        const membership = await store.getMembership(named, caller.user.id);
        const workspace = membership ? await store.getWorkspace(named) : null;
        return membership && workspace ? { workspace, role: membership.role } : null;
      }
      const memberships = await store.listMembershipsOfUser(caller.user.id);
      return memberships.length === 1 ? { workspace: memberships[0]!.workspace, role: memberships[0]!.role } : null;
    },
  };
}

export type Principals = ReturnType<typeof createPrincipals>;

function headerValue(value: string | string[] | undefined): string | undefined {
  return Array.isArray(value) ? value[0] : value;
}
