import { createHash } from 'node:crypto';
import type { OfferedTool, PromptParts } from './prompt-parts.js';
import { isObject } from './prompt-parts.js';

/** A tool definition with its per-call parts normalized, as versions store and compare it. */
export interface NormalizedTool {
  name: string;
  /** Canonical JSON of the definition: sorted keys, no `cache_control`, text normalized. */
  definition: string;
}

/** The template identity and version of one request's prompt. */
export interface PromptTemplate {
  /** The first line of the normalized system prompt, at most `OPENING_MAX_CHARS`; empty without a system prompt. */
  opening: string;
  /**
   * SHA-256 (hex) of the tool, the opening and whether the request offered tools: the group a call belongs to.
   * Claude Code's title and summary calls open with the same line as its agent calls but offer no tools.
   */
  templateKey: string;
  /** True when the request offered no tool definitions at all (MCP tools count as offered). */
  withoutTools: boolean;
  /** SHA-256 (hex) of the whole normalized system prompt and tool definitions: the version within the group. */
  fingerprint: string;
  /** The normalized system prompt. */
  system: string;
  /** Normalized tool definitions, sorted by name. */
  tools: NormalizedTool[];
}

export const OPENING_MAX_CHARS = 100;

/**
 * Tools named `mcp__<server>__<tool>` come from the MCP servers a person configured (Claude Code's naming),
 * which differ between projects. They are left out of the version, so the same Claude Code release does
 * not count as a new version in every project.
 */
const MCP_TOOL = /^mcp__/;

/**
 * Build the template of a request's prompt. `models` are the requested and answered model names, which
 * the system prompt may mention ("The exact model ID is …") and which are replaced like the other
 * per-call parts, so a model switch is not a new version.
 */
export function promptTemplate(tool: string, parts: PromptParts, models: readonly (string | null)[] = []): PromptTemplate {
  const context = { models: models.filter((model): model is string => model !== null && model !== '') };
  const system = normalizePromptText(parts.system, context);
  const tools = parts.tools
    .filter((offered) => !MCP_TOOL.test(offered.name))
    .map((offered) => normalizeTool(offered, context))
    .sort(compareTools);
  const opening = openingOf(system);

  const fingerprint = sha256(`${system}\n\u0000tools\n${tools.map((offered) => `${offered.name}\u0000${offered.definition}`).join('\n')}`);
  // Requests with tools keep the key of the opening alone, so agent groups recorded before the split keep
  // their ids and history. NOTE: tool-less calls recorded before the split stay in the agent's old group.
  const withoutTools = parts.tools.length === 0;
  const templateKey = sha256(withoutTools ? `${tool}\n${opening}\n\u0000without tools` : `${tool}\n${opening}`);
  return { opening, templateKey, withoutTools, fingerprint, system, tools };
}

interface NormalizeContext {
  models: readonly string[];
}

const MONTHS =
  '(?:January|February|March|April|May|June|July|August|September|October|November|December|Jan|Feb|Mar|Apr|Jun|Jul|Aug|Sep|Sept|Oct|Nov|Dec)';
const WEEKDAYS = '(?:Monday|Tuesday|Wednesday|Thursday|Friday|Saturday|Sunday|Mon|Tue|Wed|Thu|Fri|Sat|Sun)';

/**
 * Lines and values that change on every call or every machine, replaced in order. Sources: Claude Code
 * 2.1 (billing line `x-anthropic-billing-header: cc_version=…`, an `<env>` block with the working
 * directory, platform and date, a `gitStatus:` snapshot, the model name and ID), Codex CLI 0.171
 * (`<environment_context>` with cwd, sandbox and shell) and Gemini CLI 0.61 (date and directory in prose).
 */
