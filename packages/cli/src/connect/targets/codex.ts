import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { isPlainObject, valueAt } from '../config-formats.js';
import { type ConnectContext, emptyPlan, type Setting, type Target, type TargetPlan } from '../connect-types.js';
import { findExecutable, pathExists } from '../machine.js';
import { isString, readConfig } from './target-helpers.js';

/** Provider id connect adds for ChatGPT logins; `openai` is reserved (Codex rejects overriding built-in providers). */
export const CODEX_PROVIDER_ID = 'tokenwise';

type CodexLogin = 'chatgpt' | 'api-key';

/**
 * Codex CLI 0.171 (`$CODEX_HOME/config.toml`, default `~/.codex/config.toml`).
 *
 * With an API key, connect sets the top-level `openai_base_url` and keeps the built-in `openai` provider.
 * `codex resume` lists sessions per provider, so this keeps every earlier session listed; the built-in
 * provider talks Responses over a WebSocket, which the proxy relays. (`OPENAI_BASE_URL` is ignored by 0.171.)
 *
 * With a ChatGPT login (`auth_mode: "chatgpt"` in auth.json), `openai_base_url` cannot work: Codex first requests
 * the workspace backend from chatgpt.com and requires an https origin in the response. So connect adds the
 * `tokenwise` provider with `requires_openai_auth = true` on the `chatgpt` route, and warns that `codex resume`
 * then lists only the sessions of that provider. auth.json is only read, never written.
 */
export const codex: Target = {
  id: 'codex',
  displayName: 'Codex CLI',

  async detect(context) {
    const evidence: string[] = [];
    const executable = await findExecutable('codex', context.env, context.platform);
    if (executable) evidence.push(executable);
    if (await pathExists(codexHome(context))) evidence.push(codexHome(context));
    return { installed: evidence.length > 0, evidence };
  },

  async plan(context): Promise<TargetPlan> {
    const plan = emptyPlan();
    const configPath = join(codexHome(context), 'config.toml');
    const login = await readLogin(context);
    plan.variant = login;

    const { document } = await readConfig(configPath, 'toml');
    const provider = valueAt(document ?? {}, ['model_provider']);
    if (login === 'api-key' && isString(provider) && provider !== 'openai' && provider !== CODEX_PROVIDER_ID) {
      const baseUrl = valueAt(document ?? {}, ['model_providers', provider, 'base_url']);
      plan.skipped =
        `Codex uses the model provider "${provider}"${isString(baseUrl) ? ` at ${baseUrl}` : ''}, such as a gateway or a local model server. ` +
        'Tokenwise forwards only to the routes its server knows: ask the operator to add that URL as a route (--upstream NAME=URL), ' +
        `or set model_provider = "openai" in ${configPath} and run connect again.`;
      return plan;
    }

    plan.files.push({
      path: configPath,
      format: 'toml',
      settings: login === 'chatgpt' ? chatgptSettings(context) : apiKeySettings(context),
    });
    if (login === 'chatgpt') {
      plan.warnings.push(
        `Signed in with ChatGPT: Codex needs its own provider "${CODEX_PROVIDER_ID}" to pass the login through a proxy. ` +
          '"codex resume" lists the sessions of the current provider only, so sessions from before connect are hidden until disconnect, ' +
          'and sessions made while connected are hidden after it.',
      );
    } else {
      plan.notes.push('Keeps the built-in "openai" provider, so "codex resume" still lists every earlier session.');
    }
    for (const profile of profilesOverridingProvider(document)) {
      plan.warnings.push(
        `The profile "${profile}" in ${configPath} sets its own model_provider or openai_base_url; runs with --profile ${profile} bypass Tokenwise.`,
      );
    }
    return plan;
  },

  async traffic(context) {
    const configPath = join(codexHome(context), 'config.toml');
    const { document, problem } = await readConfig(configPath, 'toml');
    if (problem) return { destinations: [{ url: 'unknown', source: problem }] };
    const provider = valueAt(document ?? {}, ['model_provider']);
    if (isString(provider) && provider !== 'openai') {
      const baseUrl = valueAt(document ?? {}, ['model_providers', provider, 'base_url']);
      return { destinations: [{ url: isString(baseUrl) ? baseUrl : 'unknown', source: `model provider "${provider}" in ${configPath}` }] };
    }
    const baseUrl = valueAt(document ?? {}, ['openai_base_url']);
    if (isString(baseUrl)) return { destinations: [{ url: baseUrl, source: `openai_base_url in ${configPath}` }] };
    const login = await readLogin(context);
    return {
      destinations: [
        { url: login === 'chatgpt' ? 'https://chatgpt.com/backend-api/codex' : 'https://api.openai.com/v1', source: 'default' },
      ],
    };
  },
};

function apiKeySettings(context: ConnectContext): Setting[] {
  return [{ key: ['openai_base_url'], value: `${context.routeUrl('openai')}/v1` }];
}

/** Build the provider table for a ChatGPT login; Codex appends `/responses` to the `chatgpt` route's URL. */
function chatgptSettings(context: ConnectContext): Setting[] {
  const table = ['model_providers', CODEX_PROVIDER_ID];
  return [
    { key: ['model_provider'], value: CODEX_PROVIDER_ID },
    { key: [...table, 'name'], value: 'Tokenwise' },
    { key: [...table, 'base_url'], value: context.routeUrl('chatgpt') },
    { key: [...table, 'wire_api'], value: 'responses' },
    { key: [...table, 'requires_openai_auth'], value: true },
    // Custom providers default to HTTPS with server-sent events; written out for readers of config.toml.
    { key: [...table, 'supports_websockets'], value: false },
  ];
}

function codexHome(context: Pick<ConnectContext, 'env' | 'home'>): string {
  return context.env.CODEX_HOME || join(context.home, '.codex');
}

/** Read how the person signs in to Codex from auth.json, without changing it. No auth.json means an API key from the environment. */
async function readLogin(context: Pick<ConnectContext, 'env' | 'home'>): Promise<CodexLogin> {
  let auth: unknown;
  try {
    auth = JSON.parse(await readFile(join(codexHome(context), 'auth.json'), 'utf8'));
  } catch {
    return 'api-key';
  }
  return isPlainObject(auth) && auth.auth_mode === 'chatgpt' ? 'chatgpt' : 'api-key';
}

function profilesOverridingProvider(document: Record<string, unknown> | null): string[] {
  const profiles = valueAt(document ?? {}, ['profiles']);
  if (!isPlainObject(profiles)) return [];
  return Object.entries(profiles)
    .filter(([, profile]) => isPlainObject(profile) && (profile.model_provider !== undefined || profile.openai_base_url !== undefined))
    .map(([name]) => name);
}
