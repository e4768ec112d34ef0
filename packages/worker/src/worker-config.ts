import { createRouteRegistry, type RouteRegistry, TokenwiseError } from '@tokenwise/core';

/**
 * The Worker's bindings: `[vars]` in wrangler.toml and the secret set with `wrangler secret put`.
 * `TOKENWISE_UPSTREAM_<ROUTE>` sends a route elsewhere, like `tokenwise serve --upstream`; `_` in the
 * route name reads as `-`.
 */
export interface WorkerEnv {
  /** Base URL of `tokenwise serve`, e.g. `https://tokenwise.example.com`. */
  TOKENWISE_SERVER_URL?: string;
  /** The server's `TOKENWISE_INGEST_SECRET`. */
  TOKENWISE_INGEST_SECRET?: string;
  /** How long a verified route token is trusted without asking the server again, in seconds. */
  TOKENWISE_TOKEN_CACHE_SECONDS?: string;
  /** Largest decoded body kept per direction and call, in bytes. */
  TOKENWISE_BODY_CAP_BYTES?: string;
  [name: string]: unknown;
}

export interface WorkerConfig {
  serverUrl: string;
  ingestSecret: string;
  tokenCacheMs: number;
  bodyCapBytes: number;
  registry: RouteRegistry;
}

/**
 * Revocation reaches the Worker within this many seconds, because each isolate trusts a verified token
 * that long. The maximum keeps an operator from making revocation meaningless.
 */
export const DEFAULT_TOKEN_CACHE_SECONDS = 30;
export const MAX_TOKEN_CACHE_SECONDS = 300;

/**
 * A Worker isolate has 128 MB for all the requests it serves at once, so it keeps at most 1 MiB of each
 * body (the Node proxy keeps 4 MiB). Bytes beyond the cap are forwarded and counted, and the stored body
 * is marked truncated. The maximum is for operators who know their traffic.
 */
export const DEFAULT_WORKER_BODY_CAP_BYTES = 1024 * 1024;
export const MAX_WORKER_BODY_CAP_BYTES = 4 * 1024 * 1024;

const UPSTREAM_PREFIX = 'TOKENWISE_UPSTREAM_';
const configs = new WeakMap<object, WorkerConfig>();

/** Read and check the bindings once per isolate; throws `invalid_argument` naming the binding to fix. */
export function workerConfig(env: WorkerEnv): WorkerConfig {
  let config = configs.get(env);
  if (!config) {
    config = parseWorkerConfig(env);
    configs.set(env, config);
  }
  return config;
}

export function parseWorkerConfig(env: WorkerEnv): WorkerConfig {
  const serverUrl = parseServerUrl(env.TOKENWISE_SERVER_URL);
  const ingestSecret = env.TOKENWISE_INGEST_SECRET;
  if (typeof ingestSecret !== 'string' || ingestSecret.trim() === '') {
    throw new TokenwiseError(
      'invalid_argument',
      'TOKENWISE_INGEST_SECRET is not set: run "wrangler secret put TOKENWISE_INGEST_SECRET" with the server\'s secret',
    );
  }

  const upstreams: Record<string, string> = {};
  for (const [name, value] of Object.entries(env)) {
    if (!name.startsWith(UPSTREAM_PREFIX) || typeof value !== 'string' || value === '') continue;
    upstreams[name.slice(UPSTREAM_PREFIX.length).toLowerCase().replaceAll('_', '-')] = value;
  }

  return {
    serverUrl,
    ingestSecret: ingestSecret.trim(),
    tokenCacheMs:
      1000 *
      parseWhole(env.TOKENWISE_TOKEN_CACHE_SECONDS, 'TOKENWISE_TOKEN_CACHE_SECONDS', DEFAULT_TOKEN_CACHE_SECONDS, MAX_TOKEN_CACHE_SECONDS),
    bodyCapBytes: parseWhole(
      env.TOKENWISE_BODY_CAP_BYTES,
      'TOKENWISE_BODY_CAP_BYTES',
      DEFAULT_WORKER_BODY_CAP_BYTES,
      MAX_WORKER_BODY_CAP_BYTES,
    ),
    registry: createRouteRegistry(upstreams),
  };
}

function parseServerUrl(value: unknown): string {
  const example = 'e.g. https://tokenwise.example.com';
  if (typeof value !== 'string' || value.trim() === '') {
    throw new TokenwiseError('invalid_argument', `TOKENWISE_SERVER_URL is not set: add it to [vars] in wrangler.toml, ${example}`);
  }
  let url: URL;
  try {
    url = new URL(value.trim());
  } catch {
    throw new TokenwiseError('invalid_argument', `invalid TOKENWISE_SERVER_URL "${value}": expected a URL, ${example}`);
  }
  if ((url.protocol !== 'https:' && url.protocol !== 'http:') || url.username || url.password || url.search || url.hash) {
    throw new TokenwiseError(
      'invalid_argument',
      `invalid TOKENWISE_SERVER_URL "${value}": expected an http(s) URL without credentials or query, ${example}`,
    );
  }
  return `${url.origin}${url.pathname.replace(/\/+$/, '')}`;
}

function parseWhole(value: unknown, name: string, fallback: number, max: number): number {
  if (value === undefined || value === '') return fallback;
  const text = String(value).trim();
  const number = /^\d{1,12}$/.test(text) ? Number(text) : Number.NaN;
  if (!(number >= 0 && number <= max)) {
    throw new TokenwiseError('invalid_argument', `invalid ${name} "${text}": expected a whole number from 0 to ${max}`);
  }
  return number;
}
