import { once } from 'node:events';
import { createServer, type IncomingMessage, maxHeaderSize, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Duplex } from 'node:stream';
import { createRouteRegistry, decodeCallBodies, redactBodyText, redactRouteToken, TokenwiseError } from '@tokenwise/core';
import { PostgresStore, SqliteStore, type Store } from '@tokenwise/storage';
import type { DestinationStream, Logger } from 'pino';
import { createAccountsApp } from './accounts/accounts-app.js';
import { createApiHandler } from './api.js';
import { sendApiError, sendJson } from './api-responses.js';
import { type BudgetGate, createBudgetGate } from './budgets/budget-gate.js';
import { type BudgetTimings, createBudgetsApp } from './budgets/budgets-app.js';
import { createCallStream } from './call-stream.js';
import { DEFAULT_TOKEN_CACHE_MS, type ServeConfig } from './config.js';
import { createConnectScriptsHandler } from './connect-scripts.js';
import { createDashboardApi, isDashboardPath } from './dashboard/dashboard-api.js';
import { createPriceBook } from './dashboard/price-book.js';
import { loadDashboardFiles } from './dashboard-files.js';
import { type DataDirPaths, prepareDataDir, readServerInfo, removeCreatedDataDir, removeServerInfo, writeServerInfo } from './data-dir.js';
import { withDeletionBarrier } from './deletion-barrier.js';
import { createServerMetrics } from './export/metrics.js';
import { createOtlpExporter, type OtlpExporterOptions, type OtlpExporterStats } from './export/otlp-exporter.js';
import { createInsightsApp } from './insights/insights-app.js';
import type { InsightsRunResult } from './insights/insights-job.js';
import { ensureLocalSetup } from './local-setup.js';
import { createServerLogger, logCall } from './log.js';
import { type OllamaObserver, resolveOllamaObserver, startOllamaObserver } from './ollama-observer.js';
import { createProxyHandler, isProxyTarget, type ProxyRecordSink, type ProxyStats } from './proxy/index.js';
import { createReadinessCheck } from './readiness.js';
import { type BatchingSinkOptions, createBatchingRecordSink, type SinkStats } from './record-sink.js';
import { openRecordSpool, type RecordSpoolOptions } from './record-spool.js';
import { createReportsApp } from './reports-app.js';
import { createRouteAuthorizer } from './route-authorizer.js';
import { createRouteTokenSelfHandler } from './route-token-self.js';
import { roleServes, wrongRoleBody } from './server-role.js';
import { startStoreFollower } from './store-follower.js';
import { SERVER_VERSION } from './version.js';
import { createWorkerApiHandler } from './worker-api.js';

export interface ServeOptions extends ServeConfig {
  /** Destination of the log lines; stdout when omitted. */
  logDestination?: DestinationStream;
  /** The store to use instead of the SQLite file in the data directory (tests pass a failing one). */
  store?: Store;
  /** Batching of records into the store. */
  sink?: Pick<
    BatchingSinkOptions,
    'flushIntervalMs' | 'maxBatchSize' | 'maxQueueSize' | 'maxQueueBytes' | 'maxAttempts' | 'maxRetryDelayMs'
  >;
  /** Batching of the OTLP export (tests shorten the interval). */
  otlpBatching?: Pick<OtlpExporterOptions, 'flushIntervalMs' | 'maxBatchSize' | 'maxQueueSize' | 'timeoutMs' | 'maxAttempts'>;
  /** Bounds of the record spool in the data directory. */
  spool?: RecordSpoolOptions;
  /** How long shutdown waits for calls in flight before aborting them, in ms. */
  shutdownGraceMs?: number;
  /** The single-file connect CLI that `/connect.sh` and `/connect.ps1` fetch; the CLI passes its build. */
  connectBundlePath?: string;
  /** Time between two runs of the retention job, in ms; default one hour. */
  retentionIntervalMs?: number;
  /** Time between two runs of the insights job (prompt groups, versions, call scores), in ms; default one minute. */
  insightsIntervalMs?: number;
  /** Time between two runs of the insights email job and of the LLM judge job, in ms; defaults 5 and 1 minutes. */
  insightsEmailIntervalMs?: number;
  judgeIntervalMs?: number;
  /** Wall clock of the insights email (its periods) and the LLM judge; tests pass a fixed one. */
  reportClock?: () => Date;
  /** Intervals of budget enforcement and alerts (tests shorten them). */
  budgetTimings?: BudgetTimings;
  /** The dashboard's production build (index.html and assets/); without one, `/` shows the plain HTML home page. */
  dashboardDir?: string;
}

