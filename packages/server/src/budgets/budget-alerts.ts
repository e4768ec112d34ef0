import type { AlertChannel, AlertDelivery, BudgetAlert, BudgetAlertLevel, BudgetUsage, NewBudgetAlert, Store } from '@tokenwise/storage';
import type { Logger } from 'pino';
import { startPeriodicJob } from '../periodic-job.js';
import type { DeliveryResult, WebhookSender } from './alert-webhook.js';
import { describeBudget, formatUsd } from './budget-text.js';

/** The part of the server's mailer the alerts use: one email to a comma-separated list of recipients. */
export interface AlertMailer {
  send(mail: { to: string; subject: string; text: string }): Promise<unknown>;
}

export interface BudgetAlertJobOptions {
  store: Store;
  logger: Logger;
  webhook: WebhookSender;
  /** Without one (no `--smtp-url`), alerts go to the dashboard and the webhook only. */
  mailer: AlertMailer | null;
  /** Time between two runs, in ms; default 10 s. */
  intervalMs?: number;
  /** Attempts per channel before a delivery is given up; default 6. */
  maxAttempts?: number;
  /** Wait before the second attempt, in ms, doubling for each one after; default 5 s. */
  retryBaseMs?: number;
  /** The server's public origin, linked from the alert text when set. */
  publicUrl?: string;
  clock?: () => Date;
}

export interface BudgetAlertJob {
  /** Run once now (tests; the job runs every interval). Failures are logged, not thrown. */
  runOnce(): Promise<void>;
  close(): Promise<void>;
}

/** Alerts delivered per run at most; the rest wait for the next run. */
const DELIVERIES_PER_RUN = 50;
const NO_DELIVERY: AlertDelivery = { state: 'none', attempts: 0, nextAttemptAtMs: null, lastError: null };

/**
 * Start the alert job of the app process. Each run compares every budget's spend with its soft threshold
 * and its amount and records an alert per crossing, once per budget, period and level whichever app
 * process runs it. Then it delivers pending alerts by webhook and email, retrying with exponential
 * backoff. Runs hold the store lock `budget-alerts`, so two app processes never send the same alert.
 */
