import { parseArgs } from 'node:util';
import { ensureLocalWorkspace, generateRouteToken, hashToken, resolveDataDir } from '@tokenwise/server';
import { findApiTarget, requestApi, ServerUnreachableError } from '../api-client.js';
import { usageError } from '../cli-error.js';
import type { CliIo } from '../cli-io.js';
import { withLocalStore } from '../local-store.js';
import { CLIENT_OPTIONS, COMMON_OPTIONS, flagOrEnv, parseFlagsOf } from '../options.js';

export const TOKEN_HELP = `Usage: tokenwise token create [options]

Create a route token and print it on stdout, on one line. Use it in base URLs:
  http://127.0.0.1:4747/r/<token>/anthropic
The token is shown only once; the server keeps only its hash.

Options:
  --name NAME             a label for the token (default "cli")             TOKENWISE_TOKEN_NAME
  --data-dir DIR          data directory of the local server (default ~/.tokenwise)
                                                                            TOKENWISE_DATA_DIR
  --server URL            create it on this server; needs TOKENWISE_API_TOKEN
                                                                            TOKENWISE_SERVER
  -h, --help              show this help
`;

const MAX_NAME_LENGTH = 100;

export async function tokenCommand(args: string[], io: CliIo): Promise<number> {
  const [subcommand, ...rest] = args;
  if (subcommand === '--help' || subcommand === '-h' || subcommand === undefined) {
    (subcommand === undefined ? io.stderr : io.stdout).write(TOKEN_HELP);
    return subcommand === undefined ? 2 : 0;
  }
  if (subcommand !== 'create') {
    throw usageError(`unknown subcommand "token ${subcommand}": the only one is "tokenwise token create"`);
  }

  const flags = parseFlagsOf('token create', () =>
    parseArgs({ args: rest, strict: true, options: { ...COMMON_OPTIONS, ...CLIENT_OPTIONS, name: { type: 'string' } } }),
  ).values;
  if (flags.help) {
    io.stdout.write(TOKEN_HELP);
    return 0;
  }

  const nameOption = flagOrEnv(flags.name, '--name', io.env, 'TOKENWISE_TOKEN_NAME');
  const name = nameOption?.value.trim() ?? 'cli';
  if (name === '' || name.length > MAX_NAME_LENGTH) {
    throw usageError(`invalid ${nameOption?.source ?? '--name'} "${nameOption?.value ?? ''}": expected 1 to ${MAX_NAME_LENGTH} characters`);
  }

  const token = await createToken(flags.server, resolveDataDir(flags['data-dir'], io.env), name, io);
  io.stdout.write(`${token}\n`);
  return 0;
}

async function createToken(serverFlag: string | undefined, dataDir: string, name: string, io: CliIo): Promise<string> {
  const target = await findApiTarget(serverFlag, dataDir, io.env);
  if (target) {
    try {
      const created = await requestApi<{ token: string }>(target, '/api/v1/route-tokens', {
        method: 'POST',
        body: JSON.stringify({ name }),
      });
      return created.token;
    } catch (error) {
      if (!(error instanceof ServerUnreachableError) || target.kind !== 'local') throw error;
      io.stderr.write(`tokenwise: ${error.message}; writing to the database directly\n`);
    }
  }

  return withLocalStore(dataDir, async (store) => {
    const { workspace } = await ensureLocalWorkspace(store);
    const token = generateRouteToken();
    await store.createRouteToken({ workspaceId: workspace.id, deviceId: null, name, tokenSha256: hashToken(token) });
    return token;
  });
}
