import { parseArgs } from 'node:util';
import type { CallRecord } from '@tokenwise/core';
import { resolveDataDir } from '@tokenwise/server';
import { findApiTarget, requestApi } from '../api-client.js';
import { booleanFlagOrEnv, COMMON_OPTIONS, parseFlagsOf } from '../options.js';
import { escapeForTerminal } from '../terminal-text.js';
import { Output } from './connect-command.js';
import { type ConnectState, readState } from './connect-state.js';
import { homeOf } from './machine.js';
import { type ConnectIo, maskToken } from './present.js';
import { fetchTokenInfo } from './server-client.js';
import { TARGETS } from './targets/index.js';

export const STATUS_HELP = `Usage: tokenwise status [options]

For each AI tool Tokenwise knows: whether it is installed, whether it is
connected, where its traffic goes now, and the last call the server saw from it.

Options:
  --json                  one JSON object                                     TOKENWISE_JSON
  --data-dir DIR          where the connect state is kept (default ~/.tokenwise)
                                                                              TOKENWISE_DATA_DIR
  -h, --help              show this help
`;

/** How many recent calls the local API is asked for when looking for each tool's last call. */
const RECENT_CALLS = 1000;

export async function statusCommand(args: string[], io: ConnectIo): Promise<number> {
  const flags = parseFlagsOf('status', () =>
    parseArgs({ args, strict: true, options: { ...COMMON_OPTIONS, json: { type: 'boolean' }, 'data-dir': { type: 'string' } } }),
  ).values;
  if (flags.help) {
    io.stdout.write(STATUS_HELP);
    return 0;
  }
  const json = booleanFlagOrEnv(flags.json, io.env, 'TOKENWISE_JSON');
  const dataDir = resolveDataDir(flags['data-dir'], io.env);
  const out = new Output(io, json);

  const state = await readState(dataDir);
  const server = await lastCallsByTool(state, dataDir, io.env);
  const platform = process.platform;
  const context = { home: homeOf(io.env, platform), env: io.env, platform, dataDir };

  // The server's replies and the tools' config files are not ours: their text is escaped before it reaches the terminal.
  const problem = server.problem === null ? null : escapeForTerminal(server.problem);
  out.line(server.url ? `Tokenwise server: ${escapeForTerminal(server.url)} (${problem ?? 'reachable'})` : `Tokenwise server: ${problem}`);
  const tools = [];
  for (const target of TARGETS) {
    const detection = await target.detect(context);
    const traffic = await target.traffic(context);
    // The route token identifies the server's routes whichever origin the tool uses (a public URL, say).
    const ours = state ? `/r/${state.token.value}/` : null;
    const throughTokenwise =
      traffic.throughTokenwise ?? (ours !== null && traffic.destinations.some((destination) => destination.url.includes(ours)));
    const connected = state?.targets[target.id] !== undefined && throughTokenwise;
    const lastCall = server.lastCalls?.[target.id] ?? null;
    tools.push({
      id: target.id,
      name: target.displayName,
      installed: detection.installed,
      connected,
      traffic: traffic.destinations,
      last_call: lastCall,
    });

    out.line(
      '',
      `${target.displayName}: ${detection.installed ? 'installed' : 'not found'}, ${connected ? 'connected' : state?.targets[target.id] ? 'connected, but its config no longer points at Tokenwise' : 'not connected'}`,
    );
    for (const destination of traffic.destinations) {
      out.line(`  traffic goes to ${escapeForTerminal(maskToken(destination.url))} (${escapeForTerminal(destination.source)})`);
    }
    if (server.lastCalls) out.line(`  last call seen: ${lastCall === null ? 'none recently' : escapeForTerminal(String(lastCall))}`);
  }
  out.json({ server: { url: server.url, problem: server.problem }, tools });
  return 0;
}

/**
 * Look up each tool's last call on the server: through the route token connect uses (which needs no API
 * token), else through the local server's API.
 */
async function lastCallsByTool(state: ConnectState | null, dataDir: string, env: NodeJS.ProcessEnv) {
  if (state) {
    const reply = await fetchTokenInfo(state.serverUrl, state.token.value);
    if (reply.kind === 'ok') return { url: state.serverUrl, problem: null, lastCalls: reply.value.last_calls };
    return { url: state.serverUrl, problem: reply.message, lastCalls: null };
  }

  const target = await findApiTarget(undefined, dataDir, env).catch(() => null);
  if (!target) return { url: null, problem: 'not connected, and no local server runs (start "tokenwise serve")', lastCalls: null };
  try {
    const { calls } = await requestApi<{ calls: CallRecord[] }>(target, `/api/v1/calls?limit=${RECENT_CALLS}`);
    const lastCalls: Record<string, string> = {};
    for (const call of calls) {
      if (!lastCalls[call.tool] || lastCalls[call.tool]! < call.started_at) lastCalls[call.tool] = call.started_at;
    }
    return { url: target.url, problem: null, lastCalls };
  } catch (error) {
    return { url: target.url, problem: (error as Error).message, lastCalls: null };
  }
}
