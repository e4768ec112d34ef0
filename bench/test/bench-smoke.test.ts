import { execFileSync, spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, describe, expect, it } from 'vitest';

// A short run of the benchmark harness: every candidate for about a second, a small store. It checks
// that the harness runs end to end and reports every figure, never how fast anything is.

const repoRoot = fileURLToPath(new URL('../../', import.meta.url));

function has(command: string): boolean {
  return spawnSync('sh', ['-c', `command -v ${command}`]).status === 0;
}

// The harness installs nginx and wrk with apt-get when they are missing, which needs root.
const canInstall = process.getuid?.() === 0;
const skipReason = has('wrk') || canInstall ? null : 'wrk is not installed and this user cannot install it (apt-get install -y wrk nginx)';
if (skipReason) console.warn(`bench smoke test skipped: ${skipReason}`);

describe.skipIf(skipReason !== null)('bench harness', () => {
  const dir = mkdtempSync(path.join(tmpdir(), 'tokenwise-bench-smoke-'));
  const out = path.join(dir, 'result.json');
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  it('runs every candidate and prints the tables', { timeout: 300_000 }, () => {
    const stdout = execFileSync(process.execPath, [path.join(repoRoot, 'bench', 'run.mjs'), '--quick', '--out', out], {
      cwd: repoRoot,
      encoding: 'utf8',
      stdio: ['ignore', 'pipe', 'inherit'],
    });
    const result = JSON.parse(readFileSync(out, 'utf8'));

    expect(stdout).toContain('### Throughput, CPU and latency');
    expect(stdout).toContain('### Streams: SSE of 40 deltas 5 ms apart');
    expect(stdout).toContain("### The store's dashboard reads");
    expect(stdout).toContain('### The same questions in plain SQL');
    expect(stdout).toContain('### Targets');

    const ran = new Set(result.proxy.throughput.map((row: { candidate: string }) => row.candidate));
    const expected = ['direct', 'nginx', 'node-minimal', 'tokenwise', 'tokenwise-privacy', 'portkey'].filter(
      (name) => !result.skipped.some((skip: { candidate: string }) => skip.candidate === name),
    );
    expect([...ran].sort()).toEqual([...expected].sort());
    expect(ran).toContain('tokenwise');
    expect(ran).toContain('tokenwise-privacy');

    for (const row of result.proxy.throughput) {
      expect(row.errors, `${row.candidate} ${row.load} c=${row.concurrency}`).toBe(0);
      expect(row.rps, `${row.candidate} ${row.load} c=${row.concurrency}`).toBeGreaterThan(0);
      if (row.candidate !== 'direct') expect(row.cpu_us_per_request, row.candidate).toBeGreaterThan(0);
    }
    for (const stream of result.proxy.streams) {
      expect(stream.failures, stream.candidate).toBe(0);
      expect(stream.first_delta_ms, stream.candidate).toBeGreaterThan(0);
    }
    expect(result.proxy.portkey_blocked_connections).toEqual([]);

    const sqlite = result.store.find((entry: { backend: string }) => entry.backend === 'sqlite');
    expect(sqlite.insert.records_per_s_metrics_only).toBeGreaterThan(0);
    expect(Object.keys(sqlite.queries)).toEqual(['2000', '4000']);
    expect(Object.keys(sqlite.store_methods)).toEqual(['2000', '4000']);
    expect(result.targets.length).toBeGreaterThan(10);
  });
});

describe('bench harness options', () => {
  const runHarness = (...args: string[]) =>
    spawnSync(process.execPath, [path.join(repoRoot, 'bench', 'run.mjs'), ...args], { cwd: repoRoot, encoding: 'utf8' });

  it('rejects an unknown candidate', () => {
    const run = runHarness('--candidates', 'direct,tokenwse');

    expect(run.status).toBe(2);
    expect(run.stderr).toContain('unknown candidate "tokenwse"');
    expect(run.stderr).toContain('choose from direct, nginx, node-minimal, tokenwise, tokenwise-privacy, portkey');
  });

  it('names --compare for a -base candidate', () => {
    const run = runHarness('--candidates', 'tokenwise-base');

    expect(run.status).toBe(2);
    expect(run.stderr).toContain('the -base candidates need --compare DIR');
  });
});

describe('packer steps', () => {
  const runSteps = (...args: string[]) =>
    spawnSync(process.execPath, [path.join(repoRoot, 'bench', 'packer-steps.mjs'), ...args], { cwd: repoRoot, encoding: 'utf8' });

  it('times every step of both loads', () => {
    // This checkout is passed as the other build too, so the comparison steps run.
    const run = runSteps('--rounds', '1', '--calls', '5', '--compare', repoRoot, '--json');

    expect(run.status, run.stderr).toBe(0);
    const { results } = JSON.parse(run.stdout);
    expect(Object.keys(results)).toEqual(['20 KB request, JSON 2 KB answer', '20 KB request, SSE 40 deltas answer']);
    for (const steps of Object.values(results) as Record<string, number>[]) {
      expect(Object.keys(steps)).toContain('packBodies (base)');
      for (const us of Object.values(steps)) expect(us).toBeGreaterThan(0);
    }
  });

  it('rejects a non-numeric round count', () => {
    const run = runSteps('--rounds', 'many');

    expect(run.status).toBe(2);
    expect(run.stderr).toContain('--rounds must be a positive integer, not "many"');
  });
});
