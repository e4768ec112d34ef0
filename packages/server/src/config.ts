import { builtinRoutes, createRouteRegistry, parseUpstreamOverrides, TokenwiseError } from '@tokenwise/core';
import { describePostgresUrl } from '@tokenwise/storage';
import type { Level } from 'pino';
import { defaultDataDir } from './data-dir.js';
import { type OtlpConfig, parseMetricsToken, parseOtlpEndpoint, parseOtlpHeaders, parseSwitch } from './export/export-config.js';
import { resolveJudgeApiKey } from './judge/judge-key.js';
import { LOG_LEVELS } from './log.js';
import { resolveMailConfig } from './mail/mail-config.js';
import type { MailConfig } from './mail/mailer.js';
import { type OllamaListen, parseOllamaListen } from './ollama-observer.js';
import { SERVER_ROLES, type ServerRole } from './server-role.js';
import { MIN_INGEST_SECRET_LENGTH } from './worker-api.js';

/** `tokenwise serve` options as given on the command line, unparsed; absent flags are undefined. */
export interface ServeFlags {
  host?: string;
  port?: string;
  dataDir?: string;
  upstream?: string[];
  logLevel?: string;
  bodyCapBytes?: string;
  databaseUrl?: string;
  role?: string;
  tokenCacheSeconds?: string;
  ingestSecret?: string;
  publicUrl?: string;
  otlpEndpoint?: string;
  otlpHeader?: string[];
  otlpBodies?: boolean;
  metricsToken?: string;
  ollamaListen?: string;
  smtpUrl?: string;
  mailFrom?: string;
  judgeApiKeyFile?: string;
  allowPrivateWebhooks?: boolean;
  trustProxy?: boolean;
}

export interface ServeConfig {
  host: string;
  /** 0 picks a free port. */
  port: number;
  dataDir: string;
  /** Route name to base URL, from `--upstream NAME=URL` and `TOKENWISE_UPSTREAM_<NAME>`. */
  upstreams: Record<string, string>;
  logLevel: Level | 'silent';
  /** Largest decoded body kept per direction, in bytes; undefined keeps the proxy's default (4 MiB). */
  bodyCapBytes: number | undefined;
  /** PostgreSQL URL; undefined keeps the SQLite database in the data directory. */
  databaseUrl?: string;
  /** The part this process serves; undefined serves both the proxy and the app. */
  role?: ServerRole;
  /**
   * How long the proxy trusts a route token without asking the store again, in ms; undefined means
   * `DEFAULT_TOKEN_CACHE_MS`. A token revoked through another server keeps working here for up to this long.
   */
  tokenCacheMs?: number;
  /** Shared secret of the Worker endpoints (`/api/v1/routes/verify`, `/api/v1/ingest`); undefined turns them off. */
  ingestSecret?: string;
  /**
   * The origin people and devices reach this server at (`https://tokenwise.example.com`), for the links it
   * prints and hands out and for the `Host` check of the web UI; undefined uses the listening address.
   */
  publicUrl?: string;
  /** Export each call as an OpenTelemetry span to this collector; undefined exports nothing. */
  otlp?: OtlpConfig;
  /** Bearer token that `GET /metrics` requires; undefined turns `/metrics` off. */
  metricsToken?: string;
  /** Run the Ollama observer on this address; undefined reads `ollama-observer.json` in the data directory, if any. */
  ollamaListen?: OllamaListen;
  /** The SMTP server and sender of the server's emails (`--smtp-url`, `--mail-from`); undefined sends none. */
  mail?: MailConfig;
  /** The LLM judge's provider key, from `TOKENWISE_JUDGE_API_KEY` or `--judge-api-key-file`; never stored or logged. */
  judgeApiKey?: string;
  /**
   * Lets budget alert webhooks reach loopback and private-network addresses (`--allow-private-webhooks`).
   * Off by default, so a workspace owner cannot make the server post into the network it runs in.
   */
  allowPrivateWebhooks?: boolean;
  /**
   * The server runs behind a reverse proxy that appends the client's address to `X-Forwarded-For`
   * (`--trust-proxy`), so the per-client limits of sign-in and pairing key on that address.
   */
  trustProxy?: boolean;
}

