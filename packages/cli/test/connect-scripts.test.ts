import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { mkdir, mkdtemp, readFile, rm, symlink } from 'node:fs/promises';
import { request } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type ServeProcess, startServe } from './helpers/cli-process.js';

/**
 * The connect scripts as a person runs them: fetched with curl from a real `tokenwise serve` and piped
 * into bash, in a scratch HOME whose ~/.tokenwise is the server's data directory.
 */
let root: string;
let home: string;
let server: ServeProcess;

beforeAll(async () => {
  root = await mkdtemp(join(tmpdir(), 'tokenwise-scripts-'));
  home = join(root, 'home');
  await mkdir(join(home, '.claude'), { recursive: true });
  server = await startServe(['--port', '0'], { HOME: home });
});
afterAll(async () => {
  await server?.stop();
  await rm(root, { recursive: true, force: true });
});

interface ShellResult {
  code: number | null;
  stdout: string;
  stderr: string;
}

/** Run a bash command line without a controlling terminal (setsid), so /dev/tty cannot be opened. */
async function runDetached(commandLine: string, env: NodeJS.ProcessEnv = {}): Promise<ShellResult> {
  return runProcess('setsid', ['bash', '-c', commandLine], env);
}

async function runProcess(command: string, args: string[], env: NodeJS.ProcessEnv, input?: string): Promise<ShellResult> {
  const child = spawn(command, args, {
    env: { PATH: '/usr/local/bin:/usr/bin:/bin', HOME: home, SHELL: '/bin/bash', NO_COLOR: '1', ...env },
    stdio: ['pipe', 'pipe', 'pipe'],
  });
  let stdout = '';
  let stderr = '';
  child.stdout.setEncoding('utf8').on('data', (text: string) => (stdout += text));
  child.stderr.setEncoding('utf8').on('data', (text: string) => (stderr += text));
  child.stdin.end(input ?? '');
  const [code] = (await once(child, 'exit')) as [number | null];
  return { code, stdout, stderr };
}

function settingsPath(): string {
  return join(home, '.claude', 'settings.json');
}

/** GET a path with a chosen Host header, which decides the server URL baked into a script. */
function getWithHost(path: string, host: string): Promise<{ status: number; body: string }> {
  const url = new URL(path, server.url);
  return new Promise((resolve, reject) => {
    const req = request({ host: url.hostname, port: url.port, path: url.pathname, headers: { host } }, (res) => {
      let body = '';
      res.setEncoding('utf8').on('data', (text: string) => (body += text));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body }));
    });
    req.on('error', reject);
    req.end();
  });
}

