import { lineEnding } from './config-formats.js';

/** The syntax of a file that carries a marked block: a shell profile, or a systemd unit drop-in (`[Service]` `Environment=`). */
export type ShellKind = 'posix' | 'fish' | 'powershell' | 'systemd';

export const BLOCK_START = '# >>> tokenwise >>>';
export const BLOCK_END = '# <<< tokenwise <<<';

/** The marked block that sets `vars` in one shell's syntax, without a final line ending. */
export function renderBlock(shell: ShellKind, vars: Record<string, string>, eol: string): string {
  const lines = [BLOCK_START, '# Added by "tokenwise connect"; "tokenwise disconnect" removes this block.'];
  if (shell === 'systemd') lines.push('[Service]');
  for (const [name, value] of Object.entries(vars).sort(([a], [b]) => a.localeCompare(b))) {
    lines.push(assignment(shell, name, value));
  }
  lines.push(BLOCK_END);
  return lines.join(eol);
}

/** The block's span in `text`, from its start marker to the end of its end marker line (line ending included). */
export function findBlock(text: string): { start: number; end: number } | null {
  const start = findMarkerLine(text, BLOCK_START, 0);
  if (start === -1) return null;
  const endMarker = findMarkerLine(text, BLOCK_END, start);
  if (endMarker === -1) return null;
  const lineEnd = text.indexOf('\n', endMarker);
  return { start, end: lineEnd === -1 ? text.length : lineEnd + 1 };
}

/**
 * Put the block into `text`: in place of an existing block, else at the end after a blank line. Returns the
 * new text and the separator added before the block, which `removeBlock` takes away again.
 */
export function insertBlock(text: string, block: string, eol: string): { text: string; separator: string } {
  const existing = findBlock(text);
  if (existing) {
    const ending = text.slice(existing.start, existing.end).endsWith('\n') ? eol : '';
    return { text: `${text.slice(0, existing.start)}${block}${ending}${text.slice(existing.end)}`, separator: '' };
  }

  let separator = '';
  if (text !== '') separator = text.endsWith('\n') ? eol : `${eol}${eol}`;
  return { text: `${text}${separator}${block}${eol}`, separator };
}

/**
 * Remove the block, and the separator `insertBlock` added when it is still there. When the person added
 * lines after the block, the first line ending of a two-part separator stays: it ends their previous last line.
 */
export function removeBlock(text: string, separator: string): string {
  const found = findBlock(text);
  if (!found) return text;

  let start = found.start;
  if (separator !== '' && text.slice(0, start).endsWith(separator)) {
    const eol = lineEnding(text);
    const linesAfter = found.end < text.length;
    start -= linesAfter && separator.length > eol.length ? separator.length - eol.length : separator.length;
  }
  return `${text.slice(0, start)}${text.slice(found.end)}`;
}

/** Values of the variables the block in `text` sets, read back from its lines. */
export function readBlockVars(shell: ShellKind, text: string): Record<string, string> | null {
  const found = findBlock(text);
  if (!found) return null;
  const vars: Record<string, string> = {};
  for (const line of text.slice(found.start, found.end).split(/\r?\n/)) {
    const parsed = parseAssignment(shell, line.trim());
    if (parsed) vars[parsed.name] = parsed.value;
  }
  return vars;
}

function parseAssignment(shell: ShellKind, line: string): { name: string; value: string } | null {
  const pattern = {
    posix: /^export ([A-Za-z_][A-Za-z0-9_]*)='(.*)'$/,
    fish: /^set -gx ([A-Za-z_][A-Za-z0-9_]*) '(.*)'$/,
    powershell: /^\$env:([A-Za-z_][A-Za-z0-9_]*) = '(.*)'$/,
    systemd: /^Environment="([A-Za-z_][A-Za-z0-9_]*)=(.*)"$/,
  }[shell];
  const match = pattern.exec(line);
  if (!match) return null;
  const raw = match[2]!;
  const value = {
    posix: () => raw.replaceAll("'\\''", "'"),
    fish: () => raw.replaceAll("\\'", "'").replaceAll('\\\\', '\\'),
    powershell: () => raw.replaceAll("''", "'"),
    systemd: () => raw.replaceAll('\\"', '"').replaceAll('\\\\', '\\').replaceAll('%%', '%'),
  }[shell]();
  return { name: match[1]!, value };
}

function assignment(shell: ShellKind, name: string, value: string): string {
  switch (shell) {
    case 'posix':
      return `export ${name}='${value.replaceAll("'", "'\\''")}'`;
    case 'fish':
      return `set -gx ${name} '${value.replaceAll('\\', '\\\\').replaceAll("'", "\\'")}'`;
    case 'powershell':
      return `$env:${name} = '${value.replaceAll("'", "''")}'`;
    case 'systemd':
      // systemd unquotes "…" with C-style escapes; `%` starts a unit specifier, so it is doubled.
      return `Environment="${name}=${value.replaceAll('\\', '\\\\').replaceAll('"', '\\"').replaceAll('%', '%%')}"`;
  }
}

function findMarkerLine(text: string, marker: string, from: number): number {
  let index = text.indexOf(marker, from);
  while (index !== -1) {
    const atLineStart = index === 0 || text[index - 1] === '\n';
    const rest = text.slice(index + marker.length, text.indexOf('\n', index) === -1 ? undefined : text.indexOf('\n', index));
    if (atLineStart && rest.trim() === '') return index;
    index = text.indexOf(marker, index + 1);
  }
  return -1;
}