export function startBudgetAlertJob(options: BudgetAlertJobOptions): BudgetAlertJob {
  const { store, logger, webhook, mailer } = options;
  const clock = options.clock ?? (() => new Date());
  const maxAttempts = options.maxAttempts ?? 6;
  const retryBaseMs = options.retryBaseMs ?? 5000;
  /** Crossings already recorded (budget, period, level), so later runs skip the texts and the insert. */
  const recorded = new Set<string>();

  async function recordCrossings(now: Date): Promise<void> {
    for (const usage of await store.budgets.listBudgetUsage({ now })) {
      const { budget, spentUsd } = usage;
      const limitReached = spentUsd >= budget.amountUsd;
      const thresholdReached = budget.alertThreshold !== null && spentUsd >= budget.alertThreshold * budget.amountUsd;
      if (thresholdReached) {
        // When the limit is crossed in the same run, the soft alert is kept for the record but not sent.
        await record(usage, 'threshold', !limitReached);
      }
      if (limitReached) await record(usage, 'limit', true);
    }
  }

  async function record(usage: BudgetUsage, level: BudgetAlertLevel, deliver: boolean): Promise<void> {
    const { budget } = usage;
    const key = `${budget.id}:${usage.periodStartMs}:${level}`;
    if (recorded.has(key)) return;
    const emails = deliver && mailer ? await recipientsOf(budget.workspaceId, budget.emails) : [];
    const dueNow: AlertDelivery = { state: 'pending', attempts: 0, nextAttemptAtMs: clock().getTime(), lastError: null };
    const alert: NewBudgetAlert = {
      workspaceId: budget.workspaceId,
      budgetId: budget.id,
      budgetName: budget.name,
      periodStartMs: usage.periodStartMs,
      level,
      spentUsd: usage.spentUsd,
      amountUsd: budget.amountUsd,
      message: await alertText(usage, level),
      emails,
      webhook: deliver && budget.webhookUrl ? dueNow : NO_DELIVERY,
      email: emails.length > 0 ? dueNow : NO_DELIVERY,
    };
    const stored = await store.budgets.recordBudgetAlert(alert);
    // The set only saves work, so it is emptied rather than pruned when it grows large.
    if (recorded.size >= 10_000) recorded.clear();
    recorded.add(key);
    if (stored) {
      logger.info(
        { workspace_id: budget.workspaceId, budget_id: budget.id, level, spent_usd: usage.spentUsd, amount_usd: budget.amountUsd },
        'budget alert recorded',
      );
    }
  }

  /** Return the budget's own addresses, else the emails of the workspace's owners. */
  async function recipientsOf(workspaceId: string, emails: string[]): Promise<string[]> {
    if (emails.length > 0) return emails;
    const members = await store.listMembers(workspaceId);
    return members.filter((member) => member.role === 'owner').map((member) => member.user.email);
  }

  async function alertText(usage: BudgetUsage, level: BudgetAlertLevel): Promise<string> {
    const { budget, spentUsd } = usage;
    const workspace = await store.getWorkspace(budget.workspaceId);
    const scope = await scopeName(usage);
    const where = `in workspace "${workspace?.name ?? budget.workspaceId}"${scope ? ` (${scope})` : ''}`;
    const counted = `${formatUsd(spentUsd)} of ${formatUsd(budget.amountUsd)}, ${describeBudget(budget)}`;
    const resets = `It resets at ${new Date(usage.periodEndMs).toISOString()}.`;
    const link = options.publicUrl ? ` ${options.publicUrl}` : '';
    if (level === 'threshold') {
      const percent = Math.floor((spentUsd / budget.amountUsd) * 100);
      return `Tokenwise budget "${budget.name}" ${where} reached ${percent}%: ${counted}. ${resets}${link}`;
    }
    const consequence =
      budget.action === 'block'
        ? 'Tokenwise now refuses further calls with 429 until it resets.'
        : 'Calls still go through: this budget only alerts.';
    return `Tokenwise budget "${budget.name}" ${where} is used up: ${counted}. ${consequence} ${resets}${link}`;
  }

  async function scopeName(usage: BudgetUsage): Promise<string | null> {
    const { budget } = usage;
    if (budget.scope === 'device' && budget.scopeId) return `device ${(await store.getDevice(budget.scopeId))?.name ?? budget.scopeId}`;
    if (budget.scope === 'user' && budget.scopeId) return `person ${(await store.getUser(budget.scopeId))?.email ?? budget.scopeId}`;
    return null;
  }

  async function deliverDue(now: Date): Promise<void> {
    for (const alert of await store.budgets.listDueBudgetAlerts(now, DELIVERIES_PER_RUN)) {
      if (isDue(alert.webhook, now)) await attempt(alert, 'webhook', () => sendWebhook(alert));
      if (isDue(alert.email, now)) await attempt(alert, 'email', () => sendEmail(alert));
    }
  }

  async function sendWebhook(alert: BudgetAlert): Promise<DeliveryResult> {
    const budget = await store.budgets.getBudget(alert.workspaceId, alert.budgetId);
    if (!budget?.webhookUrl) return { ok: false, permanent: true, error: 'the budget has no webhook URL any more' };
    return webhook.send(budget.webhookUrl, alert.message);
  }

  async function sendEmail(alert: BudgetAlert): Promise<DeliveryResult> {
    if (!mailer) return { ok: false, permanent: true, error: 'the server has no SMTP server configured (--smtp-url)' };
    const subject =
      alert.level === 'threshold'
        ? `Tokenwise budget "${alert.budgetName}" reached its alert threshold`
        : `Tokenwise budget "${alert.budgetName}" is used up`;
    try {
      await mailer.send({ to: alert.emails.join(', '), subject, text: alert.message });
      return { ok: true };
    } catch (error) {
      // An SMTP 5xx reply is a permanent rejection (RFC 5321, section 4.2.1); anything else may pass later.
      const responseCode =
        (error as { cause?: { responseCode?: number } }).cause?.responseCode ?? (error as { responseCode?: number }).responseCode;
      const permanent = responseCode !== undefined && responseCode >= 500;
      return { ok: false, permanent, error: (error as Error).message.slice(0, 500) };
    }
  }

  async function attempt(alert: BudgetAlert, channel: AlertChannel, send: () => Promise<DeliveryResult>): Promise<void> {
    const previous = alert[channel];
    const result = await send();
    const attempts = previous.attempts + 1;
    let next: AlertDelivery;
    if (result.ok) {
      next = { state: 'sent', attempts, nextAttemptAtMs: null, lastError: null };
      logger.info({ alert_id: alert.id, budget_id: alert.budgetId, channel, attempts }, 'budget alert sent');
    } else if (result.permanent || attempts >= maxAttempts) {
      next = { state: 'failed', attempts, nextAttemptAtMs: null, lastError: result.error };
      logger.warn(
        { alert_id: alert.id, budget_id: alert.budgetId, channel, attempts, error: result.error },
        'budget alert not delivered; giving up',
      );
    } else {
      const delayMs = retryBaseMs * 2 ** (attempts - 1);
      next = { state: 'pending', attempts, nextAttemptAtMs: clock().getTime() + delayMs, lastError: result.error };
      logger.warn(
        { alert_id: alert.id, budget_id: alert.budgetId, channel, attempts, retry_in_ms: delayMs, error: result.error },
        'budget alert delivery failed; retrying',
      );
    }
    await store.budgets.updateBudgetAlertDelivery(alert.id, channel, next);
  }

  async function run(): Promise<void> {
    try {
      await store.withLock('budget-alerts', async () => {
        await recordCrossings(clock());
        await deliverDue(clock());
      });
    } catch (error) {
      logger.warn({ err: error }, 'budget alert job failed; it runs again at the next interval');
    }
  }

  return startPeriodicJob(run, options.intervalMs ?? 10_000);
}

function isDue(delivery: AlertDelivery, now: Date): boolean {
  return delivery.state === 'pending' && (delivery.nextAttemptAtMs ?? 0) <= now.getTime();
}
