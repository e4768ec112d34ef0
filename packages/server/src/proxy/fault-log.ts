import type { Logger } from 'pino';

/** Minimum interval between two warnings of one kind; the next warning carries the count suppressed meanwhile. */
const WARN_INTERVAL_MS = 60_000;

export type FaultKind = 'capture_failed' | 'sink_failed';

export interface FaultContext {
  route: string;
  /** The capture method or sink call that threw. */
  step: string;
}

/**
 * Counts and logs the proxy's own degradations: a capture or a sink that threw while the call itself
 * went through. Warnings are rate-limited per kind so a bug hit on every chunk cannot flood the log.
 */
export interface FaultLog {
  report(kind: FaultKind, error: unknown, context: FaultContext): void;
  count(kind: FaultKind): number;
}

export function createFaultLog(logger: Logger, now: () => number = Date.now): FaultLog {
  const counts: Record<FaultKind, number> = { capture_failed: 0, sink_failed: 0 };
  const lastWarnMs: Partial<Record<FaultKind, number>> = {};
  const suppressed: Record<FaultKind, number> = { capture_failed: 0, sink_failed: 0 };

  return {
    report(kind, error, context) {
      counts[kind] += 1;

      const last = lastWarnMs[kind];
      if (last !== undefined && now() - last < WARN_INTERVAL_MS) {
        suppressed[kind] += 1;
        return;
      }
      lastWarnMs[kind] = now();

      const fields = {
        fault: kind,
        route: context.route,
        step: context.step,
        suppressed: suppressed[kind],
        err: describeError(error, kind),
      };
      suppressed[kind] = 0;
      logger.warn(
        fields,
        kind === 'capture_failed' ? 'capture failed; call forwarded, record degraded' : 'record sink failed; call forwarded, record lost',
      );
    },
    count: (kind) => counts[kind],
  };
}

/**
 * Describe an error for the log. Capture errors can quote body text (V8's `JSON.parse` errors include a
 * snippet of the input), so for capture faults only the error's type and stack frames are kept.
 */
function describeError(error: unknown, kind: FaultKind): Record<string, unknown> {
  if (!(error instanceof Error)) return { type: typeof error };
  if (kind === 'sink_failed') return { type: error.name, message: error.message, stack: error.stack };
  const frames = (error.stack ?? '').split('\n').filter((line) => line.trimStart().startsWith('at '));
  return { type: error.name, stack: frames.join('\n') };
}
