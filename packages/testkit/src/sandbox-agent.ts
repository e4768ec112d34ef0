/**
 * The sandbox agent: started by `startSandbox` inside a network namespace that has only loopback, it
 * brings loopback up, runs the refusing proxy, fake providers and child processes there, and answers the
 * test's requests (see `sandbox-protocol.ts`) over stdin/stdout. When stdin closes it stops everything it
 * started and exits.
 */
import { type ChildProcess, spawn, spawnSync } from 'node:child_process';
import { createInterface } from 'node:readline';
import { type FakeProvider, startFakeProvider } from './fake-provider.js';
import type {
  AgentReady,
  AgentRequest,
  AgentResponse,
  ProcessResult,
  ProcessSpec,
  SerializedRecordedRequest,
  SerializedTappedRequest,
} from './sandbox-protocol.js';
import { startRefusingProxy } from './sandbox-refusing-proxy.js';
import { startTap, type Tap } from './sandbox-tap.js';

/** Output kept per stream of a child process; the rest is dropped with a marker. */
const OUTPUT_CAP_BYTES = 4 * 1024 * 1024;
/** Time a process gets between SIGTERM and SIGKILL. */
const KILL_GRACE_MS = 2_000;

interface ManagedProcess {
  child: ChildProcess;
  stdout: OutputBuffer;
  stderr: OutputBuffer;
  startedAt: number;
  result: ProcessResult | null;
  exited: Promise<ProcessResult>;
  timedOut: boolean;
}

class OutputBuffer {
  private chunks: Buffer[] = [];
  private bytes = 0;
  private dropped = 0;

  add(chunk: Buffer): void {
    const room = OUTPUT_CAP_BYTES - this.bytes;
    if (room <= 0) {
      this.dropped += chunk.length;
      return;
    }
    const kept = chunk.length > room ? chunk.subarray(0, room) : chunk;
    this.chunks.push(kept);
    this.bytes += kept.length;
    this.dropped += chunk.length - kept.length;
  }

  text(): string {
    const text = Buffer.concat(this.chunks).toString('utf8');
    return this.dropped > 0 ? `${text}\n[sandbox agent: ${this.dropped} more bytes dropped]` : text;
  }
}

async function main(): Promise<void> {
  const loopback = spawnSync('ip', ['link', 'set', 'lo', 'up'], { encoding: 'utf8' });
  if (loopback.status !== 0) {
    process.stderr.write(`sandbox agent: "ip link set lo up" failed: ${loopback.stderr || loopback.error?.message}\n`);
    process.exit(1);
  }

  const proxy = await startRefusingProxy();
  const fakes = new Map<number, FakeProvider>();
  const processes = new Map<number, ManagedProcess>();
  const taps = new Map<number, Tap>();
  let nextHandle = 1;

  const handle = async (request: AgentRequest): Promise<unknown> => {
    switch (request.op) {
      case 'fake.start': {
        const fake = await startFakeProvider(request.params);
        const id = nextHandle++;
        fakes.set(id, fake);
        return { handle: id, url: fake.url, port: fake.port };
      }
      case 'fake.requests':
        return getFake(fakes, request.params.handle)
          .requests()
          .map(({ body, ...rest }): SerializedRecordedRequest => ({ ...rest, bodyBase64: Buffer.from(body).toString('base64') }));
      case 'fake.clear':
        getFake(fakes, request.params.handle).clear();
        return null;
      case 'fake.configure':
        getFake(fakes, request.params.handle).configure(request.params.behavior);
        return null;
      case 'fake.close':
        await getFake(fakes, request.params.handle).close();
        fakes.delete(request.params.handle);
        return null;
      case 'tap.start': {
        const tap = await startTap(request.params.targetUrl);
        const id = nextHandle++;
        taps.set(id, tap);
        return { handle: id, url: tap.url };
      }
      case 'tap.requests':
        return getTap(taps, request.params.handle)
          .requests()
          .map(({ body, ...rest }): SerializedTappedRequest => ({ ...rest, bodyBase64: Buffer.from(body).toString('base64') }));
      case 'tap.close':
        await getTap(taps, request.params.handle).close();
        taps.delete(request.params.handle);
        return null;
      case 'proxy.attempts':
        return proxy.attempts();
      case 'process.run': {
        const managed = startProcess(request.params);
        const id = nextHandle++;
        processes.set(id, managed);
        const timer = setTimeout(() => {
          managed.timedOut = true;
          terminate(managed);
        }, request.params.timeoutMs);
        const result = await managed.exited;
        clearTimeout(timer);
        processes.delete(id);
        return result;
      }
      case 'process.start': {
        const managed = startProcess(request.params);
        const id = nextHandle++;
        processes.set(id, managed);
        return { handle: id, pid: managed.child.pid ?? null };
      }
      case 'process.output': {
        const managed = getProcess(processes, request.params.handle);
        return { stdout: managed.stdout.text(), stderr: managed.stderr.text(), result: managed.result };
      }
      case 'process.stop': {
        const managed = getProcess(processes, request.params.handle);
        if (!managed.result) terminate(managed, request.params.timeoutMs);
        const result = await managed.exited;
        processes.delete(request.params.handle);
        return result;
      }
    }
  };

  const respond = (response: AgentResponse) => process.stdout.write(`${JSON.stringify(response)}\n`);
  const lines = createInterface({ input: process.stdin });
  lines.on('line', (line) => {
    let request: AgentRequest;
    try {
      request = JSON.parse(line) as AgentRequest;
    } catch {
      process.stderr.write(`sandbox agent: ignoring a line that is not JSON: ${line.slice(0, 200)}\n`);
      return;
    }
    handle(request).then(
      (result) => respond({ id: request.id, ok: true, result: result ?? null }),
      (error: unknown) => respond({ id: request.id, ok: false, error: error instanceof Error ? error.message : String(error) }),
    );
  });
  lines.on('close', () => {
    const closers = [...fakes.values(), ...taps.values(), proxy].map((server) => () => server.close());
    shutdown(processes, closers).then(
      () => process.exit(0),
      () => process.exit(1),
    );
  });

  const ready: AgentReady = { ready: true, proxyUrl: proxy.url };
  process.stdout.write(`${JSON.stringify(ready)}\n`);
}

