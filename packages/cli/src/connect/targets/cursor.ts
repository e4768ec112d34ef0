import { join } from 'node:path';
import { type ConnectContext, emptyPlan, type Target } from '../connect-types.js';
import { findExecutable, pathExists } from '../machine.js';

/**
 * Cursor's own model traffic goes to Cursor's servers over its own protocol and cannot be re-pointed. Only
 * the bring-your-own-key "Override OpenAI Base URL" setting can, and Cursor calls that URL from its servers,
 * not from the desktop, so the Tokenwise server must have a public https URL.
 */
export const cursor: Target = {
  id: 'cursor',
  displayName: 'Cursor',

  async detect(context) {
    const evidence: string[] = [];
    const executable = await findExecutable('cursor', context.env, context.platform);
    if (executable) evidence.push(executable);
    if (await pathExists(stateDatabase(context))) evidence.push(stateDatabase(context));
    return { installed: evidence.length > 0, evidence };
  },

  async plan(context) {
    const plan = emptyPlan();
    if (!isPublicHttps(context.serverUrl)) {
      plan.skipped =
        `Cursor calls a custom OpenAI base URL from its own servers, which cannot reach ${context.serverUrl}; ` +
        'it needs the Tokenwise server at a public https URL. Cursor subscription traffic cannot be re-pointed at all.';
      return plan;
    }
    // TODO: write openAIBaseUrl into state.vscdb (SQLite, only while Cursor is closed) once the bundled CLI can open
    // SQLite without a native module; node:sqlite needs Node 22.5.
    plan.skipped =
      `set it in Cursor by hand: Settings > Models > OpenAI API Key > Override OpenAI Base URL = ${context.routeUrl('openai')}/v1 ` +
      '(only calls made with your own OpenAI key are recorded).';
    return plan;
  },

  async traffic() {
    return { destinations: [{ url: "Cursor's servers", source: 'Cursor subscription traffic cannot be re-pointed' }] };
  },
};

/** Cursor keeps its settings in this SQLite database (per its public layout: ItemTable in globalStorage). */
function stateDatabase(context: Pick<ConnectContext, 'home' | 'env' | 'platform'>): string {
  const tail = ['Cursor', 'User', 'globalStorage', 'state.vscdb'];
  if (context.platform === 'darwin') return join(context.home, 'Library', 'Application Support', ...tail);
  if (context.platform === 'win32') return join(context.env.APPDATA ?? join(context.home, 'AppData', 'Roaming'), ...tail);
  return join(context.env.XDG_CONFIG_HOME || join(context.home, '.config'), ...tail);
}

/** True for an https URL whose host is a public name, not loopback, a private range or a `.local` name. */
export function isPublicHttps(serverUrl: string): boolean {
  const url = new URL(serverUrl);
  if (url.protocol !== 'https:') return false;
  const host = url.hostname.replace(/^\[|\]$/g, '');
  if (host === 'localhost' || host.endsWith('.localhost') || host.endsWith('.local') || host.endsWith('.internal')) return false;
  if (/^(127\.|10\.|192\.168\.|169\.254\.|172\.(1[6-9]|2\d|3[01])\.|0\.)/.test(host)) return false;
  if (host === '::1' || /^f[cd]/i.test(host) || /^fe80:/i.test(host)) return false;
  return host.includes('.') || host.includes(':');
}
