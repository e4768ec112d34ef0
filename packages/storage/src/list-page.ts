import { TokenwiseError } from '@tokenwise/core';
import type { ListPage, PageRequest } from './call-queries.js';
import type { SqlParam } from './sql-runner.js';

/** One column of a list's sort key. */
export interface SortColumn {
  /** The SQL expression sorted by, e.g. `m.created_at`. */
  sql: string;
  /** The key of the result row that contains its value. */
  field: string;
  type: 'text' | 'integer';
  descending?: boolean;
}

/**
 * The order of a list. The columns together must be unique within the list (ending with an id does it), so
 * the order is total and a page never repeats or skips a row that existed when the previous page was read.
 */
export interface ListOrder {
  /** The list's name, stored in its cursors so a cursor of another list is rejected instead of misread. */
  list: string;
  columns: readonly SortColumn[];
}

type Row = Record<string, unknown>;

/**
 * The SQL pieces of one page: `after` is empty on the first page, else ` AND …` with `params`, which
 * keeps the rows after the cursor's row. `limit` is one more than the page size, so `toListPage` can tell
 * whether another page follows.
 */
export function listPageQuery(order: ListOrder, page: PageRequest): { after: string; params: SqlParam[]; orderBy: string; limit: number } {
  checkPageLimit(page);
  const orderBy = order.columns.map((column) => `${column.sql}${column.descending ? ' DESC' : ''}`).join(', ');
  if (page.cursor === undefined) return { after: '', params: [], orderBy, limit: page.limit + 1 };

  const values = parseListCursor(order, page.cursor);
  // (a > ?) OR (a = ? AND b > ?) OR …, with < for descending columns, because a row-value comparison cannot mix directions.
  const terms: string[] = [];
  const params: SqlParam[] = [];
  order.columns.forEach((column, index) => {
    const equal = order.columns.slice(0, index).map((previous) => `${previous.sql} = ?`);
    terms.push(`(${[...equal, `${column.sql} ${column.descending ? '<' : '>'} ?`].join(' AND ')})`);
    params.push(...values.slice(0, index + 1));
  });
  // The OR alone gives the planner no bound on the index, so the first column's bound is repeated on its
  // own: with an index in list order the page starts reading at the cursor instead of at the list's start.
  const [first] = order.columns;
  const bound = `${first!.sql} ${first!.descending ? '<=' : '>='} ?`;
  return { after: ` AND ${bound} AND (${terms.join(' OR ')})`, params: [values[0]!, ...params], orderBy, limit: page.limit + 1 };
}

/**
 * Page a list that is computed whole in memory, such as sums over calls, with the same cursors as
 * `listPageQuery`. Integer columns compare as numbers and text columns by UTF-16 code unit.
 */
export function pageRows<T>(rows: readonly Row[], order: ListOrder, page: PageRequest, toItem: (row: Row) => T): ListPage<T> {
  checkPageLimit(page);
  const sorted = [...rows].sort((a, b) => compareKeys(order, keyOf(order, a), keyOf(order, b)));
  let start = 0;
  if (page.cursor !== undefined) {
    const after = parseListCursor(order, page.cursor) as SortKey;
    start = sorted.findIndex((row) => compareKeys(order, keyOf(order, row), after) > 0);
    if (start < 0) start = sorted.length;
  }
  return toListPage(sorted.slice(start, start + page.limit + 1), page, order, toItem);
}

function checkPageLimit(page: PageRequest): void {
  if (!Number.isInteger(page.limit) || page.limit < 1) {
    throw new TokenwiseError('invalid_argument', `invalid limit ${page.limit}: expected a whole number of at least 1`);
  }
}

/** The values of a row's sort columns; cursors hold only text and safe integers. */
type SortKey = (string | number)[];

function keyOf(order: ListOrder, row: Row): SortKey {
  return order.columns.map((column) => (column.type === 'integer' ? Number(row[column.field]) : String(row[column.field])));
}

/** Compare two sort keys in the list's order: negative when `a` comes first. */
function compareKeys(order: ListOrder, a: SortKey, b: SortKey): number {
  for (const [index, column] of order.columns.entries()) {
    const [left, right] = [a[index]!, b[index]!];
    if (left === right) continue;
    const ascending = left < right ? -1 : 1;
    return column.descending ? -ascending : ascending;
  }
  return 0;
}

/** Turn the rows of `listPageQuery` into a page, with the cursor of its last row when more rows follow. */
export function toListPage<T>(rows: readonly Row[], page: PageRequest, order: ListOrder, toItem: (row: Row) => T): ListPage<T> {
  const pageRows = rows.slice(0, page.limit);
  const last = pageRows.at(-1);
  const nextCursor = rows.length > page.limit && last ? encodeListCursor(order, last) : null;
  return { items: pageRows.map(toItem), nextCursor };
}

/** Cursors are base64url JSON arrays, `[list, ...sort key of the last row]`, opaque to callers. */
function encodeListCursor(order: ListOrder, row: Row): string {
  // PostgreSQL returns BIGINT as a string, so integer columns go through Number.
  const values = order.columns.map((column) => (column.type === 'integer' ? Number(row[column.field]) : String(row[column.field])));
  return Buffer.from(JSON.stringify([order.list, ...values])).toString('base64url');
}

function parseListCursor(order: ListOrder, cursor: string): SqlParam[] {
  let value: unknown;
  try {
    value = JSON.parse(Buffer.from(cursor, 'base64url').toString('utf8'));
  } catch {
    value = null;
  }
  const quoted = cursor.slice(0, 80);
  if (!Array.isArray(value) || typeof value[0] !== 'string') {
    throw new TokenwiseError('invalid_argument', `invalid cursor "${quoted}": pass back the next_cursor of the previous page unchanged`);
  }
  if (value[0] !== order.list) {
    throw new TokenwiseError(
      'invalid_argument',
      `invalid cursor "${quoted}": it belongs to another list; pass back the next_cursor of the previous page of this one`,
    );
  }
  const values = value.slice(1);
  const valid =
    values.length === order.columns.length &&
    order.columns.every((column, index) =>
      column.type === 'integer' ? Number.isSafeInteger(values[index]) : typeof values[index] === 'string',
    );
  if (!valid)
    throw new TokenwiseError('invalid_argument', `invalid cursor "${quoted}": pass back the next_cursor of the previous page unchanged`);
  return values as SqlParam[];
}
