import { parseArgs } from 'node:util';
import { TokenwiseError } from '@tokenwise/core';
import {
  ensureLocalWorkspace,
  findLocalWorkspace,
  type PreparedDataDir,
  prepareDataDir,
  removeCreatedDataDir,
  resolveDataDir,
} from '@tokenwise/server';
import { describePostgresUrl, PostgresStore, SqliteStore, type Store, type Workspace } from '@tokenwise/storage';
import { usageError } from '../cli-error.js';
import type { CliIo } from '../cli-io.js';
import { generateSeedCalls, SEED_DEVICES } from '../dev/seed-calls.js';
import { booleanFlagOrEnv, COMMON_OPTIONS, flagOrEnv, joinDashValues, parseFlagsOf } from '../options.js';

export const DEV_HELP = `Usage: tokenwise dev seed --calls N [options]

Commands for developing and demonstrating Tokenwise.

  tokenwise dev seed --calls N [--days D] [--data-dir DIR | --database-url URL]
      Add N made-up but plausible calls to the store: sessions of Claude Code,
      Codex and Gemini CLI and one-off SDK scripts, on four devices, during
      working hours of the last D days, with prompts, answers, token counts,
      costs and rate-limit headers. For demos, tests and benchmarks; never run
      it against a store whose numbers people rely on. The calls go to the
      local workspace (created as tokenwise serve would), or --workspace.

Options:
  --calls N               number of calls to add, 1 to 10000000
  --days D                spread them over the last D days (default 30), 1 to 3650
  --data-dir DIR          data directory (default ~/.tokenwise)  TOKENWISE_DATA_DIR
  --database-url URL      a PostgreSQL database instead           TOKENWISE_DATABASE_URL
  --workspace ID          the workspace to add the calls to
  --seed N                seed of the random generator (default 1): the same
                          seed gives the same sessions, prompts and token
                          counts, placed relative to the time of the run
  --json                  print the result as JSON               TOKENWISE_JSON
  -h, --help              show this help
`;

const SEED_OPTIONS = {
  ...COMMON_OPTIONS,
  calls: { type: 'string' },
  days: { type: 'string' },
  'data-dir': { type: 'string' },
  'database-url': { type: 'string' },
  workspace: { type: 'string' },
  seed: { type: 'string' },
  json: { type: 'boolean' },
} as const;

/** Calls per insert: large enough that a transaction's fixed cost is small, small enough to keep memory flat. */
const BATCH_SIZE = 2000;
const MAX_CALLS = 10_000_000;

export async function devCommand(args: string[], io: CliIo): Promise<number> {
  const [subcommand, ...rest] = args;
  if (subcommand === '--help' || subcommand === '-h' || subcommand === undefined) {
    (subcommand === undefined ? io.stderr : io.stdout).write(DEV_HELP);
    return subcommand === undefined ? 2 : 0;
  }
  if (subcommand !== 'seed') throw usageError(`unknown subcommand "dev ${subcommand}": expected seed; run "tokenwise dev --help"`);

  const flags = parseFlagsOf('dev seed', () => parseArgs({ args: joinDashValues(rest), strict: true, options: SEED_OPTIONS })).values;
  if (flags.help) {
    io.stdout.write(DEV_HELP);
    return 0;
  }
  if (flags.calls === undefined) throw usageError('missing --calls: pass how many calls to add, e.g. --calls 100000');
  const calls = wholeNumber(flags.calls, '--calls', 1, MAX_CALLS);
  const days = flags.days === undefined ? 30 : wholeNumber(flags.days, '--days', 1, 3650);
  const seed = flags.seed === undefined ? 1 : wholeNumber(flags.seed, '--seed', 0, 2 ** 32 - 1);
  const json = booleanFlagOrEnv(flags.json, io.env, 'TOKENWISE_JSON');

  const databaseUrl = flagOrEnv(flags['database-url'], '--database-url', io.env, 'TOKENWISE_DATABASE_URL');
  if (databaseUrl && flags['data-dir'] !== undefined) {
    throw usageError('--data-dir and --database-url both name a store: pass one of them');
  }
  const { store, description, dataDir } = await openStore(databaseUrl, flags['data-dir'], io.env);

  let succeeded = false;
  try {
    const workspace = await seedWorkspace(store, flags.workspace);
    const now = new Date();
    // Paired before the first seeded call, so no device has calls older than its pairing.
    const deviceIds = await seedDevices(store, workspace.id, new Date(now.getTime() - (days + 1) * 86_400_000));
    const lastCallMs = new Map<string, number>();
    const startedMs = performance.now();
    const sessions = new Set<string>();
    let stored = 0;
    let reported = 0;

    // Two batches in flight, so the store compresses one on this thread while its writer thread inserts
    // the other; with one at a time, each thread sat idle while the other worked.
    const inFlight: Promise<unknown>[] = [];
    for (const batch of generateSeedCalls({
      calls,
      days,
      now,
      workspaceId: workspace.id,
      deviceIds,
      keepBodies: workspace.keepBodies,
      seed,
      batchSize: BATCH_SIZE,
    })) {
      for (const call of batch) {
        if (call.record.session_id) sessions.add(call.record.session_id);
        const deviceId = call.record.device_id;
        const callStartMs = Date.parse(call.record.started_at);
        if (deviceId !== null && callStartMs > (lastCallMs.get(deviceId) ?? 0)) lastCallMs.set(deviceId, callStartMs);
      }
      if (inFlight.length >= 2) await inFlight.shift();
      inFlight.push(store.insertCalls(batch));
      stored += batch.length;
      if (!json && stored - reported >= 20_000 && stored < calls) {
        reported = stored;
        io.stderr.write(`tokenwise: ${stored} of ${calls} calls sent to the store\n`);
      }
    }
    await Promise.all(inFlight);
    // "Last seen" is the newest call, as it would be had the calls come through the proxy.
    for (const [deviceId, ms] of lastCallMs) {
      const device = await store.getDevice(deviceId);
      if (device && Date.parse(device.lastSeenAt ?? '') >= ms) continue;
      await store.updateDevice(deviceId, { lastSeenAt: new Date(ms) });
    }

    const seconds = (performance.now() - startedMs) / 1000;
    const result = {
      calls,
      sessions: sessions.size,
      devices: deviceIds.length,
      days,
      workspace_id: workspace.id,
      seconds: round1(seconds),
    };
    if (json) io.stdout.write(`${JSON.stringify(result)}\n`);
    else {
      io.stdout.write(
        `Added ${plural(calls, 'call')} in ${plural(sessions.size, 'session')} on ${plural(deviceIds.length, 'device')} over the last ${plural(days, 'day')} to workspace "${workspace.name}" of ${description} in ${result.seconds} s.\n`,
      );
      if (!workspace.keepBodies)
        io.stdout.write('The workspace is in privacy mode, so the calls have no bodies and prompt search finds none.\n');
    }
    succeeded = true;
    return 0;
  } finally {
    await store.close();
    // A failed run (an unknown --workspace, say) leaves no new data directory behind.
    if (!succeeded && dataDir) await removeCreatedDataDir(dataDir);
  }
}

