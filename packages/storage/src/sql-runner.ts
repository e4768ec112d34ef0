/** A parameter of a statement. Booleans become 0 and 1 in SQLite, which binds no booleans. */
export type SqlParam = string | number | boolean | null;

/** One statement of a transaction. */
export interface SqlStep {
  /** SQL with `?` placeholders, written so that it runs unchanged on SQLite and PostgreSQL. */
  sql: string;
  params: readonly SqlParam[];
  /** When the statement changes no row, the transaction is rolled back and resolves to null. */
  requireChange?: boolean;
}

/**
 * The few operations the shared account queries need from a store. SQL uses `?` placeholders and only
 * syntax both databases accept; the PostgreSQL runner numbers the placeholders.
 */
export interface SqlRunner {
  all<Row>(sql: string, params: readonly SqlParam[]): Promise<Row[]>;
  /** Returns the number of rows changed. */
  run(sql: string, params: readonly SqlParam[]): Promise<number>;
  /** Runs the steps in one transaction; returns each step's changed rows, or null when a `requireChange` step changed none. */
  transaction(steps: readonly SqlStep[]): Promise<number[] | null>;
}

/** Number the `?` placeholders for PostgreSQL (`$1`, `$2`, …). The shared SQL has no `?` inside literals. */
export function numberPlaceholders(sql: string): string {
  let index = 0;
  return sql.replace(/\?/g, () => {
    index += 1;
    return `$${index}`;
  });
}

export function toSqliteParam(value: SqlParam): string | number | null {
  if (typeof value === 'boolean') return value ? 1 : 0;
  return value;
}

/** Read a boolean column: SQLite returns 0 or 1, PostgreSQL true or false. */
export function readBoolean(value: unknown): boolean {
  return value === true || value === 1;
}
