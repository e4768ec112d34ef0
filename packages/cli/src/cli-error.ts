/**
 * An error the command reports to the person: the message goes to stderr as it is, and the process exits
 * with `exitCode` (2 for a command line that cannot be used, 1 for a failure while running).
 */
export class CliError extends Error {
  readonly exitCode: number;

  constructor(message: string, exitCode = 1) {
    super(message);
    this.name = 'CliError';
    this.exitCode = exitCode;
  }
}

export function usageError(message: string): CliError {
  return new CliError(message, 2);
}
