/** Days before each day that make its usual spend. */
export const HISTORY_DAYS = 28;
/** Days with calls the history needs before a day can be called unusual; a new workspace has no usual yet. */
export const MIN_ACTIVE_HISTORY_DAYS = 7;
/** A day is unusual when it spends at least this many times the median day of its history… */
export const ANOMALY_FACTOR = 3;
/** …and at least this much in USD, so cents moving around are never reported. */
export const ANOMALY_MIN_USD = 1;

/** Spend of one UTC day. */
export interface DailySpend {
  /** Start of the day (UTC). */
  day: Date;
  costUsd: number;
  calls: number;
}

export interface SpendAnomaly {
  /** Start of the day (UTC), ISO 8601. */
  day: string;
  costUsd: number;
  /** Median daily spend of the `HISTORY_DAYS` before it, days without calls counted as 0. */
  typicalUsd: number;
  /** `costUsd / typicalUsd`; null when the typical day spent nothing. */
  ratio: number | null;
}

/**
 * Return the days in `[from, to)` whose spend is far above the usual: at least `ANOMALY_FACTOR` times the
 * median of the `HISTORY_DAYS` days before, and at least `ANOMALY_MIN_USD`. `days` lists UTC days oldest
 * first and covers the history of the range's first day too. A missing day counts as a day without calls. The median keeps one earlier spike from hiding the next.
 */
export function findSpendAnomalies(days: readonly DailySpend[], from: Date, to: Date): SpendAnomaly[] {
  const byDay = new Map(days.map((entry) => [entry.day.getTime(), entry]));
  const anomalies: SpendAnomaly[] = [];
  for (let dayMs = from.getTime(); dayMs < to.getTime(); dayMs += 86_400_000) {
    const today = byDay.get(dayMs);
    if (!today || today.costUsd < ANOMALY_MIN_USD) continue;

    const history: DailySpend[] = [];
    for (let back = HISTORY_DAYS; back >= 1; back -= 1) {
      const earlier = dayMs - back * 86_400_000;
      history.push(byDay.get(earlier) ?? { day: new Date(earlier), costUsd: 0, calls: 0 });
    }
    if (history.filter((entry) => entry.calls > 0).length < MIN_ACTIVE_HISTORY_DAYS) continue;

    const typicalUsd = median(history.map((entry) => entry.costUsd));
    if (today.costUsd < ANOMALY_FACTOR * typicalUsd) continue;
    anomalies.push({
      day: new Date(dayMs).toISOString(),
      costUsd: today.costUsd,
      typicalUsd: Math.round(typicalUsd * 1e6) / 1e6,
      ratio: typicalUsd > 0 ? Math.round((today.costUsd / typicalUsd) * 10) / 10 : null,
    });
  }
  return anomalies;
}

function median(values: readonly number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  const middle = Math.floor(sorted.length / 2);
  return sorted.length % 2 === 1 ? sorted[middle]! : (sorted[middle - 1]! + sorted[middle]!) / 2;
}