export interface RunningServer {
  /** Base URL of the server, with the port actually bound (useful with port 0). */
  url: string;
  paths: DataDirPaths;
  /** Plaintext local route token, for the base URLs to print. */
  routeToken: string;
  /** Plaintext local owner API token, also written to server.json. */
  apiToken: string;
  /** True when this start created the local workspace. */
  firstStart: boolean;
  notices: string[];
  /** Location of the calls: the SQLite file, or the PostgreSQL URL without its password. */
  database: string;
  /** The one-time link that creates the owner account, while none exists; null after that and on proxy-only servers. */
  setupUrl: string | null;
  /** Run the retention job now (tests; the server runs it every `retentionIntervalMs`). */
  runRetention(): Promise<void>;
  /** Run the budget alert job now (tests; the server runs it every `budgetTimings.alertIntervalMs`). */
  runBudgetAlerts(): Promise<void>;
  /** Run the insights email job and the LLM judge job now (tests; the server runs them at their intervals). */
  runInsightsEmails(): Promise<void>;
  runJudge(): Promise<void>;
  /** Run the insights job now, after a run in progress (tests; the server runs it every `insightsIntervalMs`). */
  runInsights(): Promise<InsightsRunResult>;
  /** Revoke a route token and evict it from the token cache, so the proxy refuses it at once. */
  revokeRouteToken(tokenId: string): Promise<boolean>;
  stats(): { proxy: ProxyStats; sink: SinkStats; export: OtlpExporterStats | null; suppressedLogLines: Record<string, number> };
  /** The Ollama observer, when this server runs one. */
  ollamaObserver: Pick<OllamaObserver, 'url' | 'listening'> | null;
  /** Stop accepting connections, let calls in flight finish (up to the grace period), store every record, close. Idempotent. */
  close(): Promise<void>;
}

/**
 * Start `tokenwise serve`: one HTTP server with the proxy under `/r/`, the API under `/api/v1/` (each only
 * in its `role`), `GET /healthz` and `GET /readyz`, backed by the SQLite store in the data directory or by
 * PostgreSQL with `databaseUrl`. It writes `server.json` for the CLI and removes it on close. Signal
 * handling is left to the caller.
 */
