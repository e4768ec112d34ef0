/** The time ranges of the overview and the lists: a preset back from now, or a custom interval. */

export type RangePreset = '24h' | '7d' | '30d';

export interface RangeQuery {
  range?: RangePreset;
  from?: string;
  to?: string;
}

/** `yesterday`: the previous calendar day in the browser's time zone, midnight to midnight. */
export type RangeChoice = RangePreset | 'yesterday';

export const RANGE_PRESETS: { value: RangeChoice; label: string }[] = [
  { value: 'yesterday', label: 'Yesterday' },
  { value: '24h', label: '24 h' },
  { value: '7d', label: '7 d' },
  { value: '30d', label: '30 d' },
];

/**
 * Read the range from query parameters: `from` and `to` (values of datetime-local inputs, in the browser's
 * time zone) make a custom range, else `range` (a preset, or `yesterday`), else the default. Returns API
 * parameters in UTC.
 */
export function rangeQuery(params: URLSearchParams, fallback: RangePreset, now = new Date()): RangeQuery {
  const from = params.get('from');
  const to = params.get('to');
  if (from && to) {
    const fromDate = new Date(from);
    const toDate = new Date(to);
    if (!Number.isNaN(fromDate.getTime()) && !Number.isNaN(toDate.getTime()) && fromDate < toDate) {
      return { from: fromDate.toISOString(), to: toDate.toISOString() };
    }
  }
  const range = params.get('range');
  if (range === 'yesterday') {
    const today = new Date(now.getFullYear(), now.getMonth(), now.getDate());
    const yesterday = new Date(now.getFullYear(), now.getMonth(), now.getDate() - 1);
    return { from: yesterday.toISOString(), to: today.toISOString() };
  }
  return { range: range === '24h' || range === '7d' || range === '30d' ? range : fallback };
}

/** Format a Date for a datetime-local input (local time, minutes). */
export function toLocalInput(date: Date): string {
  const pad = (value: number) => String(value).padStart(2, '0');
  return `${date.getFullYear()}-${pad(date.getMonth() + 1)}-${pad(date.getDate())}T${pad(date.getHours())}:${pad(date.getMinutes())}`;
}
