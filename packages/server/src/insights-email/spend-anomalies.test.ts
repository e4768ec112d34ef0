import { describe, expect, it } from 'vitest';
import { type DailySpend, findSpendAnomalies } from './spend-anomalies.js';

const DAY = 86_400_000;
const START = Date.parse('2026-11-02T00:00:00.000Z');

/** One entry per day from START, with the costs given. */
function days(costs: number[]): DailySpend[] {
  return costs.map((costUsd, index) => ({ day: new Date(START + index * DAY), costUsd, calls: costUsd > 0 ? 10 : 0 }));
}

/** The last 7 of 35 days as the period: 28 days of history before its first day. */
const PERIOD_FROM = new Date(START + 28 * DAY);
const PERIOD_TO = new Date(START + 35 * DAY);

describe('findSpendAnomalies', () => {
  it('reports a day far above the median', () => {
    const costs = [...Array.from({ length: 28 }, () => 2), 2, 2, 9, 2, 2, 2, 2];

    const anomalies = findSpendAnomalies(days(costs), PERIOD_FROM, PERIOD_TO);

    expect(anomalies).toEqual([{ day: new Date(START + 30 * DAY).toISOString(), costUsd: 9, typicalUsd: 2, ratio: 4.5 }]);
  });

  it('ignores a rise below the factor', () => {
    const costs = [...Array.from({ length: 28 }, () => 2), 5.9, 2, 2, 2, 2, 2, 2];

    expect(findSpendAnomalies(days(costs), PERIOD_FROM, PERIOD_TO)).toEqual([]);
  });

  it('ignores days under a dollar', () => {
    const costs = [...Array.from({ length: 28 }, () => 0.1), 0.9, 0, 0, 0, 0, 0, 0];

    expect(findSpendAnomalies(days(costs), PERIOD_FROM, PERIOD_TO)).toEqual([]);
  });

  it('needs a week of days with calls first', () => {
    const costs = [...Array.from({ length: 22 }, () => 0), ...Array.from({ length: 6 }, () => 1), 50, 0, 0, 0, 0, 0, 0];

    expect(findSpendAnomalies(days(costs), PERIOD_FROM, PERIOD_TO)).toEqual([]);
  });

  it('counts missing days as days without calls', () => {
    const sparse = days([...Array.from({ length: 28 }, () => 3), 12]).filter((_, index) => index % 2 === 0 || index === 28);

    const anomalies = findSpendAnomalies(sparse, PERIOD_FROM, PERIOD_TO);

    expect(anomalies).toHaveLength(1);
    expect(anomalies[0]).toMatchObject({ costUsd: 12, typicalUsd: 1.5, ratio: 8 });
  });

  it('keeps one spike from hiding the next', () => {
    const costs = [...Array.from({ length: 28 }, () => 2), 20, 2, 2, 20, 2, 2, 2];

    expect(findSpendAnomalies(days(costs), PERIOD_FROM, PERIOD_TO).map((anomaly) => anomaly.costUsd)).toEqual([20, 20]);
  });
});
