import { type ChildProcess, spawn } from 'node:child_process';
import { once } from 'node:events';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { collectForSecretScan } from '@tokenwise/testkit';

/** The command a user runs, as the package's bin entry. */
export const TOKENWISE_BIN = fileURLToPath(new URL('../../bin/tokenwise.js', import.meta.url));

export interface CliResult {
  code: number | null;
  stdout: string;
  stderr: string;
}

/**
 * Environment for a CLI child: the test's own, minus every `TOKENWISE_*` variable (so a developer's
 * settings cannot leak in), plus `extra`.
 */
export function cliEnv(extra: NodeJS.ProcessEnv = {}): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = {};
  for (const [key, value] of Object.entries(process.env)) {
    if (!key.startsWith('TOKENWISE_')) env[key] = value;
  }
  return { ...env, NO_COLOR: '1', ...extra };
}

/** Run `tokenwise <args>` to completion; `user` runs it as another user (needs root). */
export async function runCli(
  args: string[],
  env: NodeJS.ProcessEnv = {},
  user: { uid: number; gid: number } | null = null,
): Promise<CliResult> {
  const child = spawn(process.execPath, [TOKENWISE_BIN, ...args], { env: cliEnv(env), stdio: ['ignore', 'pipe', 'pipe'], ...user });
  const output = collectOutput(child);
  const [code] = (await once(child, 'exit')) as [number | null];
  await output.closed;
  return { code, stdout: output.stdout(), stderr: output.stderr() };
}

export interface ServeProcess {
  child: ChildProcess;
  /** The URL it printed as listening on. */
  url: string;
  /** The route token in the printed base URLs. */
  routeToken: string;
  stdout(): string;
  stderr(): string;
  /** Send SIGTERM and wait for the exit code. */
  stop(): Promise<number | null>;
}

/** Start `tokenwise serve <args>` and wait until it printed its base URLs (on stderr). */
export async function startServe(args: string[], env: NodeJS.ProcessEnv = {}): Promise<ServeProcess> {
  const child = spawn(process.execPath, [TOKENWISE_BIN, 'serve', ...args], { env: cliEnv(env), stdio: ['ignore', 'pipe', 'pipe'] });
  const output = collectOutput(child);
  const exited = once(child, 'exit');

  const printed = await output.waitForStderr(/to put tokenwise on your PATH\)\./, exited);
  const url = /Tokenwise is listening on (\S+)/.exec(printed)?.[1];
  const routeToken = /ANTHROPIC_BASE_URL=\S+\/r\/([^/\s]+)\/anthropic/.exec(printed)?.[1];
  if (!url || !routeToken) throw new Error(`serve printed no URL or route token:\n${printed}`);

  return {
    child,
    url,
    routeToken,
    stdout: output.stdout,
    stderr: output.stderr,
    async stop() {
      if (child.exitCode === null && child.signalCode === null) child.kill('SIGTERM');
      const [code] = (await exited) as [number | null];
      await output.closed;
      // The server's log and banner go to the suite's closing secret scan.
      collectForSecretScan('serve-output', output.stdout() + output.stderr());
      return code;
    },
  };
}

export interface ServeRoleProcess {
  child: ChildProcess;
  /** The URL it printed as listening on. */
  url: string;
  /** Its own data directory, deleted by `stop`. */
  dataDir: string;
  /** Everything it printed on stdout and stderr. */
  output(): string;
  /** The owner API token it wrote to `server.json` (a server that serves the API writes one). */
  apiToken(): Promise<string>;
  /** Send SIGTERM, wait for the exit code and delete the data directory. */
  stop(): Promise<number | null>;
}

/**
 * Start `tokenwise serve <args>` with a data directory of its own and wait until it listens. Unlike
 * `startServe` it waits for the listening line only, which every `--role` prints.
 */
export async function startServeRole(args: string[]): Promise<ServeRoleProcess> {
  const dataDir = await mkdtemp(join(tmpdir(), 'tokenwise-serve-role-'));
  const child = spawn(process.execPath, [TOKENWISE_BIN, 'serve', '--port', '0', '--data-dir', dataDir, '--log-level', 'warn', ...args], {
    env: cliEnv(),
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const output = collectOutput(child);
  const exited = once(child, 'exit');
  const printed = output.waitForStderr(/Tokenwise is listening on (\S+)/, exited).catch(async (error: unknown) => {
    await rm(dataDir, { recursive: true, force: true });
    throw new Error(`serve ${args.join(' ')} exited before listening`, { cause: error });
  });
  const url = /Tokenwise is listening on (\S+)/.exec(await printed)![1]!;

  return {
    child,
    url,
    dataDir,
    output: () => output.stdout() + output.stderr(),
    async apiToken() {
      return (JSON.parse(await readFile(join(dataDir, 'server.json'), 'utf8')) as { api_token: string }).api_token;
    },
    async stop() {
      if (child.exitCode === null && child.signalCode === null) child.kill('SIGTERM');
      const [code] = (await exited) as [number | null];
      await output.closed;
      collectForSecretScan('serve-output', output.stdout() + output.stderr());
      await rm(dataDir, { recursive: true, force: true });
      return code;
    },
  };
}

/** Start `tokenwise tail <args>` and wait until it follows the stream. */
export async function startTail(args: string[], env: NodeJS.ProcessEnv = {}) {
  const child = spawn(process.execPath, [TOKENWISE_BIN, 'tail', ...args], { env: cliEnv(env), stdio: ['ignore', 'pipe', 'pipe'] });
  const output = collectOutput(child);
  const exited = once(child, 'exit');
  await output.waitForStderr(/Following new calls/, exited);
  return {
    stdout: output.stdout,
    stderr: output.stderr,
    waitForStdout: (pattern: RegExp) => output.waitFor(pattern, exited),
    async stop() {
      child.kill('SIGTERM');
      const [code] = (await exited) as [number | null];
      return code;
    },
  };
}

function collectOutput(child: ChildProcess) {
  let stdout = '';
  let stderr = '';
  const waiters = new Set<() => void>();
  const notify = () => {
    for (const waiter of waiters) waiter();
  };
  child.stdout!.setEncoding('utf8').on('data', (text: string) => {
    stdout += text;
    notify();
  });
  child.stderr!.setEncoding('utf8').on('data', (text: string) => {
    stderr += text;
    notify();
  });
  const closed = Promise.all([once(child.stdout!, 'close'), once(child.stderr!, 'close')]);

  const waitUntil = (read: () => string, pattern: RegExp, exited: Promise<unknown>) =>
    new Promise<string>((resolve, reject) => {
      const check = () => {
        if (pattern.test(read())) {
          waiters.delete(check);
          resolve(read());
        }
      };
      waiters.add(check);
      check();
      exited.then(() => {
        waiters.delete(check);
        reject(new Error(`process exited before printing ${pattern}\nstdout:\n${stdout}\nstderr:\n${stderr}`));
      });
    });

  return {
    stdout: () => stdout,
    stderr: () => stderr,
    closed,
    waitFor: (pattern: RegExp, exited: Promise<unknown>) => waitUntil(() => stdout, pattern, exited),
    waitForStderr: (pattern: RegExp, exited: Promise<unknown>) => waitUntil(() => stderr, pattern, exited),
  };
}
