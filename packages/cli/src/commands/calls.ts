import { parseArgs } from 'node:util';
import { type CallRecord, TokenwiseError } from '@tokenwise/core';
import { parseSince, resolveDataDir } from '@tokenwise/server';
import { type ApiTarget, findApiTarget, requestApi, ServerUnreachableError } from '../api-client.js';
import { COST_FOOTNOTE, formatHeader, formatRow, needsCostFootnote } from '../call-table.js';
import { usageError } from '../cli-error.js';
import { type CliIo, colorsEnabled } from '../cli-io.js';
import { withLocalStore } from '../local-store.js';
import { booleanFlagOrEnv, CLIENT_OPTIONS, COMMON_OPTIONS, flagOrEnv, joinDashValues, parseFlagsOf, parseLimit } from '../options.js';

export const CALLS_HELP = `Usage: tokenwise calls [options]

List recorded calls, newest first: time, tool, model, status, input, cached
and output tokens, cost and latency.

Options:
  --json                  one JSON object per line, the full call record     TOKENWISE_JSON
  --limit N               show at most N calls, 1 to 1000 (default 50)        TOKENWISE_LIMIT
  --since WHEN            only calls that started since WHEN: a duration
                          (30m, 1h, 7d) or an ISO 8601 time                  TOKENWISE_SINCE
  --data-dir DIR          data directory of the local server (default ~/.tokenwise)
                                                                             TOKENWISE_DATA_DIR
  --server URL            read from this server instead; needs TOKENWISE_API_TOKEN
                                                                             TOKENWISE_SERVER
  -h, --help              show this help

Reads through the running server's API; with no server running it reads the
database in the data directory.
`;

const DEFAULT_LIMIT = 50;
const MAX_LIMIT = 1000;

export async function callsCommand(args: string[], io: CliIo): Promise<number> {
  const flags = parseFlagsOf('calls', () =>
    parseArgs({
      args: joinDashValues(args),
      strict: true,
      options: { ...COMMON_OPTIONS, ...CLIENT_OPTIONS, json: { type: 'boolean' }, limit: { type: 'string' }, since: { type: 'string' } },
    }),
  ).values;
  if (flags.help) {
    io.stdout.write(CALLS_HELP);
    return 0;
  }

  const json = booleanFlagOrEnv(flags.json, io.env, 'TOKENWISE_JSON');
  const limitOption = flagOrEnv(flags.limit, '--limit', io.env, 'TOKENWISE_LIMIT');
  const limit = limitOption ? parseLimit(limitOption.value, limitOption.source, MAX_LIMIT) : DEFAULT_LIMIT;
  const sinceOption = flagOrEnv(flags.since, '--since', io.env, 'TOKENWISE_SINCE');
  const since = sinceOption ? parseSinceOption(sinceOption.value, sinceOption.source) : undefined;
  const dataDir = resolveDataDir(flags['data-dir'], io.env);

  const records = await readCalls({ serverFlag: flags.server, dataDir, limit, since, io });
  printCalls(records, json, io, since);
  return 0;
}

async function readCalls(options: { serverFlag: string | undefined; dataDir: string; limit: number; since: Date | undefined; io: CliIo }) {
  const { dataDir, limit, since, io } = options;
  const target = await findApiTarget(options.serverFlag, dataDir, io.env);

  if (target) {
    try {
      return await readCallsFromApi(target, limit, since);
    } catch (error) {
      if (!(error instanceof ServerUnreachableError) || target.kind !== 'local') throw error;
      io.stderr.write(`tokenwise: ${error.message}; reading the database directly\n`);
    }
  }

  const listed = await withLocalStore(dataDir, (store) => store.listCalls({ limit, since }), { readonly: true });
  return listed.map((call) => call.record);
}

async function readCallsFromApi(target: ApiTarget, limit: number, since: Date | undefined): Promise<CallRecord[]> {
  const query = new URLSearchParams({ limit: String(limit) });
  if (since) query.set('since', since.toISOString());
  const body = await requestApi<{ calls: CallRecord[] }>(target, `/api/v1/calls?${query}`);
  return body.calls;
}

function printCalls(records: CallRecord[], json: boolean, io: CliIo, since: Date | undefined): void {
  if (json) {
    for (const record of records) io.stdout.write(`${JSON.stringify(record)}\n`);
    return;
  }

  if (records.length === 0) {
    io.stdout.write(
      since
        ? `No calls since ${since.toISOString()}.\n`
        : 'No calls recorded yet: point a tool at the base URLs tokenwise serve printed.\n',
    );
    return;
  }

  const colors = colorsEnabled(io);
  io.stdout.write(`${formatHeader(colors)}\n`);
  for (const record of records) io.stdout.write(`${formatRow(record, colors)}\n`);
  if (records.some(needsCostFootnote)) io.stdout.write(`\n${COST_FOOTNOTE}\n`);
}

function parseSinceOption(value: string, source: string): Date {
  try {
    return parseSince(value, new Date(), source);
  } catch (error) {
    if (error instanceof TokenwiseError) throw usageError(error.message);
    throw error;
  }
}
