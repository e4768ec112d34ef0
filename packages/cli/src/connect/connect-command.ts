import { parseArgs } from 'node:util';
import { resolveDataDir } from '@tokenwise/server';
import { CliError, usageError } from '../cli-error.js';
import { colorsEnabled } from '../cli-io.js';
import { booleanFlagOrEnv, COMMON_OPTIONS, flagOrEnv, parseFlagsOf } from '../options.js';
import { acquireConnectLock } from './connect-lock.js';
import { describeFileError, parseOnly, pendingFiles, planConnect, type TargetOutcome } from './connect-planning.js';
import { type ConnectState, newState, readState, writeState } from './connect-state.js';
import type { ConnectContext, TargetId } from './connect-types.js';
import { applyFilePlan, changesAnything, type FilePlan } from './file-plans.js';
import { homeOf } from './machine.js';
import { type Asker, type ConnectIo, formatDiff, terminalAsker } from './present.js';
import { fetchTokenInfo, probeServer, revokeOwnToken } from './server-client.js';
import { previousToken, retirePreviousToken } from './token-rotation.js';
import { type Connection, PENDING_TOKEN, resolveConnection } from './token-source.js';

export const CONNECT_HELP = `Usage: tokenwise connect [options]

Point the AI tools on this machine at a Tokenwise server: Claude Code, the
Claude CLI (ant), Codex CLI and Gemini CLI are edited; Cursor too when the
server has a public https URL and Cursor is closed; Ollama gets the local
server's observer and moves to the next port. Shows every edit as a diff and
asks [Y/n] per file.
Originals are kept as <file>.tokenwise.bak; "tokenwise disconnect" undoes it all.

Options:
  --server URL            the Tokenwise server (default: the one running on
                          the data directory)                                TOKENWISE_SERVER
  --token TOKEN           route token to use (default: the local server's, a
                          new one made with TOKENWISE_API_TOKEN, or a new one
                          for this device, approved in the browser)          TOKENWISE_ROUTE_TOKEN
  --no-browser            print the pairing link without opening a browser   TOKENWISE_NO_BROWSER
  --only TOOLS            comma-separated: claude-code, claude-cli, codex,
                          gemini-cli, cursor, ollama                         TOKENWISE_ONLY
  --yes                   apply every change without asking                  TOKENWISE_YES
  --dry-run               show the changes, write nothing                    TOKENWISE_DRY_RUN
  --json                  print the plan and the result as one JSON object   TOKENWISE_JSON
  --data-dir DIR          where the connect state is kept (default ~/.tokenwise)
                                                                             TOKENWISE_DATA_DIR
  -h, --help              show this help
`;

export async function connectCommand(args: string[], io: ConnectIo): Promise<number> {
  const flags = parseFlagsOf('connect', () =>
    parseArgs({
      args,
      strict: true,
      options: {
        ...COMMON_OPTIONS,
        server: { type: 'string' },
        token: { type: 'string' },
        only: { type: 'string' },
        yes: { type: 'boolean', short: 'y' },
        'dry-run': { type: 'boolean' },
        json: { type: 'boolean' },
        'data-dir': { type: 'string' },
        'no-browser': { type: 'boolean' },
      },
    }),
  ).values;
  if (flags.help) {
    io.stdout.write(CONNECT_HELP);
    return 0;
  }

  const yes = booleanFlagOrEnv(flags.yes, io.env, 'TOKENWISE_YES');
  const dryRun = booleanFlagOrEnv(flags['dry-run'], io.env, 'TOKENWISE_DRY_RUN');
  const json = booleanFlagOrEnv(flags.json, io.env, 'TOKENWISE_JSON');
  const onlyOption = flagOrEnv(flags.only, '--only', io.env, 'TOKENWISE_ONLY');
  const only = parseOnly(onlyOption?.value, onlyOption?.source ?? '--only');
  if (json && !yes && !dryRun)
    throw usageError('--json cannot ask questions: add --yes to apply the changes, or --dry-run to only plan them');
  const dataDir = resolveDataDir(flags['data-dir'], io.env);
  const noBrowser = booleanFlagOrEnv(flags['no-browser'], io.env, 'TOKENWISE_NO_BROWSER');

  // A dry run writes nothing, so it needs no lock.
  const lock = dryRun ? null : await acquireConnectLock(dataDir, 'connect');
  try {
    return await connectTools({ io, serverFlag: flags.server, tokenFlag: flags.token, noBrowser, yes, dryRun, json, only, dataDir });
  } finally {
    await lock?.release();
  }
}

