import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Store } from '@tokenwise/storage';
import type { Logger } from 'pino';
import type { Caller, Principals } from './accounts/principal.js';
import { startInsightsEmailJob } from './insights-email/email-job.js';
import { createInsightsEmailApi } from './insights-email/insights-email-api.js';
import { createJudgeApi } from './judge/judge-api.js';
import { startJudgeJob } from './judge/judge-job.js';
import { createMailer, type MailConfig } from './mail/mailer.js';

export interface ReportsAppOptions {
  store: Store;
  principals: Principals;
  logger: Logger;
  /** `--smtp-url` and `--mail-from`; undefined sends no email. */
  mail: MailConfig | undefined;
  /** The LLM judge's provider key; undefined leaves the judge idle. */
  judgeApiKey: string | undefined;
  /** `--public-url`; without it links use the request's `Host`, and the email's links this server's address. */
  publicUrl: string | undefined;
  /** This server's own address once it listens, when it serves the proxy; null on an app-only server. */
  ownProxyUrl(): string | null;
  /** This server's own address once it listens. */
  serverUrl(): string;
  /** Runs the email and judge jobs; false on proxy-only servers. */
  runJobs: boolean;
  insightsEmailIntervalMs?: number;
  judgeIntervalMs?: number;
  /** Wall clock of the jobs and of the email preview; tests pass a fixed one. */
  clock?: () => Date;
}

/**
 * Wire the insights email and the LLM judge together for `serve`: their API routes, their background
 * jobs (on app servers only) and the SMTP transport they share with any other feature that sends email.
 */
export function createReportsApp(options: ReportsAppOptions) {
  const { store, principals } = options;
  const logger = options.logger.child({ component: 'reports' });
  const mailer = options.mail ? createMailer(options.mail) : null;
  const requestBaseUrl = (req: IncomingMessage) => options.publicUrl ?? `http://${req.headers.host ?? 'localhost'}`;

  const emailApi = createInsightsEmailApi({ store, principals, mailer, logger, baseUrl: requestBaseUrl, clock: options.clock });
  const judgeApi = createJudgeApi({ store, principals, logger, keyConfigured: options.judgeApiKey !== undefined, clock: options.clock });
  const emailJob = options.runJobs
    ? startInsightsEmailJob({
        store,
        mailer,
        logger,
        baseUrl: () => options.publicUrl ?? options.serverUrl(),
        intervalMs: options.insightsEmailIntervalMs,
        clock: options.clock,
      })
    : null;
  const judgeJob = options.runJobs
    ? startJudgeJob({
        store,
        logger,
        apiKey: options.judgeApiKey,
        proxyUrl: () => options.ownProxyUrl() ?? options.publicUrl ?? null,
        intervalMs: options.judgeIntervalMs,
        clock: options.clock,
      })
    : null;
  if (options.runJobs) {
    logger.info(
      { smtp: mailer?.server ?? null, mail_from: mailer?.from ?? null, judge_key: options.judgeApiKey !== undefined },
      mailer ? 'insights email on' : 'insights email off: no --smtp-url, so only the preview works',
    );
  }

  return {
    /** Serve the request when one of these routes matches; false when none does. */
    async endpoints(req: IncomingMessage, res: ServerResponse, url: URL, caller: Caller): Promise<boolean> {
      return (await emailApi(req, res, url, caller)) || (await judgeApi(req, res, url, caller));
    },
    runInsightsEmails: () => emailJob?.runOnce() ?? Promise.resolve(),
    runJudge: () => judgeJob?.runOnce() ?? Promise.resolve(),
    async close(): Promise<void> {
      await emailJob?.close();
      await judgeJob?.close();
      mailer?.close();
    },
  };
}
