import { parse as parseToml, patch as patchToml } from '@decimalturn/toml-patch';
import {
  applyEdits,
  type FormattingOptions,
  format,
  modify,
  type ParseError,
  parse as parseJsonc,
  printParseErrorCode,
} from 'jsonc-parser';
import type { JsonValue, StructuredFormat } from './connect-types.js';

/** A configuration file that does not parse; line and column count from 1. */
export class ConfigParseError extends Error {
  readonly file: string;
  readonly line: number;
  readonly column: number;

  constructor(file: string, line: number, column: number, problem: string) {
    super(`${file}:${line}:${column}: ${problem}`);
    this.name = 'ConfigParseError';
    this.file = file;
    this.line = line;
    this.column = column;
  }
}

/** Set `value` at `key`, or remove the key when `value` is undefined. */
export interface KeyEdit {
  key: string[];
  value: JsonValue | undefined;
}

export type ConfigObject = Record<string, unknown>;

/**
 * Parse a configuration file into its top-level object; an empty file is an empty object.
 *
 * `json` is strict (Claude Code 2.1 ignores its whole settings file when it contains a comment or a trailing
 * comma), `jsonc` allows comments but no trailing commas (Gemini CLI 0.61 rejects those), `toml` is TOML 1.0.
 */
export function parseConfig(format: StructuredFormat, text: string, file: string): ConfigObject {
  if (text.trim() === '') return {};
  return format === 'toml' ? parseTomlConfig(text, file) : parseJsonConfig(format, text, file);
}

/**
 * Apply key edits to a file's text and return the new text, changing nothing else: comments, key order,
 * indentation and line endings stay as they were. New files get a final newline.
 */
export function editConfig(format: StructuredFormat, text: string, edits: KeyEdit[], file: string): string {
  if (edits.length === 0) return text;
  const edited = format === 'toml' ? editToml(text, edits, file) : editJson(text, edits);
  return text.trim() === '' && !edited.endsWith('\n') ? `${edited}${lineEnding(text)}` : edited;
}

/** Return the value at a key path, or undefined when a key on the way is missing or not a table. */
export function valueAt(root: ConfigObject, key: string[]): unknown {
  let node: unknown = root;
  for (const part of key) {
    if (!isPlainObject(node) || !Object.hasOwn(node, part)) return undefined;
    node = node[part];
  }
  return node;
}

export function isPlainObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value) && !(value instanceof Date);
}

export function sameValue(left: unknown, right: unknown): boolean {
  if (left === right) return true;
  if (left instanceof Date || right instanceof Date) {
    return left instanceof Date && right instanceof Date && left.getTime() === right.getTime();
  }
  if (Array.isArray(left) || Array.isArray(right)) {
    return (
      Array.isArray(left) && Array.isArray(right) && left.length === right.length && left.every((item, i) => sameValue(item, right[i]))
    );
  }
  if (isPlainObject(left) && isPlainObject(right)) {
    const keys = Object.keys(left);
    return (
      keys.length === Object.keys(right).length && keys.every((name) => Object.hasOwn(right, name) && sameValue(left[name], right[name]))
    );
  }
  return false;
}

/** `\r\n` when the text already uses it, else `\n`. */
export function lineEnding(text: string): string {
  return text.includes('\r\n') ? '\r\n' : '\n';
}

function parseJsonConfig(format: 'json' | 'jsonc', text: string, file: string): ConfigObject {
  const errors: ParseError[] = [];
  const value: unknown = parseJsonc(text, errors, { disallowComments: format === 'json', allowTrailingComma: false });
  const first = errors[0];
  if (first) {
    const { line, column } = position(text, first.offset);
    throw new ConfigParseError(file, line, column, jsonProblem(printParseErrorCode(first.error), format));
  }
  if (!isPlainObject(value)) throw new ConfigParseError(file, 1, 1, 'expected a JSON object at the top level');
  return value;
}

function jsonProblem(code: string, format: 'json' | 'jsonc'): string {
  if (code === 'InvalidCommentToken') return 'comments are not allowed in this file, which must be strict JSON';
  if (code === 'PropertyNameExpected' || code === 'ValueExpected') {
    return `invalid JSON (${code}); a trailing comma is not allowed${format === 'jsonc' ? ', comments are' : ''}`;
  }
  return `invalid JSON (${code})`;
}

