/**
 * One schema change of a store. Each store keeps its own append-only list, and version N of every list
 * describes the same tables and columns, so `tokenwise db copy` can move rows between stores of one version.
 */
export interface Migration {
  version: number;
  name: string;
  sql: string;
}

/** Schema changes made when a store was opened. */
export interface MigrationResult {
  /** Schema version after opening: the newest version this code supports. */
  version: number;
  /** Versions this open applied, oldest first; empty when the schema was already current. */
  applied: number[];
}

export function newestVersion(migrations: readonly Migration[]): number {
  return migrations.reduce((max, migration) => Math.max(max, migration.version), 0);
}
