import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Store } from '@tokenwise/storage';
import type { Logger } from 'pino';
import { createApiTokenVerifier } from '../api-auth.js';
import type { DashboardFiles } from '../dashboard-files.js';
import type { RouteAuthorizer } from '../route-authorizer.js';
import { createAccountService } from './account-service.js';
import { createDeviceFlow } from './device-flow.js';
import { createPrincipals } from './principal.js';
import { startRetentionJob } from './retention.js';
import { createWebAuth } from './web-auth.js';
import { createWebUi } from './web-ui.js';
import { createWorkspaceApi } from './workspace-api.js';

export interface AccountsAppOptions {
  store: Store;
  authorizer: RouteAuthorizer;
  logger: Logger;
  /** `--public-url`; without it links use the `Host` of the request. */
  publicUrl: string | undefined;
  /** `--trust-proxy`: rate limits key on the last `X-Forwarded-For` entry instead of the socket's address. */
  trustProxy?: boolean;
  /** Runs the retention job; false on proxy-only servers. */
  runJobs: boolean;
  retentionIntervalMs?: number;
  /** The dashboard's build, served at `/` to signed-in people. */
  dashboard?: DashboardFiles;
}

/**
 * Accounts, sessions, device pairing and the pages and API around them, wired together for `serve`.
 * The server routes `matches` paths to `handle`, and gives `principals` and `moreEndpoints` to the API.
 */
export function createAccountsApp(options: AccountsAppOptions) {
  const { store, authorizer, publicUrl } = options;
  const logger = options.logger.child({ component: 'accounts' });
  const baseUrl = (req: IncomingMessage) => publicUrl ?? `http://${req.headers.host ?? 'localhost'}`;

  const accounts = createAccountService({ store, logger });
  const webAuth = createWebAuth({ store, secureCookies: publicUrl?.startsWith('https:') ?? false });
  const principals = createPrincipals({ store, verifier: createApiTokenVerifier(store), webAuth, publicUrl });
  const trustProxy = options.trustProxy ?? false;
  const deviceFlow = createDeviceFlow({ store, logger, baseUrl, trustProxy });
  const webUi = createWebUi({
    store,
    accounts,
    webAuth,
    deviceFlow,
    authorizer,
    logger,
    publicUrl,
    baseUrl,
    trustProxy,
    dashboard: options.dashboard,
  });
  const moreEndpoints = createWorkspaceApi({ store, accounts, principals, authorizer, logger, baseUrl, webAuth });
  const retention = options.runJobs ? startRetentionJob({ store, logger, intervalMs: options.retentionIntervalMs }) : null;

  return {
    accounts,
    principals,
    moreEndpoints,

    /** True for the pages and the device endpoints this serves; other `/api/` paths go to the API. */
    matches(path: string): boolean {
      return deviceFlow.matches(path) || webUi.matches(path);
    },

    handle(req: IncomingMessage, res: ServerResponse): void {
      const path = new URL(req.url ?? '/', 'http://localhost').pathname;
      if (deviceFlow.matches(path)) deviceFlow.handle(req, res, path);
      else webUi.handle(req, res);
    },

    /** Return the one-time setup link to print while no account exists, else null. */
    async setupUrl(serverUrl: string): Promise<string | null> {
      const code = await accounts.prepareSetupCode();
      return code === null ? null : `${publicUrl ?? serverUrl}/setup?code=${code}`;
    },

    runRetention: () => retention?.runOnce() ?? Promise.resolve(),

    async close(): Promise<void> {
      await retention?.close();
    },
  };
}

export type AccountsApp = ReturnType<typeof createAccountsApp>;
