import type { ApiShape } from '../call-record.js';

/** Characters of prompt text kept per call for search. */
export const PROMPT_TEXT_MAX_CHARS = 32 * 1024;

type Json = unknown;

/**
 * Extract the readable prompt of a request body for text search: the text of its messages, newest message
 * first, then the system prompt or instructions, joined by newlines and cut at `maxChars`. The newest
 * message comes first because it is what tells one call of a conversation from the next, while the system
 * prompt repeats on every call. Tool definitions, images, tool inputs and tool results are left out.
 * Returns null for a body that is not JSON of a known shape or has no text.
 */
export function extractPromptText(apiShape: ApiShape | null, body: string | null, maxChars = PROMPT_TEXT_MAX_CHARS): string | null {
  if (apiShape === null || body === null || body === '') return null;
  let parsed: Json;
  try {
    parsed = JSON.parse(body);
  } catch {
    return null;
  }
  if (!isObject(parsed)) return null;

  const parts = promptParts(apiShape, parsed);
  const text = parts
    .map((part) => part.trim())
    .filter((part) => part !== '')
    .join('\n');
  if (text === '') return null;
  return text.length <= maxChars ? text : text.slice(0, maxChars);
}

function promptParts(apiShape: ApiShape, body: Record<string, Json>): string[] {
  switch (apiShape) {
    case 'anthropic.messages':
    case 'anthropic.count_tokens':
      return [...newestFirst(body.messages, (message) => contentText(message.content)), contentText(body.system)];
    case 'openai.chat_completions':
      return newestFirst(body.messages, (message) => contentText(message.content));
    case 'openai.responses':
      return [
        ...(typeof body.input === 'string' ? [body.input] : newestFirst(body.input, (item) => contentText(item.content))),
        typeof body.instructions === 'string' ? body.instructions : '',
      ];
    case 'gemini.generate_content':
    case 'gemini.stream_generate_content': {
      // Code Assist wraps the Gemini request in `request`.
      const request = isObject(body.request) ? body.request : body;
      return [
        ...newestFirst(request.contents, (content) => partsText(content.parts)),
        partsText(asObject(request.systemInstruction)?.parts),
      ];
    }
    case 'ollama.chat':
      return newestFirst(body.messages, (message) => contentText(message.content));
    case 'ollama.generate':
      return [typeof body.prompt === 'string' ? body.prompt : '', typeof body.system === 'string' ? body.system : ''];
  }
}

function newestFirst(list: Json, text: (item: Record<string, Json>) => string): string[] {
  if (!Array.isArray(list)) return [];
  const texts: string[] = [];
  for (let index = list.length - 1; index >= 0; index -= 1) {
    const item = list[index];
    if (isObject(item)) texts.push(text(item));
  }
  return texts;
}

/** Text of an Anthropic or OpenAI `content`: a string, or the `text` of its text blocks. */
function contentText(content: Json): string {
  if (typeof content === 'string') return content;
  if (!Array.isArray(content)) return '';
  const texts: string[] = [];
  for (const block of content) {
    if (typeof block === 'string') texts.push(block);
    else if (isObject(block) && typeof block.text === 'string' && TEXT_BLOCK_TYPES.has(String(block.type ?? 'text')))
      texts.push(block.text);
  }
  return texts.join('\n');
}

/** Block types whose `text` is prompt or answer text (Anthropic `text`, OpenAI Responses `input_text` and `output_text`). */
const TEXT_BLOCK_TYPES = new Set(['text', 'input_text', 'output_text']);

function partsText(parts: Json): string {
  if (!Array.isArray(parts)) return '';
  return parts
    .filter((part): part is Record<string, Json> => isObject(part) && typeof part.text === 'string' && part.thought !== true)
    .map((part) => part.text as string)
    .join('\n');
}

function isObject(value: Json): value is Record<string, Json> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

function asObject(value: Json): Record<string, Json> | null {
  return isObject(value) ? value : null;
}
