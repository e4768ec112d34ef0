import type { RouteTokenDescription } from '@tokenwise/server';
import { formatLocalTime } from './call-table.js';

const NAME_WIDTH = 24;

/** Format route tokens as a table, one line each, with a header line; the output ends with a newline. */
export function formatTokenTable(tokens: readonly RouteTokenDescription[]): string {
  const rows = tokens.map((token) => [
    token.id,
    token.name.length > NAME_WIDTH ? `${token.name.slice(0, NAME_WIDTH - 1)}…` : token.name,
    formatLocalTime(token.created_at),
    token.last_used_at === null ? '-' : formatLocalTime(token.last_used_at),
    token.revoked_at === null ? 'active' : `revoked ${formatLocalTime(token.revoked_at)}`,
  ]);
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
