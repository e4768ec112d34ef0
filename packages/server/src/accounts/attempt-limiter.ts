/**
 * Counts failed attempts per key (an email, a client address) in a sliding window, in memory. With
 * several app processes each keeps its own counts, so the limit applies per process.
 */
export interface AttemptLimiter {
  /** Seconds until `key` may try again, or 0 when it may try now. */
  retryAfterS(key: string): number;
  fail(key: string): void;
  reset(key: string): void;
}

export function createAttemptLimiter(options: { maxFailures: number; windowMs: number; clock?: () => number }): AttemptLimiter {
  const clock = options.clock ?? Date.now;
  const failures = new Map<string, number[]>();

  function recent(key: string): number[] {
    const since = clock() - options.windowMs;
    const times = (failures.get(key) ?? []).filter((time) => time > since);
    if (times.length === 0) failures.delete(key);
    else failures.set(key, times);
    return times;
  }

  return {
    retryAfterS(key) {
      const times = recent(key);
      if (times.length < options.maxFailures) return 0;
      const oldest = times[times.length - options.maxFailures]!;
      return Math.max(1, Math.ceil((oldest + options.windowMs - clock()) / 1000));
    },
    fail(key) {
      const times = recent(key);
      times.push(clock());
      failures.set(key, times);
      // Keys of addresses that stop trying are dropped on their next check; this bounds the rest.
      if (failures.size > 100_000) failures.delete(failures.keys().next().value!);
    },
    reset(key) {
      failures.delete(key);
    },
  };
}
