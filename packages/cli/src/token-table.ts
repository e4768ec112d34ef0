import type { RouteTokenDescription } from '@tokenwise/server';
import { formatLocalTime } from './call-table.js';
import { escapeForTerminal } from './terminal-text.js';

const NAME_WIDTH = 24;

/** Format route tokens as a table, one line each, with a header line; the output ends with a newline. */
export function formatTokenTable(tokens: readonly RouteTokenDescription[]): string {
  // A server's reply is data like any other: every cell is escaped before it reaches the terminal.
  const rows = tokens.map((token) => {
    const name = escapeForTerminal(token.name);
    return [
      escapeForTerminal(token.id),
      name.length > NAME_WIDTH ? `${name.slice(0, NAME_WIDTH - 1)}…` : name,
      escapeForTerminal(formatLocalTime(token.created_at)),
      token.last_used_at === null ? '-' : escapeForTerminal(formatLocalTime(token.last_used_at)),
      token.revoked_at === null ? 'active' : `revoked ${escapeForTerminal(formatLocalTime(token.revoked_at))}`,
    ];
  });
  const table = [['ID', 'NAME', 'CREATED', 'LAST USED', 'STATUS'], ...rows];

  const widths = table[0]!.map((_, column) => Math.max(...table.map((row) => row[column]!.length)));
  return table
    .map(
      (row) =>
        `${row
          .map((cell, column) => cell.padEnd(widths[column]!))
          .join('  ')
          .trimEnd()}\n`,
    )
    .join('');
}
