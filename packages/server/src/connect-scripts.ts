import { createReadStream } from 'node:fs';
import { stat } from 'node:fs/promises';
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Logger } from 'pino';
import { sendJson } from './api-responses.js';

export type ScriptCommand = 'connect' | 'disconnect';

/** Where the connect scripts fetch the single-file CLI from, relative to the server URL. */
export const CONNECT_BUNDLE_PATH = '/connect/tokenwise.mjs';

export interface ConnectScriptsOptions {
  /** The single-file build of the connect commands (built by `npm run build`); without it the scripts fail with a hint. */
  bundlePath: string | undefined;
  logger: Logger;
}

const SCRIPTS: Record<string, { command: ScriptCommand; shell: 'sh' | 'ps1' }> = {
  '/connect.sh': { command: 'connect', shell: 'sh' },
  '/disconnect.sh': { command: 'disconnect', shell: 'sh' },
  '/connect.ps1': { command: 'connect', shell: 'ps1' },
  '/disconnect.ps1': { command: 'disconnect', shell: 'ps1' },
};

/**
 * Serves `GET /connect.sh`, `/disconnect.sh`, `/connect.ps1`, `/disconnect.ps1` and the bundle they run.
 * Each script carries the server URL the person fetched it from (the Host header), so
 * `curl -fsSL http://host:4747/connect.sh | bash` needs no other argument.
 */
export function createConnectScriptsHandler(options: ConnectScriptsOptions) {
  async function serveBundle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const info = options.bundlePath ? await stat(options.bundlePath).catch(() => null) : null;
    if (!options.bundlePath || !info?.isFile()) {
      sendJson(res, 503, {
        error: { code: 'not_built', message: 'the connect bundle is not built: run "npm run build" where the server is installed' },
      });
      return;
    }
    res.writeHead(200, { 'content-type': 'text/javascript; charset=utf-8', 'content-length': info.size, 'cache-control': 'no-cache' });
    if (req.method === 'HEAD') {
      res.end();
      return;
    }
    createReadStream(options.bundlePath)
      .on('error', (error) => {
        options.logger.error({ err: error }, 'reading the connect bundle failed');
        res.destroy();
      })
      .pipe(res);
  }

  return {
    matches(req: IncomingMessage): boolean {
      const path = (req.url ?? '/').split('?')[0]!;
      return (req.method === 'GET' || req.method === 'HEAD') && (path in SCRIPTS || path === CONNECT_BUNDLE_PATH);
    },
    handle(req: IncomingMessage, res: ServerResponse): void {
      const path = (req.url ?? '/').split('?')[0]!;
      if (path === CONNECT_BUNDLE_PATH) {
        void serveBundle(req, res);
        return;
      }
      const serverUrl = requestOrigin(req);
      if (!serverUrl) {
        sendJson(res, 400, {
          error: { code: 'invalid_argument', message: 'invalid Host header: fetch the script as http://host:port/connect.sh' },
        });
        return;
      }
      const script = SCRIPTS[path]!;
      const text = script.shell === 'sh' ? renderShellScript(serverUrl, script.command) : renderPowerShellScript(serverUrl, script.command);
      res.writeHead(200, {
        'content-type': script.shell === 'sh' ? 'text/x-shellscript; charset=utf-8' : 'text/plain; charset=utf-8',
        'content-length': Buffer.byteLength(text),
        'cache-control': 'no-store',
      });
      res.end(req.method === 'HEAD' ? undefined : text);
    },
  };
}

/**
 * The origin the person reached the server at, from the Host header and, behind a TLS-terminating proxy,
 * `X-Forwarded-Proto: https`. The value ends up inside a script, so only plain host names, IPv4 and
 * bracketed IPv6 addresses with an optional port are accepted; anything else returns null.
 */
export function requestOrigin(req: IncomingMessage): string | null {
  const host = req.headers.host ?? '';
  if (!/^(?:[A-Za-z0-9](?:[A-Za-z0-9-]{0,62})(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]{0,62}))*|\[[0-9A-Fa-f:.]+\])(?::\d{1,5})?$/.test(host))
    return null;
  const forwarded = req.headers['x-forwarded-proto'];
  const scheme = forwarded === 'https' ? 'https' : 'http';
  return `${scheme}://${host}`;
}

/**
 * The bash script behind `curl -fsSL {server}/connect.sh | bash`. It checks for Node.js 20 or later, asks
 * before sending credentials over plain http to another machine, fetches the single-file CLI from the same
 * server and runs it. Answers come from /dev/tty, because stdin is the script itself when piped.
 */