async function openStore(
  databaseUrl: { value: string; source: string } | undefined,
  dataDir: string | undefined,
  env: NodeJS.ProcessEnv,
): Promise<{ store: Store; description: string; dataDir?: PreparedDataDir }> {
  if (databaseUrl) {
    try {
      describePostgresUrl(databaseUrl.value);
    } catch (error) {
      if (error instanceof TokenwiseError) throw usageError(`invalid ${databaseUrl.source}: ${error.message}`);
      throw error;
    }
    const store = await PostgresStore.open(databaseUrl.value);
    return { store, description: `PostgreSQL ${store.displayUrl}` };
  }
  const paths = await prepareDataDir(resolveDataDir(dataDir, env));
  try {
    return { store: new SqliteStore(paths.database), description: `SQLite ${paths.database}`, dataDir: paths };
  } catch (error) {
    await removeCreatedDataDir(paths);
    throw error;
  }
}

/**
 * Find the workspace to fill: `--workspace`, else the local workspace, else the only workspace of the store,
 * else a new local workspace (as the first `tokenwise serve` would create it).
 */
async function seedWorkspace(store: Store, id: string | undefined): Promise<Workspace> {
  if (id !== undefined) {
    const workspace = await store.getWorkspace(id);
    if (!workspace) throw usageError(`invalid --workspace "${id}": no workspace with this id in the store`);
    return workspace;
  }
  const local = await findLocalWorkspace(store);
  if (local) return local;

  const all = await store.listWorkspaces();
  if (all.length === 1) return all[0]!;
  if (all.length > 1) {
    throw usageError(
      `the store has ${all.length} workspaces: pass --workspace with one of ${all.map((workspace) => workspace.id).join(', ')}`,
    );
  }
  return (await ensureLocalWorkspace(store)).workspace;
}

/**
 * Find the seeded devices by name, or create them. A new device belongs to a member of the workspace,
 * taken in turn, so grouping by person shows several people when the workspace has them.
 */
async function seedDevices(store: Store, workspaceId: string, pairedAt: Date): Promise<string[]> {
  const existing = await store.listDevices(workspaceId);
  const members = await store.listMembers(workspaceId);
  const ids: string[] = [];
  for (const [index, profile] of SEED_DEVICES.entries()) {
    const found = existing.find((device) => device.name === profile.name && device.revokedAt === null);
    if (found) {
      ids.push(found.id);
      continue;
    }
    const userId = members.length === 0 ? null : members[index % members.length]!.userId;
    const device = await store.createDevice({ workspaceId, name: profile.name, os: profile.os, userId, createdAt: pairedAt });
    ids.push(device.id);
  }
  return ids;
}

function wholeNumber(value: string, flag: string, min: number, max: number): number {
  const number = /^\d{1,10}$/.test(value.trim()) ? Number(value) : Number.NaN;
  if (!(number >= min && number <= max)) throw usageError(`invalid ${flag} "${value}": expected a whole number from ${min} to ${max}`);
  return number;
}

function round1(value: number): number {
  return Math.round(value * 10) / 10;
}

function plural(count: number, noun: string): string {
  return `${count} ${noun}${count === 1 ? '' : 's'}`;
}
