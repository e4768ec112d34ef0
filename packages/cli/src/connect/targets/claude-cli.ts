import { emptyPlan, type Target } from '../connect-types.js';
import { findExecutable, pathExists } from '../machine.js';
import { profileVariable } from './target-helpers.js';

/**
 * `ant`, the Claude Platform CLI (a Go binary built on Anthropic's Go SDK), has no config key for the API
 * URL; it reads `ANTHROPIC_BASE_URL` from the environment, so connect sets it in the shell profiles.
 */
export const claudeCli: Target = {
  id: 'claude-cli',
  displayName: 'Claude CLI (ant)',

  async detect(context) {
    const evidence: string[] = [];
    const executable = await findExecutable('ant', context.env, context.platform);
    if (executable) evidence.push(executable);
    const configDir = context.env.ANTHROPIC_CONFIG_DIR;
    if (configDir && (await pathExists(configDir))) evidence.push(configDir);
    return { installed: evidence.length > 0, evidence };
  },

  async plan(context) {
    const plan = emptyPlan();
    const url = context.routeUrl('anthropic');
    plan.profileVars.ANTHROPIC_BASE_URL = url;
    plan.notes.push(
      'ANTHROPIC_BASE_URL reaches every program started from a new shell, so Anthropic SDK scripts are recorded too; open a new terminal for it to apply.',
    );
    const current = context.env.ANTHROPIC_BASE_URL;
    if (current && !current.startsWith(`${context.serverUrl}/r/`)) {
      plan.warnings.push(`ANTHROPIC_BASE_URL is ${current} in this shell; where that is set after the profile block, it still wins.`);
    }
    return plan;
  },

  async traffic(context) {
    const destinations = await profileVariable('ANTHROPIC_BASE_URL', context);
    return { destinations: destinations.length > 0 ? destinations : [{ url: 'https://api.anthropic.com', source: 'default' }] };
  },
};
