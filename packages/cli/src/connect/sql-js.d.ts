// The part of sql.js 1.17 that connect uses. sql.js ships no types; this build carries its WebAssembly
// inline (base64), so the single-file connect bundle needs no file next to it.
declare module 'sql.js/dist/sql-wasm-inline.js' {
  export type SqlValue = number | string | Uint8Array | null;

  export interface Statement {
    bind(values: SqlValue[]): boolean;
    step(): boolean;
    get(): SqlValue[];
    reset(): void;
    free(): boolean;
  }

  export interface Database {
    prepare(sql: string): Statement;
    run(sql: string, values?: SqlValue[]): Database;
    getRowsModified(): number;
    export(): Uint8Array;
    close(): void;
  }

  export interface SqlJsStatic {
    Database: new (data?: Uint8Array) => Database;
  }

  export default function initSqlJs(config?: Record<string, unknown>): Promise<SqlJsStatic>;
}
