import { structuredPatch } from 'diff';
import { isObject } from './prompt-parts.js';
import type { NormalizedTool } from './prompt-template.js';

/** A hunk of a line diff: `lines` start with ` ` (context), `-` (removed) or `+` (added). */
export interface DiffHunk {
  oldStart: number;
  oldLines: number;
  newStart: number;
  newLines: number;
  lines: string[];
}

export interface TextDiff {
  addedLines: number;
  removedLines: number;
  hunks: DiffHunk[];
}

export interface ChangedTool {
  name: string;
  descriptionChanged: boolean;
  /** True when anything besides the description changed (parameters, type, options). */
  schemaChanged: boolean;
  /** Line diff of the pretty-printed definitions. */
  diff: TextDiff;
}

/** The changes from one version of a template to another. */
export interface VersionDiff {
  instructions: TextDiff;
  tools: {
    added: string[];
    removed: string[];
    changed: ChangedTool[];
    unchanged: number;
  };
}

/** Lines of context around each change. */
const CONTEXT_LINES = 3;

/** Compare two versions: a line diff of the instructions, and the tools added, removed and changed (matched by name). */
export function diffVersions(
  before: { system: string; tools: readonly NormalizedTool[] },
  after: { system: string; tools: readonly NormalizedTool[] },
): VersionDiff {
  const oldTools = new Map(before.tools.map((tool) => [tool.name, tool.definition]));
  const newTools = new Map(after.tools.map((tool) => [tool.name, tool.definition]));

  const changed: ChangedTool[] = [];
  let unchanged = 0;
  for (const [name, definition] of newTools) {
    const previous = oldTools.get(name);
    if (previous === undefined) continue;
    if (previous === definition) {
      unchanged += 1;
      continue;
    }
    const oldParsed = parse(previous);
    const newParsed = parse(definition);
    changed.push({
      name,
      descriptionChanged: describe(oldParsed) !== describe(newParsed),
      schemaChanged: JSON.stringify(withoutDescription(oldParsed)) !== JSON.stringify(withoutDescription(newParsed)),
      diff: diffText(JSON.stringify(oldParsed, null, 2), JSON.stringify(newParsed, null, 2)),
    });
  }

  return {
    instructions: diffText(before.system, after.system),
    tools: {
      added: [...newTools.keys()].filter((name) => !oldTools.has(name)).sort(),
      removed: [...oldTools.keys()].filter((name) => !newTools.has(name)).sort(),
      changed: changed.sort((a, b) => a.name.localeCompare(b.name)),
      unchanged,
    },
  };
}

/** Line diff of two texts, with `CONTEXT_LINES` of context per hunk. */
export function diffText(before: string, after: string): TextDiff {
  const patch = structuredPatch('before', 'after', withFinalNewline(before), withFinalNewline(after), undefined, undefined, {
    context: CONTEXT_LINES,
  });
  let addedLines = 0;
  let removedLines = 0;
  const hunks = patch.hunks.map((hunk) => {
    // The diff package marks a missing final newline with a `\` line; both sides always end in one here.
    const lines = hunk.lines.filter((line) => !line.startsWith('\\'));
    for (const line of lines) {
      if (line.startsWith('+')) addedLines += 1;
      else if (line.startsWith('-')) removedLines += 1;
    }
    return { oldStart: hunk.oldStart, oldLines: hunk.oldLines, newStart: hunk.newStart, newLines: hunk.newLines, lines };
  });
  return { addedLines, removedLines, hunks };
}

function withFinalNewline(text: string): string {
  return text === '' || text.endsWith('\n') ? text : `${text}\n`;
}

function parse(definition: string): unknown {
  try {
    return JSON.parse(definition);
  } catch {
    return definition;
  }
}

/** The description of an Anthropic or Gemini tool, or of the function of an OpenAI one. */
function describe(definition: unknown): unknown {
  if (!isObject(definition)) return undefined;
  if (isObject(definition.function)) return definition.function.description;
  return definition.description;
}

function withoutDescription(definition: unknown): unknown {
  if (!isObject(definition)) return definition;
  const { description: _description, ...rest } = definition;
  if (isObject(rest.function)) {
    const { description: _nested, ...fn } = rest.function;
    return { ...rest, function: fn };
  }
  return rest;
}