export const DEFAULT_HOST = '127.0.0.1';
export const DEFAULT_PORT = 4747;
/** Each process queries the store at most once per route token per 5 s, and revocation reaches every proxy within 5 s. */
export const DEFAULT_TOKEN_CACHE_MS = 5_000;
const MAX_TOKEN_CACHE_SECONDS = 300;
const UPSTREAM_ENV_PREFIX = 'TOKENWISE_UPSTREAM_';

/**
 * Merge flags, `TOKENWISE_*` environment variables and defaults, in that order of precedence. Each
 * error names the flag or variable the bad value came from.
 */
export function resolveServeConfig(flags: ServeFlags, env: NodeJS.ProcessEnv = process.env): ServeConfig {
  const port = pick(flags.port, '--port', env.TOKENWISE_PORT, 'TOKENWISE_PORT');
  const logLevel = pick(flags.logLevel, '--log-level', env.TOKENWISE_LOG_LEVEL, 'TOKENWISE_LOG_LEVEL');
  const bodyCap = pick(flags.bodyCapBytes, '--body-cap-bytes', env.TOKENWISE_BODY_CAP_BYTES, 'TOKENWISE_BODY_CAP_BYTES');
  const databaseUrl = pick(flags.databaseUrl, '--database-url', env.TOKENWISE_DATABASE_URL, 'TOKENWISE_DATABASE_URL');
  const role = pick(flags.role, '--role', env.TOKENWISE_ROLE, 'TOKENWISE_ROLE');
  const tokenCache = pick(
    flags.tokenCacheSeconds,
    '--token-cache-seconds',
    env.TOKENWISE_TOKEN_CACHE_SECONDS,
    'TOKENWISE_TOKEN_CACHE_SECONDS',
  );
  const ingestSecret = pick(flags.ingestSecret, '--ingest-secret', env.TOKENWISE_INGEST_SECRET, 'TOKENWISE_INGEST_SECRET');
  const publicUrl = pick(flags.publicUrl, '--public-url', env.TOKENWISE_PUBLIC_URL, 'TOKENWISE_PUBLIC_URL');
  const metricsToken = pick(flags.metricsToken, '--metrics-token', env.TOKENWISE_METRICS_TOKEN, 'TOKENWISE_METRICS_TOKEN');
  const ollamaListen = pick(flags.ollamaListen, '--ollama-listen', env.TOKENWISE_OLLAMA_LISTEN, 'TOKENWISE_OLLAMA_LISTEN');
  const otlp = resolveOtlp(flags, env);
  const parsedPublicUrl = publicUrl ? parsePublicUrl(publicUrl.value, publicUrl.source) : undefined;
  const mail = resolveMailConfig(flags, env, parsedPublicUrl);
  const judgeApiKey = resolveJudgeApiKey(flags, env);
  const privateWebhooksVariable = env.TOKENWISE_ALLOW_PRIVATE_WEBHOOKS;
  const allowPrivateWebhooks =
    flags.allowPrivateWebhooks ??
    (privateWebhooksVariable ? parseSwitch(privateWebhooksVariable, 'TOKENWISE_ALLOW_PRIVATE_WEBHOOKS') : false);

  const trustProxyVariable = env.TOKENWISE_TRUST_PROXY;
  const trustProxy = flags.trustProxy ?? (trustProxyVariable ? parseSwitch(trustProxyVariable, 'TOKENWISE_TRUST_PROXY') : false);

  return {
    host: pick(flags.host, '--host', env.TOKENWISE_HOST, 'TOKENWISE_HOST')?.value || DEFAULT_HOST,
    port: port ? parsePort(port.value, port.source) : DEFAULT_PORT,
    dataDir: resolveDataDir(flags.dataDir, env),
    upstreams: resolveUpstreams(flags.upstream ?? [], env),
    logLevel: logLevel ? parseLogLevel(logLevel.value, logLevel.source) : 'info',
    bodyCapBytes: bodyCap ? parseByteCount(bodyCap.value, bodyCap.source) : undefined,
    ...(databaseUrl && { databaseUrl: parseDatabaseUrl(databaseUrl.value, databaseUrl.source) }),
    ...(role && { role: parseRole(role.value, role.source) }),
    ...(tokenCache && { tokenCacheMs: parseTokenCacheSeconds(tokenCache.value, tokenCache.source) * 1000 }),
    ...(ingestSecret && { ingestSecret: parseIngestSecret(ingestSecret.value, ingestSecret.source) }),
    ...(parsedPublicUrl && { publicUrl: parsedPublicUrl }),
    ...(otlp && { otlp }),
    ...(metricsToken && { metricsToken: parseMetricsToken(metricsToken.value, metricsToken.source) }),
    ...(ollamaListen && { ollamaListen: parseOllamaListen(ollamaListen.value, ollamaListen.source) }),
    ...(mail && { mail }),
    ...(judgeApiKey && { judgeApiKey }),
    ...(allowPrivateWebhooks && { allowPrivateWebhooks }),
    ...(trustProxy && { trustProxy }),
  };
}

