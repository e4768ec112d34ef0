import { setTimeout as sleep } from 'node:timers/promises';
import { parseArgs } from 'node:util';
import type { CallRecord } from '@tokenwise/core';
import { resolveDataDir } from '@tokenwise/server';
import { type ApiTarget, fetchApi, findApiTarget, ServerUnreachableError } from '../api-client.js';
import { formatHeader, formatRow } from '../call-table.js';
import { CliError } from '../cli-error.js';
import { type CliIo, colorsEnabled } from '../cli-io.js';
import { booleanFlagOrEnv, CLIENT_OPTIONS, COMMON_OPTIONS, joinDashValues, parseFlagsOf } from '../options.js';
import { readServerSentEvents } from '../sse-reader.js';

export const TAIL_HELP = `Usage: tokenwise tail [options]

Follow calls live as the server stores them, until Ctrl-C.

Options:
  --json                  one JSON object per line, the full call record     TOKENWISE_JSON
  --data-dir DIR          data directory of the local server (default ~/.tokenwise)
                                                                             TOKENWISE_DATA_DIR
  --server URL            follow this server instead; needs TOKENWISE_API_TOKEN
                                                                             TOKENWISE_SERVER
  -h, --help              show this help

Needs a running server. If the connection drops or the server restarts, tail
reconnects for up to 30 seconds and picks up where it stopped, so no call is
missed.
`;

/** How long tail keeps trying to reconnect to a server that went away, in ms. */
const RECONNECT_WINDOW_MS = 30_000;
const RECONNECT_DELAY_MS = 1_000;

export async function tailCommand(args: string[], io: CliIo): Promise<number> {
  const flags = parseFlagsOf('tail', () =>
    parseArgs({ args: joinDashValues(args), strict: true, options: { ...COMMON_OPTIONS, ...CLIENT_OPTIONS, json: { type: 'boolean' } } }),
  ).values;
  if (flags.help) {
    io.stdout.write(TAIL_HELP);
    return 0;
  }

  const json = booleanFlagOrEnv(flags.json, io.env, 'TOKENWISE_JSON');
  const dataDir = resolveDataDir(flags['data-dir'], io.env);
  const findTarget = () => findApiTarget(flags.server, dataDir, io.env);

  const target = await findTarget();
  if (!target) {
    throw new CliError(`no Tokenwise server runs with the data directory ${dataDir}: start "tokenwise serve" first, or pass --server URL`);
  }

  const stop = new AbortController();
  const onSignal = () => stop.abort();
  process.once('SIGINT', onSignal);
  process.once('SIGTERM', onSignal);
  try {
    await follow(target, findTarget, { json, io, signal: stop.signal });
  } finally {
    process.off('SIGINT', onSignal);
    process.off('SIGTERM', onSignal);
  }
  return 0;
}

interface FollowOptions {
  json: boolean;
  io: CliIo;
  signal: AbortSignal;
}

/**
 * Read the call stream, reconnecting with `Last-Event-ID` whenever it breaks, for up to
 * RECONNECT_WINDOW_MS. A local server is looked up again before each attempt, because a restarted one may
 * listen on another port. While none runs, the last known one is tried.
 */
async function follow(initialTarget: ApiTarget, findTarget: () => Promise<ApiTarget | null>, options: FollowOptions): Promise<void> {
  const { io, signal } = options;
  const colors = colorsEnabled(io);
  let target = initialTarget;
  let lastEventId: string | null = null;
  let announced = false;
  let failingSinceMs: number | null = null;
  let reportedDrop = false;

  while (!signal.aborted) {
    try {
      const headers: Record<string, string> = lastEventId === null ? {} : { 'last-event-id': lastEventId };
      const response = await fetchApi(target, '/api/v1/calls/stream', { signal, headers });
      failingSinceMs = null;
      if (reportedDrop) {
        io.stderr.write(`tokenwise: reconnected to ${target.url}\n`);
        reportedDrop = false;
      }

      if (!announced) {
        io.stderr.write(`Following new calls on ${target.url} (Ctrl-C to stop)\n`);
        if (!options.json) io.stdout.write(`${formatHeader(colors)}\n`);
        announced = true;
      }

      for await (const event of readServerSentEvents(response.body!)) {
        // Every event moves the resume position, the opening `ready` event included.
        lastEventId = event.id ?? lastEventId;
        if (event.event !== 'call') continue;
        if (options.json) {
          io.stdout.write(`${event.data}\n`);
        } else {
          io.stdout.write(`${formatRow(JSON.parse(event.data) as CallRecord, colors)}\n`);
        }
      }
    } catch (error) {
      if (signal.aborted) return;
      // An unreachable server or a broken stream is retried; anything else (a rejected token) is final.
      if (error instanceof CliError && !(error instanceof ServerUnreachableError)) throw error;
    }
    if (signal.aborted) return;

    failingSinceMs ??= Date.now();
    if (!reportedDrop) {
      io.stderr.write(`tokenwise: lost the connection to ${target.url}; reconnecting for up to ${RECONNECT_WINDOW_MS / 1000} s\n`);
      reportedDrop = true;
    }
    if (Date.now() - failingSinceMs > RECONNECT_WINDOW_MS) {
      throw new CliError(
        `lost the connection to the server at ${target.url} for ${RECONNECT_WINDOW_MS / 1000} s: start it again, then rerun tokenwise tail`,
      );
    }
    await sleep(RECONNECT_DELAY_MS, undefined, { signal }).catch(() => undefined);

    if (target.kind === 'local') target = (await findTarget()) ?? target;
  }
}
