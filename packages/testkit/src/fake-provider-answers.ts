/**
 * The fixed answers of the live fake provider. Tests check recorded tokens and cost against these numbers,
 * so they never depend on what a client asked: every model call gets the same text, model and usage for
 * its API family, whatever the prompt says.
 */

/** The text every model answer carries; a client that printed it got the fake provider's answer. */
export const FAKE_ANSWER_TEXT = 'hi from the fake provider';

/** The shell command a tool-call answer asks the client to run, and what that command prints. */
export const FAKE_TOOL_COMMAND = 'echo hi-from-tool';
export const FAKE_TOOL_OUTPUT = 'hi-from-tool';

/** The model each API family answers with, whatever the request named (dated snapshots, as the real APIs answer). */
export const FAKE_MODELS = {
  anthropic: 'claude-sonnet-4-5-20250929',
  openai: 'gpt-5-2025-08-07',
  gemini: 'gemini-2.5-flash',
} as const;

/**
 * Usage as each provider reports it on the wire (provider field names). Each family has different
 * numbers so that a record priced with the wrong family's usage shows up.
 */
export const FAKE_USAGE = {
  /** Anthropic Messages: `input_tokens` excludes the cache reads and writes; writes split by TTL. */
  anthropic: {
    input_tokens: 100,
    cache_read_input_tokens: 40,
    cache_creation_input_tokens: 30,
    ephemeral_5m_input_tokens: 10,
    ephemeral_1h_input_tokens: 20,
    output_tokens: 12,
  },
  /** OpenAI Chat Completions and Responses: cached and reasoning tokens are subsets of input and output. */
  openai: {
    input_tokens: 150,
    cached_tokens: 50,
    output_tokens: 20,
    reasoning_tokens: 8,
  },
  /** Gemini `usageMetadata`: `candidatesTokenCount` excludes `thoughtsTokenCount`. */
  gemini: {
    promptTokenCount: 150,
    cachedContentTokenCount: 50,
    candidatesTokenCount: 12,
    thoughtsTokenCount: 8,
  },
  /** `input_tokens` of Anthropic's count_tokens answer and `totalTokens` of Gemini's countTokens answer. */
  countTokens: 170,
} as const;

/**
 * Usage of the answer to a Codex WebSocket prewarm (`response.create` with `generate: false`): the fake
 * generates nothing, so it reports no tokens at all.
 */
export const FAKE_PREWARM_USAGE = { input_tokens: 0, cached_tokens: 0, output_tokens: 0, reasoning_tokens: 0 } as const;
