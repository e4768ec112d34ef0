import { TokenwiseError } from '@tokenwise/core';

const DURATION = /^(\d{1,9})(s|m|h|d|w)$/;
const UNIT_MS: Record<string, number> = { s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000, w: 604_800_000 };
/** A date (`2026-12-04`) or a date and time; plain words that `Date.parse` happens to accept are rejected. */
const ISO_TIME = /^\d{4}-\d{2}-\d{2}(?:[T ][\d:.]+(?:Z|[+-]\d{2}:?\d{2})?)?$/i;

/**
 * Resolve a `since` value to a time: a duration back from `now` (`90s`, `30m`, `1h`, `7d`, `2w`) or an
 * ISO 8601 date or time (a time without an offset is local time, as `Date.parse` reads it). `label` names
 * the option in the error, e.g. `--since`.
 */
export function parseSince(value: string, now: Date, label = 'since'): Date {
  const trimmed = value.trim();

  const duration = DURATION.exec(trimmed);
  if (duration) {
    const amount = Number(duration[1]);
    const unitMs = UNIT_MS[duration[2]!]!;
    const time = now.getTime() - amount * unitMs;
    // No call starts before 1970, and times far before it have no ISO 8601 form the API accepts.
    if (time < 0) {
      throw new TokenwiseError(
        'invalid_argument',
        `invalid ${label} "${value}": that reaches back before 1970; use a shorter duration, or an ISO 8601 time like 2026-12-04T10:00:00Z`,
      );
    }
    return new Date(time);
  }

  if (ISO_TIME.test(trimmed)) {
    const time = Date.parse(trimmed);
    if (!Number.isNaN(time)) return new Date(time);
  }

  throw new TokenwiseError(
    'invalid_argument',
    `invalid ${label} "${value}": expected a duration like 30m, 1h or 7d, or an ISO 8601 time like 2026-12-04T10:00:00Z`,
  );
}
