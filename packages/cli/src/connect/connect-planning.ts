import { usageError } from '../cli-error.js';
import { ConfigParseError } from './config-formats.js';
import type { ConnectState } from './connect-state.js';
import type { ConnectContext, Detection, Target, TargetId, TargetPlan } from './connect-types.js';
import { FileAccessError } from './file-io.js';
import { changesAnything, type FilePlan, planProfileConnect, planStructuredConnect } from './file-plans.js';
import { findShellProfiles, type ShellProfile } from './machine.js';
import { TARGETS } from './targets/index.js';

/** One tool in a connect run: what was found, what is planned, and why not when nothing is. */
export interface TargetOutcome {
  target: Target;
  detection: Detection;
  plan: TargetPlan | null;
  /** Files this target needs changed, including the shell profiles that carry its variables. */
  files: FilePlan[];
  /** Why the tool is left alone: not installed, skipped by its own plan, or a file that cannot be edited. */
  problem: { kind: 'not-installed' | 'skipped' | 'failed'; message: string } | null;
}

const ALIASES: Record<string, TargetId> = { claude: 'claude-code', ant: 'claude-cli', gemini: 'gemini-cli' };

/** Parse `--only claude-code,codex`; aliases: claude, ant, gemini. */
export function parseOnly(value: string | undefined, source: string): Set<TargetId> | null {
  if (value === undefined) return null;
  const ids = new Set<TargetId>();
  for (const raw of value.split(',').map((part) => part.trim().toLowerCase())) {
    if (raw === '') continue;
    const id = ALIASES[raw] ?? TARGETS.find((target) => target.id === raw)?.id;
    if (!id) throw usageError(`invalid ${source} "${raw}": expected some of ${TARGETS.map((target) => target.id).join(', ')}`);
    ids.add(id);
  }
  if (ids.size === 0) throw usageError(`invalid ${source}: name at least one tool, e.g. --only claude-code,codex`);
  return ids;
}

/**
 * Detect and plan every selected tool, then plan each file: the tools' own config files and one marked
 * block per shell profile holding the variables of every connected tool. A file that does not parse or
 * cannot be written fails only the tools that need it.
 */
export async function planConnect(
  context: ConnectContext,
  only: Set<TargetId> | null,
  state: ConnectState | null,
): Promise<TargetOutcome[]> {
  const outcomes: TargetOutcome[] = [];
  for (const target of TARGETS) {
    if (only && !only.has(target.id)) continue;
    const detection = await target.detect(context);
    if (!detection.installed && !only) {
      outcomes.push({ target, detection, plan: null, files: [], problem: { kind: 'not-installed', message: 'not found on this machine' } });
      continue;
    }
    const plan = await target.plan(context);
    const problem = plan.skipped ? { kind: 'skipped' as const, message: plan.skipped } : null;
    outcomes.push({ target, detection, plan, files: [], problem });
  }

  for (const outcome of outcomes) {
    if (outcome.problem || !outcome.plan) continue;
    try {
      for (const change of outcome.plan.files) {
        outcome.files.push(await planStructuredConnect(change, outcome.target.id, state?.files[change.path]));
      }
      for (const block of outcome.plan.blockFiles ?? []) {
        const file = { path: block.path, shell: block.shell, label: block.path };
        outcome.files.push(await planProfileConnect(file, { [outcome.target.id]: block.vars }, state?.files[block.path]));
      }
    } catch (error) {
      outcome.files = [];
      outcome.problem = { kind: 'failed', message: describeFileError(error) };
    }
  }

  await planProfiles(context, outcomes, state);
  return outcomes;
}

async function planProfiles(context: ConnectContext, outcomes: TargetOutcome[], state: ConnectState | null): Promise<void> {
  const varsByTarget: Partial<Record<TargetId, Record<string, string>>> = {};
  // Tools connected earlier and not planned again keep their variables in the blocks.
  for (const [id, record] of Object.entries(state?.targets ?? {}) as Array<[TargetId, NonNullable<ConnectState['targets'][TargetId]>]>) {
    if (Object.keys(record.profileVars).length > 0) varsByTarget[id] = record.profileVars;
  }
  const contributors = outcomes.filter((outcome) => !outcome.problem && Object.keys(outcome.plan?.profileVars ?? {}).length > 0);
  for (const outcome of contributors) varsByTarget[outcome.target.id] = outcome.plan!.profileVars;
  if (contributors.length === 0) return;

  const profiles = await findShellProfiles(context.home, context.env, context.platform);
  for (const [path, record] of Object.entries(state?.files ?? {})) {
    // A block file of one target (a systemd drop-in) is no shell profile.
    const ownBlockFile = record.shell === 'systemd';
    if (record.kind === 'profile' && !ownBlockFile && !profiles.some((profile) => profile.path === path)) {
      profiles.push({ path, shell: record.shell ?? 'posix', label: path } satisfies ShellProfile);
    }
  }

  for (const profile of profiles) {
    try {
      const plan = await planProfileConnect(profile, varsByTarget, state?.files[profile.path]);
      for (const outcome of contributors) outcome.files.push(plan);
    } catch (error) {
      for (const outcome of contributors) {
        outcome.files = [];
        outcome.problem = { kind: 'failed', message: describeFileError(error) };
      }
      return;
    }
  }
}

export function describeFileError(error: unknown): string {
  if (error instanceof ConfigParseError) return `${error.message}; nothing was changed for this tool: fix the file and run connect again`;
  if (error instanceof FileAccessError) return error.message;
  const code = (error as NodeJS.ErrnoException).code;
  if (code) return `${(error as Error).message}`;
  throw error;
}

/** List each file plan of the outcomes once, in order; a profile shared by several tools appears once. */
export function distinctFiles(outcomes: TargetOutcome[]): FilePlan[] {
  const seen = new Set<FilePlan>();
  const files: FilePlan[] = [];
  for (const outcome of outcomes) {
    for (const file of outcome.files) {
      if (!seen.has(file)) {
        seen.add(file);
        files.push(file);
      }
    }
  }
  return files;
}

export function pendingFiles(outcomes: TargetOutcome[]): FilePlan[] {
  return distinctFiles(outcomes).filter(changesAnything);
}