/** Plan and apply connect's changes; runs while the data directory's connect lock is held. */
async function connectTools(options: {
  io: ConnectIo;
  serverFlag: string | undefined;
  tokenFlag: string | undefined;
  noBrowser: boolean;
  yes: boolean;
  dryRun: boolean;
  json: boolean;
  only: Set<TargetId> | null;
  dataDir: string;
}): Promise<number> {
  const { io, yes, dryRun, json, only, dataDir } = options;
  const state = await readState(dataDir);
  const previous = previousToken(state);
  const connection = await resolveConnection({
    serverFlag: options.serverFlag,
    tokenFlag: options.tokenFlag,
    dataDir,
    env: io.env,
    dryRun,
    // The pairing code is for the person; with --json stdout carries only the JSON result.
    say: (line) => (json ? io.stderr : io.stdout).write(`${line}\n`),
    openBrowser: !options.noBrowser,
    saved: state,
  });
  const out = new Output(io, json);
  const publicUrl = await checkToken(connection, dryRun, out);

  const platform = process.platform;
  const context: ConnectContext = {
    home: homeOf(io.env, platform),
    env: io.env,
    platform,
    serverUrl: connection.serverUrl,
    routeUrl: (route) => `${connection.proxyUrl ?? connection.serverUrl}/r/${connection.token}/${route}`,
    dataDir,
    ...(publicUrl !== null && { publicRouteUrl: (route: string) => `${publicUrl}/r/${connection.token}/${route}` }),
  };
  const switching = state !== null && (state.serverUrl !== connection.serverUrl || state.token.value !== connection.token);
  // Tools connected to another server or token earlier move along, so one state describes every tool.
  const selection = only && switching ? new Set([...only, ...(Object.keys(state.targets) as TargetId[])]) : only;
  const outcomes = await planConnect(context, selection, state);

  out.line(`Tokenwise server: ${connection.serverUrl} (route token: ${connection.description})`);
  if (switching) out.line(`Connected tools move from ${state.serverUrl} to this server and token.`);
  if (isPlainHttpToRemote(connection.serverUrl)) {
    out.line(
      `Warning: ${connection.serverUrl} is plain http to another machine, so the keys and logins your tools send cross the network unencrypted.`,
    );
  }
  for (const outcome of outcomes) showOutcome(outcome, out);

  const pending = pendingFiles(outcomes);
  for (const file of pending) showFile(file, out, io);

  if (dryRun) {
    out.line('', pending.length > 0 ? 'Dry run: nothing was written.' : 'Dry run: nothing to change.');
    out.json({ server: connection.serverUrl, dry_run: true, targets: outcomes.map((outcome) => outcomeJson(outcome, new Set())) });
    return 0;
  }

  const asker = yes ? null : terminalAsker(io);
  if (!yes && !asker && pending.length > 0) {
    await dropUnusedToken(connection, out);
    throw new CliError('no terminal for the [Y/n] questions, so nothing was changed: rerun with --yes to apply the changes above');
  }

  const applied = await applyAll({ outcomes, pending, asker, state, connection, dataDir, out });
  asker?.close();
  const moved = new Set(connectedOutcomes(outcomes, applied).map((outcome) => outcome.target.id));
  await retirePreviousToken(previous, connection, moved, (line) => out.line(line));
  return finish(outcomes, applied, connection, out);
}

interface ApplyResult {
  /** Files written (or already as planned). */
  done: Set<FilePlan>;
  declined: Set<FilePlan>;
  failed: Map<FilePlan, string>;
}

