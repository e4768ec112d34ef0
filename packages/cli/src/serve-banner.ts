import { fileURLToPath } from 'node:url';
import { builtinRoutes } from '@tokenwise/core';
import { formatConnectInstructions, type RunningServer, type ServeConfig } from '@tokenwise/server';

/** This package's bin script, which runs from any folder, unlike `npx tokenwise` (see `runHint`). */
const BIN_PATH = fileURLToPath(new URL('../bin/tokenwise.js', import.meta.url));

/** Format what `tokenwise serve` prints once it listens: where it runs, where each tool points, what next. */
export function formatServeBanner(server: RunningServer, config: ServeConfig): string {
  const lines = [`Tokenwise is listening on ${server.url}`, `Data directory: ${server.paths.dir}`];
  if (config.databaseUrl) lines.push(`Database: ${server.database}`);
  if (config.role === 'proxy') lines.push('Role: proxy (the API runs on a --role app server)');
  if (config.role === 'app') lines.push('Role: app (the proxy runs on --role proxy servers)');
  lines.push(...describeUpstreams(config.upstreams));
  if (config.otlp) lines.push(`OpenTelemetry export: ${new URL(config.otlp.tracesUrl).origin}${new URL(config.otlp.tracesUrl).pathname}`);
  if (config.metricsToken) lines.push(`Prometheus metrics: ${server.url}/metrics (bearer token from --metrics-token)`);
  if (server.ollamaObserver) {
    const observed = server.ollamaObserver.url();
    lines.push(
      observed
        ? `Ollama observer: ${observed} records local models and forwards to Ollama`
        : 'Ollama observer: waiting for its port, which another process (Ollama?) still holds; see the log',
    );
  }
  if (server.firstStart) lines.push('First start: created the local workspace and its route token.');
  for (const notice of server.notices) lines.push(`Note: ${notice}`);
  if (server.setupUrl) {
    lines.push('', 'Create the owner account of the web UI with this one-time link (keep it private):', `  ${server.setupUrl}`);
  }

  if (config.role === 'app') lines.push('', 'Point your AI tools at the base URLs of a --role proxy server.', '');
  else lines.push('', formatConnectInstructions(server.url, server.routeToken));
  lines.push(...runHint(), '');
  return lines.join('\n');
}

/**
 * List the routes sent somewhere other than their provider, so a tester can tell at a glance what leaves
 * the machine. Nothing is listed without overrides: every route then goes to its provider.
 */
function describeUpstreams(upstreams: Readonly<Record<string, string>>): string[] {
  const overridden = Object.entries(upstreams);
  if (overridden.length === 0) return [];

  const others = builtinRoutes.map((route) => route.name).filter((name) => !(name in upstreams));
  return [
    'Upstreams replaced by --upstream or TOKENWISE_UPSTREAM_*:',
    ...overridden.map(([name, url]) => `  ${name.padEnd(11)} -> ${url}`),
    others.length === 0 ? 'No route goes to its provider.' : `Every other route goes to its provider: ${others.join(', ')}.`,
  ];
}

/**
 * Say how to run the command from any folder. `npx tokenwise` finds this clone's command only inside the
 * clone. Anywhere else npx looks the name up on the public npm registry, where anyone may publish a
 * package called "tokenwise", and runs it without asking when stdin is not a terminal.
 */
function runHint(): string[] {
  const command = `node ${/\s/.test(BIN_PATH) ? `"${BIN_PATH}"` : BIN_PATH}`;
  return [
    'Then list the calls with "tokenwise calls", or follow them live with "tokenwise tail". From any folder,',
    `tokenwise is: ${command}`,
    '(or run "npm link" once in packages/cli of this clone to put tokenwise on your PATH).',
  ];
}
