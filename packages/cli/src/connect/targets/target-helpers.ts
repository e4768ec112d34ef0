import { readFile } from 'node:fs/promises';
import { type ConfigObject, ConfigParseError, parseConfig } from '../config-formats.js';
import type { StructuredFormat } from '../connect-types.js';
import { findShellProfiles } from '../machine.js';
import { readBlockVars } from '../profile-block.js';

/** Read a config file without editing it: its parsed content, null when missing, or the parse error's message. */
export async function readConfig(
  path: string,
  format: StructuredFormat,
): Promise<{ document: ConfigObject | null; problem: string | null }> {
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch {
    return { document: null, problem: null };
  }
  try {
    return { document: parseConfig(format, text, path), problem: null };
  } catch (error) {
    if (error instanceof ConfigParseError) return { document: null, problem: error.message };
    throw error;
  }
}

/** List a variable's values for a new shell with their sources: the profile blocks connect wrote, then this environment. */
export async function profileVariable(
  name: string,
  context: { home: string; env: NodeJS.ProcessEnv; platform: NodeJS.Platform },
): Promise<Array<{ url: string; source: string }>> {
  const found: Array<{ url: string; source: string }> = [];
  for (const profile of await findShellProfiles(context.home, context.env, context.platform)) {
    let text: string;
    try {
      text = await readFile(profile.path, 'utf8');
    } catch {
      continue;
    }
    const value = readBlockVars(profile.shell, text)?.[name];
    if (value !== undefined) found.push({ url: value, source: `${name} in ${profile.path}` });
  }
  const current = context.env[name];
  if (current) found.push({ url: current, source: `${name} in this shell's environment` });
  return found;
}

export function isString(value: unknown): value is string {
  return typeof value === 'string';
}
