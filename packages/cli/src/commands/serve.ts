import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { setFlagsFromString } from 'node:v8';
import { resolveServeConfig, serve } from '@tokenwise/server';
import { type CliIo, keepRunningWhenOutputCloses } from '../cli-io.js';
import { CONNECT_BUNDLE_FILE } from '../connect/bundle-path.js';
import { COMMON_OPTIONS, joinDashValues, parseFlagsOf } from '../options.js';
import { formatServeBanner } from '../serve-banner.js';

/** The dashboard that `npm run build` writes in this clone (packages/dashboard/dist/web), served at `/`. */
const DASHBOARD_DIR = fileURLToPath(new URL('../../../dashboard/dist/web', import.meta.url));

export const SERVE_HELP = `Usage: tokenwise serve [options]

Start the recording proxy and the API on one port. Point your AI tools at the
base URLs it prints; every call is stored in the data directory, or in
PostgreSQL with --database-url. The base URLs go to stderr, and stdout carries
only the log: one JSON line per call, with no bodies, headers or tokens.

Options:
  --host HOST             address to listen on (default 127.0.0.1)       TOKENWISE_HOST
  --port PORT             port to listen on; 0 picks a free one (default 4747)
                                                                         TOKENWISE_PORT
  --data-dir DIR          where the database and tokens live (default ~/.tokenwise)
                                                                         TOKENWISE_DATA_DIR
  --upstream NAME=URL     send route NAME to URL instead of the provider; repeatable
                                                                         TOKENWISE_UPSTREAM_<NAME>
  --log-level LEVEL       fatal, error, warn, info, debug, trace or silent (default info)
                                                                         TOKENWISE_LOG_LEVEL
  --body-cap-bytes N      largest request or response body kept per call, in bytes
                          (default 4194304)                              TOKENWISE_BODY_CAP_BYTES
  --database-url URL      store everything in PostgreSQL instead of the data directory's
                          SQLite, e.g. postgres://tokenwise:PASSWORD@db:5432/tokenwise
                                                                         TOKENWISE_DATABASE_URL
  --role ROLE             proxy (only /r/), app (only the API) or both (default both)
                                                                         TOKENWISE_ROLE
  --token-cache-seconds N how long the proxy trusts a route token without asking the
                          database; a token revoked through another server keeps
                          working here for up to N seconds (default 5)   TOKENWISE_TOKEN_CACHE_SECONDS
  --public-url URL        the address people and devices reach this server at, e.g.
                          https://tokenwise.example.com: used in the links it
                          prints and hands out, and the only host name the web UI
                          accepts besides localhost and IP addresses     TOKENWISE_PUBLIC_URL
  --ingest-secret SECRET  shared secret the Cloudflare Worker sends to /api/v1/ingest and
                          /api/v1/routes/verify; at least 32 characters. Prefer the
                          variable: a flag shows in the process list     TOKENWISE_INGEST_SECRET
  --otlp-endpoint URL     export each call as an OpenTelemetry span (GenAI conventions)
                          to this OTLP/HTTP collector, e.g. http://127.0.0.1:4318;
                          /v1/traces is appended unless the URL ends with it
                                                                         TOKENWISE_OTLP_ENDPOINT
  --otlp-header NAME=VALUE
                          header sent with each export, e.g. a backend's API key;
                          repeatable (the variable: NAME=VALUE,NAME=VALUE)
                                                                         TOKENWISE_OTLP_HEADERS
  --otlp-bodies           also put request and response bodies on the spans (cut to
                          16 Ki characters), for workspaces that keep bodies
                                                                         TOKENWISE_OTLP_BODIES
  --metrics-token TOKEN   serve Prometheus metrics at /metrics to scrapers that send
                          "Authorization: Bearer TOKEN"; at least 16 characters.
                          Without it /metrics is off                     TOKENWISE_METRICS_TOKEN
  --ollama-listen HOST:PORT
                          record local models: listen where Ollama's clients expect
                          Ollama (OLLAMA_HOST, e.g. 127.0.0.1:11434) and forward to
                          the real Ollama, moved to --upstream ollama=URL
                          (default: the settings "tokenwise connect" wrote)
                                                                         TOKENWISE_OLLAMA_LISTEN
  --smtp-url URL          send the insights email (weekly unless a workspace or person
                          changes it) and budget alerts through this SMTP server:
                          smtp://[user:password@]host[:port] or smtps://… for TLS from
                          the start. Prefer the variable when the URL has a password
                                                                         TOKENWISE_SMTP_URL
  --mail-from ADDRESS     the sender of those emails, e.g. "Tokenwise <tokenwise@example.com>"
                          (default: tokenwise@ the --public-url host)    TOKENWISE_MAIL_FROM
  --judge-api-key-file FILE
                          file holding the provider API key the LLM judge sends, for
                          workspaces that turn the judge on; or put the key itself in
                          TOKENWISE_JUDGE_API_KEY                        TOKENWISE_JUDGE_API_KEY_FILE
  --allow-private-webhooks
                          let budget alert webhooks reach loopback and private-network
                          addresses (off: an owner could make the server post into
                          its own network)                               TOKENWISE_ALLOW_PRIVATE_WEBHOOKS
  --trust-proxy           the server runs behind a reverse proxy (Caddy, nginx) that
                          appends the client's address to X-Forwarded-For: the
                          sign-in and pairing limits count each client by the
                          header's last address (off: every client behind the
                          proxy shares its limit)                        TOKENWISE_TRUST_PROXY
  -h, --help              show this help

Stop it with Ctrl-C (SIGINT), SIGTERM or by closing its terminal (SIGHUP): it
finishes calls in flight, stores every record and exits.
`;

