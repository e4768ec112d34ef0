import { parseArgs } from 'node:util';
import { resolveDataDir } from '@tokenwise/server';
import { CliError, usageError } from '../cli-error.js';
import { colorsEnabled } from '../cli-io.js';
import { booleanFlagOrEnv, COMMON_OPTIONS, flagOrEnv, parseFlagsOf } from '../options.js';
import { Output } from './connect-command.js';
import { acquireConnectLock } from './connect-lock.js';
import { describeFileError, parseOnly } from './connect-planning.js';
import { type ConnectState, readState, statePath, writeState } from './connect-state.js';
import type { TargetId } from './connect-types.js';
import { applyFilePlan, changesAnything, type FilePlan, planDisconnect } from './file-plans.js';
import { type ConnectIo, formatDiff, terminalAsker } from './present.js';
import { revokeOwnToken } from './server-client.js';
import { targetById } from './targets/index.js';

export const DISCONNECT_HELP = `Usage: tokenwise disconnect [options]

Undo "tokenwise connect": remove exactly the keys and profile blocks it added,
keep every edit you made since, and restore <file>.tokenwise.bak where a file
is still as connect left it. Then revoke this device's route token.

Options:
  --only TOOLS            disconnect only these tools (comma-separated)        TOKENWISE_ONLY
  --keep-token            do not revoke the route token                        TOKENWISE_KEEP_TOKEN
  --yes                   apply every change without asking                    TOKENWISE_YES
  --dry-run               show the changes, write nothing                      TOKENWISE_DRY_RUN
  --json                  print the result as one JSON object                  TOKENWISE_JSON
  --data-dir DIR          where the connect state is kept (default ~/.tokenwise)
                                                                               TOKENWISE_DATA_DIR
  -h, --help              show this help
`;

export async function disconnectCommand(args: string[], io: ConnectIo): Promise<number> {
  const flags = parseFlagsOf('disconnect', () =>
    parseArgs({
      args,
      strict: true,
      options: {
        ...COMMON_OPTIONS,
        only: { type: 'string' },
        'keep-token': { type: 'boolean' },
        yes: { type: 'boolean', short: 'y' },
        'dry-run': { type: 'boolean' },
        json: { type: 'boolean' },
        'data-dir': { type: 'string' },
        // The connect scripts pass the server they came from; disconnect uses the one in the state.
        server: { type: 'string' },
      },
    }),
  ).values;
  if (flags.help) {
    io.stdout.write(DISCONNECT_HELP);
    return 0;
  }

  const yes = booleanFlagOrEnv(flags.yes, io.env, 'TOKENWISE_YES');
  const dryRun = booleanFlagOrEnv(flags['dry-run'], io.env, 'TOKENWISE_DRY_RUN');
  const json = booleanFlagOrEnv(flags.json, io.env, 'TOKENWISE_JSON');
  const keepToken = booleanFlagOrEnv(flags['keep-token'], io.env, 'TOKENWISE_KEEP_TOKEN');
  const onlyOption = flagOrEnv(flags.only, '--only', io.env, 'TOKENWISE_ONLY');
  const only = parseOnly(onlyOption?.value, onlyOption?.source ?? '--only');
  if (json && !yes && !dryRun)
    throw usageError('--json cannot ask questions: add --yes to apply the changes, or --dry-run to only plan them');
  const dataDir = resolveDataDir(flags['data-dir'], io.env);
  const out = new Output(io, json);

  // A dry run writes nothing, so it needs no lock.
  const lock = dryRun ? null : await acquireConnectLock(dataDir, 'disconnect');
  try {
    return await disconnectTools({ io, out, yes, dryRun, keepToken, only, dataDir });
  } finally {
    await lock?.release();
  }
}

