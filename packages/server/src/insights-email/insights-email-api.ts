import type { IncomingMessage } from 'node:http';
import { TokenwiseError } from '@tokenwise/core';
import {
  INSIGHTS_EMAIL_FREQUENCIES,
  type InsightsEmailFrequency,
  type InsightsEmailSend,
  type Store,
  type Workspace,
} from '@tokenwise/storage';
import type { Logger } from 'pino';
import type { Principals } from '../accounts/principal.js';
import { readFields } from '../accounts/request-body.js';
import { sendApiError, sendJson } from '../api-responses.js';
import type { Mailer } from '../mail/mailer.js';
import { exactPathRoutes, type WorkspaceRoute, type WorkspaceRouteContext } from '../workspace-routes.js';
import { effectiveFrequency } from './email-job.js';
import { type RenderedEmail, renderInsightsEmail } from './render-email.js';
import { buildInsightsReport, type InsightsReport } from './report-data.js';
import { lastCompletePeriod, parsePeriodKind, type ReportPeriodKind } from './report-period.js';

export interface InsightsEmailApiOptions {
  store: Store;
  principals: Principals;
  /** Null when the server sends no email (no `--smtp-url`); the preview still works. */
  mailer: Mailer | null;
  logger: Logger;
  /** The origin the email's links point at (`--public-url`, else the request's Host). */
  baseUrl(req: IncomingMessage): string;
  clock?: () => Date;
}

/** Sends listed by the settings route at most. */
const SENDS_LISTED = 20;

type Context = WorkspaceRouteContext;

/** Build the email of the last complete period of `kind`, exactly as the job would send it now. */
export async function previewInsightsEmail(
  store: Store,
  workspace: Workspace,
  kind: ReportPeriodKind,
  baseUrl: string,
  now: Date,
): Promise<{ report: InsightsReport; email: RenderedEmail }> {
  const report = await buildInsightsReport(store, workspace, lastCompletePeriod(kind, now));
  return { report, email: renderInsightsEmail(report, baseUrl) };
}

/**
 * Create the insights email's routes under `/api/v1`, each in the caller's workspace:
 *
 *   GET   /insights/email-preview?period=week|day&format=json|html|text   the email of the last complete period
 *   GET   /insights/email-settings                                       the workspace's and the caller's frequency, recent sends
 *   PATCH /insights/email-settings   {workspace_frequency?, my_frequency?}  weekly, daily or off; my_frequency `default` follows the workspace
 *
 * Changing the workspace's frequency needs an owner; every member with an account sets their own.
 */