/**
 * Read the OTLP export settings: `--otlp-endpoint` (TOKENWISE_OTLP_ENDPOINT), repeatable `--otlp-header`
 * (TOKENWISE_OTLP_HEADERS, comma-separated) and `--otlp-bodies` (TOKENWISE_OTLP_BODIES). Headers or
 * bodies without an endpoint are an error, since they would silently do nothing.
 */
function resolveOtlp(flags: ServeFlags, env: NodeJS.ProcessEnv): OtlpConfig | undefined {
  const endpoint = pick(flags.otlpEndpoint, '--otlp-endpoint', env.TOKENWISE_OTLP_ENDPOINT, 'TOKENWISE_OTLP_ENDPOINT');
  const headers =
    flags.otlpHeader && flags.otlpHeader.length > 0
      ? parseOtlpHeaders(flags.otlpHeader, '--otlp-header', false)
      : env.TOKENWISE_OTLP_HEADERS
        ? parseOtlpHeaders(env.TOKENWISE_OTLP_HEADERS.split(','), 'TOKENWISE_OTLP_HEADERS', true)
        : {};
  const bodiesVariable = env.TOKENWISE_OTLP_BODIES;
  const includeBodies = flags.otlpBodies ?? (bodiesVariable ? parseSwitch(bodiesVariable, 'TOKENWISE_OTLP_BODIES') : false);
  if (!endpoint) {
    if (Object.keys(headers).length > 0 || includeBodies) {
      throw new TokenwiseError(
        'invalid_argument',
        'OTLP headers or --otlp-bodies were given without --otlp-endpoint: add the collector URL',
      );
    }
    return undefined;
  }
  return { tracesUrl: parseOtlpEndpoint(endpoint.value, endpoint.source), headers, includeBodies };
}

/** Return the data directory from `--data-dir`, else `TOKENWISE_DATA_DIR`, else `~/.tokenwise`. */
export function resolveDataDir(flag: string | undefined, env: NodeJS.ProcessEnv = process.env): string {
  return flag || env.TOKENWISE_DATA_DIR || defaultDataDir();
}

/**
 * Merge `TOKENWISE_UPSTREAM_<NAME>=URL` variables and `--upstream NAME=URL` flags (a flag wins for its
 * route) and check each override now, so an error names the variable or flag it came from. Route names use
 * dashes where variable names cannot, so `_` in `<NAME>` reads as `-`. An empty variable is an error: read
 * as unset, it would silently send that route's traffic to the real provider.
 */
function resolveUpstreams(flagPairs: readonly string[], env: NodeJS.ProcessEnv): Record<string, string> {
  const upstreams: Record<string, string> = {};
  const variables = new Map<string, string>();
  for (const [key, value] of Object.entries(env)) {
    if (!key.startsWith(UPSTREAM_ENV_PREFIX) || value === undefined) continue;
    const name = key.slice(UPSTREAM_ENV_PREFIX.length).toLowerCase().replaceAll('_', '-');
    if (value.trim() === '') {
      throw new TokenwiseError(
        'invalid_upstream',
        `${key} is set but empty: set it to a base URL such as http://127.0.0.1:9000, or unset it to send the ${name} route to its provider`,
      );
    }
    upstreams[name] = value;
    variables.set(name, key);
  }

  for (const [name, url] of Object.entries(parseUpstreamOverrides(flagPairs))) {
    upstreams[name] = url;
    variables.delete(name);
  }

  for (const [name, variable] of variables) checkUpstreamVariable(name, upstreams[name]!, variable);
  return upstreams;
}