/** Run the server until SIGINT, SIGTERM or SIGHUP; a second signal exits at once. */
export async function serveCommand(args: string[], io: CliIo): Promise<number> {
  const flags = parseFlagsOf('serve', () =>
    parseArgs({
      args: joinDashValues(args),
      strict: true,
      options: {
        ...COMMON_OPTIONS,
        host: { type: 'string' },
        port: { type: 'string' },
        'data-dir': { type: 'string' },
        upstream: { type: 'string', multiple: true },
        'log-level': { type: 'string' },
        'body-cap-bytes': { type: 'string' },
        'database-url': { type: 'string' },
        role: { type: 'string' },
        'token-cache-seconds': { type: 'string' },
        'ingest-secret': { type: 'string' },
        'public-url': { type: 'string' },
        'otlp-endpoint': { type: 'string' },
        'otlp-header': { type: 'string', multiple: true },
        'otlp-bodies': { type: 'boolean' },
        'metrics-token': { type: 'string' },
        'ollama-listen': { type: 'string' },
        'smtp-url': { type: 'string' },
        'mail-from': { type: 'string' },
        'judge-api-key-file': { type: 'string' },
        'allow-private-webhooks': { type: 'boolean' },
        'trust-proxy': { type: 'boolean' },
      },
    }),
  ).values;
  if (flags.help) {
    io.stdout.write(SERVE_HELP);
    return 0;
  }

  const config = resolveServeConfig(
    {
      host: flags.host,
      port: flags.port,
      dataDir: flags['data-dir'],
      upstream: flags.upstream,
      logLevel: flags['log-level'],
      bodyCapBytes: flags['body-cap-bytes'],
      databaseUrl: flags['database-url'],
      role: flags.role,
      tokenCacheSeconds: flags['token-cache-seconds'],
      ingestSecret: flags['ingest-secret'],
      publicUrl: flags['public-url'],
      otlpEndpoint: flags['otlp-endpoint'],
      otlpHeader: flags['otlp-header'],
      otlpBodies: flags['otlp-bodies'],
      metricsToken: flags['metrics-token'],
      ollamaListen: flags['ollama-listen'],
      smtpUrl: flags['smtp-url'],
      mailFrom: flags['mail-from'],
      judgeApiKeyFile: flags['judge-api-key-file'],
      allowPrivateWebhooks: flags['allow-private-webhooks'],
      trustProxy: flags['trust-proxy'],
    },
    io.env,
  );
  // Listen for the stop signals before anything is printed: a supervisor that reads the base URLs may
  // send SIGTERM right after, and without a handler Node would die without flushing the records.
  const stopSignal = waitForStopSignal(io);
  keepRunningWhenOutputCloses();
  tuneGarbageCollection();
  const server = await serve({ ...config, connectBundlePath: CONNECT_BUNDLE_FILE, dashboardDir: DASHBOARD_DIR });

  // The banner carries the route token, so it goes to stderr: stdout is only the JSON log lines, which a
  // service manager or `serve > tokenwise.log` keeps.
  io.stderr.write(formatServeBanner(server, config));

  await stopSignal;
  await server.close();
  return 0;
}

/**
 * How far, in percent, V8 lets a heap grow past what survived the last full GC before it starts the next
 * one. Otherwise V8's heap controller (src/heap/heap-controller.cc) picks a factor from 1.1 to 4 by
 * itself. The proxy keeps each call's bodies for the call's length, so they reach the old generation.
 * With 64 streamed calls on Node 20.20 (bench/run.mjs, memory measurement), the old generation reached
 * 50–85 MB between full GCs, and 35 MB with this setting. The cost is CPU time: measured with pretenuring
 * still on, a value of 100 saved 6–17% per privacy-mode call, and RSS rose from 197 MB to 211 MB.
 */
const HEAP_GROWING_PERCENT = 30;

/**
 * Set the garbage collector's flags for every isolate in the process, worker threads included. Both take
 * effect when set after start (checked with --trace-gc).
 *
 * Pretenuring is off. V8 allocates the objects of a site straight in the old generation once most of
 * them survived a young collection. A call's objects (capture state, record, log line) outlive the call
 * briefly, so many sites were pretenured. Each young object they referenced then survived scavenges too,
 * until the next full GC. In privacy mode at 1,300 calls/s, about half of the bytes allocated survived a
 * young collection (sampling heap profile), scavenges took 4–8 ms, and a full GC ran every 400 ms.
 * Without pretenuring, scavenges take 1–2 ms and half as many full GCs run. A privacy-mode call then
 * takes about a quarter less CPU time (bench/run.mjs --compare, JSON 20 KB at concurrency 16).
 * NOTE: Node calls changing V8 flags after start undefined in general; a later V8 may read these once.
 */
function tuneGarbageCollection(): void {
  setFlagsFromString(`--heap-growing-percent=${HEAP_GROWING_PERCENT}`);
  setFlagsFromString('--no-allocation-site-pretenuring');
}

function waitForStopSignal(io: CliIo): Promise<void> {
  return new Promise((resolve) => {
    let stopping = false;
    const onSignal = (signal: NodeJS.Signals) => {
      if (stopping) {
        io.stderr.write(`tokenwise: ${signal} again, exiting without waiting for calls in flight\n`);
        process.exit(1);
      }
      stopping = true;
      io.stderr.write(`tokenwise: ${signal} received, stopping (press Ctrl-C again to exit at once)\n`);
      resolve();
    };
    process.on('SIGINT', onSignal);
    process.on('SIGTERM', onSignal);
    // Closing the terminal that runs `npm start` sends SIGHUP, whose default action ends the process
    // without the clean stop.
    process.on('SIGHUP', onSignal);
  });
}
