/**
 * Stacking for the overview's bar charts. uPlot draws each series from zero, so a stacked chart draws the
 * running totals: series i is drawn at the sum of series 0..i, the largest first, and each smaller one
 * paints over the lower part of the previous one.
 */

export interface StackInput {
  label: string;
  values: number[];
}

export interface StackedSeries {
  label: string;
  /** The series' own values, for the legend and tooltips. */
  values: number[];
  /** Sum of this series and every series below it, per bucket. */
  cumulative: number[];
}

/** Return the series with running totals, in stacking order (the first input at the bottom). */
export function stackSeries(series: StackInput[], length: number): StackedSeries[] {
  const running = new Array<number>(length).fill(0);
  return series.map((item) => {
    const values = Array.from({ length }, (_, index) => item.values[index] ?? 0);
    const cumulative = values.map((value, index) => {
      running[index]! += value;
      return running[index]!;
    });
    return { label: item.label, values, cumulative };
  });
}

/** Series colours, chosen to stay distinct in both themes and for common colour-vision deficiencies (Okabe–Ito order). */
export const SERIES_COLORS = [
  '#0072b2',
  '#e69f00',
  '#009e73',
  '#cc79a7',
  '#56b4e9',
  '#d55e00',
  '#7a6fd0',
  '#b8a500',
  '#6b8e23',
  '#8c564b',
  '#999999',
];

export function seriesColor(index: number): string {
  return SERIES_COLORS[index % SERIES_COLORS.length]!;
}
