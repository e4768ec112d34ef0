/**
 * Runs real AI clients where nothing can leave the machine: a network namespace that has only loopback.
 * The fake provider, `tokenwise serve` and the client all run inside it, under the sandbox agent
 * (`sandbox-agent.ts`). Every process gets a scratch HOME, and HTTPS_PROXY/HTTP_PROXY/ALL_PROXY point at a
 * proxy that rejects and records every connection, so a test can show which traffic bypassed the base URL. The file system is shared with the test, so
 * data directories and config files are read and written directly.
 */
import { type ChildProcess, spawn, spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import type { FakeProviderBehavior, FakeProviderOptions, RecordedRequest } from './fake-provider.js';
import type {
  AgentReady,
  AgentRequest,
  AgentResponse,
  ProcessResult,
  ProxyAttempt,
  SerializedRecordedRequest,
  SerializedTappedRequest,
} from './sandbox-protocol.js';
import type { TappedRequest } from './sandbox-tap.js';

export type { ProcessResult, ProxyAttempt } from './sandbox-protocol.js';
export type { TappedRequest } from './sandbox-tap.js';

export type SandboxSupport = { ok: true; unshareArgs: string[] } | { ok: false; reason: string };

export interface SandboxOptions {
  /** Keep the scratch directory after `close` for debugging; default: `TOKENWISE_SANDBOX_KEEP=1`. */
  keepScratch?: boolean;
}

export interface RunOptions {
  /** Added to (and overriding) the sandbox's base environment; `undefined` removes a variable. */
  env?: Record<string, string | undefined>;
  /** Working directory; the sandbox's work directory by default. */
  cwd?: string;
  /** Kill the process group after this many ms; default 120 000. */
  timeoutMs?: number;
  /** Text written to stdin; without it stdin is /dev/null. */
  input?: string;
}

export interface SandboxFakeProvider {
  readonly url: string;
  readonly port: number;
  requests(): Promise<RecordedRequest[]>;
  clear(): Promise<void>;
  configure(behavior: Partial<FakeProviderBehavior>): Promise<void>;
  close(): Promise<void>;
}

/** A recording pass-through in the sandbox (see `sandbox-tap.ts`). */
export interface SandboxTap {
  readonly url: string;
  requests(): Promise<TappedRequest[]>;
  close(): Promise<void>;
}

export interface SandboxProcess {
  readonly pid: number | null;
  /** Output so far, and the result once the process has exited. */
  output(): Promise<{ stdout: string; stderr: string; result: ProcessResult | null }>;
  /** SIGTERM the process group (SIGKILL after `graceMs`) and wait for the exit. */
  stop(graceMs?: number): Promise<ProcessResult>;
}

export interface Sandbox {
  /** Root of the scratch directory (deleted by `close`). */
  readonly scratchDir: string;
  /** The HOME every process gets. */
  readonly home: string;
  /** An empty directory, the default working directory. */
  readonly workDir: string;
  /** URL of the refusing proxy. */
  readonly proxyUrl: string;
  /** The environment every process starts from (complete: nothing comes from the test's environment). */
  baseEnv(): Record<string, string>;
  startFakeProvider(options?: FakeProviderOptions): Promise<SandboxFakeProvider>;
  /** Start a recording pass-through to `targetUrl` (an origin inside the sandbox). */
  startTap(targetUrl: string): Promise<SandboxTap>;
  run(command: string, args: string[], options?: RunOptions): Promise<ProcessResult>;
  start(command: string, args: string[], options?: Omit<RunOptions, 'timeoutMs'>): Promise<SandboxProcess>;
  /** Connections refused by the proxy so far. */
  proxyAttempts(): Promise<ProxyAttempt[]>;
  /** Names of the network interfaces inside the namespace (only `lo` when isolation holds). */
  networkInterfaces(): Promise<string[]>;
  close(): Promise<void>;
}

const DEFAULT_TIMEOUT_MS = 120_000;
const AGENT_START_TIMEOUT_MS = 15_000;

/**
 * Check that this machine can create a network namespace: as root with `unshare -n`, otherwise through a
 * user namespace (`unshare -rn`). Returns why not when it cannot, naming the missing piece.
 */
export function checkSandboxSupport(): SandboxSupport {
  const unshareArgs = process.getuid?.() === 0 ? ['-n'] : ['-r', '-n'];
  const probe = spawnSync('unshare', [...unshareArgs, '--', 'ip', 'link', 'set', 'lo', 'up'], { encoding: 'utf8', timeout: 10_000 });
  if (probe.error) {
    const missing = (probe.error as NodeJS.ErrnoException).code === 'ENOENT';
    return {
      ok: false,
      reason: missing ? 'the unshare command (util-linux) is not installed' : `unshare failed to start: ${probe.error.message}`,
    };
  }
  if (probe.status !== 0) {
    return {
      ok: false,
      reason: `"unshare ${unshareArgs.join(' ')} -- ip link set lo up" exited with ${probe.status}: ${probe.stderr.trim() || 'no message'} (needs root, or user namespaces enabled, and iproute2)`,
    };
  }
  return { ok: true, unshareArgs };
}

/** Start the sandbox agent in a new network namespace and return a handle to run things inside it. */
export async function startSandbox(options: SandboxOptions = {}): Promise<Sandbox> {
  const support = checkSandboxSupport();
  if (!support.ok) throw new Error(`cannot create a network namespace for the sandbox: ${support.reason}`);

  const scratchDir = mkdtempSync(join(tmpdir(), 'tokenwise-sandbox-'));
  const home = join(scratchDir, 'home');
  const workDir = join(scratchDir, 'work');
  const tempDir = join(scratchDir, 'tmp');
  for (const directory of [home, workDir, tempDir]) mkdirSync(directory, { recursive: true });

  const agentEnv = { PATH: defaultPath(), HOME: home, TMPDIR: tempDir, LANG: 'C.UTF-8' };
  const child = spawn('unshare', [...support.unshareArgs, '--', process.execPath, agentScriptPath()], {
    env: agentEnv,
    stdio: ['pipe', 'pipe', 'pipe'],
  });
  const client = new AgentClient(child);
  const ready = await client.ready();

  const keepScratch = options.keepScratch ?? process.env.TOKENWISE_SANDBOX_KEEP === '1';
  const baseEnv = (): Record<string, string> => ({
    PATH: defaultPath(),
    HOME: home,
    TMPDIR: tempDir,
    LANG: 'C.UTF-8',
    TERM: 'dumb',
    NO_COLOR: '1',
    CI: '1',
    HTTPS_PROXY: ready.proxyUrl,
    HTTP_PROXY: ready.proxyUrl,
    ALL_PROXY: ready.proxyUrl,
    https_proxy: ready.proxyUrl,
    http_proxy: ready.proxyUrl,
    all_proxy: ready.proxyUrl,
    NO_PROXY: '127.0.0.1,localhost',
    no_proxy: '127.0.0.1,localhost',
    // Claude Code: no profile, usage, telemetry or update calls to api.anthropic.com (2.1.197 honours these).
    CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC: '1',
    DISABLE_AUTOUPDATER: '1',
    DISABLE_TELEMETRY: '1',
    DISABLE_ERROR_REPORTING: '1',
    // Codex: its home, so it never reads the real ~/.codex.
    CODEX_HOME: join(home, '.codex'),
    // Gemini CLI: headless runs need a trusted folder.
    GEMINI_CLI_TRUST_WORKSPACE: 'true',
  });

  const mergeEnv = (extra: Record<string, string | undefined> = {}) => {
    const env = baseEnv();
    for (const [name, value] of Object.entries(extra)) {
      if (value === undefined) delete env[name];
      else env[name] = value;
    }
    return env;
  };

  return {
    scratchDir,
    home,
    workDir,
    proxyUrl: ready.proxyUrl,
    baseEnv,
    startFakeProvider: async (fakeOptions = {}) => {
      const started = (await client.call({ op: 'fake.start', params: fakeOptions })) as { handle: number; url: string; port: number };
      const handle = started.handle;
      return {
        url: started.url,
        port: started.port,
        requests: async () => {
          const serialized = (await client.call({ op: 'fake.requests', params: { handle } })) as SerializedRecordedRequest[];
          return serialized.map(({ bodyBase64, ...rest }) => ({ ...rest, body: new Uint8Array(Buffer.from(bodyBase64, 'base64')) }));
        },
        clear: async () => {
          await client.call({ op: 'fake.clear', params: { handle } });
        },
        configure: async (behavior) => {
          await client.call({ op: 'fake.configure', params: { handle, behavior } });
        },
        close: async () => {
          await client.call({ op: 'fake.close', params: { handle } });
        },
      };
    },
    startTap: async (targetUrl) => {
      const started = (await client.call({ op: 'tap.start', params: { targetUrl } })) as { handle: number; url: string };
      const handle = started.handle;
      return {
        url: started.url,
        requests: async () => {
          const serialized = (await client.call({ op: 'tap.requests', params: { handle } })) as SerializedTappedRequest[];
          return serialized.map(({ bodyBase64, ...rest }) => ({ ...rest, body: new Uint8Array(Buffer.from(bodyBase64, 'base64')) }));
        },
        close: async () => {
          await client.call({ op: 'tap.close', params: { handle } });
        },
      };
    },
    run: async (command, args, runOptions = {}) =>
      (await client.call({
        op: 'process.run',
        params: {
          command,
          args,
          env: mergeEnv(runOptions.env),
          cwd: runOptions.cwd ?? workDir,
          timeoutMs: runOptions.timeoutMs ?? DEFAULT_TIMEOUT_MS,
          ...(runOptions.input === undefined ? {} : { input: runOptions.input }),
        },
      })) as ProcessResult,
    start: async (command, args, startOptions = {}) => {
      const started = (await client.call({
        op: 'process.start',
        params: {
          command,
          args,
          env: mergeEnv(startOptions.env),
          cwd: startOptions.cwd ?? workDir,
          ...(startOptions.input === undefined ? {} : { input: startOptions.input }),
        },
      })) as { handle: number; pid: number | null };
      // After stop the agent forgets the process, so its final output is kept here.
      let stopped: ProcessResult | null = null;
      return {
        pid: started.pid,
        output: async () => {
          if (stopped) return { stdout: stopped.stdout, stderr: stopped.stderr, result: stopped };
          return (await client.call({ op: 'process.output', params: { handle: started.handle } })) as {
            stdout: string;
            stderr: string;
            result: ProcessResult | null;
          };
        },
        stop: async (graceMs = 5_000) => {
          stopped ??= (await client.call({ op: 'process.stop', params: { handle: started.handle, timeoutMs: graceMs } })) as ProcessResult;
          return stopped;
        },
      };
    },
    proxyAttempts: async () => (await client.call({ op: 'proxy.attempts', params: {} })) as ProxyAttempt[],
    networkInterfaces: async () => {
      const result = (await client.call({
        op: 'process.run',
        params: { command: 'ip', args: ['-o', 'link', 'show'], env: mergeEnv(), cwd: workDir, timeoutMs: 10_000 },
      })) as ProcessResult;
      if (result.exitCode !== 0) throw new Error(`"ip -o link show" failed in the sandbox: ${result.stderr}`);
      // Lines look like "1: lo: <LOOPBACK,UP,LOWER_UP> mtu 65536 …".
      return result.stdout
        .split('\n')
        .map((line) => /^\d+:\s+([^:@\s]+)/.exec(line)?.[1])
        .filter((name): name is string => name !== undefined);
    },
    close: async () => {
      await client.close();
      if (!keepScratch) rmSync(scratchDir, { recursive: true, force: true });
    },
  };
}

/** Find the compiled agent beside this file, or in ../dist when this file runs from source under vitest. */
function agentScriptPath(): string {
  const here = dirname(fileURLToPath(import.meta.url));
  const candidates = [join(here, 'sandbox-agent.js'), join(here, '..', 'dist', 'sandbox-agent.js')];
  const found = candidates.find((candidate) => existsSync(candidate));
  if (!found)
    throw new Error(`the sandbox agent is not built (looked for ${candidates.join(', ')}); run \`npx tsc -b\` in the repository root`);
  return found;
}

/** Build the test's PATH with this Node's directory first, so `node` inside the sandbox is the same Node. */
function defaultPath(): string {
  const nodeDirectory = dirname(process.execPath);
  const rest = (process.env.PATH ?? '/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin')
    .split(':')
    .filter((entry) => entry !== nodeDirectory);
  return [nodeDirectory, ...rest].join(':');
}

type AgentCall = AgentRequest extends infer Request ? (Request extends { id: number } ? Omit<Request, 'id'> : never) : never;

/** Talks to the agent: one JSON line per request, answers matched by id. */
class AgentClient {
  private nextId = 1;
  private readonly pending = new Map<number, { resolve: (value: unknown) => void; reject: (error: Error) => void }>();
  private readonly readyPromise: Promise<AgentReady>;
  private stderr = '';
  private exited = false;

  constructor(private readonly child: ChildProcess) {
    let resolveReady: (ready: AgentReady) => void = () => {};
    let rejectReady: (error: Error) => void = () => {};
    this.readyPromise = new Promise<AgentReady>((resolve, reject) => {
      resolveReady = resolve;
      rejectReady = reject;
    });
    const timer = setTimeout(
      () => rejectReady(new Error(`the sandbox agent did not start within ${AGENT_START_TIMEOUT_MS} ms: ${this.stderr}`)),
      AGENT_START_TIMEOUT_MS,
    );

    child.stderr?.on('data', (chunk: Buffer) => {
      this.stderr = (this.stderr + chunk.toString('utf8')).slice(-20_000);
    });
    createInterface({ input: child.stdout! }).on('line', (line) => {
      let message: AgentResponse | AgentReady;
      try {
        message = JSON.parse(line) as AgentResponse | AgentReady;
      } catch {
        return;
      }
      if ('ready' in message) {
        clearTimeout(timer);
        resolveReady(message);
        return;
      }
      const waiter = this.pending.get(message.id);
      if (!waiter) return;
      this.pending.delete(message.id);
      if (message.ok) waiter.resolve(message.result);
      else waiter.reject(new Error(message.error));
    });
    child.once('exit', (code, signal) => {
      this.exited = true;
      clearTimeout(timer);
      const error = new Error(`the sandbox agent exited (code ${code}, signal ${signal}): ${this.stderr.trim() || 'no message'}`);
      rejectReady(error);
      for (const waiter of this.pending.values()) waiter.reject(error);
      this.pending.clear();
    });
  }

  ready(): Promise<AgentReady> {
    return this.readyPromise;
  }

  call(request: AgentCall): Promise<unknown> {
    if (this.exited) return Promise.reject(new Error(`the sandbox agent has exited: ${this.stderr.trim() || 'no message'}`));
    const id = this.nextId++;
    return new Promise((resolve, reject) => {
      this.pending.set(id, { resolve, reject });
      this.child.stdin?.write(`${JSON.stringify({ ...request, id })}\n`);
    });
  }

  /** Close the agent's stdin, which makes it stop everything it started, and wait for it to exit. */
  async close(): Promise<void> {
    if (this.exited) return;
    const exited = new Promise<void>((resolve) => this.child.once('exit', () => resolve()));
    this.child.stdin?.end();
    const timer = setTimeout(() => this.child.kill('SIGKILL'), 15_000);
    await exited;
    clearTimeout(timer);
  }
}
