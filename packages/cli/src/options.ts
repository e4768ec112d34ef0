import type { ParseArgsConfig } from 'node:util';
import { usageError } from './cli-error.js';

type OptionsConfig = NonNullable<ParseArgsConfig['options']>;

/** Options every command takes besides its own. */
export const COMMON_OPTIONS = {
  help: { type: 'boolean', short: 'h' },
} as const satisfies OptionsConfig;

/** Options of the commands that read through the API or the store. */
export const CLIENT_OPTIONS = {
  'data-dir': { type: 'string' },
  server: { type: 'string' },
} as const satisfies OptionsConfig;

/**
 * Run a command's `node:util` `parseArgs` call, turning its errors into a usage error that names the
 * flag and points at the command's help.
 */
export function parseFlagsOf<Values>(command: string, parse: () => Values): Values {
  try {
    return parse();
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    const flag = /'(-{1,2}[^' ]+)/.exec((error as Error).message)?.[1];
    const help = `run "tokenwise ${command} --help" for the options`;
    if (code === 'ERR_PARSE_ARGS_UNKNOWN_OPTION') throw usageError(`unknown option ${flag ?? ''} for tokenwise ${command}: ${help}`);
    if (code === 'ERR_PARSE_ARGS_INVALID_OPTION_VALUE') throw usageError(`missing or invalid value for ${flag ?? 'an option'}: ${help}`);
    if (code === 'ERR_PARSE_ARGS_UNEXPECTED_POSITIONAL') throw usageError(`unexpected argument for tokenwise ${command}: ${help}`);
    throw error;
  }
}

/**
 * Join `--flag -1` into `--flag=-1` when the value looks like a negative number or duration. `parseArgs`
 * reads any token starting with `-` as an option, so it rejects `--port -1` with a message that cannot
 * name the value. Joined, the value reaches the command's own check, which names it and the valid range.
 */
export function joinDashValues(args: readonly string[]): string[] {
  const joined: string[] = [];
  for (let index = 0; index < args.length; index += 1) {
    const arg = args[index]!;
    const next = args[index + 1];
    if (/^--[a-z][a-z-]*$/.test(arg) && next !== undefined && /^-\d/.test(next)) {
      joined.push(`${arg}=${next}`);
      index += 1;
    } else {
      joined.push(arg);
    }
  }
  return joined;
}

/** Return a flag's value, else the environment variable's, with its source for error messages. */
export function flagOrEnv(flag: string | undefined, flagName: string, env: NodeJS.ProcessEnv, envName: string) {
  if (flag !== undefined) return { value: flag, source: flagName };
  const fromEnv = env[envName];
  if (fromEnv !== undefined && fromEnv !== '') return { value: fromEnv, source: envName };
  return undefined;
}

/** Read a boolean flag, else `1`/`true`/`yes`/`on` or `0`/`false`/`no`/`off` in the environment variable. */
export function booleanFlagOrEnv(flag: boolean | undefined, env: NodeJS.ProcessEnv, envName: string): boolean {
  if (flag) return true;
  const value = env[envName]?.trim().toLowerCase();
  if (value === undefined || value === '' || ['0', 'false', 'no', 'off'].includes(value)) return false;
  if (['1', 'true', 'yes', 'on'].includes(value)) return true;
  throw usageError(`invalid ${envName} "${env[envName]}": expected 1 or 0 (also true/false, yes/no, on/off)`);
}

export function parseLimit(value: string, source: string, max: number): number {
  const limit = /^\d{1,7}$/.test(value.trim()) ? Number(value) : Number.NaN;
  if (!(limit >= 1 && limit <= max)) throw usageError(`invalid ${source} "${value}": expected a whole number from 1 to ${max}`);
  return limit;
}