describe('connect scripts', () => {
  it('connect.sh and disconnect.sh complete with --yes', async () => {
    const connected = await runDetached(`curl -fsSL ${server.url}/connect.sh | bash -s -- --yes --only claude-code`);
    expect(connected.code, connected.stderr).toBe(0);
    expect(connected.stdout).toContain('Connected: Claude Code.');
    const settings = JSON.parse(await readFile(settingsPath(), 'utf8'));
    expect(settings.env.ANTHROPIC_BASE_URL).toBe(`${server.url}/r/${server.routeToken}/anthropic`);

    const disconnected = await runDetached(`curl -fsSL ${server.url}/disconnect.sh | bash -s -- --yes`);
    expect(disconnected.code, disconnected.stderr).toBe(0);
    expect(disconnected.stdout).toContain('Disconnected: Claude Code.');
    await expect(readFile(settingsPath(), 'utf8')).rejects.toThrow(/ENOENT/);
  });

  it('asks to rerun with --yes when there is no terminal', async () => {
    const result = await runDetached(`curl -fsSL ${server.url}/connect.sh | bash -s -- --only claude-code`);
    expect(result.code).toBe(1);
    expect(result.stderr).toContain('rerun with --yes');
    await expect(readFile(settingsPath(), 'utf8')).rejects.toThrow(/ENOENT/);
  });

  it('reads the answers from the terminal when piped', async () => {
    // script(1) gives the pipeline a terminal; "y" answers the one [Y/n] question on /dev/tty.
    const pipeline = `curl -fsSL ${server.url}/connect.sh | bash -s -- --only claude-code`;
    const connected = await runProcess('script', ['-qec', pipeline, '/dev/null'], {}, 'y\n');
    expect(connected.code, connected.stdout).toBe(0);
    expect(connected.stdout).toContain(`Apply this change to ${settingsPath()}? [Y/n]`);
    expect(JSON.parse(await readFile(settingsPath(), 'utf8')).env.ANTHROPIC_BASE_URL).toContain('/anthropic');

    const disconnected = await runDetached(`curl -fsSL ${server.url}/disconnect.sh | bash -s -- --yes`);
    expect(disconnected.code, disconnected.stderr).toBe(0);
  });

  it('says what to install without Node.js', async () => {
    const bin = join(root, 'bin-without-node');
    await mkdir(bin, { recursive: true });
    for (const tool of ['bash', 'curl', 'mktemp', 'rm', 'setsid'])
      await symlink(`/usr/bin/${tool}`, join(bin, tool)).catch(() => undefined);

    const result = await runProcess(join(bin, 'bash'), ['-c', `curl -fsSL ${server.url}/connect.sh | bash -s -- --yes`], { PATH: bin });
    expect(result.code).toBe(1);
    expect(result.stderr).toContain('Node.js 20 or later is needed and was not found: install it');
  });

  it('warns before plain http to another machine', async () => {
    const fetched = await getWithHost('/connect.sh', 'tokenwise.example:4747');
    expect(fetched.status).toBe(200);
    expect(fetched.body).toContain("server='http://tokenwise.example:4747'");

    // The script stops before any request to that host: there is no terminal to ask on.
    const result = await runProcess('setsid', ['bash', '-s', '--', '--only', 'claude-code'], {}, fetched.body);
    expect(result.code).toBe(1);
    expect(result.stderr).toContain(
      'plain http to another machine, so the API keys and logins your AI tools send would cross the network unencrypted',
    );
    expect(result.stderr).toContain('rerun with --yes to continue anyway');
  });

  it('rejects a Host header that does not look like a host', async () => {
    const fetched = await getWithHost('/connect.sh', "evil';rm -rf ~;'");
    expect(fetched.status).toBe(400);
  });

  it('serves the PowerShell scripts with the server URL baked in', async () => {
    // PowerShell cannot run here, so the text is checked: the URL, the Node.js check, the download, the call.
    for (const command of ['connect', 'disconnect']) {
      const response = await fetch(`${server.url}/${command}.ps1`);
      expect(response.status).toBe(200);
      const text = await response.text();
      expect(text).toContain(`$server = '${server.url}'`);
      expect(text).toContain('$bundleUrl = "$server/connect/tokenwise.mjs"');
      expect(text).toContain('if (-not (Get-Command node -ErrorAction SilentlyContinue))');
      expect(text).toContain('if ($nodeMajor -lt 20)');
      expect(text).toContain('Invoke-WebRequest -UseBasicParsing -Uri $bundleUrl -OutFile $bundle');
      expect(text).toContain(command === 'connect' ? '& node $bundle connect --server $server @args' : '& node $bundle disconnect @args');
      expect(text).toContain("Read-Host 'Continue anyway? [y/N]'");
      // `exit` would close the window that `iex` runs in.
      expect(text).not.toMatch(/^\s*exit\b/m);
    }
  });

  it('serves the single-file CLI the scripts run', async () => {
    const response = await fetch(`${server.url}/connect/tokenwise.mjs`);
    expect(response.status).toBe(200);
    expect(response.headers.get('content-type')).toContain('text/javascript');
    const text = await response.text();
    expect(text).toContain('connect, disconnect and status in one file');
    expect(text).not.toContain('better-sqlite3');
  });
});
