import type { Logger } from 'pino';

/** Minimum interval between two warnings of one kind; the next warning carries the count suppressed meanwhile. */
const WARN_INTERVAL_MS = 60_000;

export type FaultKind = 'capture_failed' | 'sink_failed' | 'capture_degraded';

export interface FaultContext {
  route: string;
  /** The capture method or sink call that threw. */
  step: string;
}

/**
 * Counts and logs the proxy's own degradations: a capture or a sink that threw while the call itself
 * went through, and records the capture built with warnings (a body it could not decode or read, usage
 * counts it rejected). Warnings are rate-limited per kind so a bug hit on every chunk cannot flood the log.
 */
export interface FaultLog {
  report(kind: Exclude<FaultKind, 'capture_degraded'>, error: unknown, context: FaultContext): void;
  /** Log the capture's warnings for one record; core words them without body text or secrets. */
  degraded(context: { route: string; callId: string }, warnings: readonly string[]): void;
  count(kind: FaultKind): number;
}

/** Warnings logged per record at most, each cut to this many characters. */
const MAX_LOGGED_WARNINGS = 5;
const MAX_WARNING_CHARS = 300;

export function createFaultLog(logger: Logger, now: () => number = Date.now): FaultLog {
  const counts: Record<FaultKind, number> = { capture_failed: 0, sink_failed: 0, capture_degraded: 0 };
  const lastWarnMs: Partial<Record<FaultKind, number>> = {};
  const suppressed: Record<FaultKind, number> = { capture_failed: 0, sink_failed: 0, capture_degraded: 0 };

  /** Count one fault; return the number suppressed since the last warning, or null while this one is suppressed too. */
  const admit = (kind: FaultKind): number | null => {
    counts[kind] += 1;
    const last = lastWarnMs[kind];
    if (last !== undefined && now() - last < WARN_INTERVAL_MS) {
      suppressed[kind] += 1;
      return null;
    }
    lastWarnMs[kind] = now();
    const skipped = suppressed[kind];
    suppressed[kind] = 0;
    return skipped;
  };

  return {
    report(kind, error, context) {
      const skipped = admit(kind);
      if (skipped === null) return;
      const fields = { fault: kind, route: context.route, step: context.step, suppressed: skipped, err: describeError(error, kind) };
      logger.warn(
        fields,
        kind === 'capture_failed' ? 'capture failed; call forwarded, record degraded' : 'record sink failed; call forwarded, record lost',
      );
    },
    degraded(context, warnings) {
      const skipped = admit('capture_degraded');
      if (skipped === null) return;
      const logged = warnings.slice(0, MAX_LOGGED_WARNINGS).map((warning) => warning.slice(0, MAX_WARNING_CHARS));
      logger.warn(
        { fault: 'capture_degraded', route: context.route, call_id: context.callId, suppressed: skipped, warnings: logged },
        'capture degraded; call forwarded, record incomplete',
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
