import type { ApiShape } from '@tokenwise/core';

/** One tool definition a request offers the model, as sent. */
export interface OfferedTool {
  name: string;
  /** The definition object as sent (Anthropic tool, OpenAI function, Gemini function declaration). */
  definition: Record<string, unknown>;
}

/** The parts of a request that make up its prompt template: the system prompt and the tool definitions. */
export interface PromptParts {
  /** System prompt text, blocks joined by a blank line; empty when the request has none. */
  system: string;
  tools: OfferedTool[];
}

/** The tool results at the end of a request's conversation, which return the previous call's tool calls. */
export interface ReturnedToolResults {
  /** Number of tool results at the end of the conversation. */
  count: number;
  /** Names of the tools whose result is marked as an error, in order; `unknown` when the name is not in the request. */
  failedTools: string[];
}

type Json = Record<string, unknown>;

/** API shapes whose requests are model calls with a prompt; token counting and non-API exchanges have no template. */
export function isPromptShape(apiShape: ApiShape | null): apiShape is ApiShape {
  return apiShape !== null && apiShape !== 'anthropic.count_tokens';
}

/**
 * Read the system prompt and the tool definitions of a parsed request body. Anthropic's `system` (text or
 * blocks); the leading `system` and `developer` messages of OpenAI Chat, the Responses API and Ollama chat,
 * plus Responses `instructions`; Gemini's `systemInstruction` (inside `request` for Code Assist).
 */
export function extractPromptParts(apiShape: ApiShape, body: Json): PromptParts {
  switch (apiShape) {
    case 'anthropic.messages':
    case 'anthropic.count_tokens':
      return { system: blocksText(body.system), tools: anthropicTools(body.tools) };
    case 'openai.chat_completions':
    case 'ollama.chat':
      return { system: leadingSystemMessages(body.messages), tools: openAiTools(body.tools) };
    case 'openai.responses': {
      const instructions = typeof body.instructions === 'string' ? body.instructions : '';
      const leading = Array.isArray(body.input) ? leadingSystemMessages(body.input) : '';
      return { system: joinBlocks([instructions, leading]), tools: openAiTools(body.tools) };
    }
    case 'gemini.generate_content':
    case 'gemini.stream_generate_content': {
      const request = isObject(body.request) ? body.request : body;
      const instruction = request.systemInstruction;
      const system = typeof instruction === 'string' ? instruction : isObject(instruction) ? partsText(instruction.parts) : '';
      return { system, tools: geminiTools(request.tools) };
    }
    case 'ollama.generate':
      return { system: typeof body.system === 'string' ? body.system : '', tools: [] };
  }
}

/**
 * Read the tool results at the end of a request's conversation and which of them failed. A failure is
 * Anthropic's `is_error: true`, a Gemini `functionResponse` whose `response` has an `error`, or a
 * Responses `function_call_output` that reports a non-zero exit code (Codex's shell output).
 */
export function extractReturnedToolResults(apiShape: ApiShape, body: Json): ReturnedToolResults {
  switch (apiShape) {
    case 'anthropic.messages':
      return anthropicToolResults(body.messages);
    case 'openai.responses':
      return responsesToolResults(body.input);
    case 'gemini.generate_content':
    case 'gemini.stream_generate_content':
      return geminiToolResults((isObject(body.request) ? body.request : body).contents);
    default:
      // NOTE: Chat Completions and Ollama tool messages carry no error flag, so their failures are not detected.
      return { count: 0, failedTools: [] };
  }
}

function anthropicTools(tools: unknown): OfferedTool[] {
  if (!Array.isArray(tools)) return [];
  return tools.filter(isObject).flatMap((tool) => (typeof tool.name === 'string' ? [{ name: tool.name, definition: tool }] : []));
}

function openAiTools(tools: unknown): OfferedTool[] {
  if (!Array.isArray(tools)) return [];
  const offered: OfferedTool[] = [];
  for (const tool of tools.filter(isObject)) {
    // Chat Completions nests the function; the Responses API and built-in tools (`web_search`) do not.
    const fn = isObject(tool.function) ? tool.function : null;
    const name = [fn?.name, tool.name, tool.type].find((candidate): candidate is string => typeof candidate === 'string');
    if (name !== undefined) offered.push({ name, definition: tool });
  }
  return offered;
}

function geminiTools(tools: unknown): OfferedTool[] {
  if (!Array.isArray(tools)) return [];
  const offered: OfferedTool[] = [];
  for (const tool of tools.filter(isObject)) {
    if (Array.isArray(tool.functionDeclarations)) {
      for (const declaration of tool.functionDeclarations.filter(isObject)) {
        if (typeof declaration.name === 'string') offered.push({ name: declaration.name, definition: declaration });
      }
    } else {
      // Built-in tools such as `{"googleSearch": {}}` are named by their only key.
      const [key] = Object.keys(tool);
      if (key !== undefined) offered.push({ name: key, definition: tool });
    }
  }
  return offered;
}

