import { usageError } from '../cli-error.js';
import type { CliIo } from '../cli-io.js';

/** A subcommand's handler: takes the arguments after its name and resolves to the exit code. */
export type SubcommandHandler = (args: string[], io: CliIo) => Promise<number>;

/**
 * Run the subcommand named by the first argument of `tokenwise <command>`. Without one, print the help to
 * stderr and exit 2. With `--help` or `-h`, print it to stdout and exit 0. An unknown name is a usage error.
 */
export async function runSubcommand(
  command: string,
  help: string,
  subcommands: Record<string, SubcommandHandler>,
  args: string[],
  io: CliIo,
): Promise<number> {
  const [subcommand, ...rest] = args;
  if (subcommand === undefined) {
    io.stderr.write(help);
    return 2;
  }
  if (subcommand === '--help' || subcommand === '-h') {
    io.stdout.write(help);
    return 0;
  }

  const handler = subcommands[subcommand];
  if (!handler) {
    throw usageError(`unknown subcommand "${command} ${subcommand}": expected one of ${Object.keys(subcommands).join(', ')}`);
  }
  return handler(rest, io);
}
