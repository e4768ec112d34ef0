import { hostname } from 'node:os';
import { dataDirPaths, readLocalTokens, readServerInfo } from '@tokenwise/server';
import { requestApi } from '../api-client.js';
import { CliError, usageError } from '../cli-error.js';
import { flagOrEnv } from '../options.js';
import type { ConnectState, TokenSourceKind } from './connect-state.js';
import { pairThisDevice } from './pairing.js';
import { fetchTokenInfo } from './server-client.js';

/** The server connect points the tools at, and the route token in their base URLs. */
export interface Connection {
  serverUrl: string;
  token: string;
  /** The token's id on the server, when known (it is needed to revoke it through the owner API). */
  tokenId: string | null;
  source: TokenSourceKind;
  /** The token's origin, for messages. */
  description: string;
  /** The origin the tools send calls to, when the server named another one than `serverUrl` (its public URL). */
  proxyUrl?: string;
  /** True when this run made the token, so a run that connects no tool revokes it again. */
  created?: boolean;
}

interface SourceInput {
  serverUrl: string;
  /** True when `serverUrl` is the server of the local data directory. */
  isLocalServer: boolean;
  dataDir: string;
  env: NodeJS.ProcessEnv;
  tokenFlag: string | undefined;
  /** A dry run must not create anything on the server. */
  dryRun: boolean;
  /** Prints a line for the person at the terminal (the pairing code). */
  say(line: string): void;
  /** Pairing may open the approval page in a browser. */
  openBrowser: boolean;
  /** The state an earlier connect recorded, if any. */
  saved: ConnectState | null;
}

/** One way to get a route token; returns null when it does not apply here. */
interface TokenSource {
  find(input: SourceInput): Promise<Omit<Connection, 'serverUrl'> | null>;
}

/** Placeholder shown in a dry run where a token would be created on the server. */
export const PENDING_TOKEN = 'twr_CREATED-ON-APPLY';

const fromFlag: TokenSource = {
  async find({ tokenFlag, env }) {
    const option = flagOrEnv(tokenFlag, '--token', env, 'TOKENWISE_ROUTE_TOKEN');
    if (!option) return null;
    const token = option.value.trim();
    if (!/^[A-Za-z0-9_-]{8,200}$/.test(token)) {
      throw usageError(
        `invalid ${option.source}: expected a route token such as twr_… (run "tokenwise token create" on the server for one)`,
      );
    }
    return { token, tokenId: null, source: 'flag', description: `the route token from ${option.source}` };
  },
};

/** The route token `tokenwise serve` keeps for this machine, when the server is the local one. */
const fromLocalDataDir: TokenSource = {
  async find({ isLocalServer, dataDir }) {
    if (!isLocalServer) return null;
    const tokens = await readLocalTokens(dataDirPaths(dataDir));
    if (!tokens) return null;
    return {
      token: tokens.route_token,
      tokenId: null,
      source: 'local',
      description: `the local route token in ${dataDirPaths(dataDir).localTokens}`,
    };
  },
};

/**
 * The token an earlier connect to this server made (paired or through the API), while the server still
 * accepts it, so connecting again does not pair the machine a second time.
 */
const fromSavedState: TokenSource = {
  async find({ serverUrl, saved }) {
    if (!saved || saved.serverUrl !== serverUrl || (saved.token.source !== 'paired' && saved.token.source !== 'api')) return null;
    const reply = await fetchTokenInfo(serverUrl, saved.token.value);
    if (reply.kind !== 'ok') return null;
    return {
      token: saved.token.value,
      tokenId: saved.token.id,
      source: saved.token.source,
      description: 'the route token of the earlier connect to this server',
      ...(saved.proxyUrl !== undefined && { proxyUrl: saved.proxyUrl }),
    };
  },
};

/** A new route token for this device, created through the owner API with TOKENWISE_API_TOKEN. */
const fromApi: TokenSource = {
  async find({ serverUrl, env, dryRun }) {
    const apiToken = env.TOKENWISE_API_TOKEN;
    if (!apiToken) return null;
    if (dryRun) return { token: PENDING_TOKEN, tokenId: null, source: 'api', description: 'a new route token (created when applying)' };
    const created = await requestApi<{ id: string; token: string }>({ url: serverUrl, apiToken, kind: 'remote' }, '/api/v1/route-tokens', {
      method: 'POST',
      body: JSON.stringify({ name: `connect on ${hostname()}`.slice(0, 100) }),
    });
    return {
      token: created.token,
      tokenId: created.id,
      source: 'api',
      description: 'a new route token created with TOKENWISE_API_TOKEN',
      created: true,
    };
  },
};