/** Text of the `system` and `developer` messages before the first other message. */
function leadingSystemMessages(messages: unknown): string {
  if (!Array.isArray(messages)) return '';
  const texts: string[] = [];
  for (const message of messages) {
    if (!isObject(message) || (message.role !== 'system' && message.role !== 'developer')) break;
    texts.push(blocksText(message.content));
  }
  return joinBlocks(texts);
}

/** Text of a string or of the text blocks of a content array (`text`, `input_text`). */
function blocksText(content: unknown): string {
  if (typeof content === 'string') return content;
  if (!Array.isArray(content)) return '';
  return joinBlocks(
    content.map((block) => {
      if (typeof block === 'string') return block;
      if (isObject(block) && typeof block.text === 'string') return block.text;
      return '';
    }),
  );
}

function partsText(parts: unknown): string {
  if (!Array.isArray(parts)) return '';
  return joinBlocks(parts.map((part) => (isObject(part) && typeof part.text === 'string' ? part.text : '')));
}

function joinBlocks(blocks: string[]): string {
  return blocks.filter((block) => block.trim() !== '').join('\n\n');
}

function anthropicToolResults(messages: unknown): ReturnedToolResults {
  if (!Array.isArray(messages)) return { count: 0, failedTools: [] };
  const last = messages.at(-1);
  if (!isObject(last) || last.role !== 'user' || !Array.isArray(last.content)) return { count: 0, failedTools: [] };

  const names = new Map<string, string>();
  const previous = messages.at(-2);
  if (isObject(previous) && Array.isArray(previous.content)) {
    for (const block of previous.content.filter(isObject)) {
      if (block.type === 'tool_use' && typeof block.id === 'string' && typeof block.name === 'string') names.set(block.id, block.name);
    }
  }
  const results = last.content.filter((block): block is Json => isObject(block) && block.type === 'tool_result');
  const failedTools = results.filter((block) => block.is_error === true).map((block) => names.get(String(block.tool_use_id)) ?? 'unknown');
  return { count: results.length, failedTools };
}

/** A shell exit code other than 0 in a tool's output, as Codex reports it ("Process exited with code 1", "Exit code: 2"). */
const FAILED_EXIT = /\b(?:exited with code|exit code:?)\s*(-?[1-9]\d*)\b/i;

function responsesToolResults(input: unknown): ReturnedToolResults {
  if (!Array.isArray(input)) return { count: 0, failedTools: [] };
  // The results of the last turn are the trailing run of tool items (calls, outputs and reasoning).
  const trailing: Json[] = [];
  for (let index = input.length - 1; index >= 0; index -= 1) {
    const item = input[index];
    if (!isObject(item) || typeof item.type !== 'string' || item.type === 'message') break;
    trailing.unshift(item);
  }
  const names = new Map<string, string>();
  for (const item of trailing) {
    if (typeof item.call_id === 'string' && typeof item.name === 'string') names.set(item.call_id, item.name);
  }
  const outputs = trailing.filter((item) => item.type === 'function_call_output' || item.type === 'custom_tool_call_output');
  const failedTools = outputs.filter((item) => outputFailed(item.output)).map((item) => names.get(String(item.call_id)) ?? 'unknown');
  return { count: outputs.length, failedTools };
}

function outputFailed(output: unknown): boolean {
  if (typeof output !== 'string') return false;
  // Older Codex versions send a JSON string with `metadata.exit_code`.
  if (output.startsWith('{')) {
    try {
      const parsed = JSON.parse(output) as unknown;
      const exitCode = isObject(parsed) && isObject(parsed.metadata) ? parsed.metadata.exit_code : undefined;
      if (typeof exitCode === 'number') return exitCode !== 0;
    } catch {
      // Not JSON after all: read it as text.
    }
  }
  return FAILED_EXIT.test(output);
}

function geminiToolResults(contents: unknown): ReturnedToolResults {
  if (!Array.isArray(contents)) return { count: 0, failedTools: [] };
  const last = contents.at(-1);
  if (!isObject(last) || !Array.isArray(last.parts)) return { count: 0, failedTools: [] };
  const responses = last.parts.filter(isObject).flatMap((part) => (isObject(part.functionResponse) ? [part.functionResponse] : []));
  const failedTools = responses
    .filter((response) => isObject(response.response) && response.response.error !== undefined)
    .map((response) => (typeof response.name === 'string' ? response.name : 'unknown'));
  return { count: responses.length, failedTools };
}

export function isObject(value: unknown): value is Json {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}
