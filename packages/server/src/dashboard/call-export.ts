import { once } from 'node:events';
import type { ServerResponse } from 'node:http';
import type { CallRecord } from '@tokenwise/core';
import type { CallFilter, Store } from '@tokenwise/storage';

export type ExportFormat = 'csv' | 'jsonl';

/** Calls read from the store per page while exporting. */
const EXPORT_PAGE = 1000;

/** The CSV columns, in order, and how each is read from a record. */
const CSV_COLUMNS: [name: string, value: (record: CallRecord) => string | number | boolean | null][] = [
  ['id', (record) => record.id],
  ['started_at', (record) => record.started_at],
  ['tool', (record) => record.tool],
  ['tool_version', (record) => record.tool_version],
  ['provider', (record) => record.provider],
  ['route', (record) => record.route],
  ['model', (record) => record.model_answered ?? record.model_requested],
  ['status', (record) => record.status],
  ['http_status', (record) => record.http_status],
  ['session_id', (record) => record.session_id],
  ['device_id', (record) => record.device_id],
  ['input_tokens', (record) => record.usage.input_tokens],
  ['cache_read_tokens', (record) => record.usage.cache_read_tokens],
  ['cache_write_tokens', (record) => record.usage.cache_write_tokens],
  ['output_tokens', (record) => record.usage.output_tokens],
  ['reasoning_tokens', (record) => record.usage.reasoning_tokens],
  ['cost_usd', (record) => record.cost.usd],
  ['cost_basis', (record) => record.cost.basis],
  ['ttft_ms', (record) => record.timing.ttft_ms],
  ['total_ms', (record) => record.timing.total_ms],
  ['error_type', (record) => record.error?.type ?? null],
];

/**
 * Stream every call matching `filter`, newest first, as CSV or JSON Lines. Pages are read one at a time and
 * the next is read only once the client took the previous one, so memory stays bounded whatever the
 * size of the export. A client that hangs up stops the export.
 */
export async function streamCallExport(
  res: ServerResponse,
  options: { store: Store; filter: CallFilter; format: ExportFormat; filename: string },
): Promise<number> {
  const { store, filter, format } = options;
  res.writeHead(200, {
    'content-type': format === 'csv' ? 'text/csv; charset=utf-8' : 'application/x-ndjson; charset=utf-8',
    'content-disposition': `attachment; filename="${options.filename}.${format === 'csv' ? 'csv' : 'jsonl'}"`,
    'cache-control': 'no-store',
  });
  if (format === 'csv') res.write(`${CSV_COLUMNS.map(([name]) => name).join(',')}\r\n`);

  let exported = 0;
  let cursor: string | undefined;
  do {
    if (res.destroyed) return exported;
    const page = await store.searchCalls(filter, { limit: EXPORT_PAGE, cursor });
    const text = page.calls.map(({ record }) => (format === 'csv' ? csvRow(record) : `${JSON.stringify(record)}\n`)).join('');
    exported += page.calls.length;
    cursor = page.nextCursor ?? undefined;
    if (text !== '' && !res.write(text)) await drained(res);
  } while (cursor !== undefined);
  res.end();
  return exported;
}

export function csvRow(record: CallRecord): string {
  return `${CSV_COLUMNS.map(([, value]) => csvField(value(record))).join(',')}\r\n`;
}

/**
 * Quote a field per RFC 4180 when it needs it. A text starting with `=`, `+`, `-`, `@`, tab or carriage
 * return gets a leading `'`, so a spreadsheet opening the file shows it instead of running it as a
 * formula (OWASP's advice against CSV injection); numbers are written as they are.
 */
export function csvField(value: string | number | boolean | null): string {
  if (value === null) return '';
  if (typeof value !== 'string') return String(value);
  const text = /^[=+\-@\t\r]/.test(value) ? `'${value}` : value;
  return /[",\r\n]/.test(text) ? `"${text.replaceAll('"', '""')}"` : text;
}

async function drained(res: ServerResponse): Promise<void> {
  await Promise.race([once(res, 'drain'), once(res, 'close')]);
}