export function createInsightsEmailApi(options: InsightsEmailApiOptions) {
  const { store, principals, logger } = options;
  const clock = options.clock ?? (() => new Date());

  const routes: WorkspaceRoute[] = [
    ['GET', '/insights/email-preview', preview],
    ['GET', '/insights/email-settings', getSettings],
    ['PATCH', '/insights/email-settings', updateSettings],
  ];

  async function preview(context: Context): Promise<void> {
    const params = context.url.searchParams;
    const kind = parsePeriodKind(params.get('period'), 'period');
    const format = params.get('format') ?? 'json';
    if (format !== 'json' && format !== 'html' && format !== 'text') {
      throw new TokenwiseError('invalid_argument', `invalid format "${format}": expected json, html or text`);
    }
    const { report, email } = await previewInsightsEmail(store, context.scope.workspace, kind, options.baseUrl(context.req), clock());
    if (format === 'json') {
      sendJson(context.res, 200, { subject: email.subject, period: report.period, text: email.text, html: email.html, report });
      return;
    }
    const body = format === 'html' ? email.html : email.text;
    context.res.writeHead(200, {
      'content-type': format === 'html' ? 'text/html; charset=utf-8' : 'text/plain; charset=utf-8',
      'content-length': Buffer.byteLength(body),
      'cache-control': 'no-store',
      'x-content-type-options': 'nosniff',
      // The HTML is an email: it needs its inline styles and nothing else, and never runs a script.
      'content-security-policy': "default-src 'none'; style-src 'unsafe-inline'; img-src data:; sandbox",
    });
    context.res.end(body);
  }

  async function getSettings(context: Context): Promise<void> {
    const { workspace, role } = context.scope;
    const settings = await store.getInsightsEmailSettings(workspace.id);
    const user = context.caller.user;
    const mine = user ? ((await store.listInsightsEmailPreferences(workspace.id)).find((entry) => entry.userId === user.id) ?? null) : null;
    const sends = (await store.listInsightsEmailSends(workspace.id, SENDS_LISTED)).filter(
      (send) => role === 'owner' || send.userId === user?.id,
    );
    sendJson(context.res, 200, {
      workspace_frequency: settings.frequency,
      workspace_frequency_updated_at: settings.updatedAt,
      my_frequency: mine?.frequency ?? null,
      effective_frequency: user ? effectiveFrequency(settings.frequency, mine?.frequency ?? null) : null,
      email: user?.email ?? null,
      smtp_configured: options.mailer !== null,
      mail_from: options.mailer?.from ?? null,
      sends: sends.map(describeSend),
    });
  }

  async function updateSettings(context: Context): Promise<void> {
    const fields = await readFields(context.req);
    const unknown = Object.keys(fields).filter((name) => name !== 'workspace_frequency' && name !== 'my_frequency');
    if (unknown.length > 0) {
      throw new TokenwiseError('invalid_argument', `unknown field ${unknown.join(', ')}: send workspace_frequency and/or my_frequency`);
    }
    const { workspace, role } = context.scope;
    const workspaceFrequency =
      fields.workspace_frequency === undefined ? undefined : frequencyField(fields.workspace_frequency, 'workspace_frequency');
    const myFrequency = fields.my_frequency === undefined ? undefined : myFrequencyField(fields.my_frequency);
    if (workspaceFrequency === undefined && myFrequency === undefined) {
      throw new TokenwiseError('invalid_argument', 'nothing to change: send workspace_frequency and/or my_frequency');
    }
    if (workspaceFrequency !== undefined && role !== 'owner') {
      sendApiError(context.res, 403, 'forbidden', "only owners of the workspace change the workspace's email frequency");
      return;
    }
    const user = context.caller.user;
    if (myFrequency !== undefined && !user) {
      sendApiError(
        context.res,
        400,
        'invalid_argument',
        'the local owner API token belongs to no account, so it has no email: sign in to the web UI to choose your frequency',
      );
      return;
    }

    if (workspaceFrequency !== undefined) {
      await store.setInsightsEmailFrequency(workspace.id, workspaceFrequency, user?.id ?? null);
      logger.info({ workspace_id: workspace.id, frequency: workspaceFrequency }, 'insights email frequency changed');
    }
    if (myFrequency !== undefined && user) {
      await store.setInsightsEmailPreference(workspace.id, user.id, myFrequency);
      logger.info(
        { workspace_id: workspace.id, user_id: user.id, frequency: myFrequency ?? 'default' },
        'personal insights email frequency changed',
      );
    }
    await getSettings(context);
  }

  return exactPathRoutes(principals, routes);
}

function frequencyField(value: unknown, name: string): InsightsEmailFrequency {
  if (typeof value !== 'string' || !(INSIGHTS_EMAIL_FREQUENCIES as readonly string[]).includes(value)) {
    throw new TokenwiseError(
      'invalid_argument',
      `invalid ${name} ${JSON.stringify(value)}: expected ${INSIGHTS_EMAIL_FREQUENCIES.join(', ')}`,
    );
  }
  return value as InsightsEmailFrequency;
}

/** Read a person's frequency; `default` (or null) removes their own choice, so the workspace's applies. */
function myFrequencyField(value: unknown): InsightsEmailFrequency | null {
  if (value === null || value === 'default') return null;
  if (typeof value !== 'string' || !(INSIGHTS_EMAIL_FREQUENCIES as readonly string[]).includes(value)) {
    throw new TokenwiseError(
      'invalid_argument',
      `invalid my_frequency ${JSON.stringify(value)}: expected ${INSIGHTS_EMAIL_FREQUENCIES.join(', ')} or default`,
    );
  }
  return value as InsightsEmailFrequency;
}

function describeSend(send: InsightsEmailSend) {
  return {
    user_id: send.userId,
    frequency: send.frequency,
    period_start: send.periodStart,
    period_end: send.periodEnd,
    status: send.status,
    attempts: send.attempts,
    finished_at: send.finishedAt,
    error: send.error,
  };
}
