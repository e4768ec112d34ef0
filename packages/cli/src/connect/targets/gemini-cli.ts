import { join } from 'node:path';
import { valueAt } from '../config-formats.js';
import { type ConnectContext, emptyPlan, type Target } from '../connect-types.js';
import { findExecutable, pathExists } from '../machine.js';
import { isString, profileVariable, readConfig } from './target-helpers.js';

/**
 * Gemini CLI 0.61 has no settings key for its endpoint: `GOOGLE_GEMINI_BASE_URL` moves API-key traffic and
 * `CODE_ASSIST_ENDPOINT` moves Google-login (Code Assist) traffic, so both go into the shell profiles.
 * Once `GOOGLE_GEMINI_BASE_URL` is set, a settings file without `security.auth.selectedType` makes
 * non-interactive runs fail with "Invalid auth method selected.", so connect sets the type when it is
 * missing. `~/.gemini/settings.json` allows comments, and a trailing comma there is fatal.
 */
export const geminiCli: Target = {
  id: 'gemini-cli',
  displayName: 'Gemini CLI',

  async detect(context) {
    const evidence: string[] = [];
    const executable = await findExecutable('gemini', context.env, context.platform);
    if (executable) evidence.push(executable);
    if (await pathExists(geminiDir(context))) evidence.push(geminiDir(context));
    return { installed: evidence.length > 0, evidence };
  },

  async plan(context) {
    const plan = emptyPlan();
    plan.profileVars.GOOGLE_GEMINI_BASE_URL = context.routeUrl('gemini');
    plan.profileVars.CODE_ASSIST_ENDPOINT = context.routeUrl('codeassist');

    // A cached Google login means the person signs in with Google; otherwise assume an API key.
    const googleLogin = await pathExists(join(geminiDir(context), 'oauth_creds.json'));
    const settingsPath = join(geminiDir(context), 'settings.json');
    plan.files.push({
      path: settingsPath,
      format: 'jsonc',
      settings: [
        { key: ['security', 'auth', 'selectedType'], value: googleLogin ? 'oauth-personal' : 'gemini-api-key', onlyIfMissing: true },
      ],
    });
    plan.notes.push('The variables apply to new terminals: open one (or source your profile) before running gemini.');

    const selected = valueAt((await readConfig(settingsPath, 'jsonc')).document ?? {}, ['security', 'auth', 'selectedType']);
    if (selected === 'vertex-ai') {
      plan.warnings.push('Gemini CLI uses Vertex AI here, whose calls follow GOOGLE_VERTEX_BASE_URL; Tokenwise has no Vertex AI route.');
    }
    for (const name of ['GOOGLE_GEMINI_BASE_URL', 'CODE_ASSIST_ENDPOINT']) {
      const current = context.env[name];
      if (current && !current.startsWith(`${context.serverUrl}/r/`)) {
        plan.warnings.push(`${name} is ${current} in this shell; where that is set after the profile block, it still wins.`);
      }
    }
    return plan;
  },

  async traffic(context) {
    const settingsPath = join(geminiDir(context), 'settings.json');
    const { document } = await readConfig(settingsPath, 'jsonc');
    const selected = valueAt(document ?? {}, ['security', 'auth', 'selectedType']);
    const googleLogin = isString(selected) && selected.startsWith('oauth');
    const name = googleLogin ? 'CODE_ASSIST_ENDPOINT' : 'GOOGLE_GEMINI_BASE_URL';
    const destinations = await profileVariable(name, context);
    if (destinations.length > 0) return { destinations };
    const fallback = googleLogin ? 'https://cloudcode-pa.googleapis.com' : 'https://generativelanguage.googleapis.com';
    return { destinations: [{ url: fallback, source: 'default' }] };
  },
};

function geminiDir(context: Pick<ConnectContext, 'home'>): string {
  return join(context.home, '.gemini');
}
