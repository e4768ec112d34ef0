/** A background job that runs on an interval, never two runs at once. */
export interface PeriodicJob {
  /** Run now, or join the run in progress; resolves when that run is done. */
  runOnce(): Promise<void>;
  /** True once `close` was called, so a run in progress can stop after the item at hand. */
  readonly stopping: boolean;
  /** Stop the timer and wait for the run in progress, if any. */
  close(): Promise<void>;
}

/**
 * Start `run` every `intervalMs`, the first time one interval after the start, on an unref'd timer.
 * `run` must log its own failures and not reject, because a rejection from a timer tick is unhandled.
 */
export function startPeriodicJob(run: () => Promise<void>, intervalMs: number): PeriodicJob {
  let running: Promise<void> | null = null;
  let stopping = false;

  function runOnce(): Promise<void> {
    running ??= run().finally(() => {
      running = null;
    });
    return running;
  }

  const timer = setInterval(() => void runOnce(), intervalMs);
  timer.unref();

  return {
    runOnce,
    get stopping() {
      return stopping;
    },
    async close() {
      stopping = true;
      clearInterval(timer);
      await running;
    },
  };
}
