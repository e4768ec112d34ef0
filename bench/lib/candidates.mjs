// The candidates: each starts in front of the same bench upstream, pinned to the proxy core, and returns
// the URL and extra headers a load uses through it.
import { openSync } from 'node:fs';
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import { createServer } from 'node:net';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { processTree, startChild, stopChild } from './proc.mjs';

const repoRoot = fileURLToPath(new URL('../../', import.meta.url));
export const portkeyDir = path.join(repoRoot, 'bench', 'portkey');

/** Find a free TCP port on 127.0.0.1; it is released again before the candidate binds it. */
export async function freePort() {
  const server = createServer();
  await new Promise((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address();
  await new Promise((resolve) => server.close(resolve));
  return port;
}

/** Return true when `url` responds with any HTTP status, undefined while it does not. */
async function answers(url) {
  try {
    await fetch(url, { signal: AbortSignal.timeout(1000) });
    return true;
  } catch {
    return undefined;
  }
}

/** Upstream path of each load kind, relative to the provider's API root. */
const UPSTREAM_PATHS = { anthropic: '/v1/messages', codex: '/v1/responses' };

/** No proxy: the load generator talks to the bench upstream itself. */
export function directCandidate() {
  let upstreamUrl = '';
  return {
    name: 'direct',
    description: 'no proxy, the floor',
    async start(context) {
      upstreamUrl = context.upstream.url;
    },
    target: (kind) => ({ url: `${upstreamUrl}${UPSTREAM_PATHS[kind]}`, headers: {} }),
    // The upstream's own CPU is not a proxy's; direct has no proxy process.
    pids: () => [],
    async stop() {},
  };
}

/** nginx from Debian, one worker, as a streaming reverse proxy with upstream keep-alive. */
export function nginxCandidate() {
  let child = null;
  let baseUrl = '';
  return {
    name: 'nginx',
    description: 'nginx, proxy_buffering off, proxy_request_buffering off',
    async start(context) {
      const dir = path.join(context.tmpDir, 'nginx');
      await mkdir(path.join(dir, 'temp'), { recursive: true });
      const port = await freePort();
      const upstreamPort = new URL(context.upstream.url).port;
      await writeFile(path.join(dir, 'nginx.conf'), nginxConfig({ dir, port, upstreamPort }));
      const started = await startChild({
        name: 'nginx',
        command: 'nginx',
        args: ['-p', dir, '-c', path.join(dir, 'nginx.conf'), '-e', path.join(dir, 'error.log')],
        cpus: context.plan.proxy,
        ready: () => answers(`http://127.0.0.1:${port}/`),
      });
      child = started.child;
      baseUrl = `http://127.0.0.1:${port}`;
    },
    target: (kind) => ({ url: `${baseUrl}${UPSTREAM_PATHS[kind]}`, headers: {} }),
    pids: () => (child ? processTree(child.pid) : []),
    async stop() {
      if (child) await stopChild(child);
      child = null;
    },
  };
}

function nginxConfig({ dir, port, upstreamPort }) {
  return `daemon off;
master_process on;
worker_processes 1;
pid ${dir}/nginx.pid;
error_log ${dir}/error.log warn;
events { worker_connections 1024; }
http {
  access_log off;
  client_body_temp_path ${dir}/temp/body;
  proxy_temp_path ${dir}/temp/proxy;
  fastcgi_temp_path ${dir}/temp/fastcgi;
  uwsgi_temp_path ${dir}/temp/uwsgi;
  scgi_temp_path ${dir}/temp/scgi;
  upstream bench_upstream {
    server 127.0.0.1:${upstreamPort};
    keepalive 128;
  }
  server {
    listen 127.0.0.1:${port};
    client_max_body_size 64m;
    location / {
      proxy_pass http://bench_upstream;
      proxy_http_version 1.1;
      proxy_set_header Connection "";
      proxy_buffering off;
      proxy_request_buffering off;
      proxy_read_timeout 600s;
    }
  }
}
`;
}

/**
 * Create the Node floor candidate: `node-minimal-proxy.mjs`, a pass-through on node:http and undici
 * without capture or store. Tokenwise's cost above it is what capture, routing and recording add.
 */
export function nodeMinimalCandidate() {
  let child = null;
  let baseUrl = '';
  return {
    name: 'node-minimal',
    description: 'node:http + undici pass-through, no capture (the Node floor)',
    async start(context) {
      const port = await freePort();
      const started = await startChild({
        name: 'node-minimal',
        command: process.execPath,
        args: [path.join(repoRoot, 'bench', 'lib', 'node-minimal-proxy.mjs'), String(port), context.upstream.url],
        cpus: context.plan.proxy,
        ready: () => answers(`http://127.0.0.1:${port}/`),
      });
      child = started.child;
      baseUrl = `http://127.0.0.1:${port}`;
    },
    target: (kind) => ({ url: `${baseUrl}${UPSTREAM_PATHS[kind]}`, headers: {} }),
    pids: () => (child ? [child.pid] : []),
    async stop() {
      if (child) await stopChild(child);
      child = null;
    },
  };
}

/**
 * `tokenwise serve` with its SQLite store. With `privacy`, the local workspace is switched to privacy mode
 * through the API (`PATCH /api/v1/workspaces/{id}` with the owner API token) before any load, so its calls
 * are stored without bodies.
 */
export function tokenwiseCandidate({ privacy, root = repoRoot, suffix = '' }) {
  let child = null;
  let baseUrl = '';
  let routeToken = '';
  return {
    name: `${privacy ? 'tokenwise-privacy' : 'tokenwise'}${suffix}`,
    description: `${privacy ? 'Tokenwise, SQLite, privacy mode (metrics only)' : 'Tokenwise, SQLite, bodies captured'}${root === repoRoot ? '' : `, from ${root}`}`,
    async start(context) {
      const dataDir = path.join(context.tmpDir, `${privacy ? 'tokenwise-privacy' : 'tokenwise'}${suffix}`);
      await mkdir(dataDir, { recursive: true, mode: 0o700 });
      const port = await freePort();
      const log = openSync(path.join(dataDir, 'serve.log'), 'a');
      const started = await startChild({
        name: 'tokenwise serve',
        command: process.execPath,
        args: [
          ...(context.cpuProfileDir ? ['--cpu-prof', `--cpu-prof-dir=${context.cpuProfileDir}`] : []),
          path.join(root, 'packages', 'cli', 'bin', 'tokenwise.js'),
          'serve',
          '--host',
          '127.0.0.1',
          '--port',
          String(port),
          '--data-dir',
          dataDir,
          '--upstream',
          `anthropic=${context.upstream.url}`,
          '--upstream',
          `openai=${context.upstream.url}`,
        ],
        stdout: log,
        cpus: context.plan.proxy,
        ready: () => answers(`http://127.0.0.1:${port}/healthz`),
      });
      child = started.child;
      baseUrl = `http://127.0.0.1:${port}`;
      const tokens = JSON.parse(await readFile(path.join(dataDir, 'local-tokens.json'), 'utf8'));
      routeToken = tokens.route_token;
      if (privacy) await turnOnPrivacyMode(baseUrl, tokens.api_token);
    },
    target: (kind) => ({
      url: `${baseUrl}/r/${routeToken}/${kind === 'codex' ? 'openai' : 'anthropic'}${UPSTREAM_PATHS[kind]}`,
      headers: {},
    }),
    pids: () => (child ? [child.pid] : []),
    async stop() {
      if (child) await stopChild(child, 30_000);
      child = null;
    },
  };
}

/** Put every workspace the owner API token can see into privacy mode, and check that it took. */
async function turnOnPrivacyMode(baseUrl, apiToken) {
  const headers = { authorization: `Bearer ${apiToken}`, 'content-type': 'application/json' };
  const listed = await fetch(`${baseUrl}/api/v1/workspaces`, { headers });
  if (!listed.ok) throw new Error(`GET /api/v1/workspaces failed with ${listed.status}: ${await listed.text()}`);
  for (const workspace of (await listed.json()).workspaces) {
    const changed = await fetch(`${baseUrl}/api/v1/workspaces/${workspace.id}`, {
      method: 'PATCH',
      headers,
      body: JSON.stringify({ privacy_mode: true }),
    });
    const body = await changed.json();
    if (!changed.ok || body.workspace?.privacy_mode !== true) {
      throw new Error(`turning on privacy mode for workspace ${workspace.id} failed with ${changed.status}: ${JSON.stringify(body)}`);
    }
  }
}

/**
 * Run the Portkey gateway from npm (`bench/portkey`) headless, with a loopback guard preloaded that rejects
 * any connection to an address outside 127.0.0.0/8 and ::1. Each request names the provider and the
 * bench upstream as its custom host, so the gateway has no other destination.
 */
export function portkeyCandidate() {
  let child = null;
  let baseUrl = '';
  let upstreamUrl = '';
  const outputs = [];
  return {
    name: 'portkey',
    description: 'Portkey gateway 1.15.2 (@hono/node-server 1.13.5)',
    async start(context) {
      const port = await freePort();
      upstreamUrl = context.upstream.url;
      const started = await startChild({
        name: 'portkey gateway',
        command: process.execPath,
        args: [
          '--require',
          path.join(portkeyDir, 'loopback-guard.cjs'),
          path.join(portkeyDir, 'node_modules', '@portkey-ai', 'gateway', 'build', 'start-server.js'),
          `--port=${port}`,
          '--headless',
        ],
        cwd: portkeyDir,
        env: { NODE_ENV: 'production' },
        cpus: context.plan.proxy,
        ready: () => answers(`http://127.0.0.1:${port}/`),
      });
      child = started.child;
      outputs.push(started.output);
      baseUrl = `http://127.0.0.1:${port}`;
    },
    target: (kind) => ({
      url: `${baseUrl}${UPSTREAM_PATHS[kind]}`,
      headers: {
        'x-portkey-provider': kind === 'codex' ? 'openai' : 'anthropic',
        'x-portkey-custom-host': `${upstreamUrl}/v1`,
        ...(kind === 'anthropic' ? { authorization: 'Bearer sk-ant-api03-FAKE-BENCH-KEY-DO-NOT-USE' } : {}),
      },
    }),
    /** Connections the loopback guard blocked, from the stderr of every gateway process started so far. */
    blockedConnections: () => outputs.flatMap((output) => output().stderr.match(/loopback-guard: blocked .*/g) ?? []),
    pids: () => (child ? [child.pid] : []),
    async stop() {
      if (child) await stopChild(child);
      child = null;
    },
  };
}
