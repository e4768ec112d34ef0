import type { ShapeInfo } from '../api-shape.js';
import { createAnthropicMessagesParser } from './anthropic-messages.js';
import { createGeminiParser } from './gemini.js';
import { createOllamaParser } from './ollama.js';
import { createOpenAiChatParser } from './openai-chat.js';
import { createOpenAiResponsesParser } from './openai-responses.js';
import type { ShapeParser, ShapeParserOptions } from './shape-parser.js';

/** Create the parser for an exchange's API shape; null for shapes whose body carries no usage. */
export function createShapeParser(info: ShapeInfo, options: ShapeParserOptions): ShapeParser | null {
  switch (info.shape) {
    case 'anthropic.messages':
      return createAnthropicMessagesParser(options);
    case 'openai.chat_completions':
      return createOpenAiChatParser(options);
    case 'openai.responses':
      return createOpenAiResponsesParser(options);
    case 'gemini.generate_content':
    case 'gemini.stream_generate_content':
      return createGeminiParser({ ...options, wrapped: info.wrapped });
    case 'ollama.chat':
    case 'ollama.generate':
      return createOllamaParser(options);
    default:
      return null;
  }
}