/**
 * A new route token for this device, approved by a person in the browser (RFC 8628 device authorization
 * grant): the normal way to connect a machine to a team server.
 */
const fromPairing: TokenSource = {
  async find({ serverUrl, dryRun, say, openBrowser, env }) {
    if (dryRun)
      return {
        token: PENDING_TOKEN,
        tokenId: null,
        source: 'paired',
        description: 'a new route token (paired in the browser when applying)',
      };
    const paired = await pairThisDevice(serverUrl, { say, openBrowser, env });
    if (!paired) return null;
    say(`Paired: this machine is device ${paired.deviceId} of the workspace "${paired.workspaceName}".`);
    return {
      token: paired.token,
      tokenId: paired.tokenId,
      source: 'paired',
      description: `this device's route token, paired into "${paired.workspaceName}"`,
      created: true,
      ...(paired.proxyBaseUrl !== serverUrl && { proxyUrl: paired.proxyBaseUrl }),
    };
  },
};

const SOURCES: readonly TokenSource[] = [fromFlag, fromLocalDataDir, fromSavedState, fromApi, fromPairing];

/**
 * Find the server: `--server`, else the one running on the local data directory. Then find a route token
 * for it: `--token`, else the local data directory's token when the server is the local one, else the token
 * an earlier connect to this server saved, else a new token created through the API with
 * `TOKENWISE_API_TOKEN`, else a new token paired in the browser.
 */
export async function resolveConnection(options: {
  serverFlag: string | undefined;
  tokenFlag: string | undefined;
  dataDir: string;
  env: NodeJS.ProcessEnv;
  dryRun: boolean;
  say(line: string): void;
  openBrowser: boolean;
  saved: ConnectState | null;
}): Promise<Connection> {
  const { serverUrl, isLocalServer } = await resolveServer(options.serverFlag, options.dataDir, options.env);
  const input: SourceInput = {
    serverUrl,
    isLocalServer,
    dataDir: options.dataDir,
    env: options.env,
    tokenFlag: options.tokenFlag,
    dryRun: options.dryRun,
    say: options.say,
    openBrowser: options.openBrowser,
    saved: options.saved,
  };
  for (const source of SOURCES) {
    const found = await source.find(input);
    if (found) return { serverUrl, ...found };
  }
  throw new CliError(
    `no route token for ${serverUrl}, and the server has no device pairing (an older version): pass --token with one ` +
      '(run "tokenwise token create" on the server), or set TOKENWISE_API_TOKEN to an API token of that server',
  );
}

export function parseServerUrl(value: string, source: string): string {
  let url: URL;
  try {
    url = new URL(value);
  } catch {
    throw usageError(`invalid ${source} "${value}": expected a URL like http://127.0.0.1:4747`);
  }
  if ((url.protocol !== 'http:' && url.protocol !== 'https:') || url.username || url.password || url.search || url.hash) {
    throw usageError(`invalid ${source} "${value}": expected an http or https URL without credentials, query or fragment`);
  }
  return `${url.origin}${url.pathname.replace(/\/+$/, '')}`;
}

async function resolveServer(serverFlag: string | undefined, dataDir: string, env: NodeJS.ProcessEnv) {
  const local = await readServerInfo(dataDirPaths(dataDir));
  const option = flagOrEnv(serverFlag, '--server', env, 'TOKENWISE_SERVER');
  if (option) {
    const serverUrl = parseServerUrl(option.value, option.source);
    return { serverUrl, isLocalServer: local !== null && sameLocalServer(serverUrl, local.url) };
  }
  if (local) return { serverUrl: local.url.replace(/\/+$/, ''), isLocalServer: true };
  throw new CliError(
    `no Tokenwise server runs with the data directory ${dataDirPaths(dataDir).dir}: start "tokenwise serve", or pass --server URL`,
  );
}

/** Loopback names differ (localhost, 127.0.0.1, [::1]) but reach the same server on the same port. */
function sameLocalServer(candidate: string, local: string): boolean {
  const a = new URL(candidate);
  const b = new URL(local);
  const loopback = (host: string) => host === 'localhost' || host === '[::1]' || host.startsWith('127.');
  return a.port === b.port && a.protocol === b.protocol && (a.hostname === b.hostname || (loopback(a.hostname) && loopback(b.hostname)));
}
