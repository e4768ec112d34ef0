import type { Percentiles } from './call-queries.js';

/**
 * Latency percentiles from logarithmic bins (`call_latency_bins`). Bin i ≥ 1 contains the latencies in
 * [1.04^(i-1), 1.04^i) ms and bin 0 those below 1 ms. A bin reads as its geometric midpoint 1.04^(i-0.5),
 * which is within 1.98% of every value in the bin.
 */

/**
 * `ln(1.04)`, the log of the bins' ratio. SQL gets it with every digit of the JavaScript double, so that
 * SQLite, PostgreSQL and `latencyBin` divide by the same number.
 */
const LN_BIN_RATIO = Math.log(1.04);

/**
 * Build the SQL that computes the bin of the latency `value` in ms: 0 below 1 ms, else
 * floor(ln(v) / ln(1.04)) + 1. Migration 10 repeats it with the constant spelled out.
 */
export function latencyBinSql(value: string): string {
  return `CASE WHEN ${value} < 1 THEN 0 ELSE CAST(FLOOR(LN(${value}) / CAST(${LN_BIN_RATIO} AS DOUBLE PRECISION)) AS INTEGER) + 1 END`;
}

/**
 * Compute the bin of a latency in ms as `latencyBinSql` does in SQL, with the same operations on the same
 * doubles.
 * NOTE: V8's `Math.log` and the C library's `log` behind SQLite and PostgreSQL may differ in the last bit,
 * which can move a value within about 1e-15 of a bin edge to the next bin. Whole ms up to an hour, as the
 * capture stores latencies, lie at least 2.7e-7 bins from an edge, so they land alike.
 */
export function latencyBin(ms: number): number {
  return ms < 1 ? 0 : Math.floor(Math.log(ms) / LN_BIN_RATIO) + 1;
}

/**
 * Return the latency in ms that a bin reads as: 0 for bin 0, else 1.04^(i-0.5) to 5 significant digits.
 * Rounding to whole ms, as the capture stores latencies, would put some values from 26 to 49 ms up to 3.6%
 * off (28 ms would read as 27), while 5 digits keep every value within 2%.
 */
export function latencyOfBin(bin: number): number {
  return bin === 0 ? 0 : Number((1.04 ** (bin - 0.5)).toPrecision(5));
}

/** Counts of calls per bin, for one metric of one bucket. */
export type BinCounts = Map<number, number>;

/** Add `calls` calls in `bin` to `counts`. */
export function addToBin(counts: BinCounts, bin: number, calls: number): void {
  counts.set(bin, (counts.get(bin) ?? 0) + calls);
}

/** Rank the p50 and p95 of the binned calls by nearest rank (the value at rank ceil(n·p/100)), null without calls. */
export function binnedPercentiles(counts: BinCounts): Percentiles {
  const bins = [...counts.entries()].filter(([, calls]) => calls > 0).sort((a, b) => a[0] - b[0]);
  const n = bins.reduce((total, [, calls]) => total + calls, 0);
  if (n === 0) return { p50: null, p95: null };
  const valueAtRank = (rank: number): number => {
    let seen = 0;
    for (const [bin, calls] of bins) {
      seen += calls;
      if (seen >= rank) return latencyOfBin(bin);
    }
    return latencyOfBin(bins.at(-1)![0]);
  };
  return { p50: valueAtRank(Math.ceil((n * 50) / 100)), p95: valueAtRank(Math.ceil((n * 95) / 100)) };
}