const TEXT_RULES: readonly [RegExp, string][] = [
  // The billing line carries the client version and a hash of the prompt.
  [/^.*(?:x-anthropic-billing-header|cc_version=).*$/gim, ''],
  [/<env>[\s\S]*?<\/env>/g, '<env>…</env>'],
  [/<environment_context>[\s\S]*?<\/environment_context>/g, '<environment_context>…</environment_context>'],
  [/(The exact model ID is )[^\s,;]+?(?=[.,;]?(?:\s|$))/gi, '$1<model>'],
  [/(powered by the model named ).+?(?=\.\s|\.?$)/gim, '$1<model>'],
  [/(knowledge cutoff(?: date)?(?: is|:) )[^.\n]+/gi, '$1<date>'],
  // `Key: value` lines of environment facts, wherever they appear.
  [
    /^(\s*[-*]?\s*(?:Working directory|Current working directory|Primary working directory|Additional working directories|Is directory a git repo|Platform|OS Version|Operating system|Shell|Today's date|Current date|Current time|Date|Time|Timezone|cwd|Current branch|Main branch[^:\n]*|Git user|Hostname)):[ \t].*$/gim,
    '$1: <value>',
  ],
  // The same facts in Gemini CLI's prose.
  [/^(\s*(?:My operating system is|I'm currently working in the directory|The current working directory is)):?[ \t].*$/gim, '$1: <value>'],
  [/\b[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}\b/gi, '<id>'],
  [/\b\d{4}-\d{2}-\d{2}(?:[T ]\d{2}:\d{2}(?::\d{2}(?:\.\d+)?)?(?:Z|[+-]\d{2}:?\d{2})?)?\b/g, '<date>'],
  [new RegExp(`\\b(?:${WEEKDAYS},?\\s+)?${MONTHS}\\.?\\s+\\d{1,2}(?:st|nd|rd|th)?,?\\s+\\d{4}\\b`, 'g'), '<date>'],
  [new RegExp(`\\b(?:${WEEKDAYS},?\\s+)?\\d{1,2}\\s+${MONTHS}\\.?,?\\s+\\d{4}\\b`, 'g'), '<date>'],
  [/\b\d{1,2}\/\d{1,2}\/\d{2,4}\b/g, '<date>'],
  [/\b\d{1,2}:\d{2}(?::\d{2})?(?:\s?[AP]M)?\b/gi, '<time>'],
  // Absolute paths of two or more segments; the look-behind keeps the paths of URLs.
  [/(?<![\w.:/~-])(?:~|\/)[\w.@+-]*(?:\/[\w.@+-]*[\w@+-])+\/?/g, '<path>'],
  [/\b[A-Za-z]:\\(?:[^\s"'<>|\\]+\\?)+/g, '<path>'],
  [/\b[0-9a-f]{16,}\b/gi, '<hex>'],
];

/** Replace the per-call parts of a prompt text and tidy its whitespace, so two calls of one template read alike. */
export function normalizePromptText(text: string, context: NormalizeContext = { models: [] }): string {
  let normalized = text.replace(/\r\n?/g, '\n');
  normalized = collapseGitStatus(normalized);
  for (const model of [...context.models].sort((a, b) => b.length - a.length)) {
    normalized = normalized.split(model).join('<model>');
  }
  for (const [pattern, replacement] of TEXT_RULES) normalized = normalized.replace(pattern, replacement);
  return normalized
    .split('\n')
    .map((line) => line.replace(/[ \t]+$/, ''))
    .join('\n')
    .replace(/\n{3,}/g, '\n\n')
    .trim();
}

/**
 * Replace Claude Code's `gitStatus:` snapshot (branch, changed files, recent commits) up to the next
 * heading or tag line, or to the end of the text, where Claude Code puts it.
 */
function collapseGitStatus(text: string): string {
  const lines = text.split('\n');
  const start = lines.findIndex((line) => /^gitStatus:/.test(line));
  if (start < 0) return text;
  let end = start + 1;
  while (end < lines.length && !/^(?:#{1,6} |<[A-Za-z_-]+>)/.test(lines[end]!)) end += 1;
  return [...lines.slice(0, start), 'gitStatus: <git status>', ...lines.slice(end)].join('\n');
}

function openingOf(system: string): string {
  const line = system
    .split('\n')
    .map((candidate) => candidate.replace(/\s+/g, ' ').trim())
    .find((candidate) => candidate !== '');
  if (line === undefined) return '';
  if (line.length <= OPENING_MAX_CHARS) return line;
  const cut = line.slice(0, OPENING_MAX_CHARS - 1);
  const space = cut.lastIndexOf(' ');
  return `${space > OPENING_MAX_CHARS / 2 ? cut.slice(0, space) : cut}…`;
}

function normalizeTool(offered: OfferedTool, context: NormalizeContext): NormalizedTool {
  return { name: offered.name, definition: JSON.stringify(canonical(offered.definition, context)) };
}

/** Sort object keys, drop `cache_control` (a caching hint, not part of the tool) and normalize every string. */
function canonical(value: unknown, context: NormalizeContext): unknown {
  if (typeof value === 'string') return normalizePromptText(value, context);
  if (Array.isArray(value)) return value.map((item) => canonical(item, context));
  if (!isObject(value)) return value;
  const sorted: Record<string, unknown> = {};
  for (const key of Object.keys(value).sort()) {
    if (key === 'cache_control') continue;
    sorted[key] = canonical(value[key], context);
  }
  return sorted;
}

/** Order tools by name, then by definition, with code-unit comparison so every runtime sorts alike. */
function compareTools(a: NormalizedTool, b: NormalizedTool): number {
  if (a.name !== b.name) return a.name < b.name ? -1 : 1;
  if (a.definition === b.definition) return 0;
  return a.definition < b.definition ? -1 : 1;
}

export function sha256(text: string): string {
  return createHash('sha256').update(text, 'utf8').digest('hex');
}

/** Name a group readably: the tool and the opening of its template. */
export function templateName(tool: string, opening: string): string {
  return opening === '' ? `${tool}: no system prompt` : `${tool}: ${opening}`;
}

/**
 * The opening a group stores and shows. A tool-less group gets " (no tools)" appended, so it reads apart from
 * the agent group with the same first line.
 */
export function groupOpening(template: PromptTemplate): string {
  return template.withoutTools && template.opening !== '' ? `${template.opening} (no tools)` : template.opening;
}
