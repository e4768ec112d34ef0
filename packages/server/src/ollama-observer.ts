import { readFile } from 'node:fs/promises';
import { createServer, request as httpRequest, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { request as httpsRequest } from 'node:https';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { TokenwiseError } from '@tokenwise/core';
import type { Logger } from 'pino';
import { forwardRequestHeaders, forwardResponseHeaders } from './proxy/forward-headers.js';
import type { ProxyHandler } from './proxy/index.js';

/** Where the observer listens: the address Ollama's clients use (OLLAMA_HOST, by default 127.0.0.1:11434). */
export interface OllamaListen {
  host: string;
  port: number;
}

/** The observer settings `tokenwise connect` writes into the data directory, read by `serve` at start. */
export interface OllamaObserverFile {
  listen: string;
  upstream: string;
}

/** Name of the observer settings file in the data directory. */
export const OLLAMA_OBSERVER_FILE = 'ollama-observer.json';
/** Ollama's own default address, which its clients use without OLLAMA_HOST. */
export const OLLAMA_DEFAULT_PORT = 11434;
/** Time between two tries to bind a port that is in use (Ollama still on it after connect), in ms. */
const DEFAULT_RETRY_BIND_MS = 5000;

/**
 * Paths whose calls are recorded: Ollama's native generation endpoints and its OpenAI- and
 * Anthropic-compatible ones. Everything else (`/`, `/api/tags`, `/api/pull`, `/api/show`, …) is passed
 * through unrecorded, so listing or pulling models adds no calls.
 */
const RECORDED_PATHS = new Set(['/api/chat', '/api/generate', '/v1/chat/completions', '/v1/completions', '/v1/responses', '/v1/messages']);

/**
 * Parse an Ollama listen address the way OLLAMA_HOST is written: `host:port`, `host` (port 11434),
 * `:port`, `http://host:port`, or `[::1]:port`.
 */
export function parseOllamaListen(value: string, source: string): OllamaListen {
  const text = value.trim();
  const withScheme = /^[a-z]+:\/\//i.test(text) ? text : `http://${text.startsWith(':') ? `127.0.0.1${text}` : text}`;
  let url: URL | null = null;
  try {
    url = new URL(withScheme);
  } catch {
    // Reported below.
  }
  if (url?.protocol !== 'http:' || url.hostname === '' || (url.pathname !== '/' && url.pathname !== '') || url.search) {
    throw new TokenwiseError(
      'invalid_argument',
      `invalid ${source} "${value}": expected HOST:PORT as in OLLAMA_HOST, e.g. 127.0.0.1:11434`,
    );
  }
  const host = url.hostname.replace(/^\[(.*)\]$/, '$1');
  return { host, port: url.port === '' ? OLLAMA_DEFAULT_PORT : Number(url.port) };
}

/** Read the observer settings connect wrote; null when the file does not exist. */
export async function readOllamaObserverFile(dataDir: string): Promise<OllamaObserverFile | null> {
  const path = join(dataDir, OLLAMA_OBSERVER_FILE);
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return null;
    throw error;
  }
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch {
    throw new TokenwiseError(
      'invalid_argument',
      `${path} is not valid JSON: fix it, or run "tokenwise disconnect --only ollama" to remove it`,
    );
  }
  const file = parsed as Partial<OllamaObserverFile>;
  if (typeof file.listen !== 'string' || typeof file.upstream !== 'string') {
    throw new TokenwiseError(
      'invalid_argument',
      `${path} must contain "listen" (HOST:PORT) and "upstream" (the URL Ollama listens on): run "tokenwise connect --only ollama" again`,
    );
  }
  return { listen: file.listen, upstream: file.upstream };
}

/**
 * Reject an observer that would forward to itself: Ollama's upstream must be on another port than the one
 * the observer takes over.
 */
