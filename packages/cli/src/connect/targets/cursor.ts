import { join } from 'node:path';
import { isPlainObject } from '../config-formats.js';
import { type ConnectContext, emptyPlan, type MachineContext, type Target, type TargetPlan } from '../connect-types.js';
import { FileAccessError } from '../file-io.js';
import { findExecutable, pathExists } from '../machine.js';
import { findRunningProcess } from '../running-processes.js';
import { inspectItem, readItem, type SqliteItem } from '../sqlite-item.js';

/**
 * The row of `ItemTable` in `state.vscdb` with Cursor's application settings: a JSON object with
 * `openAIBaseUrl` ("Override OpenAI Base URL") and `useOpenAIKey` ("OpenAI API Key" turned on).
 * NOTE: the key and the field names come from public scripts that edit this database, not from running Cursor here.
 */
export const CURSOR_SETTINGS_ITEM: SqliteItem = {
  table: 'ItemTable',
  key: 'src.vs.platform.reactivestorage.browser.reactiveStorageServiceImpl.persistentStorage.applicationUser',
  ownerApp: { name: 'Cursor', processNames: ['cursor', 'cursor.exe'] },
};

/** Rows where Cursor keeps the person's OpenAI key (older builds in plain text, newer ones encrypted); only their presence is read. */
const OPENAI_KEY_ROWS = ['cursorAuth/openAIKey', 'secret://cursorAuth/openAIKey'];

/**
 * Cursor's own model traffic goes to Cursor's servers over its own protocol and cannot be re-pointed. Only
 * the bring-your-own-key "Override OpenAI Base URL" setting can, and Cursor calls that URL from its servers,
 * not from the desktop, so the Tokenwise server must have a public https URL. Connect writes the setting
 * into Cursor's settings database while Cursor is closed (it writes the database back when it exits).
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
    const baseUrl = publicOpenAiBaseUrl(context);
    if (baseUrl === null) {
      plan.skipped =
        `Cursor calls a custom OpenAI base URL from its own servers, which cannot reach ${context.serverUrl}; ` +
        'it needs the Tokenwise server at a public https URL (tokenwise serve --public-url https://…). ' +
        'Cursor subscription traffic cannot be re-pointed at all.';
      return plan;
    }

    const database = stateDatabase(context);
    const inspected = await inspectDatabase(database, context);
    if ('problem' in inspected) {
      plan.skipped = `${inspected.problem}. Or set it in Cursor by hand: ${manualSetting(baseUrl)}`;
      return plan;
    }

    const { hasKey, settings } = inspected;
    plan.files.push({
      path: database,
      format: 'json',
      item: CURSOR_SETTINGS_ITEM,
      settings: [{ key: ['openAIBaseUrl'], value: baseUrl }, ...(hasKey ? [{ key: ['useOpenAIKey'], value: true }] : [])],
    });
    addNotes(plan, hasKey, settings.useOpenAIKey === true);
    return plan;
  },

  async traffic(context) {
    const subscription = { url: "Cursor's servers", source: 'Cursor subscription traffic cannot be re-pointed' };
    const database = stateDatabase(context);
    let settings: Record<string, unknown>;
    try {
      settings = await readSettings(database);
    } catch (error) {
      if (!(error instanceof FileAccessError)) throw error;
      return { destinations: [subscription, { url: 'unknown', source: error.message }] };
    }
    const override = settings.openAIBaseUrl;
    if (typeof override !== 'string' || override === '' || settings.useOpenAIKey !== true) return { destinations: [subscription] };
    return { destinations: [subscription, { url: override, source: `openAIBaseUrl in ${database}, for calls with your own OpenAI key` }] };
  },
};

/** Return the OpenAI base URL for Cursor (`…/openai/v1`, as Cursor appends `/chat/completions`), or null without a public https URL. */
function publicOpenAiBaseUrl(context: ConnectContext): string | null {
  for (const routeUrl of [context.routeUrl('openai'), context.publicRouteUrl?.('openai')]) {
    if (routeUrl !== undefined && isPublicHttps(routeUrl)) return `${routeUrl}/v1`;
  }
  return null;
}

/**
 * Read the settings database in one pass: Cursor's settings and whether an OpenAI key is stored, or why
 * the database cannot be edited now.
 */
async function inspectDatabase(
  database: string,
  context: MachineContext,
): Promise<{ problem: string } | { settings: Record<string, unknown>; hasKey: boolean }> {
  if (!(await pathExists(database))) {
    return { problem: `Cursor has no settings database at ${database} yet: start Cursor once, quit it, and run connect again` };
  }
  // A failed process listing is reported when the change is planned, which checks again.
  const pid = await findRunningProcess(CURSOR_SETTINGS_ITEM.ownerApp!.processNames, context.platform).catch(() => null);
  if (pid !== null) {
    return {
      problem: `Cursor is running (process ${pid}): quit it and run connect again, because Cursor writes its settings database back when it exits`,
    };
  }
  try {
    const found = await inspectItem(database, CURSOR_SETTINGS_ITEM, OPENAI_KEY_ROWS);
    if (found.bytes === null) {
      return { problem: `${database} has no application settings yet: start Cursor once, quit it, and run connect again` };
    }
    return { settings: parseSettings(found.bytes), hasKey: found.presentKeys.length > 0 };
  } catch (error) {
    if (error instanceof FileAccessError) return { problem: error.message };
    throw error;
  }
}

/** Read Cursor's application settings; an empty object when the database or the row is missing. */
async function readSettings(database: string): Promise<Record<string, unknown>> {
  const value = await readItem(database, CURSOR_SETTINGS_ITEM);
  return value.bytes === null ? {} : parseSettings(value.bytes);
}

/** Parse the settings value; an empty object when it contains no JSON object (the plan then reports where it fails). */
function parseSettings(bytes: Uint8Array): Record<string, unknown> {
  try {
    const parsed: unknown = JSON.parse(new TextDecoder().decode(bytes));
    return isPlainObject(parsed) ? parsed : {};
  } catch {
    return {};
  }
}

function addNotes(plan: TargetPlan, hasKey: boolean, keyEnabled: boolean): void {
  plan.notes.push("Only calls Cursor makes with your own OpenAI API key are recorded; Cursor's own models cannot be re-pointed.");
  if (!hasKey) {
    plan.notes.push('No OpenAI API key is stored in Cursor: add yours in Settings > Models > OpenAI API Key and turn it on.');
  } else if (!keyEnabled) {
    plan.warnings.push(
      'this turns on your own OpenAI API key in Cursor, so OpenAI models bill your OpenAI account instead of your Cursor plan; disconnect turns it off again',
    );
  }
}

function manualSetting(baseUrl: string): string {
  return `Settings > Models > OpenAI API Key > Override OpenAI Base URL = ${baseUrl}`;
}

/** Cursor keeps its settings in this SQLite database (its globalStorage, as in VS Code). */
function stateDatabase(context: Pick<MachineContext, 'home' | 'env' | 'platform'>): string {
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
