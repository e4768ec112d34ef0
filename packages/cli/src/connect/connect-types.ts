import type { ToolId } from '@tokenwise/core';
import type { ShellKind } from './profile-block.js';
import type { SqliteItem } from './sqlite-item.js';

/** The tools `connect` supports; the ids are the `tool` values of call records. */
export type TargetId = Extract<ToolId, 'claude-code' | 'claude-cli' | 'codex' | 'gemini-cli' | 'cursor' | 'ollama'>;

export type JsonValue = string | number | boolean | null | JsonValue[] | { [key: string]: JsonValue };

/** The machine a target looks at: the person's home, the command's environment, the platform. */
export interface MachineContext {
  home: string;
  env: NodeJS.ProcessEnv;
  platform: NodeJS.Platform;
  /** The data directory of this connect run; a server on this machine reads its settings files there. */
  dataDir?: string;
}

/** The machine and the connection a target plans for. */
export interface ConnectContext extends MachineContext {
  /** Origin (and path, if any) of the Tokenwise server, without a trailing slash. */
  serverUrl: string;
  /** Base URL of a route for this connection: `{server}/r/{token}/{route}`. */
  routeUrl(route: string): string;
  /**
   * Base URL of a route at the server's public URL (`tokenwise serve --public-url`), when the server reports
   * one: for tools whose calls come from elsewhere on the internet (Cursor's servers) rather than this machine.
   */
  publicRouteUrl?(route: string): string;
  dataDir: string;
}

export interface Detection {
  installed: boolean;
  /** Why the tool counts as installed: an executable on PATH, a config directory. */
  evidence: string[];
}

/** A value to set in a JSON, JSONC or TOML file, at a key path such as `['env', 'ANTHROPIC_BASE_URL']`. */
export interface Setting {
  key: string[];
  value: JsonValue;
  /** Set the value only when the key is absent, and leave a present value alone (for example an auth type). */
  onlyIfMissing?: boolean;
}

export type StructuredFormat = 'json' | 'jsonc' | 'toml';

export interface StructuredChange {
  path: string;
  format: StructuredFormat;
  settings: Setting[];
  /** Set when the document is the value of a row in the SQLite database at `path`, not the file itself. */
  item?: SqliteItem;
}

export interface TargetPlan {
  /** Edits of the tool's own configuration files. */
  files: StructuredChange[];
  /** Environment variables for the shell profiles; every target's variables share one marked block per profile. */
  profileVars: Record<string, string>;
  /** Files that get a marked block of this target's variables only, such as a systemd drop-in. */
  blockFiles?: Array<{ path: string; shell: ShellKind; vars: Record<string, string> }>;
  /** Facts about this plan for the person. */
  notes: string[];
  /** Points that need the person's attention before applying: a value replaced, history hidden, a setting that overrides ours. */
  warnings: string[];
  /** The variant chosen, when a tool can be connected in several ways (for Codex: `api-key` or `chatgpt`). */
  variant?: string;
  /** Set when nothing can be applied for this tool; the reason is shown instead. */
  skipped?: string;
}

/** The destinations of a tool's model traffic now, for `tokenwise status`. */
export interface TrafficReport {
  /** Base URLs in effect, each with where the value comes from. */
  destinations: Array<{ url: string; source: string }>;
  /** Set by a target whose traffic reaches Tokenwise without a route URL (Ollama's clients, through the observer). */
  throughTokenwise?: boolean;
}

/**
 * One AI tool that `connect` can point at Tokenwise. A target only reads files: it returns what to set,
 * and the connect engine edits, backs up and records every change, so `disconnect` can undo exactly that.
 */
export interface Target {
  id: TargetId;
  displayName: string;
  detect(context: MachineContext): Promise<Detection>;
  plan(context: ConnectContext): Promise<TargetPlan>;
  /** Read where the tool's traffic goes now from its configuration and the environment. */
  traffic(context: MachineContext): Promise<TrafficReport>;
}

export function emptyPlan(): TargetPlan {
  return { files: [], profileVars: {}, notes: [], warnings: [] };
}
