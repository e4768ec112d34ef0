import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Store } from '@tokenwise/storage';
import type { Logger } from 'pino';
import type { Caller, Principals } from '../accounts/principal.js';
import { createMailer, type MailConfig } from '../mail/mailer.js';
import { createWebhookSender } from './alert-webhook.js';
import { type BudgetAlertJob, startBudgetAlertJob } from './budget-alerts.js';
import { createBudgetApi } from './budget-api.js';

/** Intervals of the budget machinery, for tests; every one has a default for production. */
export interface BudgetTimings {
  /** Reload of budgets and renewal of leases in each proxy process, in ms; default 1 s. */
  refreshIntervalMs?: number;
  /** Store-side expiry of a lease a process stops renewing, in ms; default 15 s. */
  leaseTtlMs?: number;
  /** Wait of a call for its process's first share of a budget, in ms; default 2 s. */
  leaseWaitMs?: number;
  /** Run interval of the alert job, in ms; default 10 s. */
  alertIntervalMs?: number;
  /** First retry delay of an alert delivery, in ms, doubling after; default 5 s. */
  alertRetryBaseMs?: number;
  /** Delivery attempts per channel; default 6. */
  alertMaxAttempts?: number;
}

export interface BudgetsAppOptions {
  store: Store;
  principals: Principals;
  logger: Logger;
  /** Runs the alert job; false on proxy-only servers. */
  runJobs: boolean;
  /** `--smtp-url` and `--mail-from`; without them alerts go to the dashboard and webhooks only. */
  mail: MailConfig | undefined;
  allowPrivateWebhooks: boolean;
  publicUrl: string | undefined;
  timings?: BudgetTimings;
  /** Called after a budget changed through the API (the proxy of this process reloads). */
  onBudgetsChanged?: () => Promise<void>;
}

/**
 * Create the budget API and the alert job, wired for `serve`. The proxy's enforcement (`createBudgetGate`) is
 * wired separately, because proxy-only servers run it without these.
 */
export function createBudgetsApp(options: BudgetsAppOptions) {
  const logger = options.logger.child({ component: 'budgets' });
  const timings = options.timings ?? {};
  const api = createBudgetApi({
    store: options.store,
    principals: options.principals,
    logger,
    allowPrivateWebhooks: options.allowPrivateWebhooks,
    onBudgetsChanged: options.onBudgetsChanged,
  });

  let job: BudgetAlertJob | null = null;
  let closeSenders = async () => {};
  if (options.runJobs) {
    const webhook = createWebhookSender({ allowPrivate: options.allowPrivateWebhooks });
    const mailer = options.mail ? createMailer(options.mail) : null;
    job = startBudgetAlertJob({
      store: options.store,
      logger,
      webhook,
      mailer,
      intervalMs: timings.alertIntervalMs,
      retryBaseMs: timings.alertRetryBaseMs,
      maxAttempts: timings.alertMaxAttempts,
      publicUrl: options.publicUrl,
    });
    closeSenders = async () => {
      mailer?.close();
      await webhook.close();
    };
  }

  return {
    /** Serve a budget route; false when the path is not one. */
    endpoints: (req: IncomingMessage, res: ServerResponse, url: URL, caller: Caller): Promise<boolean> => api(req, res, url, caller),
    /** Run the alert job now (tests; it runs every `alertIntervalMs`). */
    runAlerts: () => job?.runOnce() ?? Promise.resolve(),
    async close(): Promise<void> {
      await job?.close();
      await closeSenders();
    },
  };
}

export type BudgetsApp = ReturnType<typeof createBudgetsApp>;