async function applyAll(options: {
  outcomes: TargetOutcome[];
  pending: FilePlan[];
  asker: Asker | null;
  state: ConnectState | null;
  connection: Connection;
  dataDir: string;
  out: Output;
}): Promise<ApplyResult> {
  const { outcomes, asker, connection, dataDir, out } = options;
  const state = options.state ?? newState(connection.serverUrl, tokenRecord(connection));
  state.serverUrl = connection.serverUrl;
  state.token = tokenRecord(connection);
  if (connection.proxyUrl === undefined) delete state.proxyUrl;
  else state.proxyUrl = connection.proxyUrl;
  const result: ApplyResult = { done: new Set(), declined: new Set(), failed: new Map() };

  const files = [...new Set(outcomes.flatMap((outcome) => (outcome.problem ? [] : outcome.files)))];
  for (const file of files) {
    if (changesAnything(file) && asker && !(await asker.confirm(`Apply this change to ${file.path}?`))) {
      result.declined.add(file);
      continue;
    }
    try {
      const record = await applyFilePlan(file);
      if (record) state.files[file.path] = record;
      result.done.add(file);
    } catch (error) {
      result.failed.set(file, describeFileError(error));
      continue;
    }
    recordConnectedTargets(state, outcomes, result);
    await writeState(dataDir, state);
  }
  if (files.length > 0) out.line('');
  return result;
}

/** Record a tool as connected once every file it needs is done. */
function recordConnectedTargets(state: ConnectState, outcomes: TargetOutcome[], result: ApplyResult): void {
  for (const outcome of outcomes) {
    if (outcome.problem || !outcome.plan || !outcome.files.every((file) => result.done.has(file))) continue;
    state.targets[outcome.target.id] = {
      connectedAt: state.targets[outcome.target.id]?.connectedAt ?? new Date().toISOString(),
      ...(outcome.plan.variant ? { variant: outcome.plan.variant } : {}),
      profileVars: outcome.plan.profileVars,
    };
  }
}

async function finish(outcomes: TargetOutcome[], result: ApplyResult, connection: Connection, out: Output): Promise<number> {
  const connected = connectedOutcomes(outcomes, result);
  const failed = outcomes.filter((outcome) => outcome.problem?.kind === 'failed' || outcome.files.some((file) => result.failed.has(file)));
  for (const [file, message] of result.failed) out.line(`Failed: ${file.path}: ${message}`);

  if (connected.length === 0) await dropUnusedToken(connection, out);
  out.line(
    connected.length > 0 ? `Connected: ${connected.map((outcome) => outcome.target.displayName).join(', ')}.` : 'No tool was connected.',
  );
  // Only a profile this run rewrote needs a new terminal; one already as planned changes nothing.
  const profileChanged = connected.some((outcome) =>
    outcome.files.some((file) => file.record?.kind === 'profile' && changesAnything(file)),
  );
  if (profileChanged) {
    out.line('Shell profiles changed: open a new terminal (or source your profile) for the variables to apply.');
  }
  if (connected.length > 0) out.line('Check with "tokenwise status"; undo with "tokenwise disconnect".');

  out.json({
    server: connection.serverUrl,
    dry_run: false,
    targets: outcomes.map((outcome) => outcomeJson(outcome, result.done, result.declined, result.failed)),
  });
  return failed.length > 0 ? 1 : 0;
}

/** The tools that point at the new token now: every file they need was written or already as planned. */
function connectedOutcomes(outcomes: TargetOutcome[], result: ApplyResult): TargetOutcome[] {
  return outcomes.filter((outcome) => !outcome.problem && outcome.files.every((file) => result.done.has(file)));
}

/** Revoke the token connect created for this run when no tool ended up using it. */
async function dropUnusedToken(connection: Connection, out: Output): Promise<void> {
  if (!connection.created || connection.token === PENDING_TOKEN) return;
  const reply = await revokeOwnToken(connection.serverUrl, connection.token);
  if (reply.kind !== 'ok') out.line(`Note: the route token created for this run is still valid (${reply.message}).`);
}

