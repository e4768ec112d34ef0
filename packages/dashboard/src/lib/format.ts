/**
 * Formatting of the numbers the dashboard shows. `null` means the provider did not report the value, which
 * is shown as an en dash rather than 0.
 */

const MISSING = '–';

/** Format US dollars: cents for amounts from $1, more digits below so small calls do not all read $0.00. */
export function formatUsd(value: number | null | undefined): string {
  if (value === null || value === undefined || Number.isNaN(value)) return MISSING;
  const abs = Math.abs(value);
  if (abs === 0) return '$0.00';
  if (abs >= 1000) return `$${Math.round(value).toLocaleString('en-US')}`;
  if (abs >= 1) return `$${value.toFixed(2)}`;
  if (abs >= 0.01) return `$${value.toFixed(3)}`;
  return `$${value.toPrecision(2)}`;
}

/** Format a token count compactly: 950, 12.3k, 4.1M, 2.05B. */
export function formatTokens(value: number | null | undefined): string {
  if (value === null || value === undefined) return MISSING;
  const abs = Math.abs(value);
  if (abs < 1000) return String(value);
  if (abs < 1_000_000) return `${trimZeros((value / 1000).toFixed(abs < 10_000 ? 2 : 1))}k`;
  if (abs < 1_000_000_000) return `${trimZeros((value / 1_000_000).toFixed(abs < 10_000_000 ? 2 : 1))}M`;
  return `${trimZeros((value / 1_000_000_000).toFixed(2))}B`;
}

/** Format a whole count with thousands separators. */
export function formatCount(value: number | null | undefined): string {
  if (value === null || value === undefined) return MISSING;
  return value.toLocaleString('en-US');
}

/** Format a duration in ms: 840 ms, 2.4 s, 3 min 12 s, 1 h 05 min. */
export function formatDuration(ms: number | null | undefined): string {
  if (ms === null || ms === undefined || Number.isNaN(ms)) return MISSING;
  if (ms === 0) return '0 ms';
  if (ms < 1) return `${ms.toFixed(2)} ms`;
  if (ms < 1000) return `${Math.round(ms)} ms`;
  if (ms < 60_000) return `${trimZeros((ms / 1000).toFixed(ms < 10_000 ? 2 : 1))} s`;
  const totalS = Math.round(ms / 1000);
  if (totalS < 3600) return `${Math.floor(totalS / 60)} min ${String(totalS % 60).padStart(2, '0')} s`;
  const totalMin = Math.round(totalS / 60);
  if (totalMin < 48 * 60) return `${Math.floor(totalMin / 60)} h ${String(totalMin % 60).padStart(2, '0')} min`;
  return `${Math.round(totalMin / 60 / 24)} d`;
}

/** Format a ratio from 0 to 1 as a percentage. */
export function formatPercent(ratio: number | null | undefined, digits = 1): string {
  if (ratio === null || ratio === undefined || Number.isNaN(ratio)) return MISSING;
  return `${(ratio * 100).toFixed(digits)}%`;
}

/** Format a byte count: 812 B, 48.2 KiB, 1.5 MiB. */
export function formatBytes(bytes: number | null | undefined): string {
  if (bytes === null || bytes === undefined) return MISSING;
  if (bytes < 1024) return `${bytes} B`;
  if (bytes < 1024 * 1024) return `${trimZeros((bytes / 1024).toFixed(1))} KiB`;
  return `${trimZeros((bytes / 1024 / 1024).toFixed(1))} MiB`;
}

/** Format an ISO time in the browser's time zone: "14:03:12" today, "May 3, 14:03" this year, else with the year. */
export function formatTime(iso: string | null | undefined, now: Date = new Date()): string {
  if (!iso) return MISSING;
  const date = new Date(iso);
  if (Number.isNaN(date.getTime())) return iso;
  const sameDay = date.toDateString() === now.toDateString();
  if (sameDay) return date.toLocaleTimeString('en-GB', { hour: '2-digit', minute: '2-digit', second: '2-digit' });
  const options: Intl.DateTimeFormatOptions = { month: 'short', day: 'numeric', hour: '2-digit', minute: '2-digit', hourCycle: 'h23' };
  if (date.getFullYear() !== now.getFullYear()) options.year = 'numeric';
  return date.toLocaleString('en-US', options);
}