export async function serve(options: ServeOptions): Promise<RunningServer> {
  const paths = await prepareDataDir(options.dataDir);
  const ollamaSetup = await resolveOllamaObserver(
    options.ollamaListen,
    options.upstreams,
    paths.dir,
    createRouteRegistry().get('ollama')!.baseUrl,
  );
  const registry = createRouteRegistry({ ...(ollamaSetup?.upstream && { ollama: ollamaSetup.upstream }), ...options.upstreams });

  const running = await readServerInfo(paths);
  if (running && (await respondsToHealthCheck(running.url))) {
    throw new TokenwiseError(
      'invalid_argument',
      `a Tokenwise server (pid ${running.pid}) already runs on ${running.url} with the data directory ${paths.dir}: stop it first or pass another --data-dir`,
    );
  }

  const { logger, suppressedCounts } = createServerLogger({ level: options.logLevel, destination: options.logDestination });
  const role = options.role ?? 'both';
  // A start that fails leaves no new data directory behind; one that existed keeps what it had.
  const removeCreated = () => removeCreatedDataDir(paths).catch(() => undefined);
  const store =
    options.store ??
    (await openStore(options, paths, logger).catch(async (error: unknown) => {
      await removeCreated();
      throw error;
    }));
  const closeOnFailure = async (error: unknown): Promise<never> => {
    await store.close().catch(() => undefined);
    await removeCreated();
    throw error;
  };

  const dashboard = await loadDashboardFiles(role === 'proxy' ? undefined : options.dashboardDir, logger).catch(closeOnFailure);

  // Servers sharing one PostgreSQL database may start together; the lock keeps them from each creating a
  // local workspace.
  const setup = await store.withLock('local-setup', () => ensureLocalSetup(store, paths)).catch(closeOnFailure);

  const stream = createCallStream();
  // With PostgreSQL, other servers store calls too, so the API's live stream follows the store instead of
  // this process's writes, which only prompt an early read.
  const follower =
    store instanceof PostgresStore && role !== 'proxy' ? await startStoreFollower({ store, logger }).catch(closeOnFailure) : null;
  if (follower) stream.subscribe(() => follower.poke());
  const readiness = createReadinessCheck({ store, logger });
  // Records pass through the spool so that a store that is down, or a crash, loses at most one flush interval.
  const spool = await openRecordSpool(paths.spool, options.spool).catch(closeOnFailure);
  const batchingSink = createBatchingRecordSink({
    store,
    logger,
    spool,
    ...options.sink,
    onStored: (calls) => {
      stream.publish(calls);
      budgetGate?.onStored(calls.map((call) => call.record.id));
    },
  });
  const priceBook = createPriceBook({ store, registry, logger: logger.child({ component: 'prices' }) });
  // Blocking budgets are enforced where calls are proxied; the app process only reports and alerts.
  const budgetGate: BudgetGate | null =
    role === 'app'
      ? null
      : createBudgetGate({
          store,
          logger: logger.child({ component: 'budgets' }),
          priceRecord: (record) => priceBook.apply(record),
          refreshIntervalMs: options.budgetTimings?.refreshIntervalMs,
          leaseTtlMs: options.budgetTimings?.leaseTtlMs,
          leaseWaitMs: options.budgetTimings?.leaseWaitMs,
        });
  await budgetGate?.start();
  // Export runs off the proxy's path: both only count or queue the finished record here.
  const exporter = options.otlp
    ? createOtlpExporter({
        ...options.otlp,
        ...options.otlpBatching,
        upstreamOf: (route) => registry.get(route)?.baseUrl ?? null,
        logger: logger.child({ component: 'otlp' }),
      })
    : null;
  const metrics = createServerMetrics({
    token: options.metricsToken,
    sources: {
      proxy: () => (role === 'app' ? null : proxy.stats()),
      sink: () => batchingSink.stats(),
      exporter: () => exporter?.stats() ?? null,
    },
  });
  const sink: ProxyRecordSink = {
    write(captured, bodies, { redactBodies }) {
      const record = priceBook.apply(captured);
      logCall(logger, record);
      // The bodies arrive as raw bytes with their secrets in them, and the batching sink may transfer
      // those bytes to the packer thread inside `write`. So the exporter's copy is decoded and masked
      // before, on this thread, and only when it puts bodies on its spans.
      const decoded = bodies !== null && options.otlp?.includeBodies ? decodeCallBodies(bodies, false) : null;
      const exportedBodies = decoded !== null && redactBodies ? redactBodyText(decoded) : decoded;
      batchingSink.write(record, bodies, { redactBodies });
      metrics.observe(record);
      exporter?.write(record, exportedBodies);
    },
  };

  const authorizer = createRouteAuthorizer({ store, logger, cacheTtlMs: options.tokenCacheMs ?? DEFAULT_TOKEN_CACHE_MS });
  const proxy = createProxyHandler({
    registry,
    authorize: (token) => authorizer.authorize(token),
    sink,
    logger: logger.child({ component: 'proxy' }),
    bodyCapBytes: options.bodyCapBytes,
    budgets: budgetGate ?? undefined,
  });
  const accountsApp = createAccountsApp({
    // Deletions answer only after the spool dropped the stored calls' lines (see withDeletionBarrier).
    store: withDeletionBarrier(store, () => batchingSink.settled()),
    authorizer,
    logger,
    publicUrl: options.publicUrl,
    trustProxy: options.trustProxy,
    runJobs: role !== 'proxy',
    retentionIntervalMs: options.retentionIntervalMs,
    dashboard,
  });
  const budgetsApp = createBudgetsApp({
    store,
    principals: accountsApp.principals,
    logger,
    runJobs: role !== 'proxy',
    mail: options.mail,
    allowPrivateWebhooks: options.allowPrivateWebhooks ?? false,
    publicUrl: options.publicUrl,
    timings: options.budgetTimings,
    onBudgetsChanged: async () => budgetGate?.reloadBudgets(),
  });
  const insightsApp = createInsightsApp({
    store,
    principals: accountsApp.principals,
    logger,
    runJobs: role !== 'proxy',
    intervalMs: options.insightsIntervalMs,
  });
  // The server's own address is known once it listens; the reports' jobs run only after that.
  let listeningUrl: string | null = null;
  const reportsApp = createReportsApp({
    store,
    principals: accountsApp.principals,
    logger,
    mail: options.mail,
    judgeApiKey: options.judgeApiKey,
    publicUrl: options.publicUrl,
    ownProxyUrl: () => (role === 'app' ? null : listeningUrl),
    serverUrl: () => listeningUrl ?? options.publicUrl ?? `http://${options.host}:${options.port}`,
    runJobs: role !== 'proxy',
    insightsEmailIntervalMs: options.insightsEmailIntervalMs,
    judgeIntervalMs: options.judgeIntervalMs,
    clock: options.reportClock,
  });
  const dashboardApi = createDashboardApi({
    store,
    principals: accountsApp.principals,
    priceBook,
    logger: logger.child({ component: 'api' }),
    baseUrl: (req) => options.publicUrl ?? `http://${req.headers.host ?? 'localhost'}`,
  });
  const api = createApiHandler({
    store,
    principals: accountsApp.principals,
    moreEndpoints: async (req, res, url, caller) => {
      if (await dashboardApi(req, res, url, caller)) return true;
      if (await budgetsApp.endpoints(req, res, url, caller)) return true;
      if (await reportsApp.endpoints(req, res, url, caller)) return true;
      if (await insightsApp.handle(req, res, url, caller)) return true;
      if (await accountsApp.moreEndpoints(req, res, url, caller)) return true;
      if (!isDashboardPath(url.pathname) && !insightsApp.matchesPath(url.pathname)) return false;
      sendApiError(res, 405, 'method_not_allowed', `${req.method} is not allowed on ${url.pathname}`);
      return true;
    },
    authorizer,
    stream: follower?.stream ?? stream,
    logger: logger.child({ component: 'api' }),
  });
  const workerApi = createWorkerApiHandler({
    store,
    secret: options.ingestSecret,
    logger: logger.child({ component: 'ingest' }),
    onStored: (calls) => stream.publish(calls),
    priceRecord: (record) => priceBook.apply(record),
  });

  const tokenSelf = createRouteTokenSelfHandler({
    store,
    authorizer,
    logger: logger.child({ component: 'api' }),
    publicUrl: options.publicUrl,
  });
  const connectScripts = createConnectScriptsHandler({
    bundlePath: options.connectBundlePath,
    logger: logger.child({ component: 'connect' }),
  });

  let closing: Promise<void> | null = null;
  const proxyResponses = trackOpenResponses();
  const server = createServer((req, res) => dispatch(req, res));
  server.on('upgrade', (req: IncomingMessage, socket: Duplex, head: Buffer) => {
    if (isProxyTarget(req.url ?? '') && !closing && role !== 'app') {
      proxy.handleUpgrade(req, socket, head);
    } else {
      socket.end('HTTP/1.1 404 Not Found\r\nconnection: close\r\ncontent-length: 0\r\n\r\n');
    }
  });
  server.on('clientError', (error: NodeJS.ErrnoException, socket: Duplex) => {
    logger.debug({ code: error.code }, 'malformed HTTP request from a client');
    if (socket.writable) socket.end(clientErrorResponse(error.code));
    else socket.destroy();
  });

  function dispatch(req: IncomingMessage, res: ServerResponse): void {
    const target = req.url ?? '/';
    if (!roleServes(role, target)) {
      sendJson(res, 404, wrongRoleBody(role, target));
    } else if (target.split('?')[0] === '/metrics' && (req.method === 'GET' || req.method === 'HEAD')) {
      metrics.handle(req, res);
    } else if (isProxyTarget(target)) {
      proxyResponses.add(res);
      proxy.handleRequest(req, res);
    } else if (workerApi.handles(target)) {
      workerApi.handle(req, res);
    } else if (tokenSelf.matches(target)) {
      tokenSelf.handle(req, res);
    } else if (accountsApp.matches(target.split('?')[0] ?? '')) {
      accountsApp.handle(req, res);
    } else if (target.startsWith('/api/')) {
      api.handle(req, res);
    } else if (connectScripts.matches(req)) {
      connectScripts.handle(req, res);
    } else if (dashboard.matchesFile(req)) {
      dashboard.serveFile(req, res);
    } else if (target === '/readyz' && (req.method === 'GET' || req.method === 'HEAD')) {
      void readiness.respond(res, closing !== null);
    } else if (target === '/healthz' && (req.method === 'GET' || req.method === 'HEAD')) {
      sendJson(res, closing ? 503 : 200, { status: closing ? 'stopping' : 'ok' });
    } else {
      sendJson(res, 404, {
        error: {
          code: 'not_found',
          message: `nothing at ${redactRouteToken(target.split('?')[0] ?? '')}: the proxy is under /r/{route-token}/{route}/, the API under /api/v1/`,
        },
      });
    }
  }

  await listen(server, options.host, options.port).catch(async (error) => {
    await batchingSink.close();
    await budgetGate?.close();
    await budgetsApp.close();
    priceBook.close();
    await proxy.close();
    await follower?.close();
    await insightsApp.close();
    await accountsApp.close();
    await reportsApp.close();
    return closeOnFailure(error);
  });

  const address = server.address() as AddressInfo;
  const url = `http://${hostForUrl(options.host, address)}:${address.port}`;
  listeningUrl = url;
  let ollamaObserver: OllamaObserver | null = null;
  if (ollamaSetup && role === 'app') {
    logger.warn({ role }, 'the Ollama observer needs the proxy, so a --role app server does not run it');
  } else if (ollamaSetup) {
    ollamaObserver = startOllamaObserver({
      listen: ollamaSetup.listen,
      upstreamBaseUrl: registry.get('ollama')!.baseUrl,
      routeToken: () => setup.routeToken,
      proxy,
      logger: logger.child({ component: 'ollama' }),
      onRecordedResponse: (res) => proxyResponses.add(res),
    });
    await ollamaObserver.firstAttempt();
  }
  await writeServerInfo(paths, {
    url,
    pid: process.pid,
    api_token: setup.apiToken,
    started_at: new Date().toISOString(),
    version: SERVER_VERSION,
  });
  const database = describeStore(store, paths);
  // The web UI runs where the API does; until its owner account exists, each start prints a fresh setup link.
  const setupUrl = role === 'proxy' ? null : await accountsApp.setupUrl(url);
  logger.info({ url, data_dir: paths.dir, version: SERVER_VERSION, first_start: setup.firstStart, role, database }, 'server started');

  async function shutDown(): Promise<void> {
    const graceMs = options.shutdownGraceMs ?? 10_000;
    logger.info({ live_requests: proxy.stats().liveRequests }, 'server stopping');
    // The judge sends its requests through this server's proxy, so its job stops while the proxy still serves.
    await reportsApp.close();

    const serverClosed = new Promise<void>((resolve) => server.close(() => resolve()));
    api.closeStreams();
    server.closeIdleConnections();

    // Calls in flight get the grace period to finish. After it their connections are closed, which the
    // proxy records as aborted calls. The upstream pools close only after that: closing them first would
    // record the calls as cut by the upstream.
    const grace = setTimeout(() => server.closeAllConnections(), graceMs);
    await Promise.all([serverClosed, ollamaObserver?.close(graceMs)]);
    clearTimeout(grace);
    // The server can report closed before every response has emitted `close`. The proxy hands an aborted
    // call's record to the sink on that event, so the sink's last flush waits for it.
    await proxyResponses.allClosed();
    await proxy.close();

    await batchingSink.close();
    // After the last records are stored, so the leases given back hold no unstored spend.
    await budgetGate?.close();
    await budgetsApp.close();
    await exporter?.close();
    priceBook.close();
    await follower?.close();
    await insightsApp.close();
    await accountsApp.close();
    await store.close();
    await removeServerInfo(paths, process.pid);

    const sinkStats = batchingSink.stats();
    logger.info(
      { stored: sinkStats.stored, dropped: sinkStats.dropped, lost: sinkStats.lost, suppressed_log_lines: suppressedCounts() },
      'server stopped',
    );
  }

  return {
    url,
    paths,
    routeToken: setup.routeToken,
    apiToken: setup.apiToken,
    firstStart: setup.firstStart,
    notices: setup.notices,
    database,
    setupUrl,
    runRetention: () => accountsApp.runRetention(),
    runBudgetAlerts: () => budgetsApp.runAlerts(),
    runInsightsEmails: () => reportsApp.runInsightsEmails(),
    runJudge: () => reportsApp.runJudge(),
    runInsights: () => insightsApp.runOnce(),
    revokeRouteToken: (tokenId) => authorizer.revoke(tokenId),
    stats: () => ({
      proxy: proxy.stats(),
      sink: batchingSink.stats(),
      export: exporter?.stats() ?? null,
      suppressedLogLines: suppressedCounts(),
    }),
    ollamaObserver,
    close() {
      closing ??= shutDown();
      return closing;
    },
  };
}

