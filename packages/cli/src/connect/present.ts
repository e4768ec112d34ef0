import { createInterface, type Interface } from 'node:readline';
import { createTwoFilesPatch } from 'diff';
import type { CliIo } from '../cli-io.js';
import type { FilePlan } from './file-plans.js';

/** The command's streams plus stdin, which the [Y/n] questions read; tests pass their own. */
export interface ConnectIo extends CliIo {
  stdin?: NodeJS.ReadableStream & { isTTY?: boolean };
}

/** Format one planned change as a unified diff, colored for terminals, with CRLF shown as plain line breaks. */
export function formatDiff(plan: FilePlan, colors: boolean): string {
  const before = plan.snapshot.exists ? plan.snapshot.text.replaceAll('\r\n', '\n') : '';
  const after = (plan.after ?? '').replaceAll('\r\n', '\n');
  const oldName = plan.snapshot.exists ? plan.path : '/dev/null';
  const newName = plan.after === null ? '/dev/null' : plan.path;
  const patch = createTwoFilesPatch(oldName, newName, before, after, '', '', { context: 3 });
  // createTwoFilesPatch starts with an "Index:" line and a line of "=" that a unified diff does not need.
  const lines = patch.split('\n').filter((line) => !/^={3,}$/.test(line) && !line.startsWith('Index: '));
  while (lines.at(-1) === '') lines.pop();
  if (!colors) return lines.join('\n');
  return lines.map(colorLine).join('\n');
}

function colorLine(line: string): string {
  if (line.startsWith('+++') || line.startsWith('---')) return `\x1b[1m${line}\x1b[0m`;
  if (line.startsWith('+')) return `\x1b[32m${line}\x1b[0m`;
  if (line.startsWith('-')) return `\x1b[31m${line}\x1b[0m`;
  if (line.startsWith('@@')) return `\x1b[36m${line}\x1b[0m`;
  return line;
}

/** Asks yes/no questions on a terminal; Enter means yes. */
export interface Asker {
  confirm(question: string): Promise<boolean>;
  close(): void;
}

/** Create an asker on stdin when it is a terminal; null without one. */
export function terminalAsker(io: ConnectIo): Asker | null {
  const input = io.stdin ?? process.stdin;
  if (input.isTTY !== true) return null;
  let readline: Interface | null = null;
  let lines: AsyncIterator<string> | null = null;
  return {
    async confirm(question) {
      readline ??= createInterface({ input, terminal: false });
      // The iterator buffers lines that arrive before the question (typed ahead, or piped in at once).
      lines ??= readline[Symbol.asyncIterator]();
      for (;;) {
        io.stderr.write(`${question} [Y/n] `);
        const next = await lines.next();
        // End of input (Ctrl-D) counts as no, so nothing is applied by accident.
        const answer = next.done ? 'n' : String(next.value).trim().toLowerCase();
        if (answer === '' || answer === 'y' || answer === 'yes') return true;
        if (answer === 'n' || answer === 'no') return false;
        io.stderr.write('Invalid reply: type y or n.\n');
      }
    },
    close() {
      readline?.close();
    },
  };
}

/** Shorten the route token inside URLs for status lines: it is a secret, and long. */
export function maskToken(text: string): string {
  return text.replace(/\/r\/(twr_[A-Za-z0-9_-]{4})[A-Za-z0-9_-]+/g, '/r/$1…');
}
