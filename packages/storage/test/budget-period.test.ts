import { budgetPeriodBounds } from '@tokenwise/storage';
import { describe, expect, it } from 'vitest';

/** A Wednesday. */
const NOW = new Date('2026-12-09T15:30:00.000Z');

describe('budgetPeriodBounds', () => {
  it('starts days, weeks and months at 00:00 UTC', () => {
    expect(budgetPeriodBounds('day', NOW)).toEqual({
      startMs: Date.parse('2026-12-09T00:00:00.000Z'),
      endMs: Date.parse('2026-12-10T00:00:00.000Z'),
    });
    expect(budgetPeriodBounds('week', NOW)).toEqual({
      startMs: Date.parse('2026-12-07T00:00:00.000Z'),
      endMs: Date.parse('2026-12-14T00:00:00.000Z'),
    });
    expect(budgetPeriodBounds('month', NOW)).toEqual({
      startMs: Date.parse('2026-12-01T00:00:00.000Z'),
      endMs: Date.parse('2027-01-01T00:00:00.000Z'),
    });
  });

  it('puts a Sunday in the week that began on Monday', () => {
    expect(budgetPeriodBounds('week', new Date('2026-12-13T23:59:59.999Z')).startMs).toBe(Date.parse('2026-12-07T00:00:00.000Z'));
    expect(budgetPeriodBounds('week', new Date('2026-12-14T00:00:00.000Z')).startMs).toBe(Date.parse('2026-12-14T00:00:00.000Z'));
  });
});
