import { dataDirPaths, readServerInfo } from '@tokenwise/server';
import { CliError, usageError } from './cli-error.js';
import { describeFetchFailure } from './connect/fetch-failure.js';
import { flagOrEnv } from './options.js';

/** The API a command talks to: a remote server named by `--server`, or the local one from server.json. */
export interface ApiTarget {
  url: string;
  apiToken: string;
  kind: 'remote' | 'local';
}

/** The server did not respond at all (refused, reset, timed out); a local command may fall back to the store. */
export class ServerUnreachableError extends CliError {}

/**
 * Find the server to use: `--server URL` (or `TOKENWISE_SERVER`) with `TOKENWISE_API_TOKEN`, else the
 * server that the data directory's server.json names, else null when none runs.
 */
export async function findApiTarget(serverFlag: string | undefined, dataDir: string, env: NodeJS.ProcessEnv): Promise<ApiTarget | null> {
  const server = flagOrEnv(serverFlag, '--server', env, 'TOKENWISE_SERVER');
  if (server) {
    const url = parseServerUrl(server.value, server.source);
    const apiToken = env.TOKENWISE_API_TOKEN;
    if (!apiToken) {
      throw usageError(
        `missing TOKENWISE_API_TOKEN for ${server.source} ${url}: set it to an API token of that server (the owner token is api_token in local-tokens.json in the server's data directory)`,
      );
    }
    return { url, apiToken, kind: 'remote' };
  }

  const info = await readServerInfo(dataDirPaths(dataDir));
  return info ? { url: info.url, apiToken: info.api_token, kind: 'local' } : null;
}

/** Call the API and return the parsed JSON body; throws a `CliError` whose message names the fix. */
export async function requestApi<T>(target: ApiTarget, path: string, init: RequestInit = {}): Promise<T> {
  const response = await fetchApi(target, path, init);
  return (await response.json()) as T;
}

/**
 * Read every page of a cursor-paginated list, following `next_cursor` until it is null or missing (as
 * from a server older than pagination), and return the items under `key` in the list's order.
 */
export async function requestAllPages<T>(target: ApiTarget, path: string, key: string): Promise<T[]> {
  const items: T[] = [];
  let cursor: string | null = null;
  do {
    const pagePath: string = cursor === null ? path : `${path}${path.includes('?') ? '&' : '?'}cursor=${encodeURIComponent(cursor)}`;
    const page = await requestApi<Record<string, unknown>>(target, pagePath);
    const pageItems = page[key];
    if (!Array.isArray(pageItems))
      throw new CliError(`the server at ${target.url} returned no "${key}" list for ${path}: check that it runs Tokenwise`);
    items.push(...(pageItems as T[]));
    const next = typeof page.next_cursor === 'string' ? page.next_cursor : null;
    // A server that returns the cursor it was sent would otherwise keep this loop going forever.
    if (next !== null && next === cursor)
      throw new CliError(`the server at ${target.url} repeated the cursor of ${path}: report this as a bug`);
    cursor = next;
  } while (cursor !== null);
  return items;
}

/** Like `requestApi`, but returns the response for streaming bodies. */
export async function fetchApi(target: ApiTarget, path: string, init: RequestInit = {}): Promise<Response> {
  let response: Response;
  try {
    response = await fetch(`${target.url}${path}`, {
      ...init,
      headers: { authorization: `Bearer ${target.apiToken}`, 'content-type': 'application/json', ...init.headers },
    });
  } catch (error) {
    throw new ServerUnreachableError(
      `failed to reach the Tokenwise server at ${target.url}: ${describeFetchFailure(error)}. ${reachHint(target)}`,
    );
  }

  if (response.status === 401) {
    await response.body?.cancel();
    throw new CliError(
      target.kind === 'remote'
        ? `the server at ${target.url} rejected the API token: check TOKENWISE_API_TOKEN`
        : `the server at ${target.url} rejected the API token from server.json: restart tokenwise serve`,
    );
  }
  if (!response.ok) {
    const message = await errorMessage(response);
    throw new CliError(`the server at ${target.url} returned HTTP ${response.status}: ${message}`);
  }
  return response;
}

function reachHint(target: ApiTarget): string {
  return target.kind === 'remote' ? 'Check --server or TOKENWISE_SERVER and that the server runs.' : 'Start "tokenwise serve" again.';
}

async function errorMessage(response: Response): Promise<string> {
  const text = await response.text();
  try {
    const message = (JSON.parse(text) as { error?: { message?: unknown } }).error?.message;
    if (typeof message === 'string') return message;
  } catch {
    // Not our JSON error shape (a proxy in between responded); show the start of the body instead.
  }
  return text.slice(0, 200) || response.statusText;
}

function parseServerUrl(value: string, source: string): string {
  let url: URL;
  try {
    url = new URL(value);
  } catch {
    throw usageError(`invalid ${source} "${value}": expected a URL like http://127.0.0.1:4747`);
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:') {
    throw usageError(`invalid ${source} "${value}": expected an http or https URL`);
  }
  return `${url.origin}${url.pathname.replace(/\/+$/, '')}`;
}