/**
 * Build the response to a request Node's HTTP parser rejected (smuggling shapes such as both
 * `content-length` and `transfer-encoding`, a bare CR in a header, headers beyond `http.maxHeaderSize`).
 * The message names the parser's error code only, never the request's bytes.
 */
function clientErrorResponse(code: string | undefined): string {
  let status = '400 Bad Request';
  let message = `malformed HTTP request${code ? ` (${code})` : ''}: send a valid HTTP/1.1 request`;
  if (code === 'HPE_HEADER_OVERFLOW') {
    status = '431 Request Header Fields Too Large';
    message = `the request line and headers exceed ${maxHeaderSize} bytes: send a shorter path or fewer headers`;
  } else if (code === 'ERR_HTTP_REQUEST_TIMEOUT') {
    status = '408 Request Timeout';
    message = 'the request did not arrive in time: send it again';
  }
  const body = JSON.stringify({ error: { code: 'invalid_request', message } });
  return `HTTP/1.1 ${status}\r\nconnection: close\r\ncontent-type: application/json\r\ncontent-length: ${Buffer.byteLength(body)}\r\n\r\n${body}`;
}

/** Track responses until they emit `close`; `allClosed` resolves once none is open. */
function trackOpenResponses() {
  const open = new Set<ServerResponse>();
  let onEmpty: (() => void) | null = null;
  return {
    add(res: ServerResponse): void {
      open.add(res);
      res.once('close', () => {
        open.delete(res);
        if (open.size === 0) onEmpty?.();
      });
    },
    allClosed(): Promise<void> {
      if (open.size === 0) return Promise.resolve();
      return new Promise((resolve) => {
        onEmpty = resolve;
      });
    },
  };
}

