import type { CallRecord } from '@tokenwise/core';
import { escapeForTerminal } from './terminal-text.js';

interface Column {
  title: string;
  width: number;
  align: 'left' | 'right';
  cell(record: CallRecord): string;
}

const MODEL_WIDTH = 30;

/** Columns of `calls` and `tail`. Widths are fixed so `tail` can print rows one at a time, aligned. */
const COLUMNS: readonly Column[] = [
  { title: 'TIME', width: 19, align: 'left', cell: (record) => formatLocalTime(record.started_at) },
  { title: 'TOOL', width: 16, align: 'left', cell: (record) => record.tool },
  { title: 'MODEL', width: MODEL_WIDTH, align: 'left', cell: (record) => record.model_answered ?? record.model_requested ?? '-' },
  { title: 'STATUS', width: 9, align: 'left', cell: formatStatus },
  { title: 'INPUT', width: 9, align: 'right', cell: (record) => formatCount(record.usage.input_tokens) },
  { title: 'CACHED', width: 9, align: 'right', cell: (record) => formatCount(record.usage.cache_read_tokens) },
  { title: 'OUTPUT', width: 9, align: 'right', cell: (record) => formatCount(record.usage.output_tokens) },
  { title: 'COST', width: 11, align: 'right', cell: formatCost },
  { title: 'LATENCY', width: 8, align: 'right', cell: (record) => formatDuration(record.timing.total_ms) },
];

const ANSI = { red: '\u001b[31m', green: '\u001b[32m', yellow: '\u001b[33m', dim: '\u001b[2m', reset: '\u001b[0m' };

export const COST_FOOTNOTE = '* API-equivalent cost of subscription traffic; >= a lower bound from partial usage';

export function formatHeader(colors: boolean): string {
  const line = COLUMNS.map((column) => pad(column.title, column))
    .join('  ')
    .trimEnd();
  return colors ? `${ANSI.dim}${line}${ANSI.reset}` : line;
}

/**
 * Format one call as a table row. Every cell is escaped for the terminal, because model names, tool ids and
 * times come from requests and upstream responses. Text cells are cut to their column, numbers never.
 */
export function formatRow(record: CallRecord, colors: boolean): string {
  return COLUMNS.map((column) => {
    const escaped = escapeForTerminal(column.cell(record));
    const text = pad(column.align === 'left' ? truncate(escaped, column.width) : escaped, column);
    return colors && column.title === 'STATUS' ? `${statusColor(record)}${text}${ANSI.reset}` : text;
  })
    .join('  ')
    .trimEnd();
}

/** True when a row's cost carries a mark the footnote explains. */
export function needsCostFootnote(record: CallRecord): boolean {
  return record.cost.usd !== null && (record.cost.basis === 'api_equivalent' || record.cost.basis === 'partial');
}

function formatStatus(record: CallRecord): string {
  if (record.status === 'error' && record.http_status !== null && record.http_status >= 400) return `error ${record.http_status}`;
  return record.status;
}

function statusColor(record: CallRecord): string {
  if (record.status === 'success') return ANSI.green;
  if (record.status === 'error') return ANSI.red;
  return ANSI.yellow;
}

function formatCount(value: number | null): string {
  return value === null ? '-' : value.toLocaleString('en-US');
}

function formatCost(record: CallRecord): string {
  const { usd, basis } = record.cost;
  if (usd === null) return basis === 'unpriced' ? 'unpriced' : '-';
  const amount = `$${usd.toFixed(4)}`;
  if (basis === 'api_equivalent') return `${amount}*`;
  if (basis === 'partial') return `>=${amount}`;
  return amount;
}

function formatDuration(ms: number): string {
  if (ms < 1000) return `${Math.round(ms)}ms`;
  return `${(ms / 1000).toFixed(1)}s`;
}

/** `YYYY-MM-DD HH:MM:SS` in the local time zone; an unparsable time is shown as stored. */
export function formatLocalTime(iso: string): string {
  const time = new Date(iso);
  if (Number.isNaN(time.getTime())) return iso;
  const two = (value: number) => String(value).padStart(2, '0');
  return `${time.getFullYear()}-${two(time.getMonth() + 1)}-${two(time.getDate())} ${two(time.getHours())}:${two(time.getMinutes())}:${two(time.getSeconds())}`;
}

function truncate(text: string, width: number): string {
  return text.length > width ? `${text.slice(0, width - 1)}…` : text;
}

function pad(text: string, column: Column): string {
  return column.align === 'left' ? text.padEnd(column.width) : text.padStart(column.width);
}
