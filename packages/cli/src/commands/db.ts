import { existsSync, statSync } from 'node:fs';
import { mkdir } from 'node:fs/promises';
import { homedir } from 'node:os';
import { join, resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { TokenwiseError } from '@tokenwise/core';
import { dataDirPaths, prepareDataDir, resolveDataDir } from '@tokenwise/server';
import { backupSqlite, type CopyReport, copySqliteToPostgres, describePostgresUrl, PostgresStore, SqliteStore } from '@tokenwise/storage';
import { usageError } from '../cli-error.js';
import type { CliIo } from '../cli-io.js';
import { booleanFlagOrEnv, COMMON_OPTIONS, flagOrEnv, parseFlagsOf } from '../options.js';

export const DB_HELP = `Usage: tokenwise db <migrate|copy|backup> [options]

Manage the database. tokenwise serve migrates on start too; these commands
let you do it ahead, move an installation to PostgreSQL, and back SQLite up.

  tokenwise db migrate [--database-url URL] [--data-dir DIR]
      Bring the schema to this version of Tokenwise and print the version.
      Without --database-url, migrates the SQLite database in the data directory.

  tokenwise db copy [--from sqlite:PATH] --to postgres://... [--json]
      Copy every table (workspaces, devices, tokens, settings, calls, bodies)
      from SQLite into PostgreSQL, then check that every call is there with the
      same token, byte and cost sums. Rows already in the target are skipped, so
      running it again is safe. PATH is a tokenwise.db file or a data directory;
      the default is the data directory's database.

  tokenwise db backup [--to FILE] [--data-dir DIR]
      Copy the SQLite database with SQLite's online backup, safe while the server
      runs. The default FILE is DATA_DIR/backups/tokenwise-<UTC time>.db; an
      existing file is never overwritten.

Options:
  --database-url URL      the PostgreSQL database to migrate     TOKENWISE_DATABASE_URL
  --from sqlite:PATH      the SQLite database to copy from
  --to URL or FILE        copy: the PostgreSQL database          TOKENWISE_DATABASE_URL
                          backup: the file to write
  --data-dir DIR          data directory (default ~/.tokenwise)  TOKENWISE_DATA_DIR
  --json                  copy: print the report as JSON         TOKENWISE_JSON
  -h, --help              show this help

Back PostgreSQL up with its own tools, for example:
  pg_dump --format=custom --file tokenwise.dump "$TOKENWISE_DATABASE_URL"
`;

const DB_OPTIONS = {
  ...COMMON_OPTIONS,
  'data-dir': { type: 'string' },
  'database-url': { type: 'string' },
  from: { type: 'string' },
  to: { type: 'string' },
  json: { type: 'boolean' },
} as const;

type DbFlags = ReturnType<typeof parseDbFlags>;

export async function dbCommand(args: string[], io: CliIo): Promise<number> {
  const [subcommand, ...rest] = args;
  if (subcommand === '--help' || subcommand === '-h' || subcommand === undefined) {
    (subcommand === undefined ? io.stderr : io.stdout).write(DB_HELP);
    return subcommand === undefined ? 2 : 0;
  }

  const run = { migrate: migrateCommand, copy: copyCommand, backup: backupCommand }[subcommand];
  if (!run) throw usageError(`unknown subcommand "db ${subcommand}": expected migrate, copy or backup; run "tokenwise db --help"`);

  const flags = parseDbFlags(subcommand, rest);
  if (flags.help) {
    io.stdout.write(DB_HELP);
    return 0;
  }
  return run(flags, io);
}

function parseDbFlags(subcommand: string, args: string[]) {
  return parseFlagsOf(`db ${subcommand}`, () => parseArgs({ args, strict: true, options: DB_OPTIONS })).values;
}

async function migrateCommand(flags: DbFlags, io: CliIo): Promise<number> {
  rejectFlags(flags, 'migrate', ['from', 'to', 'json']);
  const databaseUrl = flagOrEnv(flags['database-url'], '--database-url', io.env, 'TOKENWISE_DATABASE_URL');

  if (databaseUrl) {
    const store = await PostgresStore.open(checkPostgresUrl(databaseUrl.value, databaseUrl.source));
    await store.close();
    io.stdout.write(`${describeMigration(`PostgreSQL ${store.displayUrl} (schema ${store.schema})`, store.migration)}\n`);
    return 0;
  }

  const paths = await prepareDataDir(resolveDataDir(flags['data-dir'], io.env));
  const store = new SqliteStore(paths.database);
  await store.close();
  io.stdout.write(`${describeMigration(`SQLite ${paths.database}`, store.migration)}\n`);
  return 0;
}

function describeMigration(database: string, migration: { version: number; applied: number[] }): string {
  if (migration.applied.length === 0) return `${database}: already at schema version ${migration.version}, nothing to apply.`;
  return `${database}: applied schema version ${migration.applied.join(', ')}; now at version ${migration.version}.`;
}

async function copyCommand(flags: DbFlags, io: CliIo): Promise<number> {
  rejectFlags(flags, 'copy', ['database-url']);
  const to = flagOrEnv(flags.to, '--to', io.env, 'TOKENWISE_DATABASE_URL');
  if (!to) throw usageError('missing --to: pass the PostgreSQL database to copy into, e.g. --to postgres://tokenwise@db:5432/tokenwise');
  const postgresUrl = checkPostgresUrl(to.value, to.source);
  const sqlitePath =
    flags.from === undefined ? dataDirPaths(resolveDataDir(flags['data-dir'], io.env)).database : parseSqliteSource(flags.from);
  const json = booleanFlagOrEnv(flags.json, io.env, 'TOKENWISE_JSON');

  const progress = { table: '', rows: 0 };
  const report = await copySqliteToPostgres({
    sqlitePath,
    postgresUrl,
    onProgress: (table, rowsRead) => {
      // One line per 10,000 rows of a table keeps a long copy visibly alive without flooding the terminal.
      if (table !== progress.table) Object.assign(progress, { table, rows: 0 });
      if (json || rowsRead - progress.rows < 10_000) return;
      progress.rows = rowsRead;
      io.stderr.write(`tokenwise: copying ${table}: ${rowsRead} rows read\n`);
    },
  });

  if (json) io.stdout.write(`${JSON.stringify(report)}\n`);
  else io.stdout.write(formatCopyReport(report));
  if (!report.ok) {
    io.stderr.write(
      'tokenwise: the copy check failed: the target misses calls or its sums differ (see the report); running "tokenwise db copy" again copies missing calls\n',
    );
    return 1;
  }
  return 0;
}

export function formatCopyReport(report: CopyReport): string {
  const lines = [`Copied sqlite:${report.source} to ${report.target}`, ''];
  lines.push(`${'table'.padEnd(14)}${'source'.padStart(10)}${'inserted'.padStart(10)}${'in target'.padStart(11)}`);
  for (const table of report.tables) {
    lines.push(
      `${table.table.padEnd(14)}${String(table.sourceRows).padStart(10)}${String(table.inserted).padStart(10)}${String(table.inTarget).padStart(11)}`,
    );
  }

  lines.push('', `${'sum over calls'.padEnd(22)}${'source'.padStart(16)}${'target'.padStart(16)}`);
  for (const sum of report.sums) {
    lines.push(`${sum.column.padEnd(22)}${sum.source.padStart(16)}${sum.target.padStart(16)}  ${sum.equal ? 'equal' : 'DIFFERENT'}`);
  }

  lines.push('');
  for (const key of report.settingConflicts) {
    lines.push(`Note: the target already had the setting "${key}" with another value, and keeps its own.`);
  }
  for (const table of report.tables) {
    if (table.table !== 'calls' && table.table !== 'call_bodies' && table.inTarget < table.sourceRows) {
      lines.push(
        `Note: ${table.sourceRows - table.inTarget} ${table.table} rows were skipped because the target has a row with the same unique value.`,
      );
    }
  }
  const calls = report.tables.find((table) => table.table === 'calls');
  if (report.ok) lines.push(`Check passed: all ${calls?.sourceRows ?? 0} calls are in the target, with equal sums.`);
  else lines.push('Check FAILED: see the rows above where the target differs from the source.');
  return `${lines.join('\n')}\n`;
}

async function backupCommand(flags: DbFlags, io: CliIo): Promise<number> {
  rejectFlags(flags, 'backup', ['from', 'json', 'database-url']);
  const paths = dataDirPaths(resolveDataDir(flags['data-dir'], io.env));
  if (io.env.TOKENWISE_DATABASE_URL) {
    io.stderr.write(
      'tokenwise: TOKENWISE_DATABASE_URL is set, but db backup copies the SQLite database; back PostgreSQL up with pg_dump\n',
    );
  }

  let target: string;
  if (flags.to === undefined) {
    const backups = join(paths.dir, 'backups');
    await mkdir(backups, { recursive: true, mode: 0o700 });
    target = join(
      backups,
      `tokenwise-${new Date()
        .toISOString()
        .replace(/[-:]/g, '')
        .replace(/\.\d+Z$/, 'Z')}.db`,
    );
  } else {
    target = resolve(expandHome(flags.to));
  }

  const report = await backupSqlite(paths.database, target);
  const mebibytes = (report.bytes / (1024 * 1024)).toFixed(1);
  const calls = `${report.calls} ${report.calls === 1 ? 'call' : 'calls'}`;
  io.stdout.write(`Backed up ${report.source} to ${report.target} (${calls}, ${mebibytes} MiB); integrity check ok.\n`);
  return 0;
}

/** Return the file of `sqlite:PATH`, where PATH is a database file or a data directory. */
function parseSqliteSource(value: string): string {
  if (!value.startsWith('sqlite:') || value.length === 'sqlite:'.length) {
    throw usageError(`invalid --from "${value}": expected sqlite:PATH, with PATH a tokenwise.db file or a data directory`);
  }
  const path = resolve(expandHome(value.slice('sqlite:'.length)));
  return existsSync(path) && statSync(path).isDirectory() ? dataDirPaths(path).database : path;
}

function checkPostgresUrl(value: string, source: string): string {
  try {
    describePostgresUrl(value);
  } catch (error) {
    if (error instanceof TokenwiseError) throw usageError(`invalid ${source}: ${error.message}`);
    throw error;
  }
  return value;
}

function rejectFlags(flags: DbFlags, subcommand: string, names: (keyof DbFlags)[]): void {
  for (const name of names) {
    if (flags[name] !== undefined) throw usageError(`--${name} is not an option of tokenwise db ${subcommand}: run "tokenwise db --help"`);
  }
}

function expandHome(path: string): string {
  if (path === '~') return homedir();
  return path.startsWith('~/') ? join(homedir(), path.slice(2)) : path;
}
