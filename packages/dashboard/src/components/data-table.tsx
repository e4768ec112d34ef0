import { type ColumnDef, flexRender, getCoreRowModel, useReactTable, type VisibilityState } from '@tanstack/react-table';
import { useVirtualizer } from '@tanstack/react-virtual';
import { type KeyboardEvent, useEffect, useRef } from 'react';

export interface DataTableProps<T> {
  data: T[];
  columns: ColumnDef<T, unknown>[];
  columnVisibility?: VisibilityState;
  getRowId: (row: T) => string;
  /** Opens a row: on click, and on Enter when the row has the focus. */
  onRowOpen?: (row: T) => void;
  /** Called when the last rows come into view, to load the next page. */
  onEndReached?: () => void;
  /** Accessible name of the table. */
  label: string;
  /** Height of the scrolling area, as CSS. */
  height?: string;
  rowHeight?: number;
}

/**
 * A table whose body renders only the rows in view (TanStack Virtual), so tens of thousands of calls
 * scroll smoothly. Rows take the focus: the up and down arrows move between them, Enter opens one.
 * Column widths come from each column's `size`; `meta.numeric` right-aligns a column.
 */
export function DataTable<T>({
  data,
  columns,
  columnVisibility,
  getRowId,
  onRowOpen,
  onEndReached,
  label,
  height = 'calc(100vh - 260px)',
  rowHeight = 34,
}: DataTableProps<T>) {
  const table = useReactTable({
    data,
    columns,
    getRowId,
    state: { columnVisibility: columnVisibility ?? {} },
    getCoreRowModel: getCoreRowModel(),
  });
  const rows = table.getRowModel().rows;
  const scroller = useRef<HTMLDivElement>(null);
  const virtualizer = useVirtualizer({
    count: rows.length,
    getScrollElement: () => scroller.current,
    estimateSize: () => rowHeight,
    overscan: 12,
  });
  const items = virtualizer.getVirtualItems();
  const lastIndex = items.at(-1)?.index ?? -1;

  useEffect(() => {
    if (onEndReached && rows.length > 0 && lastIndex >= rows.length - 10) onEndReached();
  }, [lastIndex, rows.length, onEndReached]);

  const width = table.getVisibleLeafColumns().reduce((total, column) => total + column.getSize(), 0);
  const numeric = (meta: unknown) => ((meta as { numeric?: boolean } | undefined)?.numeric ? 'num' : undefined);

  const focusRow = (index: number) => {
    if (index < 0 || index >= rows.length) return;
    virtualizer.scrollToIndex(index);
    // The row renders once it is scrolled into view.
    requestAnimationFrame(() => scroller.current?.querySelector<HTMLElement>(`tr[data-index="${index}"]`)?.focus());
  };
  const onRowKey = (event: KeyboardEvent<HTMLTableRowElement>, index: number, row: T) => {
    if (event.key === 'ArrowDown' || event.key === 'ArrowUp') {
      event.preventDefault();
      focusRow(index + (event.key === 'ArrowDown' ? 1 : -1));
    } else if (event.key === 'Enter' && event.target === event.currentTarget) {
      onRowOpen?.(row);
    }
  };

  return (
    <div ref={scroller} className="grid-table" style={{ height, minHeight: 240 }}>
      <table aria-label={label} aria-rowcount={rows.length + 1} style={{ display: 'grid', width }}>
        <thead className="head" style={{ display: 'grid', position: 'sticky', top: 0, zIndex: 1 }}>
          {table.getHeaderGroups().map((group) => (
            <tr key={group.id} style={{ display: 'flex', width }}>
              {group.headers.map((header) => (
                <th key={header.id} className={numeric(header.column.columnDef.meta)} style={{ width: header.getSize() }}>
                  {flexRender(header.column.columnDef.header, header.getContext())}
                </th>
              ))}
            </tr>
          ))}
        </thead>
        <tbody className="body" style={{ display: 'grid', height: virtualizer.getTotalSize(), position: 'relative' }}>
          {items.map((item) => {
            const row = rows[item.index]!;
            return (
              <tr
                key={row.id}
                data-index={item.index}
                aria-rowindex={item.index + 2}
                tabIndex={0}
                onKeyDown={(event) => onRowKey(event, item.index, row.original)}
                onClick={(event) => {
                  // A click on a link or button inside the row does its own thing.
                  if ((event.target as HTMLElement).closest('a, button')) return;
                  onRowOpen?.(row.original);
                }}
                style={{ display: 'flex', position: 'absolute', width, height: rowHeight, transform: `translateY(${item.start}px)` }}
              >
                {row.getVisibleCells().map((cell) => (
                  <td key={cell.id} className={numeric(cell.column.columnDef.meta)} style={{ width: cell.column.getSize() }}>
                    {flexRender(cell.column.columnDef.cell, cell.getContext())}
                  </td>
                ))}
              </tr>
            );
          })}
        </tbody>
      </table>
    </div>
  );
}