/**
 * Format a time range with both ends in full: "Dec 4, 00:00 to Dec 5, 00:00". The year appears on both ends when
 * either end is outside the current year. Seconds are left out because ranges start on minutes or buckets.
 */
export function formatRange(fromIso: string, toIso: string, now: Date = new Date()): string {
  const from = new Date(fromIso);
  const to = new Date(toIso);
  if (Number.isNaN(from.getTime()) || Number.isNaN(to.getTime())) return `${fromIso} to ${toIso}`;
  const options: Intl.DateTimeFormatOptions = { month: 'short', day: 'numeric', hour: '2-digit', minute: '2-digit', hourCycle: 'h23' };
  if (from.getFullYear() !== now.getFullYear() || to.getFullYear() !== now.getFullYear()) options.year = 'numeric';
  return `${from.toLocaleString('en-US', options)} to ${to.toLocaleString('en-US', options)}`;
}

/** Format an ISO time with its date, whatever the day: "Dec 5, 01:21:56", with the year outside the current one. */
export function formatDateTime(iso: string | null | undefined, now: Date = new Date()): string {
  if (!iso) return MISSING;
  const date = new Date(iso);
  if (Number.isNaN(date.getTime())) return iso;
  const options: Intl.DateTimeFormatOptions = {
    month: 'short',
    day: 'numeric',
    hour: '2-digit',
    minute: '2-digit',
    second: '2-digit',
    hourCycle: 'h23',
  };
  if (date.getFullYear() !== now.getFullYear()) options.year = 'numeric';
  return date.toLocaleString('en-US', options);
}

/**
 * Format the ticks of a duration axis in one unit, so "0 ms" never sits under "10 s": seconds when the largest
 * tick is at least 1 s, else milliseconds. `ticks` are in ms.
 */
export function formatDurationTicks(ticks: number[]): string[] {
  const max = Math.max(0, ...ticks.map((tick) => Math.abs(tick)));
  if (max >= 1000) return formatTicks(ticks.map((tick) => tick / 1000)).map((text) => `${text} s`);
  return formatTicks(ticks).map((text) => `${text} ms`);
}

/** Format the ticks of a US dollar axis, each with "$" and the same number of decimals. */
export function formatUsdTicks(ticks: number[]): string[] {
  return formatTicks(ticks, 2).map((text) => (text.startsWith('-') ? `-$${text.slice(1)}` : `$${text}`));
}

/** Format axis ticks with the fewest decimals (at least `minDecimals`) that still tell neighbouring ticks apart. */
function formatTicks(ticks: number[], minDecimals = 0): string[] {
  const steps = ticks
    .slice(1)
    .map((tick, index) => Math.abs(tick - ticks[index]!))
    .filter((step) => step > 0);
  const step = steps.length > 0 ? Math.min(...steps) : Math.max(0, ...ticks.map((tick) => Math.abs(tick)));
  // A step of 0.0002 needs 4 decimals; the small epsilon keeps 0.1 (stored as 0.1000000000000000055) at 1.
  const needed = step > 0 ? Math.max(0, Math.ceil(-Math.log10(step) - 1e-9)) : 0;
  const decimals = Math.min(Math.max(needed, minDecimals), 8);
  return ticks.map((tick) => tick.toFixed(decimals));
}

/** Format how long ago an ISO time was: "just now", "5 min ago", "3 h ago", "2 d ago". */
export function formatAgo(iso: string | null | undefined, now: Date = new Date()): string {
  if (!iso) return 'never';
  const ms = now.getTime() - new Date(iso).getTime();
  if (Number.isNaN(ms)) return iso;
  if (ms < 60_000) return 'just now';
  if (ms < 3_600_000) return `${Math.floor(ms / 60_000)} min ago`;
  if (ms < 86_400_000) return `${Math.floor(ms / 3_600_000)} h ago`;
  return `${Math.floor(ms / 86_400_000)} d ago`;
}

/** Shorten an id for a table cell, keeping its end, which differs most between UUIDv7 ids. */
export function shortId(id: string | null | undefined, keep = 8): string {
  if (!id) return MISSING;
  return id.length <= keep + 1 ? id : `…${id.slice(-keep)}`;
}

function trimZeros(text: string): string {
  return text.includes('.') ? text.replace(/\.?0+$/, '') : text;
}
