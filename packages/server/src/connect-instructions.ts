/** Base URL of each supported tool's route for one route token, as the tool expects it. */
export interface ToolBaseUrls {
  /** Claude Code: the API root without `/v1`; it appends `/v1/messages`. */
  anthropic: string;
  /** Codex with an API key: ends in `/v1`; Codex appends `/responses`. */
  openai: string;
  /** Codex signed in with ChatGPT: the ChatGPT backend root; Codex appends `/responses`. */
  chatgpt: string;
  /** Gemini CLI with an API key: the root without `/v1beta`. */
  gemini: string;
  /** Gemini CLI signed in with Google (Code Assist): the root without `/v1internal`. */
  codeassist: string;
}

export function toolBaseUrls(serverUrl: string, routeToken: string): ToolBaseUrls {
  const root = `${serverUrl.replace(/\/+$/, '')}/r/${routeToken}`;
  return {
    anthropic: `${root}/anthropic`,
    openai: `${root}/openai/v1`,
    chatgpt: `${root}/chatgpt`,
    gemini: `${root}/gemini`,
    codeassist: `${root}/codeassist`,
  };
}

/**
 * The setup text `tokenwise serve` prints: for each tool, what to paste to send its calls through the
 * proxy. Settings file names and keys are those of Claude Code 2.1, Codex CLI 0.171 and Gemini CLI 0.61.
 */
export function formatConnectInstructions(serverUrl: string, routeToken: string): string {
  const urls = toolBaseUrls(serverUrl, routeToken);
  return `Point your AI tools at Tokenwise (the token in these URLs is your route token; keep it private):

Claude Code (shell, or the "env" object of ~/.claude/settings.json):
  export ANTHROPIC_BASE_URL=${urls.anthropic}

Codex with an API key, in ~/.codex/config.toml (the top-level key goes before any [table]):
  model_provider = "tokenwise"

  [model_providers.tokenwise]
  name = "Tokenwise"
  base_url = "${urls.openai}"
  env_key = "OPENAI_API_KEY"
  wire_api = "responses"

Codex signed in with ChatGPT, in ~/.codex/config.toml:
  model_provider = "tokenwise"

  [model_providers.tokenwise]
  name = "Tokenwise"
  base_url = "${urls.chatgpt}"
  wire_api = "responses"
  requires_openai_auth = true
  supports_websockets = false

Gemini CLI with an API key (and "security": {"auth": {"selectedType": "gemini-api-key"}} in ~/.gemini/settings.json):
  export GOOGLE_GEMINI_BASE_URL=${urls.gemini}

Gemini CLI signed in with Google:
  export CODE_ASSIST_ENDPOINT=${urls.codeassist}
`;
}