/** Plan and apply disconnect's changes; runs while the data directory's connect lock is held. */
async function disconnectTools(options: {
  io: ConnectIo;
  out: Output;
  yes: boolean;
  dryRun: boolean;
  keepToken: boolean;
  only: Set<TargetId> | null;
  dataDir: string;
}): Promise<number> {
  const { io, out, yes, dryRun, keepToken, only, dataDir } = options;
  const state = await readState(dataDir);
  if (!state) {
    out.line(`Nothing to disconnect: no connect state in ${statePath(dataDir)}.`);
    out.json({ disconnected: [], files: [], token: 'none' });
    return 0;
  }

  const removing = new Set<TargetId>(only ? [...only].filter((id) => isConnected(state, id)) : connectedTargets(state));
  const keptVars: Partial<Record<TargetId, Record<string, string>>> = {};
  for (const [id, record] of Object.entries(state.targets) as Array<[TargetId, NonNullable<ConnectState['targets'][TargetId]>]>) {
    if (!removing.has(id)) keptVars[id] = record.profileVars;
  }

  const plans: FilePlan[] = [];
  const failures = new Map<string, string>();
  for (const [path, record] of Object.entries(state.files)) {
    const owners = [...record.settings.map((setting) => setting.target), ...(record.block?.targets ?? [])];
    if (!owners.some((owner) => removing.has(owner))) continue;
    try {
      plans.push(await planDisconnect(path, record, removing, keptVars));
    } catch (error) {
      failures.set(path, describeFileError(error));
    }
  }

  out.line(`Disconnecting: ${[...removing].map((id) => targetById(id).displayName).join(', ') || 'nothing'} (server ${state.serverUrl})`);
  for (const [path, message] of failures) out.line(`Cannot undo ${path}: ${message}`);
  const pending = plans.filter(changesAnything);
  for (const plan of plans) {
    for (const note of plan.notes) out.line(`Note: ${note}.`);
  }
  for (const plan of pending) {
    out.line(
      '',
      `${plan.after === null ? 'Delete' : plan.restoreBytes ? 'Restore' : 'Change'} ${plan.path}:`,
      formatDiff(plan, colorsEnabled(io)),
    );
  }

  if (dryRun) {
    out.line('', pending.length > 0 ? 'Dry run: nothing was written.' : 'Dry run: nothing to change.');
    out.json({ dry_run: true, disconnect: [...removing], files: plans.map((plan) => fileJson(plan, 'planned')) });
    return 0;
  }
  const asker = yes ? null : terminalAsker(io);
  if (!yes && !asker && pending.length > 0) {
    throw new CliError('no terminal for the [Y/n] questions, so nothing was changed: rerun with --yes to apply the changes above');
  }

  const results = new Map<FilePlan, string>();
  for (const plan of plans) {
    if (changesAnything(plan) && asker && !(await asker.confirm(`Apply this change to ${plan.path}?`))) {
      results.set(plan, 'declined');
      continue;
    }
    try {
      const record = await applyFilePlan(plan);
      if (record) state.files[plan.path] = record;
      else delete state.files[plan.path];
      results.set(plan, 'applied');
    } catch (error) {
      results.set(plan, 'failed');
      failures.set(plan.path, describeFileError(error));
    }
    await writeState(dataDir, dropDisconnected(state, removing));
  }
  asker?.close();

  const disconnected = [...removing].filter((id) => !stillOwnsFiles(state, id));
  for (const id of disconnected) delete state.targets[id];
  const tokenOutcome = await settleToken(state, keepToken, out);
  await writeState(dataDir, state);

  for (const [path, message] of failures) out.line(`Failed: ${path}: ${message}`);
  out.line(
    '',
    disconnected.length > 0
      ? `Disconnected: ${disconnected.map((id) => targetById(id).displayName).join(', ')}.`
      : 'No tool was disconnected.',
  );
  out.json({
    dry_run: false,
    disconnected,
    files: plans.map((plan) => fileJson(plan, results.get(plan) ?? 'failed')),
    token: tokenOutcome,
  });
  return failures.size > 0 ? 1 : 0;
}

/**
 * Once no tool uses the route token any more, revoke it on the server, unless --keep-token, or it is the
 * local server's own token (which `tokenwise serve` prints and other tools may use), or the server is unreachable.
 */
async function settleToken(state: ConnectState, keepToken: boolean, out: Output): Promise<string> {
  if (Object.keys(state.targets).length > 0 || Object.keys(state.files).length > 0) return 'in use';
  if (keepToken) {
    out.line('Kept the route token (--keep-token): it still works on the server.');
    return 'kept';
  }
  if (state.token.source === 'local') {
    out.line("Kept the route token: it is the local server's own token, which tokenwise serve prints for your tools.");
    return 'kept';
  }
  const reply = await revokeOwnToken(state.serverUrl, state.token.value);
  if (reply.kind === 'ok' && reply.value.revoked) {
    out.line(`Revoked the route token on ${state.serverUrl}.`);
    return 'revoked';
  }
  if (reply.kind === 'ok' || reply.kind === 'rejected') {
    // The server no longer accepts the token: an owner revoked the device or the token before this run.
    out.line(`The route token was already revoked on ${state.serverUrl}.`);
    return 'revoked';
  }
  out.line(`Did not revoke the route token: ${reply.message}. Revoke it on the server (DELETE /api/v1/route-tokens/{id}) when it is back.`);
  return 'not revoked';
}

function connectedTargets(state: ConnectState): TargetId[] {
  const ids = new Set<TargetId>(Object.keys(state.targets) as TargetId[]);
  for (const record of Object.values(state.files)) {
    for (const setting of record.settings) ids.add(setting.target);
    for (const target of record.block?.targets ?? []) ids.add(target);
  }
  return [...ids];
}

function isConnected(state: ConnectState, id: TargetId): boolean {
  return connectedTargets(state).includes(id);
}

function stillOwnsFiles(state: ConnectState, id: TargetId): boolean {
  return Object.values(state.files).some(
    (record) => record.settings.some((setting) => setting.target === id) || (record.block?.targets ?? []).includes(id),
  );
}

function dropDisconnected(state: ConnectState, removing: Set<TargetId>): ConnectState {
  for (const id of removing) {
    if (!stillOwnsFiles(state, id)) delete state.targets[id];
  }
  return state;
}

function fileAction(plan: FilePlan): string {
  if (!changesAnything(plan)) return 'unchanged';
  if (plan.after === null) return 'delete';
  return plan.restoreBytes ? 'restore' : 'update';
}

function fileJson(plan: FilePlan, result: string) {
  return {
    path: plan.path,
    action: fileAction(plan),
    notes: plan.notes,
    diff: formatDiff(plan, false),
    result,
  };
}
