/** The streams and environment a command runs with; tests pass their own. */
export interface CliIo {
  stdout: { write(text: string): unknown; isTTY?: boolean };
  stderr: { write(text: string): unknown; isTTY?: boolean };
  env: NodeJS.ProcessEnv;
}

export function processIo(): CliIo {
  guardProcessOutput();
  return { stdout: process.stdout, stderr: process.stderr, env: process.env };
}

/** Reaction to a closed stdout: most commands stop, `serve` keeps running. */
let closedStdoutPolicy: 'exit' | 'ignore' = 'exit';
let outputGuarded = false;

/**
 * Keep running when stdout or stderr is closed (`tokenwise serve | head -1`, a closed terminal). A server
 * must outlive whatever read its output. Without this, the write error would end the process without its
 * clean stop, so server.json would stay behind and the queued records would never be stored.
 */
export function keepRunningWhenOutputCloses(): void {
  closedStdoutPolicy = 'ignore';
}

/**
 * Handle write errors on the process's stdout and stderr, which Node raises as an `error` event that
 * crashes the process when nothing listens. A reader that went away (EPIPE) or a terminal that closed
 * (EIO) ends a command that prints to stdout quietly, the way `calls | head -1` expects. A failed write to
 * stderr is dropped, since there is nowhere left to report it.
 */
function guardProcessOutput(): void {
  if (outputGuarded) return;
  outputGuarded = true;

  process.stdout.on('error', (error: NodeJS.ErrnoException) => {
    if (closedStdoutPolicy === 'ignore') return;
    if (error.code === 'EPIPE' || error.code === 'EIO') process.exit(process.exitCode ?? 0);
    throw error;
  });
  process.stderr.on('error', () => undefined);
}

/** Colors for terminals only, and never when `NO_COLOR` is set to anything (https://no-color.org). */
export function colorsEnabled(io: CliIo): boolean {
  return io.stdout.isTTY === true && (io.env.NO_COLOR ?? '') === '';
}
