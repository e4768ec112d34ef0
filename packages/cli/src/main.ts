import { readFileSync } from 'node:fs';
import { TokenwiseError } from '@tokenwise/core';
import { CliError } from './cli-error.js';
import { type CliIo, processIo } from './cli-io.js';
import { budgetsCommand } from './commands/budgets.js';
import { callsCommand } from './commands/calls.js';
import { dbCommand } from './commands/db.js';
import { devCommand } from './commands/dev.js';
import { devicesCommand } from './commands/devices.js';
import { insightsCommand } from './commands/insights.js';
import { serveCommand } from './commands/serve.js';
import { tailCommand } from './commands/tail.js';
import { tokenCommand } from './commands/token.js';
import { usersCommand } from './commands/users.js';
import { connectCommand } from './connect/connect-command.js';
import { disconnectCommand } from './connect/disconnect-command.js';
import { statusCommand } from './connect/status-command.js';
import { escapeForTerminal } from './terminal-text.js';

const VERSION = (JSON.parse(readFileSync(new URL('../package.json', import.meta.url), 'utf8')) as { version: string }).version;

export const MAIN_HELP = `Usage: tokenwise <command> [options]

See every LLM call your AI tools make.

Commands:
  serve           start the recording proxy and the API (default port 4747)
  calls           list recorded calls
  tail            follow calls live
  insights        preview the insights email (insights preview)
  token           create, list or revoke route tokens
  devices         list or revoke paired devices
  budgets         list, create or delete spending budgets; list their alerts
  users           reset an account's password from the server's shell
  db              migrate the database, copy it to PostgreSQL or back it up
  dev             add made-up calls for demos, tests and benchmarks (dev seed)
  connect         point the AI tools on this machine at Tokenwise
  disconnect      undo connect exactly
  status          where each AI tool's traffic goes, and its last call

Run "tokenwise <command> --help" for a command's options. Every option also
has a TOKENWISE_* environment variable, listed in the command's help.

Options:
  -h, --help      show this help
  --version       print the version
`;

const COMMANDS: Record<string, (args: string[], io: CliIo) => Promise<number>> = {
  serve: serveCommand,
  calls: callsCommand,
  tail: tailCommand,
  insights: insightsCommand,
  token: tokenCommand,
  devices: devicesCommand,
  budgets: budgetsCommand,
  users: usersCommand,
  db: dbCommand,
  dev: devCommand,
  connect: connectCommand,
  disconnect: disconnectCommand,
  status: statusCommand,
};

/** Run the tokenwise command line and return the exit code: 0 done, 1 failed, 2 unusable command line. */
export async function run(argv: string[], io: CliIo = processIo()): Promise<number> {
  const [command, ...args] = argv;

  if (command === '--help' || command === '-h' || command === 'help') {
    io.stdout.write(MAIN_HELP);
    return 0;
  }
  if (command === '--version' || command === '-v') {
    io.stdout.write(`${VERSION}\n`);
    return 0;
  }
  if (command === undefined) {
    io.stderr.write(MAIN_HELP);
    return 2;
  }

  const handler = COMMANDS[command];
  if (!handler) {
    io.stderr.write(
      `tokenwise: unknown command "${escapeForTerminal(command)}": expected one of ${Object.keys(COMMANDS).join(', ')}; run "tokenwise --help"\n`,
    );
    return 2;
  }

  try {
    return await handler(args, io);
  } catch (error) {
    return reportError(error, io);
  }
}

/**
 * Print an error on stderr and return the exit code. Messages can quote recorded data or a server's reply,
 * so they are escaped for the terminal; only a stack trace keeps its line breaks.
 */
function reportError(error: unknown, io: CliIo): number {
  if (error instanceof CliError) {
    io.stderr.write(`tokenwise: ${escapeForTerminal(error.message)}\n`);
    return error.exitCode;
  }
  if (error instanceof TokenwiseError) {
    io.stderr.write(`tokenwise: ${escapeForTerminal(error.message)}\n`);
    return error.code === 'invalid_argument' || error.code === 'invalid_upstream' ? 2 : 1;
  }
  const details = error instanceof Error ? (error.stack ?? error.message) : String(error);
  io.stderr.write(`tokenwise: unexpected error, please report it: ${details.split('\n').map(escapeForTerminal).join('\n')}\n`);
  return 1;
}
