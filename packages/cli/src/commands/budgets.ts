import { parseArgs } from 'node:util';
import { resolveDataDir } from '@tokenwise/server';
import { type ApiTarget, findApiTarget, requestAllPages, requestApi } from '../api-client.js';
import { CliError, usageError } from '../cli-error.js';
import type { CliIo } from '../cli-io.js';
import { booleanFlagOrEnv, CLIENT_OPTIONS, COMMON_OPTIONS, joinDashValues, parseFlagsOf } from '../options.js';
import { escapeForTerminal } from '../terminal-text.js';
import { runSubcommand, type SubcommandHandler } from './subcommands.js';

export const BUDGETS_HELP = `Usage: tokenwise budgets list [--json] [options]
       tokenwise budgets create --period day|week|month --amount USD [options]
       tokenwise budgets delete ID [options]
       tokenwise budgets alerts [--all] [--json] [options]

Manage the spending budgets of the workspace. A budget counts the cost of
the calls of the whole workspace, one device or one person per UTC day, week
or month, and alerts at a soft threshold and at its amount; a blocking
budget also makes the proxy reject further calls with 429 until it resets.

Subcommands:
  list            list the budgets with their spend in the current period
  create          create a budget (owners)
  delete ID       delete a budget by its id (owners)
  alerts          list the newest 100 alerts and how they were delivered

Options of create:
  --period P              day, week or month (UTC)
  --amount USD            the budget, e.g. 25
  --name NAME             a name for messages (default: from cost and period)
  --device ID             count one device's calls (tokenwise devices list)
  --user ID               count the calls of every device one person paired
  --cost KIND             api (real API spend, the default) or api_equivalent
                          (subscription traffic priced at API rates)
  --block                 refuse calls with 429 at the amount (default: alert only)
  --threshold F           soft alert at this fraction of the amount (default 0.8);
                          "none" sends no soft alert
  --webhook URL           Slack-compatible webhook for the alerts
  --email ADDRESS         email the alerts here (repeatable; default: the owners,
                          when the server has --smtp-url)

Options of alerts:
  --all                   list every alert, not only the newest 100

Options:
  --json                  list, alerts: one JSON object per line            TOKENWISE_JSON
  --data-dir DIR          data directory of the local server (default ~/.tokenwise)
                                                                            TOKENWISE_DATA_DIR
  --server URL            use this server; needs TOKENWISE_API_TOKEN       TOKENWISE_SERVER
  -h, --help              show this help

Budgets live on the server: the commands need a running server.
`;

/** Alerts `budgets alerts` shows without --all: one page of the API's default size. */
const NEWEST_ALERTS = 100;

interface BudgetDescription {
  id: string;
  name: string;
  scope: string;
  device_id: string | null;
  user_id: string | null;
  cost_kind: string;
  period: string;
  amount_usd: number;
  spent_usd: number;
  action: string;
  state: string;
  resets_at: string;
}

interface AlertDescription {
  id: string;
  budget_name: string;
  level: string;
  created_at: string;
  message: string;
  webhook: { state: string; attempts: number; last_error: string | null };
  email: { state: string; attempts: number; last_error: string | null };
}

const SUBCOMMANDS: Record<string, SubcommandHandler> = {
  list: listSubcommand,
  create: createSubcommand,
  delete: deleteSubcommand,
  alerts: alertsSubcommand,
};

export function budgetsCommand(args: string[], io: CliIo): Promise<number> {
  return runSubcommand('budgets', BUDGETS_HELP, SUBCOMMANDS, args, io);
}

async function targetOf(serverFlag: string | undefined, dataDirFlag: string | undefined, io: CliIo): Promise<ApiTarget> {
  const target = await findApiTarget(serverFlag, resolveDataDir(dataDirFlag, io.env), io.env);
  if (!target) throw new CliError('no Tokenwise server runs for this data directory: start tokenwise serve, or pass --server URL');
  return target;
}

async function listSubcommand(args: string[], io: CliIo): Promise<number> {
  const flags = parseFlagsOf('budgets list', () =>
    parseArgs({ args: joinDashValues(args), strict: true, options: { ...COMMON_OPTIONS, ...CLIENT_OPTIONS, json: { type: 'boolean' } } }),
  ).values;
  if (flags.help) {
    io.stdout.write(BUDGETS_HELP);
    return 0;
  }
  const target = await targetOf(flags.server, flags['data-dir'], io);
  const budgets = await requestAllPages<BudgetDescription>(target, '/api/v1/budgets', 'budgets');
  if (booleanFlagOrEnv(flags.json, io.env, 'TOKENWISE_JSON')) {
    for (const budget of budgets) io.stdout.write(`${JSON.stringify(budget)}\n`);
  } else if (budgets.length === 0) {
    io.stdout.write('No budgets yet: create one with "tokenwise budgets create --period day --amount 25".\n');
  } else {
    io.stdout.write(formatTable(budgets));
  }
  return 0;
}

