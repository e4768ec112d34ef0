import { parseArgs } from 'node:util';
import {
  describeRouteToken,
  ensureLocalWorkspace,
  findLocalWorkspace,
  generateRouteToken,
  hashToken,
  type RouteTokenDescription,
  resolveDataDir,
} from '@tokenwise/server';
import { type ApiTarget, findApiTarget, requestAllPages, requestApi, ServerUnreachableError } from '../api-client.js';
import { CliError, usageError } from '../cli-error.js';
import type { CliIo } from '../cli-io.js';
import { withLocalStore } from '../local-store.js';
import { booleanFlagOrEnv, CLIENT_OPTIONS, COMMON_OPTIONS, flagOrEnv, joinDashValues, parseFlagsOf } from '../options.js';
import { escapeForTerminal } from '../terminal-text.js';
import { formatTokenTable } from '../token-table.js';
import { runSubcommand, type SubcommandHandler } from './subcommands.js';

export const TOKEN_HELP = `Usage: tokenwise token create [--name NAME] [options]
       tokenwise token list [--json] [options]
       tokenwise token revoke ID [options]

Manage route tokens, the secret part of the base URLs your AI tools use.

Subcommands:
  create          create a route token and print it on stdout, on one line;
                  its id goes to stderr. Use it in base URLs:
                    http://127.0.0.1:4747/r/<token>/anthropic
                  The token is shown only once; the server keeps only its hash.
  list            list the route tokens: id, name, created, last used and
                  whether it is revoked (never the token itself)
  revoke ID       revoke a route token by its id (or a unique start of it), so
                  the proxy rejects it at once

Options:
  --name NAME             create: a label for the token (default "cli")     TOKENWISE_TOKEN_NAME
  --json                  list: one JSON object per line                    TOKENWISE_JSON
  --data-dir DIR          data directory of the local server (default ~/.tokenwise)
                                                                            TOKENWISE_DATA_DIR
  --server URL            use this server; needs TOKENWISE_API_TOKEN        TOKENWISE_SERVER
  -h, --help              show this help

With no server running, the commands use the database in the data directory.
`;

const MAX_NAME_LENGTH = 100;
/** Shortest id prefix `revoke` accepts, so a typo cannot match by chance. */
const MIN_ID_PREFIX_LENGTH = 4;

const SUBCOMMANDS: Record<string, SubcommandHandler> = {
  create: createSubcommand,
  list: listSubcommand,
  revoke: revokeSubcommand,
};

export function tokenCommand(args: string[], io: CliIo): Promise<number> {
  return runSubcommand('token', TOKEN_HELP, SUBCOMMANDS, args, io);
}

async function createSubcommand(args: string[], io: CliIo): Promise<number> {
  const flags = parseFlagsOf('token create', () =>
    parseArgs({ args: joinDashValues(args), strict: true, options: { ...COMMON_OPTIONS, ...CLIENT_OPTIONS, name: { type: 'string' } } }),
  ).values;
  if (flags.help) {
    io.stdout.write(TOKEN_HELP);
    return 0;
  }

  const nameOption = flagOrEnv(flags.name, '--name', io.env, 'TOKENWISE_TOKEN_NAME');
  const name = nameOption?.value.trim() ?? 'cli';
  if (name === '' || name.length > MAX_NAME_LENGTH || /\p{Cc}/u.test(name)) {
    throw usageError(
      `invalid ${nameOption?.source ?? '--name'} ${JSON.stringify(nameOption?.value ?? '')}: expected 1 to ${MAX_NAME_LENGTH} printable characters`,
    );
  }

  const created = await createToken(flags.server, resolveDataDir(flags['data-dir'], io.env), name, io);
  io.stdout.write(`${created.token}\n`);
  const id = escapeForTerminal(created.id);
  io.stderr.write(`Created route token ${id} ("${escapeForTerminal(name)}"); revoke it with: tokenwise token revoke ${id}\n`);
  return 0;
}

async function createToken(serverFlag: string | undefined, dataDir: string, name: string, io: CliIo) {
  const target = await findApiTarget(serverFlag, dataDir, io.env);
  if (target) {
    try {
      return await requestApi<{ id: string; token: string }>(target, '/api/v1/route-tokens', {
        method: 'POST',
        body: JSON.stringify({ name }),
      });
    } catch (error) {
      if (!(error instanceof ServerUnreachableError) || target.kind !== 'local') throw error;
      io.stderr.write(`tokenwise: ${error.message}; writing to the database directly\n`);
    }
  }

  return withLocalStore(dataDir, async (store) => {
    const { workspace } = await ensureLocalWorkspace(store);
    const token = generateRouteToken();
    // Every route token belongs to a device of its own, as the API makes them.
    const device = await store.createDevice({ workspaceId: workspace.id, name });
    const row = await store.createRouteToken({ workspaceId: workspace.id, deviceId: device.id, name, tokenSha256: hashToken(token) });
    return { id: row.id, token };
  });
}

