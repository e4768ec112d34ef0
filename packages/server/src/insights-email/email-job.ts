import type { InsightsEmailFrequency, InsightsEmailSendKey, Store, Workspace } from '@tokenwise/storage';
import type { Logger } from 'pino';
import type { Mailer } from '../mail/mailer.js';
import { startPeriodicJob } from '../periodic-job.js';
import { renderInsightsEmail } from './render-email.js';
import { buildInsightsReport, type InsightsReport, isEmptyReport } from './report-data.js';
import { lastCompletePeriod, periodOfFrequency } from './report-period.js';

/** Time between two runs of the insights email job, in ms. */
export const INSIGHTS_EMAIL_INTERVAL_MS = 5 * 60_000;
/** A send claimed longer ago than this by a process that has not finished it may be taken over, in ms. */
const SEND_LEASE_MS = 30 * 60_000;
/** Attempts per email and period; a failure is tried again at the next runs until then. */
const MAX_SEND_ATTEMPTS = 3;

export interface InsightsEmailJobOptions {
  store: Store;
  /** Null when no `--smtp-url` is set: the job then sends nothing. */
  mailer: Mailer | null;
  logger: Logger;
  /** The origin the email's links point at. */
  baseUrl(): string;
  intervalMs?: number;
  clock?: () => Date;
}

export interface InsightsEmailJob {
  /** Run once now; resolves when done (failures are logged, not thrown). */
  runOnce(): Promise<void>;
  close(): Promise<void>;
}

/**
 * Start the background job that mails each member the insights of the last complete period of their frequency.
 * Every send is claimed in the store first, so each person gets one email per period even across restarts
 * and with several app processes, and the report is read only after a claim succeeded.
 */
export function startInsightsEmailJob(options: InsightsEmailJobOptions): InsightsEmailJob {
  const { store, mailer, logger } = options;
  const clock = options.clock ?? (() => new Date());

  async function run(): Promise<void> {
    if (!mailer) return;
    const now = clock();
    let workspaces: Workspace[];
    try {
      workspaces = await store.listWorkspaces();
    } catch (error) {
      logger.warn({ err: error }, 'insights email job failed to list workspaces; it runs again at the next interval');
      return;
    }
    for (const workspace of workspaces) {
      if (job.stopping) return;
      try {
        await mailWorkspace(workspace, now, mailer);
      } catch (error) {
        logger.warn(
          { err: error, workspace_id: workspace.id },
          'insights email job failed for a workspace; it runs again at the next interval',
        );
      }
    }
  }

  async function mailWorkspace(workspace: Workspace, now: Date, activeMailer: Mailer): Promise<void> {
    const settings = await store.getInsightsEmailSettings(workspace.id);
    if (settings.frequency === 'off') return;
    const preferences = new Map((await store.listInsightsEmailPreferences(workspace.id)).map((entry) => [entry.userId, entry.frequency]));
    const reports = new Map<string, Promise<InsightsReport>>();

    for (const member of await store.listMembers(workspace.id)) {
      if (job.stopping) return;
      const frequency = effectiveFrequency(settings.frequency, preferences.get(member.userId) ?? null);
      if (frequency === 'off') continue;
      const period = lastCompletePeriod(periodOfFrequency(frequency), now);
      const key: InsightsEmailSendKey = {
        workspaceId: workspace.id,
        userId: member.userId,
        frequency,
        periodStart: period.from.toISOString(),
      };
      const claimed = await store.claimInsightsEmailSend({
        ...key,
        periodEnd: period.to.toISOString(),
        now,
        leaseMs: SEND_LEASE_MS,
        maxAttempts: MAX_SEND_ATTEMPTS,
      });
      if (!claimed) continue;

      const ids = { workspace_id: workspace.id, user_id: member.userId, frequency, period_start: key.periodStart };
      try {
        let report = reports.get(frequency);
        if (!report) {
          report = buildInsightsReport(store, workspace, period);
          reports.set(frequency, report);
        }
        const built = await report;
        if (isEmptyReport(built)) {
          await store.finishInsightsEmailSend(key, { status: 'skipped', messageId: null, error: null, now: clock() });
          logger.info(ids, 'insights email skipped: no call in the period or the one before');
          continue;
        }
        const email = renderInsightsEmail(built, options.baseUrl());
        const sent = await activeMailer.send({ to: member.user.email, ...email });
        await store.finishInsightsEmailSend(key, { status: 'sent', messageId: sent.messageId, error: null, now: clock() });
        logger.info({ ...ids, message_id: sent.messageId }, 'insights email sent');
      } catch (error) {
        const message = error instanceof Error ? error.message : String(error);
        await store
          .finishInsightsEmailSend(key, { status: 'failed', messageId: null, error: message, now: clock() })
          .catch(() => undefined);
        logger.warn({ ...ids, err: error }, 'insights email failed; it is tried again at the next run');
      }
    }
  }

  // The first run comes one interval after the start, like the retention job, so a restart loop cannot
  // hammer the SMTP server.
  const job = startPeriodicJob(run, options.intervalMs ?? INSIGHTS_EMAIL_INTERVAL_MS);
  return job;
}

/** A person's own choice wins, except that a workspace set to `off` sends nobody an email. */
export function effectiveFrequency(workspace: InsightsEmailFrequency, person: InsightsEmailFrequency | null): InsightsEmailFrequency {
  if (workspace === 'off') return 'off';
  return person ?? workspace;
}