export function checkNoLoop(listen: OllamaListen, upstreamBaseUrl: string): void {
  const upstream = new URL(upstreamBaseUrl);
  const port = upstream.port === '' ? (upstream.protocol === 'https:' ? 443 : 80) : Number(upstream.port);
  const local = (host: string) => ['127.0.0.1', 'localhost', '0.0.0.0', '::', '::1', '[::1]', ''].includes(host);
  const sameHost = listen.host === upstream.hostname || (local(listen.host) && local(upstream.hostname));
  if (sameHost && port === listen.port) {
    throw new TokenwiseError(
      'invalid_argument',
      `the Ollama observer would listen on ${listen.host}:${listen.port}, where it forwards to (${upstreamBaseUrl}): move Ollama to another port (OLLAMA_HOST=127.0.0.1:11435 for "ollama serve") and pass --upstream ollama=http://127.0.0.1:11435`,
    );
  }
}

export interface OllamaObserverOptions {
  listen: OllamaListen;
  /** The real Ollama, e.g. `http://127.0.0.1:11435`: the `ollama` route's upstream. */
  upstreamBaseUrl: string;
  /** Route token the recorded calls are authorized with (the local workspace's). */
  routeToken(): string;
  proxy: ProxyHandler;
  logger: Logger;
  /** Time between two tries to bind a port in use, in ms; default 5 s. */
  retryBindMs?: number;
  /** Called with each response of a recorded call, so shutdown can wait for its record. */
  onRecordedResponse?(res: ServerResponse): void;
}

export interface OllamaObserver {
  /** `http://host:port` once listening; null while the port is still in use. */
  url(): string | null;
  /** Resolves once the observer listens. */
  listening(): Promise<void>;
  /** Resolves once the first try to listen succeeded or failed. */
  firstAttempt(): Promise<void>;
  /** Stop listening; calls in flight get `graceMs` to finish before their connections are closed. */
  close(graceMs: number): Promise<void>;
}

/**
 * Listen where Ollama's clients expect Ollama and forward everything to the real Ollama. Model calls go
 * through the proxy under the `ollama` route, so they are recorded like any other call; the rest passes
 * straight through. A port still held (Ollama not yet moved) is tried again every `retryBindMs`, with a
 * warning the first time, so `serve` starts either way.
 */
