import { describe, expect, it } from 'vitest';
import { diffText, diffVersions } from './prompt-diff.js';
import type { NormalizedTool } from './prompt-template.js';

function tool(name: string, definition: Record<string, unknown>): NormalizedTool {
  return { name, definition: JSON.stringify({ name, ...definition }) };
}

const bash = tool('Bash', { description: 'Run a command.', input_schema: { type: 'object' } });
const read = tool('Read', { description: 'Read a file.', input_schema: { type: 'object' } });

describe('diffText', () => {
  it('marks added and removed lines with context', () => {
    const diff = diffText('one\ntwo\nthree\nfour', 'one\ntwo\n3\nfour\nfive');

    expect(diff.addedLines).toBe(2);
    expect(diff.removedLines).toBe(1);
    expect(diff.hunks).toEqual([
      { oldStart: 1, oldLines: 4, newStart: 1, newLines: 5, lines: [' one', ' two', '-three', '+3', ' four', '+five'] },
    ]);
  });

  it('finds nothing between equal texts', () => {
    expect(diffText('same\ntext', 'same\ntext')).toEqual({ addedLines: 0, removedLines: 0, hunks: [] });
  });

  it('splits distant changes into hunks', () => {
    const lines = Array.from({ length: 30 }, (_, index) => `line ${index}`);
    const changed = [...lines];
    changed[2] = 'changed 2';
    changed[27] = 'changed 27';

    expect(diffText(lines.join('\n'), changed.join('\n')).hunks).toHaveLength(2);
  });
});

describe('diffVersions', () => {
  it('lists added, removed and changed tools by name', () => {
    const grep = tool('Grep', { description: 'Search files.', input_schema: { type: 'object' } });
    const newBash = tool('Bash', { description: 'Run a command in a sandbox.', input_schema: { type: 'object' } });

    const diff = diffVersions({ system: 'a', tools: [bash, read] }, { system: 'a', tools: [newBash, grep] });

    expect(diff.tools.added).toEqual(['Grep']);
    expect(diff.tools.removed).toEqual(['Read']);
    expect(diff.tools.changed.map(({ name, descriptionChanged, schemaChanged }) => ({ name, descriptionChanged, schemaChanged }))).toEqual([
      { name: 'Bash', descriptionChanged: true, schemaChanged: false },
    ]);
    expect(diff.tools.changed[0]!.diff.hunks[0]!.lines).toContain('+  "description": "Run a command in a sandbox.",');
    expect(diff.tools.unchanged).toBe(0);
    expect(diff.instructions.hunks).toEqual([]);
  });

  it('tells a schema change from a description change', () => {
    const wider = tool('Read', {
      description: 'Read a file.',
      input_schema: { type: 'object', properties: { limit: { type: 'number' } } },
    });

    const diff = diffVersions({ system: '', tools: [bash, read] }, { system: '', tools: [bash, wider] });

    expect(diff.tools.changed).toHaveLength(1);
    expect(diff.tools.changed[0]).toMatchObject({ name: 'Read', descriptionChanged: false, schemaChanged: true });
    expect(diff.tools.unchanged).toBe(1);
  });

  it('reads the description of an OpenAI Chat function', () => {
    const before = tool('shell', { type: 'function', function: { name: 'shell', description: 'Run.', parameters: {} } });
    const after = tool('shell', { type: 'function', function: { name: 'shell', description: 'Run it.', parameters: {} } });

    expect(diffVersions({ system: '', tools: [before] }, { system: '', tools: [after] }).tools.changed[0]).toMatchObject({
      descriptionChanged: true,
      schemaChanged: false,
    });
  });

  it('diffs the instructions', () => {
    const diff = diffVersions({ system: 'Be brief.\nUse tools.', tools: [] }, { system: 'Be brief.\nUse tools sparingly.', tools: [] });

    expect(diff.instructions.addedLines).toBe(1);
    expect(diff.instructions.removedLines).toBe(1);
  });
});