/** Check that the server accepts the route token; returns the public URL the server reports, if any. */
async function checkToken(connection: Connection, dryRun: boolean, out: Output): Promise<string | null> {
  if (connection.token === PENDING_TOKEN) {
    // A dry run creates no token, but the person still needs to know that applying the plan would fail.
    const problem = await probeServer(connection.serverUrl);
    if (problem !== null) out.line(`Warning: ${problem}. The plan below is shown anyway, but applying it fails until the server answers.`);
    return null;
  }
  const reply = await fetchTokenInfo(connection.serverUrl, connection.token);
  if (reply.kind === 'ok') return publicUrlOf(reply.value.public_url);
  if (reply.kind === 'unsupported') return null;
  if (reply.kind === 'unreachable' && dryRun) {
    out.line(`Warning: ${reply.message}. The plan below is shown anyway.`);
    return null;
  }
  if (reply.kind === 'unreachable')
    throw new CliError(`${reply.message}. Start the server (or check --server) before pointing tools at it.`);
  throw new CliError(`${reply.message}; pass a valid --token (run "tokenwise token create" on the server)`);
}

/** Accept an http or https origin from the server's reply, without a trailing slash; anything else is ignored. */
function publicUrlOf(value: unknown): string | null {
  if (typeof value !== 'string' || !/^https?:\/\/[^/?#\s]+\/?$/.test(value)) return null;
  return value.replace(/\/$/, '');
}

function tokenRecord(connection: Connection): ConnectState['token'] {
  return { value: connection.token, id: connection.tokenId, source: connection.source };
}

function showOutcome(outcome: TargetOutcome, out: Output): void {
  const { target, plan, problem } = outcome;
  if (problem?.kind === 'not-installed') {
    out.line(`- ${target.displayName}: ${problem.message}`);
    return;
  }
  out.line('', `${target.displayName}${plan?.variant ? ` (${plan.variant})` : ''}:`);
  if (problem) out.line(`  ${problem.kind === 'failed' ? 'Cannot connect' : 'Skipped'}: ${problem.message}`);
  if (!problem && outcome.files.every((file) => !changesAnything(file))) out.line('  Already connected: nothing to change.');
  if (problem) return;
  for (const note of plan?.notes ?? []) out.line(`  ${note}`);
  for (const warning of plan?.warnings ?? []) out.line(`  Warning: ${warning}`);
}

function showFile(file: FilePlan, out: Output, io: ConnectIo): void {
  out.line(
    '',
    `${file.snapshot.exists ? 'Change' : 'Create'} ${file.path}${file.snapshot.realPath !== file.path ? ` (-> ${file.snapshot.realPath})` : ''}:`,
  );
  for (const conflict of file.conflicts) out.line(`  Warning: ${conflict}; disconnect puts it back.`);
  out.line(formatDiff(file, colorsEnabled(io)));
}

function outcomeJson(outcome: TargetOutcome, done: Set<FilePlan>, declined = new Set<FilePlan>(), failed = new Map<FilePlan, string>()) {
  return {
    id: outcome.target.id,
    name: outcome.target.displayName,
    installed: outcome.detection.installed,
    evidence: outcome.detection.evidence,
    variant: outcome.plan?.variant ?? null,
    problem: outcome.problem,
    notes: outcome.plan?.notes ?? [],
    warnings: outcome.plan?.warnings ?? [],
    files: outcome.files.map((file) => ({
      path: file.path,
      action: fileAction(file),
      conflicts: file.conflicts,
      diff: formatDiff(file, false),
      result: failed.has(file) ? 'failed' : declined.has(file) ? 'declined' : done.has(file) ? 'applied' : 'not applied',
      error: failed.get(file) ?? null,
    })),
  };
}

function fileAction(file: FilePlan): string {
  if (!changesAnything(file)) return 'unchanged';
  return file.snapshot.exists ? 'update' : 'create';
}

/** True for an http URL whose host is not loopback: the tools' credentials would cross a network in clear text. */
export function isPlainHttpToRemote(serverUrl: string): boolean {
  const url = new URL(serverUrl);
  if (url.protocol !== 'http:') return false;
  return !(url.hostname === 'localhost' || url.hostname.startsWith('127.') || url.hostname === '[::1]');
}

/** Human lines go to stdout unless --json is on; then only the final JSON object is printed. */
export class Output {
  constructor(
    private readonly io: ConnectIo,
    private readonly jsonMode: boolean,
  ) {}

  line(...lines: string[]): void {
    if (!this.jsonMode) this.io.stdout.write(`${lines.join('\n')}\n`);
  }

  json(value: unknown): void {
    if (this.jsonMode) this.io.stdout.write(`${JSON.stringify(value)}\n`);
  }
}
