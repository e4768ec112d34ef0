import { useEffect, useRef, useState } from 'react';
import uPlot from 'uplot';
import { seriesColor, stackSeries } from '../lib/stack.js';
import { isDark } from '../lib/theme.js';

export interface ChartSeries {
  label: string;
  values: (number | null)[];
}

interface BaseProps {
  /** Bucket start times, ISO 8601. */
  buckets: string[];
  series: ChartSeries[];
  /** Formats a y value for the axis and the hover line. */
  format: (value: number) => string;
  /** Formats all y axis ticks together, so they can share one unit and one number of decimals; else `format`. */
  formatTicks?: (values: number[]) => string[];
  /** Text alternative: what the chart shows. */
  label: string;
  height?: number;
}

/** Bars stacked per bucket, one colour per series; the hover line lists each series' own value. */
export function StackedBarChart(props: BaseProps) {
  return <UPlotChart {...props} kind="stacked-bars" />;
}

/** Lines per series (latency percentiles); a gap where a bucket had no value. */
export function LineChart(props: BaseProps) {
  return <UPlotChart {...props} kind="lines" />;
}

function UPlotChart({ buckets, series, format, formatTicks, label, height = 220, kind }: BaseProps & { kind: 'stacked-bars' | 'lines' }) {
  const container = useRef<HTMLDivElement>(null);
  const [hover, setHover] = useState<string>('');
  const dark = useDarkTheme();

  useEffect(() => {
    const element = container.current;
    if (!element) return;
    const xs = buckets.map((bucket) => Date.parse(bucket) / 1000);
    const axisColor = dark ? '#9aa4b1' : '#5b6470';
    const gridColor = dark ? '#2c343f' : '#e3e7ec';

    let data: uPlot.AlignedData;
    let plotted: { label: string; color: string; values: (number | null)[] }[];
    if (kind === 'stacked-bars') {
      const stacked = stackSeries(
        series.map((item) => ({ label: item.label, values: item.values.map((value) => value ?? 0) })),
        xs.length,
      );
      // Draw the top of the stack first; each lower series paints over the bottom part of the one above.
      const order = stacked.map((item, index) => ({ ...item, color: seriesColor(index) })).reverse();
      data = [xs, ...order.map((item) => item.cumulative)];
      plotted = order.map((item) => ({ label: item.label, color: item.color, values: item.values }));
    } else {
      data = [xs, ...series.map((item) => item.values)];
      plotted = series.map((item, index) => ({ label: item.label, color: seriesColor(index), values: item.values }));
    }

    const bars = uPlot.paths.bars!({ size: [0.8, 48], gap: 1 });
    const options: uPlot.Options = {
      width: Math.max(element.clientWidth, 200),
      height,
      scales: { x: { time: true }, y: { range: (_u, _min, max) => [0, max > 0 ? max * 1.08 : 1] } },
      legend: { show: false },
      cursor: { drag: { x: false, y: false }, points: { show: kind === 'lines' } },
      series: [
        {},
        ...plotted.map(
          (item): uPlot.Series => ({
            label: item.label,
            stroke: item.color,
            width: kind === 'lines' ? 2 : 0,
            fill: kind === 'stacked-bars' ? item.color : undefined,
            paths: kind === 'stacked-bars' ? bars : undefined,
            // A bucket between two empty ones has no line to draw, so lines mark each value with a point.
            points: { show: kind === 'lines', size: 6, fill: item.color },
            spanGaps: false,
          }),
        ),
      ],
      axes: [
        { stroke: axisColor, grid: { stroke: gridColor, width: 1 }, ticks: { stroke: gridColor } },
        {
          stroke: axisColor,
          grid: { stroke: gridColor, width: 1 },
          ticks: { stroke: gridColor },
          // Wide enough for the longest tick label, so "$0.00060" is not cut to "0.00060".
          size: (_u, values) => Math.max(48, 16 + 7.5 * Math.max(0, ...(values ?? []).map((value) => value.length))),
          values: (_u, values) => (formatTicks ? formatTicks(values) : values.map((value) => format(value))),
        },
      ],
      hooks: {
        setCursor: [
          (chart) => {
            const index = chart.cursor.idx;
            if (index === null || index === undefined) {
              setHover('');
              return;
            }
            const when = new Date(xs[index]! * 1000).toLocaleString(undefined, {
              month: 'short',
              day: 'numeric',
              hour: '2-digit',
              minute: '2-digit',
            });
            const parts = [...plotted]
              .reverse()
              .filter((item) => item.values[index] !== null && item.values[index] !== 0)
              .map((item) => `${item.label} ${format(item.values[index]!)}`);
            setHover(`${when}: ${parts.length > 0 ? parts.join(' · ') : 'nothing'}`);
          },
        ],
      },
    };

    const chart = new uPlot(options, data, element);
    const observer = new ResizeObserver(() => chart.setSize({ width: Math.max(element.clientWidth, 200), height }));
    observer.observe(element);
    return () => {
      observer.disconnect();
      chart.destroy();
    };
    // uPlot draws on a canvas with fixed colours, so a theme change rebuilds the chart.
  }, [buckets, series, format, formatTicks, height, kind, dark]);

  return (
    <figure className="chart-figure" style={{ margin: 0 }}>
      <div ref={container} className="chart" role="img" aria-label={label} />
      <div className="chart-tooltip" aria-live="off">
        {hover || '\u00a0'}
      </div>
      <figcaption className="legend">
        {series.map((item, index) => (
          <span key={item.label}>
            <span className="swatch" style={{ background: seriesColor(index) }} aria-hidden="true" />
            {item.label}
          </span>
        ))}
      </figcaption>
    </figure>
  );
}

/** True while the page renders dark; follows the theme switch and the system setting. */
function useDarkTheme(): boolean {
  const [dark, setDark] = useState(isDark);
  useEffect(() => {
    const media = window.matchMedia('(prefers-color-scheme: dark)');
    const update = () => setDark(isDark());
    media.addEventListener('change', update);
    window.addEventListener('tokenwise-theme', update);
    return () => {
      media.removeEventListener('change', update);
      window.removeEventListener('tokenwise-theme', update);
    };
  }, []);
  return dark;
}
