import { describe, expect, it } from 'vitest';
import { lastCompletePeriod, parsePeriodKind } from './report-period.js';

describe('lastCompletePeriod', () => {
  it.each([
    ['Wednesday noon', '2026-12-09T12:00:00.000Z', '2026-11-30T00:00:00.000Z', '2026-12-07T00:00:00.000Z'],
    ['Monday at midnight', '2026-12-07T00:00:00.000Z', '2026-11-30T00:00:00.000Z', '2026-12-07T00:00:00.000Z'],
    ['Sunday night', '2026-12-06T23:59:59.999Z', '2026-11-23T00:00:00.000Z', '2026-11-30T00:00:00.000Z'],
  ])('ends a week at the Monday before %s', (_name, now, from, to) => {
    const period = lastCompletePeriod('week', new Date(now));

    expect(period.from.toISOString()).toBe(from);
    expect(period.to.toISOString()).toBe(to);
    expect(period.to.getTime() - period.from.getTime()).toBe(7 * 86_400_000);
    expect(period.from.getTime() - period.previousFrom.getTime()).toBe(7 * 86_400_000);
  });

  it('takes yesterday for a day', () => {
    const period = lastCompletePeriod('day', new Date('2026-12-09T00:30:00.000Z'));

    expect(period.from.toISOString()).toBe('2026-12-08T00:00:00.000Z');
    expect(period.to.toISOString()).toBe('2026-12-09T00:00:00.000Z');
    expect(period.previousFrom.toISOString()).toBe('2026-12-07T00:00:00.000Z');
  });
});

describe('parsePeriodKind', () => {
  it('reads week, day and their frequencies', () => {
    expect(parsePeriodKind(null, 'period')).toBe('week');
    expect(parsePeriodKind('weekly', 'period')).toBe('week');
    expect(parsePeriodKind('day', 'period')).toBe('day');
  });

  it('names a bad value and the choices', () => {
    expect(() => parsePeriodKind('month', '--period')).toThrow('invalid --period "month": expected week or day');
  });
});