function parseTomlConfig(text: string, file: string): ConfigObject {
  try {
    return parseToml(text) as ConfigObject;
  } catch (error) {
    // toml-patch 3.3 reports a 1-based line and a 0-based column, and repeats the source line in its message.
    const located = error as { line?: unknown; column?: unknown; message?: string };
    const line = typeof located.line === 'number' ? located.line : 1;
    const column = typeof located.column === 'number' ? located.column + 1 : 1;
    const problem = (located.message ?? 'invalid TOML').split('\n').at(-1)?.trim() || 'invalid TOML';
    throw new ConfigParseError(file, line, column, `invalid TOML: ${problem}`);
  }
}

/**
 * jsonc-parser 3.3.1 widens an edit's formatting to whole lines, so it reflows the neighbouring property
 * too. Formatting only the inserted text keeps every byte around it.
 */
function editJson(text: string, edits: KeyEdit[]): string {
  const rewritten = rewriteOneLineJson(text, edits);
  if (rewritten !== null) return rewritten;
  const formattingOptions = { ...detectJsonFormatting(text), keepLines: false };
  let edited = text;
  for (const edit of edits) {
    for (const change of modify(edited, edit.key, edit.value, {})) {
      edited = applyEdits(edited, [change]);
      edited = applyEdits(edited, format(edited, { offset: change.offset, length: change.content.length }, formattingOptions));
    }
  }
  return edited;
}

/**
 * Write a new, empty or one-line JSON file (`{}`, `{ "theme": "dark" }`) whole, as JSON with 2-space
 * indentation: such a file has no indentation style to keep, and inserting formatted text into one line
 * splits it unevenly. Returns null for a file on several lines or with comments, which is edited in place.
 */
function rewriteOneLineJson(text: string, edits: KeyEdit[]): string | null {
  if (/[\r\n]/.test(text.trim())) return null;
  const errors: ParseError[] = [];
  const parsed: unknown = text.trim() === '' ? {} : parseJsonc(text, errors, { disallowComments: true, allowTrailingComma: false });
  if (errors.length > 0 || !isPlainObject(parsed)) return null;
  const document = structuredClone(parsed) as ConfigObject;
  for (const edit of edits) {
    if (edit.value === undefined) deleteAt(document, edit.key);
    else setAt(document, edit.key, edit.value);
  }
  // Edits that change no value leave the file's bytes alone.
  if (text.trim() !== '' && sameValue(parsed, document)) return text;
  return `${JSON.stringify(document, null, 2)}${lineEnding(text)}`;
}

/** Indent with what the file already uses (the first indented line), two spaces for a new file. */
function detectJsonFormatting(text: string): FormattingOptions {
  const indent = /^[ \t]+(?=\S)/m.exec(text)?.[0] ?? '  ';
  const tabs = indent.startsWith('\t');
  return { insertSpaces: !tabs, tabSize: tabs ? 1 : indent.length, eol: lineEnding(text) };
}

function editToml(text: string, edits: KeyEdit[], file: string): string {
  const document = parseConfig('toml', text, file);
  for (const edit of edits) {
    if (edit.value === undefined) deleteAt(document, edit.key);
    else setAt(document, edit.key, edit.value);
  }
  // inlineTableStart 3 writes a new `model_providers.tokenwise` as a `[model_providers.tokenwise]` section
  // instead of an inline table. toml-patch puts new top-level keys before the first table, as TOML requires.
  const format = text.trim() === '' ? { inlineTableStart: 3, newLine: '\n', trailingNewline: 1 } : { inlineTableStart: 3 };
  return patchToml(text, document, format);
}

function setAt(root: ConfigObject, key: string[], value: JsonValue): void {
  let node: Record<string, unknown> = root;
  for (const part of key.slice(0, -1)) {
    const next = node[part];
    if (!isPlainObject(next)) node[part] = {};
    node = node[part] as Record<string, unknown>;
  }
  node[key.at(-1)!] = value;
}

function deleteAt(root: ConfigObject, key: string[]): void {
  const parent = valueAt(root, key.slice(0, -1));
  if (isPlainObject(parent)) delete parent[key.at(-1)!];
}

function position(text: string, offset: number): { line: number; column: number } {
  const before = text.slice(0, offset);
  const line = before.split('\n').length;
  const column = offset - (before.lastIndexOf('\n') + 1) + 1;
  return { line, column };
}
