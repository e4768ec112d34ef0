import { describe, expect, it } from 'vitest';
import { detectTool } from './tool.js';

describe('detectTool', () => {
  it.each([
    ['Claude Code', { 'user-agent': 'claude-cli/2.1.197 (external, sdk-cli)', 'x-stainless-lang': 'js' }, 'claude-code', '2.1.197'],
    ["Anthropic's ant CLI", { 'user-agent': 'Anthropic/CLI 1.4.0', 'x-stainless-lang': 'cli' }, 'claude-cli', '1.4.0'],
    ['ant without its user agent', { 'x-stainless-lang': 'cli', 'x-stainless-package-version': '1.4.0' }, 'claude-cli', '1.4.0'],
    [
      'Codex exec',
      { 'user-agent': 'codex_exec/0.171.0 (Debian 12.0.0; x86_64) xterm (codex_exec; 0.171.0)', originator: 'codex_exec' },
      'codex',
      '0.171.0',
    ],
    [
      'older Codex',
      { 'user-agent': 'codex_cli_rs/0.46.0 (Ubuntu 24.4.0; x86_64) xterm-256color', originator: 'codex_cli_rs' },
      'codex',
      '0.46.0',
    ],
    ['Codex by originator only', { originator: 'codex_vscode', version: '0.170.1' }, 'codex', '0.170.1'],
    ['Gemini CLI', { 'user-agent': 'GeminiCLI/0.61.0/gemini-2.5-pro (linux; x64)' }, 'gemini-cli', '0.61.0'],
    [
      'Gemini CLI TUI on the Gemini API',
      {
        'user-agent': 'GeminiCLI-tui/0.61.0/gemini-2.5-flash (linux; x64; terminal)',
        'x-goog-api-client': 'google-genai-sdk/1.30.0 gl-node/v20.20.2',
      },
      'gemini-cli',
      '0.61.0',
    ],
    ['Cursor', { 'user-agent': 'Mozilla/5.0 Cursor/1.7.2' }, 'cursor', '1.7.2'],
    ['Ollama', { 'user-agent': 'ollama/0.12.3 (amd64 linux) Go/go1.24.1' }, 'ollama', '0.12.3'],
    ['Anthropic JS SDK', { 'user-agent': 'Anthropic/JS 0.68.0' }, 'anthropic-sdk', '0.68.0'],
    ['Anthropic Python SDK', { 'user-agent': 'Anthropic/Python 0.69.0' }, 'anthropic-sdk', '0.69.0'],
    ['OpenAI JS SDK', { 'user-agent': 'OpenAI/JS 6.9.1' }, 'openai-sdk', '6.9.1'],
    ['OpenAI Python SDK (async)', { 'user-agent': 'AsyncOpenAI/Python 1.109.1' }, 'openai-sdk', '1.109.1'],
    [
      'Google GenAI SDK',
      { 'user-agent': 'google-genai-sdk/1.30.0 gl-node/v20.20.2', 'x-goog-api-client': 'google-genai-sdk/1.30.0 gl-node/v20.20.2' },
      'google-genai-sdk',
      '1.30.0',
    ],
    ["Tokenwise's LLM judge", { 'user-agent': 'tokenwise-judge/0.1.0' }, 'tokenwise-judge', '0.1.0'],
  ])('recognizes %s', (_name, headers: Record<string, string>, tool, version) => {
    expect(detectTool(headers)).toEqual({ tool, version, userAgent: headers['user-agent'] ?? null });
  });

  it('keeps the raw user agent of an unknown tool', () => {
    expect(detectTool({ 'user-agent': 'curl/8.5.0' })).toEqual({ tool: 'unknown', version: null, userAgent: 'curl/8.5.0' });
  });

  it('returns unknown without a user agent', () => {
    expect(detectTool({})).toEqual({ tool: 'unknown', version: null, userAgent: null });
  });
});
