import type { ToolId } from '../call-record.js';

export interface ToolIdentity {
  tool: ToolId;
  version: string | null;
  /** Raw user agent, kept so an `unknown` tool can be identified later. */
  userAgent: string | null;
}

interface ToolRule {
  tool: ToolId;
  /** Returns the version (or '' when the tool is recognized without one), or null when the rule does not apply. */
  match(userAgent: string, headers: Readonly<Record<string, string>>): string | null;
}

const VERSION = '([0-9][\\w.+-]*)';

function userAgentVersion(pattern: RegExp): ToolRule['match'] {
  return (userAgent) => pattern.exec(userAgent)?.[1] ?? null;
}

/**
 * First match wins, so the more specific clients come before the SDKs they are built on. Sources:
 * Claude Code 2.1 sends `claude-cli/<v> (external, <entrypoint>)`; Anthropic's `ant` CLI sends
 * `Anthropic/CLI <v>` and `x-stainless-lang: cli`; Codex sends an `originator` header and
 * `codex_exec/<v>` or `codex_cli_rs/<v>`; Gemini CLI sends `GeminiCLI/<v>/…` or `GeminiCLI-tui/<v>/…`.
 */
const RULES: readonly ToolRule[] = [
  { tool: 'tokenwise-judge', match: userAgentVersion(new RegExp(`^tokenwise-judge/${VERSION}`)) },
  { tool: 'claude-code', match: userAgentVersion(new RegExp(`^claude-cli/${VERSION}`, 'i')) },
  {
    tool: 'claude-cli',
    match: (userAgent, headers) =>
      new RegExp(`^Anthropic/CLI ${VERSION}`, 'i').exec(userAgent)?.[1] ??
      (headers['x-stainless-lang'] === 'cli' ? (headers['x-stainless-package-version'] ?? '') : null),
  },
  {
    tool: 'codex',
    match: (userAgent, headers) =>
      new RegExp(`^codex[\\w-]*/${VERSION}`, 'i').exec(userAgent)?.[1] ??
      (headers.originator?.startsWith('codex') ? (headers.version ?? '') : null),
  },
  { tool: 'gemini-cli', match: userAgentVersion(new RegExp(`\\bGeminiCLI(?:-[\\w]+)?/${VERSION}`)) },
  {
    tool: 'cursor',
    match: (userAgent, headers) =>
      new RegExp(`\\bCursor/${VERSION}`, 'i').exec(userAgent)?.[1] ?? headers['x-cursor-client-version'] ?? null,
  },
  { tool: 'ollama', match: userAgentVersion(new RegExp(`^ollama/${VERSION}`, 'i')) },
  { tool: 'anthropic-sdk', match: userAgentVersion(new RegExp(`^Anthropic/\\w+ ${VERSION}`)) },
  { tool: 'openai-sdk', match: userAgentVersion(new RegExp(`^(?:Async)?OpenAI/\\w+ ${VERSION}`)) },
  {
    tool: 'google-genai-sdk',
    match: (userAgent, headers) => {
      const pattern = new RegExp(`\\bgoogle-genai-sdk/${VERSION}`);
      return pattern.exec(headers['x-goog-api-client'] ?? '')?.[1] ?? pattern.exec(userAgent)?.[1] ?? null;
    },
  },
];

/** Identify the AI tool or SDK that sent a request, from its headers (lowercase names). */
export function detectTool(headers: Readonly<Record<string, string>>): ToolIdentity {
  const userAgent = headers['user-agent'] ?? null;
  for (const rule of RULES) {
    const version = rule.match(userAgent ?? '', headers);
    if (version !== null) return { tool: rule.tool, version: version === '' ? null : version, userAgent };
  }
  return { tool: 'unknown', version: null, userAgent };
}