/** Start a child in its own process group, so stopping it also stops what it spawned. */
function startProcess(spec: ProcessSpec): ManagedProcess {
  const child = spawn(spec.command, spec.args, {
    cwd: spec.cwd,
    env: spec.env,
    detached: true,
    stdio: [spec.input === undefined ? 'ignore' : 'pipe', 'pipe', 'pipe'],
  });
  const stdout = new OutputBuffer();
  const stderr = new OutputBuffer();
  const startedAt = performance.now();
  child.stdout?.on('data', (chunk: Buffer) => stdout.add(chunk));
  child.stderr?.on('data', (chunk: Buffer) => stderr.add(chunk));
  if (spec.input !== undefined) child.stdin?.end(spec.input);

  let settle: (result: ProcessResult) => void = () => {};
  const exited = new Promise<ProcessResult>((resolve) => {
    settle = resolve;
  });
  const managed: ManagedProcess = { child, stdout, stderr, startedAt, result: null, exited, timedOut: false };

  const finish = (exitCode: number | null, signal: string | null, spawnError?: Error) => {
    if (managed.result) return;
    const startFailure = spawnError ? `\n[sandbox agent: could not start ${spec.command}: ${spawnError.message}]` : '';
    managed.result = {
      exitCode,
      signal,
      stdout: stdout.text(),
      stderr: stderr.text() + startFailure,
      timedOut: managed.timedOut,
      durationMs: Math.round(performance.now() - startedAt),
    };
    settle(managed.result);
  };
  child.once('error', (error) => finish(null, null, error));
  child.once('close', (code, signal) => finish(code, signal));
  return managed;
}

function terminate(managed: ManagedProcess, graceMs = KILL_GRACE_MS): void {
  const pid = managed.child.pid;
  if (pid === undefined || managed.result) return;
  signalGroup(pid, 'SIGTERM');
  const timer = setTimeout(() => signalGroup(pid, 'SIGKILL'), graceMs);
  managed.exited.then(() => clearTimeout(timer));
}

function signalGroup(pid: number, signal: NodeJS.Signals): void {
  try {
    process.kill(-pid, signal);
  } catch {
    // The group is already gone.
  }
}

async function shutdown(processes: Map<number, ManagedProcess>, closers: (() => Promise<void>)[]): Promise<void> {
  for (const managed of processes.values()) terminate(managed);
  await Promise.all([...processes.values()].map((managed) => managed.exited));
  await Promise.all(closers.map((close) => close()));
}

function getFake(fakes: Map<number, FakeProvider>, id: number): FakeProvider {
  const fake = fakes.get(id);
  if (!fake) throw new Error(`no fake provider with handle ${id} in the sandbox agent`);
  return fake;
}

function getTap(taps: Map<number, Tap>, id: number): Tap {
  const tap = taps.get(id);
  if (!tap) throw new Error(`no tap with handle ${id} in the sandbox agent`);
  return tap;
}

function getProcess(processes: Map<number, ManagedProcess>, id: number): ManagedProcess {
  const managed = processes.get(id);
  if (!managed) throw new Error(`no process with handle ${id} in the sandbox agent`);
  return managed;
}

main().catch((error: unknown) => {
  process.stderr.write(`sandbox agent: ${error instanceof Error ? (error.stack ?? error.message) : String(error)}\n`);
  process.exit(1);
});
