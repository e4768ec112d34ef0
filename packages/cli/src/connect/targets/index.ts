import type { Target, TargetId } from '../connect-types.js';
import { claudeCli } from './claude-cli.js';
import { claudeCode } from './claude-code.js';
import { codex } from './codex.js';
import { cursor } from './cursor.js';
import { geminiCli } from './gemini-cli.js';
import { ollama } from './ollama.js';

/** Every tool connect knows, in the order it shows them. */
export const TARGETS: readonly Target[] = [claudeCode, claudeCli, codex, geminiCli, cursor, ollama];

export function targetById(id: TargetId): Target {
  return TARGETS.find((target) => target.id === id)!;
}