/** Open PostgreSQL when a database URL is configured, else the SQLite file in the data directory; both migrate on open. */
async function openStore(options: ServeOptions, paths: DataDirPaths, logger: Logger): Promise<Store> {
  if (options.databaseUrl === undefined) return new SqliteStore(paths.database);
  return PostgresStore.open(options.databaseUrl, {
    onConnectionError: (error) => logger.warn({ err: error }, 'an idle PostgreSQL connection failed; the pool replaces it'),
  });
}

function describeStore(store: Store, paths: DataDirPaths): string {
  if (store instanceof PostgresStore) return `${store.displayUrl} (schema ${store.schema})`;
  if (store instanceof SqliteStore) return store.path;
  return paths.database;
}

/** True when a server responds at `url`. A server.json left by a crash whose pid was reused gets no response. */
async function respondsToHealthCheck(url: string): Promise<boolean> {
  try {
    await fetch(`${url}/healthz`, { signal: AbortSignal.timeout(2000) });
    return true;
  } catch {
    return false;
  }
}

async function listen(server: Server, host: string, port: number): Promise<void> {
  server.listen(port, host);
  try {
    await once(server, 'listening');
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    if (code === 'EADDRINUSE') {
      throw new TokenwiseError(
        'invalid_argument',
        `port ${port} on ${host} is already in use: stop the other process or pass another --port (0 picks a free one)`,
        {
          cause: error,
        },
      );
    }
    if (code === 'EADDRNOTAVAIL' || code === 'ENOTFOUND' || code === 'EACCES') {
      throw new TokenwiseError(
        'invalid_argument',
        `cannot listen on ${host}:${port} (${code}): pass a local address to --host and a free --port`,
        {
          cause: error,
        },
      );
    }
    throw error;
  }
}

/** Return the host to print in URLs: loopback for a wildcard address, and IPv6 in brackets. */
function hostForUrl(host: string, address: AddressInfo): string {
  if (host === '0.0.0.0' || host === '') return '127.0.0.1';
  if (host === '::') return '[::1]';
  if (address.family === 'IPv6' || host.includes(':')) return `[${host}]`;
  return host;
}
