// Process helpers on Linux: CPU time and RSS from /proc, core pinning with taskset, child processes
// started and stopped by pid.
import { execFileSync, spawn } from 'node:child_process';
import { readdirSync, readFileSync } from 'node:fs';
import { availableParallelism } from 'node:os';
import { setTimeout as sleep } from 'node:timers/promises';

export const CLOCK_TICKS_PER_SECOND = Number(execFileSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }).trim()) || 100;

/**
 * The cores to pin to: the proxy alone on the last core, the load generator, the bench upstream and this
 * harness on the others. With a single core nothing is pinned.
 */
export function corePlan() {
  const cores = availableParallelism();
  if (cores < 2) return { pinned: false, proxy: null, load: null, cores };
  const last = cores - 1;
  return { pinned: true, proxy: String(last), load: last === 1 ? '0' : `0-${last - 1}`, cores };
}

/** Prefix a command with `taskset -c CPUS` when `cpus` is set. */
export function pinned(cpus, command, args) {
  return cpus === null ? [command, args] : ['taskset', ['-c', cpus, command, ...args]];
}

/** Pin every thread of this process to `cpus`. */
export function pinSelf(cpus) {
  if (cpus !== null) execFileSync('taskset', ['-a', '-c', '-p', cpus, String(process.pid)], { stdio: 'ignore' });
}

/** List the pid and every descendant of it (nginx's workers), read from /proc. */
export function processTree(rootPid) {
  const children = new Map();
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    const stat = readStat(Number(entry));
    if (stat === null) continue;
    const list = children.get(stat.ppid) ?? [];
    list.push(Number(entry));
    children.set(stat.ppid, list);
  }
  const tree = [];
  const pending = [rootPid];
  while (pending.length > 0) {
    const pid = pending.pop();
    tree.push(pid);
    pending.push(...(children.get(pid) ?? []));
  }
  return tree;
}

/** Fields of /proc/PID/stat after the command name (which may contain spaces), or null for a gone process. */
function readStat(pid) {
  let text;
  try {
    text = readFileSync(`/proc/${pid}/stat`, 'utf8');
  } catch {
    return null;
  }
  const fields = text.slice(text.lastIndexOf(')') + 2).split(' ');
  // Field numbers of proc(5) minus 3: ppid is field 4, utime 14, stime 15.
  return { ppid: Number(fields[1]), utimeTicks: Number(fields[11]), stimeTicks: Number(fields[12]) };
}

/** CPU time (user + system) used so far by the processes, in µs; 10 ms resolution at the usual 100 ticks/s. */
export function cpuMicros(pids) {
  let ticks = 0;
  for (const pid of pids) {
    const stat = readStat(pid);
    if (stat !== null) ticks += stat.utimeTicks + stat.stimeTicks;
  }
  return (ticks * 1_000_000) / CLOCK_TICKS_PER_SECOND;
}

/** Resident set size of the processes, in bytes (VmRSS). */
export function rssBytes(pids) {
  let kib = 0;
  for (const pid of pids) {
    try {
      const match = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
      if (match) kib += Number(match[1]);
    } catch {
      // The process ended between listing and reading.
    }
  }
  return kib * 1024;
}

/**
 * Start a long-running child and wait until `ready(stdoutSoFar)` returns a value (not undefined), which
 * is returned with the child. `stdout` may be a file descriptor to send the child's output to instead.
 * The first 100 kB of stderr are kept for the error message when it exits early.
 */
export async function startChild({ command, args, cpus, env, cwd, ready, stdout: stdoutFd, timeoutMs = 30_000, name }) {
  const [file, argv] = pinned(cpus, command, args);
  const child = spawn(file, argv, { cwd, env: { ...process.env, ...env }, stdio: ['ignore', stdoutFd ?? 'pipe', 'pipe'] });
  let stdout = '';
  let stderr = '';
  child.stdout?.on('data', (chunk) => {
    if (stdout.length < 1_000_000) stdout += chunk;
  });
  child.stderr.on('data', (chunk) => {
    if (stderr.length < 100_000) stderr += chunk;
  });

  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (child.exitCode !== null) throw new Error(`${name} exited with code ${child.exitCode} before it was ready: ${stderr.slice(-2000)}`);
    const value = await ready(stdout);
    if (value !== undefined) {
      return { child, value, output: () => ({ stdout, stderr }) };
    }
    await sleep(50);
  }
  child.kill('SIGKILL');
  throw new Error(`${name} was not ready after ${timeoutMs} ms; stderr: ${stderr.slice(-2000)}`);
}

/** Send SIGTERM to the child (by its pid), then SIGKILL after `graceMs` if it is still running. */
export async function stopChild(child, graceMs = 10_000) {
  if (child.exitCode !== null || child.signalCode !== null) return;
  const exited = new Promise((resolve) => child.once('exit', resolve));
  child.kill('SIGTERM');
  const timer = setTimeout(() => child.kill('SIGKILL'), graceMs);
  await exited;
  clearTimeout(timer);
}

/** Read the 1-, 5- and 15-minute load averages from /proc/loadavg. */
export function loadAverage() {
  const [one, five, fifteen] = readFileSync('/proc/loadavg', 'utf8').split(' ').map(Number);
  return { one, five, fifteen };
}