export function renderShellScript(serverUrl: string, command: ScriptCommand): string {
  const serverArg = command === 'connect' ? ' --server "$server"' : '';
  return `#!/usr/bin/env bash
# Tokenwise ${command} for ${serverUrl}
# Usage: curl -fsSL ${serverUrl}/${command}.sh | bash            (add -s -- --yes to skip the questions)
set -euo pipefail

server=${shellQuote(serverUrl)}
bundle_url="$server${CONNECT_BUNDLE_PATH}"

say() { printf 'tokenwise: %s\\n' "$*" >&2; }

# True when a terminal can be opened for the questions (not the case under cron, CI or ssh without -t).
has_tty() { [ -e /dev/tty ] && { : </dev/tty; } 2>/dev/null; }

yes=0
for arg in "$@"; do
  if [ "$arg" = "--yes" ] || [ "$arg" = "-y" ]; then yes=1; fi
done

case "$server" in
  http://localhost:* | http://localhost | http://127.* | http://\\[::1\\]*) ;;
  http://*)
    say "warning: $server is plain http to another machine, so the API keys and logins your AI tools send would cross the network unencrypted."
    if [ "$yes" = 1 ]; then
      say "continuing because of --yes"
    elif has_tty; then
      printf 'Continue anyway? [y/N] ' >/dev/tty
      answer=''
      read -r answer </dev/tty || true
      case "$answer" in
        [yY] | [yY][eE][sS]) ;;
        *) say "stopped; nothing was changed"; exit 1 ;;
      esac
    else
      say "no terminal to ask on, so nothing was changed: rerun with --yes to continue anyway (curl ... | bash -s -- --yes)"
      exit 1
    fi
    ;;
esac

if ! command -v node >/dev/null 2>&1; then
  say "Node.js 20 or later is needed and was not found: install it (https://nodejs.org/, or brew install node, or your package manager's nodejs package), then run this command again"
  exit 1
fi
node_major="$(node -p 'process.versions.node.split(".")[0]' 2>/dev/null || echo 0)"
if [ "$node_major" -lt 20 ]; then
  say "Node.js 20 or later is needed, found $(node --version 2>/dev/null || echo 'an unknown version'): update it (https://nodejs.org/), then run this command again"
  exit 1
fi

workdir="$(mktemp -d "\${TMPDIR:-/tmp}/tokenwise.XXXXXX")"
trap 'rm -rf "$workdir"' EXIT
bundle="$workdir/tokenwise.mjs"
if command -v curl >/dev/null 2>&1; then
  curl -fsSL "$bundle_url" -o "$bundle"
elif command -v wget >/dev/null 2>&1; then
  wget -q -O "$bundle" "$bundle_url"
else
  node -e 'fetch(process.argv[1]).then(async (r) => { if (!r.ok) throw new Error("HTTP " + r.status); require("fs").writeFileSync(process.argv[2], Buffer.from(await r.arrayBuffer())); }).catch((e) => { console.error(e.message); process.exit(1); })' "$bundle_url" "$bundle"
fi

status=0
if [ "$yes" = 0 ] && has_tty; then
  node "$bundle" ${command}${serverArg} "$@" </dev/tty || status=$?
else
  node "$bundle" ${command}${serverArg} "$@" </dev/null || status=$?
fi
exit "$status"
`;
}

/**
 * The PowerShell script behind `iwr -useb {server}/connect.ps1 | iex`. It never calls `exit`, which would
 * close the window `iex` runs in; it stops with `return` instead.
 */
export function renderPowerShellScript(serverUrl: string, command: ScriptCommand): string {
  const serverArg = command === 'connect' ? ' --server $server' : '';
  return `# Tokenwise ${command} for ${serverUrl}
# Usage: iwr -useb ${serverUrl}/${command}.ps1 | iex
#   with arguments: & ([scriptblock]::Create((iwr -useb ${serverUrl}/${command}.ps1))) --yes
$ErrorActionPreference = 'Stop'
$server = ${powerShellQuote(serverUrl)}
$bundleUrl = "$server${CONNECT_BUNDLE_PATH}"
$yes = ($args -contains '--yes') -or ($args -contains '-y')

if ($server -like 'http://*' -and $server -notmatch '^http://(localhost|127\\.|\\[::1\\])') {
  Write-Warning "$server is plain http to another machine, so the API keys and logins your AI tools send would cross the network unencrypted."
  if (-not $yes) {
    $answer = Read-Host 'Continue anyway? [y/N]'
    if ($answer -notmatch '^(y|yes)$') { Write-Host 'tokenwise: stopped; nothing was changed'; return }
  }
}

if (-not (Get-Command node -ErrorAction SilentlyContinue)) {
  Write-Host 'tokenwise: Node.js 20 or later is needed and was not found: install it (https://nodejs.org/, or winget install OpenJS.NodeJS.LTS), then run this command again'
  return
}
$nodeMajor = [int](& node -p 'process.versions.node.split(".")[0]')
if ($nodeMajor -lt 20) {
  Write-Host "tokenwise: Node.js 20 or later is needed, found $(& node --version): update it (https://nodejs.org/), then run this command again"
  return
}

$bundle = Join-Path ([System.IO.Path]::GetTempPath()) ("tokenwise-" + [guid]::NewGuid().ToString() + ".mjs")
try {
  Invoke-WebRequest -UseBasicParsing -Uri $bundleUrl -OutFile $bundle
  & node $bundle ${command}${serverArg} @args
} finally {
  Remove-Item -Force -ErrorAction SilentlyContinue $bundle
}
`;
}

function shellQuote(value: string): string {
  return `'${value.replaceAll("'", "'\\''")}'`;
}

function powerShellQuote(value: string): string {
  return `'${value.replaceAll("'", "''")}'`;
}
