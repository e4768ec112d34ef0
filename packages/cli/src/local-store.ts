import { existsSync } from 'node:fs';
import { dataDirPaths } from '@tokenwise/server';
import { SqliteStore } from '@tokenwise/storage';
import { CliError } from './cli-error.js';

/**
 * Open the data directory's SQLite store for a command that runs while no server does, run `use`, and
 * close it. A missing database is an error: a read-only command must not create an empty data directory.
 * With `readonly` the store is opened for reading only, so a command that only reads also works on a data
 * directory this user cannot write to.
 */
export async function withLocalStore<T>(
  dataDir: string,
  use: (store: SqliteStore) => Promise<T>,
  options: { readonly?: boolean } = {},
): Promise<T> {
  const paths = dataDirPaths(dataDir);
  if (!existsSync(paths.database)) {
    throw new CliError(
      `no Tokenwise database in ${paths.dir}: start "tokenwise serve --data-dir ${paths.dir}" first, or pass the --data-dir the server uses`,
    );
  }

  const store = new SqliteStore(paths.database, { readonly: options.readonly ?? false });
  try {
    return await use(store);
  } finally {
    await store.close();
  }
}
