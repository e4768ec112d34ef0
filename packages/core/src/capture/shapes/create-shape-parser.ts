import type { ShapeInfo } from '../api-shape.js';
import { createAnthropicMessagesParser } from './anthropic-messages.js';
import type { ShapeParser, ShapeParserOptions } from './shape-parser.js';

/** The parser for an exchange's API shape; null for shapes whose body carries no usage. */
export function createShapeParser(info: ShapeInfo, options: ShapeParserOptions): ShapeParser | null {
  switch (info.shape) {
    case 'anthropic.messages':
      return createAnthropicMessagesParser(options);
    default:
      return null;
  }
}