async function listSubcommand(args: string[], io: CliIo): Promise<number> {
  const flags = parseFlagsOf('token list', () =>
    parseArgs({ args: joinDashValues(args), strict: true, options: { ...COMMON_OPTIONS, ...CLIENT_OPTIONS, json: { type: 'boolean' } } }),
  ).values;
  if (flags.help) {
    io.stdout.write(TOKEN_HELP);
    return 0;
  }

  const json = booleanFlagOrEnv(flags.json, io.env, 'TOKENWISE_JSON');
  const tokens = await listTokens(flags.server, resolveDataDir(flags['data-dir'], io.env), io);
  if (json) {
    for (const token of tokens) io.stdout.write(`${JSON.stringify(token)}\n`);
  } else if (tokens.length === 0) {
    io.stdout.write('No route tokens yet: tokenwise serve makes one on its first start.\n');
  } else {
    io.stdout.write(formatTokenTable(tokens));
  }
  return 0;
}

async function listTokens(serverFlag: string | undefined, dataDir: string, io: CliIo): Promise<RouteTokenDescription[]> {
  const target = await findApiTarget(serverFlag, dataDir, io.env);
  if (target) {
    try {
      return await listTokensFromApi(target);
    } catch (error) {
      if (!(error instanceof ServerUnreachableError) || target.kind !== 'local') throw error;
      io.stderr.write(`tokenwise: ${error.message}; reading the database directly\n`);
    }
  }

  return withLocalStore(
    dataDir,
    async (store) => {
      const workspace = await findLocalWorkspace(store);
      return workspace === null ? [] : (await store.listRouteTokens(workspace.id)).map(describeRouteToken);
    },
    { readonly: true },
  );
}

async function listTokensFromApi(target: ApiTarget): Promise<RouteTokenDescription[]> {
  return requestAllPages<RouteTokenDescription>(target, '/api/v1/route-tokens', 'route_tokens');
}

async function revokeSubcommand(args: string[], io: CliIo): Promise<number> {
  const parsed = parseFlagsOf('token revoke', () =>
    parseArgs({ args: joinDashValues(args), strict: true, allowPositionals: true, options: { ...COMMON_OPTIONS, ...CLIENT_OPTIONS } }),
  );
  if (parsed.values.help) {
    io.stdout.write(TOKEN_HELP);
    return 0;
  }
  const [idArgument, ...extra] = parsed.positionals;
  if (idArgument === undefined || extra.length > 0) {
    throw usageError('expected one route token id: tokenwise token revoke ID (tokenwise token list shows the ids)');
  }

  const revoked = await revokeToken(parsed.values.server, resolveDataDir(parsed.values['data-dir'], io.env), idArgument.trim(), io);
  io.stderr.write(
    `Revoked route token ${escapeForTerminal(revoked.id)} ("${escapeForTerminal(revoked.name)}"); the proxy now rejects it.\n`,
  );
  return 0;
}

async function revokeToken(serverFlag: string | undefined, dataDir: string, idArgument: string, io: CliIo): Promise<RouteTokenDescription> {
  const target = await findApiTarget(serverFlag, dataDir, io.env);
  if (target) {
    try {
      const token = pickToken(await listTokensFromApi(target), idArgument);
      await requestApi(target, `/api/v1/route-tokens/${encodeURIComponent(token.id)}`, { method: 'DELETE' });
      return token;
    } catch (error) {
      if (!(error instanceof ServerUnreachableError) || target.kind !== 'local') throw error;
      io.stderr.write(`tokenwise: ${error.message}; writing to the database directly\n`);
    }
  }

  return withLocalStore(dataDir, async (store) => {
    const workspace = await findLocalWorkspace(store);
    const token = pickToken(workspace === null ? [] : (await store.listRouteTokens(workspace.id)).map(describeRouteToken), idArgument);
    await store.revokeRouteToken(token.id);
    return token;
  });
}

/** Find the one active token whose id is `idArgument` or starts with it. */
function pickToken(tokens: RouteTokenDescription[], idArgument: string): RouteTokenDescription {
  const exact = tokens.find((token) => token.id === idArgument);
  const matches = exact
    ? [exact]
    : idArgument.length >= MIN_ID_PREFIX_LENGTH
      ? tokens.filter((token) => token.id.startsWith(idArgument))
      : [];
  const quotedId = JSON.stringify(idArgument);

  if (matches.length === 0) {
    throw new CliError(`no route token with the id ${quotedId}: run tokenwise token list for the ids`);
  }
  if (matches.length > 1) {
    throw usageError(`the id ${quotedId} matches ${matches.length} route tokens: give more of it (tokenwise token list shows the ids)`);
  }
  const [token] = matches as [RouteTokenDescription];
  if (token.revoked_at !== null) {
    throw new CliError(`the route token ${token.id} ("${token.name}") was already revoked at ${token.revoked_at}`);
  }
  return token;
}