async function createSubcommand(args: string[], io: CliIo): Promise<number> {
  const flags = parseFlagsOf('budgets create', () =>
    parseArgs({
      args: joinDashValues(args),
      strict: true,
      options: {
        ...COMMON_OPTIONS,
        ...CLIENT_OPTIONS,
        period: { type: 'string' },
        amount: { type: 'string' },
        name: { type: 'string' },
        device: { type: 'string' },
        user: { type: 'string' },
        cost: { type: 'string' },
        block: { type: 'boolean' },
        threshold: { type: 'string' },
        webhook: { type: 'string' },
        email: { type: 'string', multiple: true },
      },
    }),
  ).values;
  if (flags.help) {
    io.stdout.write(BUDGETS_HELP);
    return 0;
  }
  if (flags.period === undefined) throw usageError('missing --period: day, week or month');
  if (flags.amount === undefined) throw usageError('missing --amount: the budget in USD, e.g. --amount 25');
  if (flags.device !== undefined && flags.user !== undefined) throw usageError('give --device or --user, not both');
  const amount = Number(flags.amount);
  if (!Number.isFinite(amount) || amount <= 0) throw usageError(`invalid --amount "${flags.amount}": expected USD above 0, e.g. 25`);

  const body: Record<string, unknown> = { period: flags.period, amount_usd: amount, action: flags.block ? 'block' : 'alert' };
  if (flags.name !== undefined) body.name = flags.name;
  if (flags.device !== undefined) Object.assign(body, { scope: 'device', device_id: flags.device });
  if (flags.user !== undefined) Object.assign(body, { scope: 'user', user_id: flags.user });
  if (flags.cost !== undefined) body.cost_kind = flags.cost;
  if (flags.threshold !== undefined) body.alert_threshold = flags.threshold === 'none' ? null : Number(flags.threshold);
  if (flags.webhook !== undefined) body.webhook_url = flags.webhook;
  if (flags.email !== undefined) body.emails = flags.email;

  const target = await targetOf(flags.server, flags['data-dir'], io);
  const { budget } = await requestApi<{ budget: BudgetDescription }>(target, '/api/v1/budgets', {
    method: 'POST',
    body: JSON.stringify(body),
  });
  io.stdout.write(`${budget.id}\n`);
  io.stderr.write(
    `Created budget "${escapeForTerminal(budget.name)}": $${budget.amount_usd} per ${budget.period}, ${budget.action === 'block' ? 'blocking' : 'alert only'}; $${budget.spent_usd.toFixed(2)} spent so far.\n`,
  );
  return 0;
}

async function deleteSubcommand(args: string[], io: CliIo): Promise<number> {
  const parsed = parseFlagsOf('budgets delete', () =>
    parseArgs({ args: joinDashValues(args), strict: true, allowPositionals: true, options: { ...COMMON_OPTIONS, ...CLIENT_OPTIONS } }),
  );
  if (parsed.values.help) {
    io.stdout.write(BUDGETS_HELP);
    return 0;
  }
  const [id, ...extra] = parsed.positionals;
  if (id === undefined || extra.length > 0)
    throw usageError('expected one budget id: tokenwise budgets delete ID (tokenwise budgets list shows the ids)');
  const target = await targetOf(parsed.values.server, parsed.values['data-dir'], io);
  await requestApi(target, `/api/v1/budgets/${encodeURIComponent(id.trim())}`, { method: 'DELETE' });
  io.stderr.write(`Deleted budget ${escapeForTerminal(id.trim())}.\n`);
  return 0;
}

async function alertsSubcommand(args: string[], io: CliIo): Promise<number> {
  const flags = parseFlagsOf('budgets alerts', () =>
    parseArgs({
      args: joinDashValues(args),
      strict: true,
      options: { ...COMMON_OPTIONS, ...CLIENT_OPTIONS, json: { type: 'boolean' }, all: { type: 'boolean' } },
    }),
  ).values;
  if (flags.help) {
    io.stdout.write(BUDGETS_HELP);
    return 0;
  }
  const target = await targetOf(flags.server, flags['data-dir'], io);
  let alerts: AlertDescription[];
  if (flags.all) {
    alerts = await requestAllPages<AlertDescription>(target, '/api/v1/budget-alerts', 'alerts');
  } else {
    const page = await requestApi<{ alerts: AlertDescription[]; next_cursor?: string | null }>(
      target,
      `/api/v1/budget-alerts?limit=${NEWEST_ALERTS}`,
    );
    alerts = page.alerts;
    if (typeof page.next_cursor === 'string') {
      io.stderr.write(`Showing the newest ${NEWEST_ALERTS} alerts. Pass --all to list every one.\n`);
    }
  }
  if (booleanFlagOrEnv(flags.json, io.env, 'TOKENWISE_JSON')) {
    for (const alert of alerts) io.stdout.write(`${JSON.stringify(alert)}\n`);
    return 0;
  }
  if (alerts.length === 0) io.stdout.write('No budget alerts yet.\n');
  for (const alert of alerts) {
    const deliveries = `webhook ${alert.webhook.state}, email ${alert.email.state}`;
    io.stdout.write(`${escapeForTerminal(alert.created_at)}  ${alert.level}  ${deliveries}\n  ${escapeForTerminal(alert.message)}\n`);
  }
  return 0;
}

/** Format budgets as a table with a header line; names are escaped, since people type them. */
function formatTable(budgets: readonly BudgetDescription[]): string {
  const rows = budgets.map((budget) => [
    budget.id,
    escapeForTerminal(budget.name),
    budget.scope === 'workspace' ? 'workspace' : `${budget.scope} ${escapeForTerminal(budget.device_id ?? budget.user_id ?? '')}`,
    `${budget.cost_kind}/${budget.period}`,
    `$${budget.spent_usd.toFixed(2)} / $${budget.amount_usd.toFixed(2)}`,
    budget.action,
    budget.state,
  ]);
  const table = [['ID', 'NAME', 'SCOPE', 'COUNTS', 'SPENT', 'ACTION', 'STATE'], ...rows];
  const widths = table[0]!.map((_, column) => Math.max(...table.map((row) => row[column]!.length)));
  return table
    .map(
      (row) =>
        `${row
          .map((cell, column) => cell.padEnd(widths[column]!))
          .join('  ')
          .trimEnd()}\n`,
    )
    .join('');
}
