import { TokenwiseError } from '@tokenwise/core';
import { CliError } from '../cli-error.js';
import { processIo } from '../cli-io.js';
import { escapeForTerminal } from '../terminal-text.js';
import { connectCommand } from './connect-command.js';
import { disconnectCommand } from './disconnect-command.js';
import type { ConnectIo } from './present.js';
import { statusCommand } from './status-command.js';

const HELP = `Usage: tokenwise-connect <command> [options]

The connect part of the tokenwise command, as one file for the connect scripts.

Commands:
  connect         point the AI tools on this machine at a Tokenwise server
  disconnect      undo connect exactly
  status          show where each tool's traffic goes

Run "<command> --help" for a command's options.
`;

const COMMANDS: Record<string, (args: string[], io: ConnectIo) => Promise<number>> = {
  connect: connectCommand,
  disconnect: disconnectCommand,
  status: statusCommand,
};

/** Run connect, disconnect or status and return the exit code, as `tokenwise` does for the same commands. */
export async function runConnectBundle(argv: string[], io: ConnectIo = { ...processIo(), stdin: process.stdin }): Promise<number> {
  const [command, ...args] = argv;
  const handler = command === undefined ? undefined : COMMANDS[command];
  if (!handler) {
    (command === '--help' || command === '-h' ? io.stdout : io.stderr).write(HELP);
    return command === '--help' || command === '-h' ? 0 : 2;
  }
  try {
    return await handler(args, io);
  } catch (error) {
    if (error instanceof CliError) {
      io.stderr.write(`tokenwise: ${escapeForTerminal(error.message)}\n`);
      return error.exitCode;
    }
    if (error instanceof TokenwiseError) {
      io.stderr.write(`tokenwise: ${escapeForTerminal(error.message)}\n`);
      return 1;
    }
    throw error;
  }
}
