import { join } from 'node:path';
import { emptyPlan, type Target } from '../connect-types.js';
import { findExecutable, pathExists } from '../machine.js';

/**
 * Ollama is a model server, not a client: recording it means putting the proxy in front of it. connect
 * only describes what that would change and edits nothing yet.
 */
export const ollama: Target = {
  id: 'ollama',
  displayName: 'Ollama (local models)',

  async detect(context) {
    const evidence: string[] = [];
    const executable = await findExecutable('ollama', context.env, context.platform);
    if (executable) evidence.push(executable);
    if (await pathExists(join(context.home, '.ollama'))) evidence.push(join(context.home, '.ollama'));
    return { installed: evidence.length > 0, evidence };
  },

  async plan(context) {
    const plan = emptyPlan();
    const host = context.env.OLLAMA_HOST || 'http://127.0.0.1:11434';
    plan.skipped =
      `not changed: recording local models needs the proxy in front of Ollama (${host}), which a later release adds. ` +
      `It would point OLLAMA_HOST for the clients at ${context.routeUrl('ollama')} and forward to ${host}.`;
    return plan;
  },

  async traffic(context) {
    return {
      destinations: [
        { url: context.env.OLLAMA_HOST || 'http://127.0.0.1:11434', source: context.env.OLLAMA_HOST ? 'OLLAMA_HOST' : 'default' },
      ],
    };
  },
};
