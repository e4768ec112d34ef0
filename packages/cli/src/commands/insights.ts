import { parseArgs } from 'node:util';
import { TokenwiseError } from '@tokenwise/core';
import {
  findLocalWorkspace,
  parsePeriodKind,
  parsePublicUrl,
  previewInsightsEmail,
  type ReportPeriodKind,
  resolveDataDir,
} from '@tokenwise/server';
import { type ApiTarget, fetchApi, findApiTarget, ServerUnreachableError } from '../api-client.js';
import { CliError, usageError } from '../cli-error.js';
import type { CliIo } from '../cli-io.js';
import { withLocalStore } from '../local-store.js';
import { booleanFlagOrEnv, CLIENT_OPTIONS, COMMON_OPTIONS, flagOrEnv, joinDashValues, parseFlagsOf } from '../options.js';

export const INSIGHTS_HELP = `Usage: tokenwise insights preview [options]

Print the insights email of the last complete week (Monday to Monday, UTC) or
day, exactly as the server would send it now: cost and calls by tool, model
and person against the period before, top sessions, error and refusal rates,
unusual days and the LLM judge's scores. Nothing is sent.

Options:
  --period week|day       the weekly or the daily email (default week)     TOKENWISE_INSIGHTS_PERIOD
  --workspace ID          the workspace (default: the API token's, or the
                          local workspace when no server runs)             TOKENWISE_WORKSPACE
  --html                  print the HTML version instead of the plain text
  --json                  print the subject, both versions and every figure as JSON
  --data-dir DIR          data directory of the local server (default ~/.tokenwise)
                                                                           TOKENWISE_DATA_DIR
  --server URL            use this server; needs TOKENWISE_API_TOKEN         TOKENWISE_SERVER
  -h, --help              show this help

Reads through the running server's API; with no server running it reads the
database in the data directory, and the links use TOKENWISE_PUBLIC_URL or
http://127.0.0.1:4747.
`;

const LOCAL_BASE_URL = 'http://127.0.0.1:4747';

export async function insightsCommand(args: string[], io: CliIo): Promise<number> {
  const [subcommand, ...rest] = args;
  if (subcommand === '--help' || subcommand === '-h' || subcommand === undefined) {
    (subcommand === undefined ? io.stderr : io.stdout).write(INSIGHTS_HELP);
    return subcommand === undefined ? 2 : 0;
  }
  if (subcommand !== 'preview') throw usageError(`unknown subcommand "insights ${subcommand}": expected preview`);

  const flags = parseFlagsOf('insights preview', () =>
    parseArgs({
      args: joinDashValues(rest),
      strict: true,
      options: {
        ...COMMON_OPTIONS,
        ...CLIENT_OPTIONS,
        period: { type: 'string' },
        workspace: { type: 'string' },
        html: { type: 'boolean' },
        json: { type: 'boolean' },
      },
    }),
  ).values;
  if (flags.help) {
    io.stdout.write(INSIGHTS_HELP);
    return 0;
  }

  const periodOption = flagOrEnv(flags.period, '--period', io.env, 'TOKENWISE_INSIGHTS_PERIOD');
  const period = parsePeriodOption(periodOption?.value ?? null, periodOption?.source ?? '--period');
  const workspace = flagOrEnv(flags.workspace, '--workspace', io.env, 'TOKENWISE_WORKSPACE')?.value;
  const json = booleanFlagOrEnv(flags.json, io.env, 'TOKENWISE_JSON');
  if (json && flags.html) throw usageError('--html and --json print different things: pass one of them');
  let format = 'text';
  if (json) format = 'json';
  else if (flags.html) format = 'html';
  const dataDir = resolveDataDir(flags['data-dir'], io.env);

  const target = await findApiTarget(flags.server, dataDir, io.env);
  if (target) {
    try {
      io.stdout.write(await previewFromApi(target, period, workspace, format));
      return 0;
    } catch (error) {
      if (!(error instanceof ServerUnreachableError) || target.kind !== 'local') throw error;
      io.stderr.write(`tokenwise: ${error.message}; reading the database directly\n`);
    }
  }
  io.stdout.write(await previewFromStore(dataDir, period, workspace, format, io.env));
  return 0;
}

async function previewFromApi(target: ApiTarget, period: ReportPeriodKind, workspace: string | undefined, format: string): Promise<string> {
  const query = new URLSearchParams({ period, format });
  if (workspace !== undefined) query.set('workspace', workspace);
  const response = await fetchApi(target, `/api/v1/insights/email-preview?${query}`);
  const body = await response.text();
  return format === 'json' ? `${JSON.stringify(JSON.parse(body), null, 2)}\n` : ensureNewline(body);
}

async function previewFromStore(
  dataDir: string,
  period: ReportPeriodKind,
  workspaceId: string | undefined,
  format: string,
  env: NodeJS.ProcessEnv,
): Promise<string> {
  const baseUrl = env.TOKENWISE_PUBLIC_URL ? parsePublicUrl(env.TOKENWISE_PUBLIC_URL, 'TOKENWISE_PUBLIC_URL') : LOCAL_BASE_URL;
  return withLocalStore(
    dataDir,
    async (store) => {
      const workspace = workspaceId === undefined ? await findLocalWorkspace(store) : await store.getWorkspace(workspaceId);
      if (!workspace) {
        throw new CliError(
          workspaceId === undefined
            ? `no local workspace in ${dataDir}: start "tokenwise serve" once, or pass --workspace ID`
            : `no workspace with id "${workspaceId}" in ${dataDir}: check --workspace`,
        );
      }
      const { report, email } = await previewInsightsEmail(store, workspace, period, baseUrl, new Date());
      if (format === 'json')
        return `${JSON.stringify({ subject: email.subject, period: report.period, text: email.text, html: email.html, report }, null, 2)}\n`;
      return ensureNewline(format === 'html' ? email.html : `Subject: ${email.subject}\n\n${email.text}`);
    },
    { readonly: true },
  );
}

function parsePeriodOption(value: string | null, source: string): ReportPeriodKind {
  try {
    return parsePeriodKind(value, source);
  } catch (error) {
    if (error instanceof TokenwiseError) throw usageError(error.message);
    throw error;
  }
}

function ensureNewline(text: string): string {
  return text.endsWith('\n') ? text : `${text}\n`;
}