function checkUpstreamVariable(name: string, url: string, variable: string): void {
  const known = builtinRoutes.map((route) => route.name);
  if (!known.includes(name)) {
    throw new TokenwiseError('invalid_upstream', `unknown route "${name}" in ${variable}; known routes: ${known.join(', ')}`);
  }
  try {
    createRouteRegistry({ [name]: url });
  } catch (error) {
    if (!(error instanceof TokenwiseError)) throw error;
    throw new TokenwiseError('invalid_upstream', `invalid ${variable}: ${error.message}`, { cause: error });
  }
}

function pick(flag: string | undefined, flagName: string, envValue: string | undefined, envName: string) {
  if (flag !== undefined) return { value: flag, source: flagName };
  if (envValue !== undefined && envValue !== '') return { value: envValue, source: envName };
  return undefined;
}

function parsePort(value: string, source: string): number {
  const port = /^\d{1,5}$/.test(value.trim()) ? Number(value) : Number.NaN;
  if (!(port >= 0 && port <= 65535)) {
    throw new TokenwiseError(
      'invalid_argument',
      `invalid ${source} "${value}": expected a port number from 0 to 65535 (0 picks a free port)`,
    );
  }
  return port;
}

function parseLogLevel(value: string, source: string): Level | 'silent' {
  const level = value.trim().toLowerCase();
  if (!(LOG_LEVELS as readonly string[]).includes(level)) {
    throw new TokenwiseError('invalid_argument', `invalid ${source} "${value}": expected one of ${LOG_LEVELS.join(', ')}`);
  }
  return level as Level | 'silent';
}

/** Check the URL's form; the message never repeats the URL, which may carry a password. */
function parseDatabaseUrl(value: string, source: string): string {
  const url = value.trim();
  try {
    describePostgresUrl(url);
  } catch (error) {
    throw new TokenwiseError('invalid_argument', `invalid ${source}: ${(error as Error).message}`);
  }
  return url;
}

function parseRole(value: string, source: string): ServerRole {
  const role = value.trim().toLowerCase();
  if (!(SERVER_ROLES as readonly string[]).includes(role)) {
    throw new TokenwiseError('invalid_argument', `invalid ${source} "${value}": expected one of ${SERVER_ROLES.join(', ')}`);
  }
  return role as ServerRole;
}

function parseTokenCacheSeconds(value: string, source: string): number {
  const seconds = /^\d{1,3}$/.test(value.trim()) ? Number(value) : Number.NaN;
  if (!(seconds >= 0 && seconds <= MAX_TOKEN_CACHE_SECONDS)) {
    throw new TokenwiseError(
      'invalid_argument',
      `invalid ${source} "${value}": expected whole seconds from 0 to ${MAX_TOKEN_CACHE_SECONDS} (0 asks the store on every request)`,
    );
  }
  return seconds;
}

function parseByteCount(value: string, source: string): number {
  const bytes = /^\d{1,12}$/.test(value.trim()) ? Number(value) : Number.NaN;
  if (!(bytes >= 0)) {
    throw new TokenwiseError('invalid_argument', `invalid ${source} "${value}": expected a whole number of bytes, e.g. 4194304 for 4 MiB`);
  }
  return bytes;
}

function parseIngestSecret(value: string, source: string): string {
  const secret = value.trim();
  if (secret.length < MIN_INGEST_SECRET_LENGTH || /\s/.test(secret)) {
    // The value itself is a secret, so the message gives only its length.
    throw new TokenwiseError(
      'invalid_argument',
      `invalid ${source} (${secret.length} characters): expected at least ${MIN_INGEST_SECRET_LENGTH} characters without spaces, e.g. from "openssl rand -base64 32"`,
    );
  }
  return secret;
}

/** Accept an http or https origin; a path, query or credentials would not survive being joined with `/setup` and `/r/…`. */
export function parsePublicUrl(value: string, source: string): string {
  let url: URL | null = null;
  try {
    url = new URL(value.trim());
  } catch {
    // Reported below with the expected form.
  }
  if (!url || (url.protocol !== 'http:' && url.protocol !== 'https:') || url.username || url.password || url.search || url.hash) {
    throw new TokenwiseError('invalid_argument', `invalid ${source} "${value}": expected an origin such as https://tokenwise.example.com`);
  }
  if (url.pathname !== '/') {
    throw new TokenwiseError(
      'invalid_argument',
      `invalid ${source} "${value}": Tokenwise must be served at the root of its host, so pass the origin without the path "${url.pathname}"`,
    );
  }
  return url.origin;
}
