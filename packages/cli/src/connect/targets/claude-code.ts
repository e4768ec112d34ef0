import { join } from 'node:path';
import { valueAt } from '../config-formats.js';
import { type ConnectContext, emptyPlan, type Target, type TargetPlan } from '../connect-types.js';
import { findExecutable, pathExists } from '../machine.js';
import { isString, readConfig } from './target-helpers.js';

const DEFAULT_BASE_URL = 'https://api.anthropic.com';

/**
 * Claude Code 2.1 reads `env.ANTHROPIC_BASE_URL` from its user settings (`$CLAUDE_CONFIG_DIR/settings.json`,
 * default `~/.claude/settings.json`). A settings value wins over the shell's environment and reaches the IDE
 * extensions started from the desktop, which never read a shell profile. The file must stay strict JSON:
 * with a comment in it Claude Code ignores the whole file.
 */
export const claudeCode: Target = {
  id: 'claude-code',
  displayName: 'Claude Code',

  async detect(context) {
    const evidence: string[] = [];
    const executable = await findExecutable('claude', context.env, context.platform);
    if (executable) evidence.push(executable);
    if (await pathExists(configDir(context))) evidence.push(configDir(context));
    return { installed: evidence.length > 0, evidence };
  },

  async plan(context): Promise<TargetPlan> {
    const plan = emptyPlan();
    const settingsPath = join(configDir(context), 'settings.json');
    plan.files.push({
      path: settingsPath,
      format: 'json',
      settings: [{ key: ['env', 'ANTHROPIC_BASE_URL'], value: context.routeUrl('anthropic') }],
    });
    plan.notes.push(
      'Claude Code in terminals and in IDE extensions reads this settings file; it works with an API key and with a Pro or Max login.',
    );

    for (const variable of ['CLAUDE_CODE_USE_BEDROCK', 'CLAUDE_CODE_USE_VERTEX']) {
      if (context.env[variable] && context.env[variable] !== '0') {
        plan.warnings.push(`${variable} is set: Claude Code then calls Bedrock or Vertex AI, which ANTHROPIC_BASE_URL does not move.`);
      }
    }
    const managed = managedSettingsPath(context.platform);
    const managedUrl = valueAt((await readConfig(managed, 'json')).document ?? {}, ['env', 'ANTHROPIC_BASE_URL']);
    if (isString(managedUrl)) {
      plan.warnings.push(`${managed} (managed settings) sets ANTHROPIC_BASE_URL to ${managedUrl}, which wins over the user settings.`);
    }
    return plan;
  },

  async traffic(context) {
    const settingsPath = join(configDir(context), 'settings.json');
    const { document, problem } = await readConfig(settingsPath, 'json');
    const configured = valueAt(document ?? {}, ['env', 'ANTHROPIC_BASE_URL']);
    if (problem) return { destinations: [{ url: 'unknown', source: `${problem} (Claude Code ignores a settings file it cannot parse)` }] };
    if (isString(configured)) return { destinations: [{ url: configured, source: `env.ANTHROPIC_BASE_URL in ${settingsPath}` }] };
    const fromEnv = context.env.ANTHROPIC_BASE_URL;
    if (fromEnv) return { destinations: [{ url: fromEnv, source: "ANTHROPIC_BASE_URL in this shell's environment" }] };
    return { destinations: [{ url: DEFAULT_BASE_URL, source: 'default' }] };
  },
};

function configDir(context: Pick<ConnectContext, 'env' | 'home'>): string {
  return context.env.CLAUDE_CONFIG_DIR || join(context.home, '.claude');
}

/** Managed settings override the user file; locations from Claude Code's settings documentation. */
function managedSettingsPath(platform: NodeJS.Platform): string {
  if (platform === 'darwin') return '/Library/Application Support/ClaudeCode/managed-settings.json';
  if (platform === 'win32') return 'C:\\ProgramData\\ClaudeCode\\managed-settings.json';
  return '/etc/claude-code/managed-settings.json';
}