export function startOllamaObserver(options: OllamaObserverOptions): OllamaObserver {
  const { listen, logger, proxy } = options;
  const upstream = new URL(options.upstreamBaseUrl);
  const send = upstream.protocol === 'https:' ? httpsRequest : httpRequest;
  const retryBindMs = options.retryBindMs ?? DEFAULT_RETRY_BIND_MS;
  let boundUrl: string | null = null;
  let closed = false;
  let retryTimer: NodeJS.Timeout | null = null;
  let warned = false;
  let resolveListening: () => void = () => undefined;
  const listening = new Promise<void>((resolve) => {
    resolveListening = resolve;
  });
  let resolveFirstAttempt: () => void = () => undefined;
  const firstAttempt = new Promise<void>((resolve) => {
    resolveFirstAttempt = resolve;
  });

  const server: Server = createServer((req, res) => {
    const path = (req.url ?? '/').split('?')[0] ?? '/';
    if (req.method === 'POST' && RECORDED_PATHS.has(path)) {
      req.url = `/r/${options.routeToken()}/ollama${req.url ?? '/'}`;
      options.onRecordedResponse?.(res);
      proxy.handleRequest(req, res);
      return;
    }
    passThrough(req, res);
  });

  /** Forward a request that is not a model call without recording it. */
  const passThrough = (req: IncomingMessage, res: ServerResponse) => {
    const outgoing = send(
      {
        protocol: upstream.protocol,
        hostname: upstream.hostname,
        port: upstream.port,
        method: req.method,
        path: `${upstream.pathname.replace(/\/$/, '')}${req.url ?? '/'}`,
        headers: [...forwardRequestHeaders(req.rawHeaders), 'host', upstream.host],
      },
      (incoming) => {
        res.writeHead(incoming.statusCode ?? 502, forwardResponseHeaders(incoming.headers));
        incoming.pipe(res);
      },
    );
    outgoing.on('error', (error: NodeJS.ErrnoException) => {
      logger.warn({ code: error.code, path: (req.url ?? '/').split('?')[0] }, 'the Ollama observer could not reach Ollama');
      if (res.headersSent) {
        res.destroy();
        return;
      }
      res.writeHead(502, { 'content-type': 'application/json; charset=utf-8' });
      res.end(
        JSON.stringify({
          error: `Tokenwise could not reach Ollama at ${upstream.origin} (${error.code ?? error.message}): is it running there?`,
        }),
      );
    });
    res.on('close', () => {
      if (!res.writableFinished) outgoing.destroy();
    });
    req.pipe(outgoing);
  };

  const tryListen = () => {
    if (closed) return;
    const onError = (error: NodeJS.ErrnoException) => {
      server.off('listening', onListening);
      resolveFirstAttempt();
      if (error.code !== 'EADDRINUSE' || closed) {
        logger.error(
          { err: error, host: listen.host, port: listen.port },
          'the Ollama observer cannot listen; Ollama calls are not recorded',
        );
        return;
      }
      if (!warned) {
        warned = true;
        logger.warn(
          { host: listen.host, port: listen.port, retry_ms: retryBindMs },
          'the Ollama observer port is in use (is Ollama still on it?); trying again until it is free',
        );
      }
      retryTimer = setTimeout(tryListen, retryBindMs);
      retryTimer.unref();
    };
    const onListening = () => {
      server.off('error', onError);
      const address = server.address() as AddressInfo;
      const host = address.family === 'IPv6' ? `[${address.address}]` : address.address;
      boundUrl = `http://${host}:${address.port}`;
      logger.info({ url: boundUrl, upstream: upstream.origin }, 'Ollama observer listening');
      resolveListening();
      resolveFirstAttempt();
    };
    server.once('error', onError);
    server.once('listening', onListening);
    server.listen(listen.port, listen.host);
  };
  tryListen();

  return {
    url: () => boundUrl,
    listening: () => listening,
    firstAttempt: () => firstAttempt,
    close(graceMs) {
      closed = true;
      if (retryTimer !== null) clearTimeout(retryTimer);
      if (boundUrl === null) return Promise.resolve();
      return new Promise((resolve) => {
        const grace = setTimeout(() => server.closeAllConnections(), graceMs);
        server.close(() => {
          clearTimeout(grace);
          resolve();
        });
        server.closeIdleConnections();
      });
    },
  };
}

/** The observer a server runs: where it listens and the real Ollama it forwards to. */
export interface OllamaObserverSetup {
  listen: OllamaListen;
  /** The `ollama` route's upstream; undefined keeps the route's default. */
  upstream: string | undefined;
}

/**
 * Decide whether `serve` runs the observer: `--ollama-listen` wins, else the settings connect wrote into
 * the data directory. `--upstream ollama=URL` wins over the file's upstream. The result never forwards to
 * its own address.
 */
export async function resolveOllamaObserver(
  listen: OllamaListen | undefined,
  upstreams: Readonly<Record<string, string>>,
  dataDir: string,
  defaultUpstream: string,
): Promise<OllamaObserverSetup | null> {
  const file = listen ? null : await readOllamaObserverFile(dataDir);
  if (!listen && !file) return null;
  const setup: OllamaObserverSetup = {
    listen: listen ?? parseOllamaListen(file!.listen, `"listen" in ${join(dataDir, OLLAMA_OBSERVER_FILE)}`),
    upstream: upstreams.ollama ?? file?.upstream,
  };
  checkNoLoop(setup.listen, setup.upstream ?? defaultUpstream);
  return setup;
}
