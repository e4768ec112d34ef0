import { TokenwiseError } from '@tokenwise/core';

/** The span one insights email covers. */
export type ReportPeriodKind = 'week' | 'day';

export interface ReportPeriod {
  kind: ReportPeriodKind;
  /** `[from, to)` in UTC. */
  from: Date;
  to: Date;
  /** The period of the same length just before, which the figures are compared with. */
  previousFrom: Date;
}

const DAY_MS = 86_400_000;
const WEEK_MS = 7 * DAY_MS;

/**
 * Return the last complete period before `now`: for `day` yesterday (UTC), for `week` the last full week
 * from Monday 00:00 UTC. Periods follow UTC so that every app process and every recipient agrees on them.
 */
export function lastCompletePeriod(kind: ReportPeriodKind, now: Date): ReportPeriod {
  const today = Math.floor(now.getTime() / DAY_MS) * DAY_MS;
  if (kind === 'day') {
    return { kind, from: new Date(today - DAY_MS), to: new Date(today), previousFrom: new Date(today - 2 * DAY_MS) };
  }
  // getUTCDay is 0 on Sunday; Monday starts the week (ISO 8601).
  const daysSinceMonday = (new Date(today).getUTCDay() + 6) % 7;
  const thisMonday = today - daysSinceMonday * DAY_MS;
  return { kind, from: new Date(thisMonday - WEEK_MS), to: new Date(thisMonday), previousFrom: new Date(thisMonday - 2 * WEEK_MS) };
}

export function parsePeriodKind(value: string | null, source: string): ReportPeriodKind {
  if (value === null || value === 'week' || value === 'weekly') return 'week';
  if (value === 'day' || value === 'daily') return 'day';
  throw new TokenwiseError('invalid_argument', `invalid ${source} "${value}": expected week or day`);
}

/** Return the period of the email that a frequency sends. */
export function periodOfFrequency(frequency: 'weekly' | 'daily'): ReportPeriodKind {
  return frequency === 'weekly' ? 'week' : 'day';
}

export function periodLengthMs(kind: ReportPeriodKind): number {
  return kind === 'week' ? WEEK_MS : DAY_MS;
}

export { DAY_MS };
