import { existsSync } from 'node:fs';
import { parseArgs } from 'node:util';
import { createPasswordResetLink, dataDirPaths, parsePublicUrl, readServerInfo, resolveDataDir } from '@tokenwise/server';
import { PostgresStore, SqliteStore, type Store } from '@tokenwise/storage';
import { CliError, usageError } from '../cli-error.js';
import type { CliIo } from '../cli-io.js';
import { COMMON_OPTIONS, flagOrEnv, joinDashValues, parseFlagsOf } from '../options.js';
import { escapeForTerminal } from '../terminal-text.js';

export const USERS_HELP = `Usage: tokenwise users reset-password EMAIL [options]

Manage accounts from the server's shell, with direct access to its database.

Subcommands:
  reset-password EMAIL   print a one-time link (valid 24 hours) that sets a new
                         password for the account of EMAIL; using it signs the
                         account out everywhere

Options:
  --data-dir DIR          the server's data directory (default ~/.tokenwise)   TOKENWISE_DATA_DIR
  --database-url URL      the server's PostgreSQL instead of the data directory
                                                                               TOKENWISE_DATABASE_URL
  --public-url URL        the address people open the link at (default: the
                          running local server's URL)                          TOKENWISE_PUBLIC_URL
  -h, --help              show this help
`;

export async function usersCommand(args: string[], io: CliIo): Promise<number> {
  const [subcommand, ...rest] = args;
  if (subcommand === '--help' || subcommand === '-h' || subcommand === undefined) {
    (subcommand === undefined ? io.stderr : io.stdout).write(USERS_HELP);
    return subcommand === undefined ? 2 : 0;
  }
  if (subcommand !== 'reset-password') throw usageError(`unknown subcommand "users ${subcommand}": expected reset-password`);
  return resetPassword(rest, io);
}

async function resetPassword(args: string[], io: CliIo): Promise<number> {
  const parsed = parseFlagsOf('users reset-password', () =>
    parseArgs({
      args: joinDashValues(args),
      strict: true,
      allowPositionals: true,
      options: { ...COMMON_OPTIONS, 'data-dir': { type: 'string' }, 'database-url': { type: 'string' }, 'public-url': { type: 'string' } },
    }),
  );
  if (parsed.values.help) {
    io.stdout.write(USERS_HELP);
    return 0;
  }
  const [email, ...extra] = parsed.positionals;
  if (email === undefined || extra.length > 0) throw usageError('expected one email address: tokenwise users reset-password EMAIL');

  const dataDir = resolveDataDir(parsed.values['data-dir'], io.env);
  const baseUrl = await linkBase(parsed.values['public-url'], dataDir, io.env);
  const store = await openStore(parsed.values['database-url'], dataDir, io.env);
  try {
    const link = await createPasswordResetLink(store, email, baseUrl);
    if (!link) throw new CliError(`no account with the email ${JSON.stringify(email)} on this server`);
    io.stderr.write(
      `One-time password reset link for ${escapeForTerminal(link.user.email)}, valid until ${link.expiresAt}; send it to them privately:\n`,
    );
    io.stdout.write(`${link.url}\n`);
  } finally {
    await store.close();
  }
  return 0;
}

/** Return the origin of the link: `--public-url`, else the running local server, else the default address. */
async function linkBase(flag: string | undefined, dataDir: string, env: NodeJS.ProcessEnv): Promise<string> {
  const option = flagOrEnv(flag, '--public-url', env, 'TOKENWISE_PUBLIC_URL');
  if (option) return parsePublicUrl(option.value, option.source);
  const running = await readServerInfo(dataDirPaths(dataDir));
  return running?.url ?? 'http://127.0.0.1:4747';
}

async function openStore(flag: string | undefined, dataDir: string, env: NodeJS.ProcessEnv): Promise<Store> {
  const databaseUrl = flagOrEnv(flag, '--database-url', env, 'TOKENWISE_DATABASE_URL');
  if (databaseUrl) return PostgresStore.open(databaseUrl.value);
  const paths = dataDirPaths(dataDir);
  if (!existsSync(paths.database)) {
    throw new CliError(`no Tokenwise database in ${paths.dir}: pass the --data-dir (or --database-url) the server uses`);
  }
  return new SqliteStore(paths.database);
}
