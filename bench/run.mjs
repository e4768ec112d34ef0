#!/usr/bin/env node
import { spawnSync } from 'node:child_process';
// The Tokenwise benchmark: the proxy side by side with no proxy, nginx and the Portkey gateway, and the
// store's write and query speed. Prints the tables at the end and writes bench/results/<date>.json.
// `node bench/run.mjs --help` lists the options; BENCHMARKS.md explains the figures.
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { cpus, tmpdir, totalmem } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { directCandidate, nginxCandidate, nodeMinimalCandidate, portkeyCandidate, tokenwiseCandidate } from './lib/candidates.mjs';
import { anthropicRequestBody, anthropicRequestHeaders, codexExchange, SSE_DELTAS } from './lib/payloads.mjs';
import { liveStreamsRss, median, probeStream } from './lib/probe.mjs';
import { CLOCK_TICKS_PER_SECOND, corePlan, cpuMicros, loadAverage, pinSelf, startChild, stopChild } from './lib/proc.mjs';
import { evaluateTargets, formatReport } from './lib/report.mjs';
import { ensureDebianTools, ensurePortkey } from './lib/setup.mjs';
import { benchPostgres, benchSqlite } from './lib/store-bench.mjs';
import { runWrk, writeWrkScript } from './lib/wrk.mjs';

const benchDir = path.dirname(fileURLToPath(import.meta.url));

const { values: flags } = parseArgs({
  options: {
    quick: { type: 'boolean', default: false },
    rounds: { type: 'string' },
    duration: { type: 'string' },
    only: { type: 'string' },
    candidates: { type: 'string' },
    scenarios: { type: 'string' },
    out: { type: 'string' },
    'database-url': { type: 'string' },
    'cpu-prof': { type: 'string' },
    compare: { type: 'string' },
    help: { type: 'boolean', default: false },
  },
});

if (flags.help) {
  process.stdout.write(`Usage: node bench/run.mjs [options]   (npm run bench -- [options])
  --quick               one short round of a few loads and a small store (the CI smoke test uses it)
  --rounds N            rounds of every candidate, alternated A B C A B C… (default 3)
  --duration S          seconds of each wrk run (default 3)
  --only proxy|store    run one half only
  --candidates a,b      candidates to run: direct, nginx, node-minimal, tokenwise, tokenwise-privacy, portkey (default all)
  --scenarios L:C,…     wrk runs to make, as load:concurrency (loads: json20k, sse20k, codex, json1m)
  --out FILE            where to write the JSON result (default bench/results/<date>.json)
  --database-url URL    PostgreSQL for the store benchmark (default $TOKENWISE_TEST_DATABASE_URL or
                        postgres://postgres@127.0.0.1:5432/test); a schema is created and dropped
  --cpu-prof DIR        run the Tokenwise candidates under node --cpu-prof, profiles written to DIR
  --compare DIR         also run tokenwise-base and tokenwise-privacy-base from another built checkout in DIR
                        (e.g. a git worktree of an older commit), alternated with the others; with
                        --candidates, naming tokenwise or tokenwise-privacy brings in its -base twin
`);
  process.exit(0);
}

const quick = flags.quick;
const settings = {
  rounds: Number(flags.rounds ?? (quick ? 1 : 3)),
  durationS: Number(flags.duration ?? (quick ? 1 : 3)),
  // Tokenwise's sink stores records up to 1 s after a call ends. Each run waits at least this long, and
  // then until the candidate is idle (`waitForIdle`), so that work is part of the run's CPU figure.
  settleMs: quick ? 300 : 1200,
  warmupS: quick ? 0 : 1,
  probeRequests: quick ? 3 : 20,
  liveStreams: quick ? 8 : 64,
  liveStreamsMs: quick ? 500 : 2500,
  store: quick
    ? { insertCount: 1000, bodiesCount: 200, sizes: [2_000, 4_000], repeats: 2 }
    : { insertCount: 40_000, bodiesCount: 4_000, sizes: [100_000, 1_000_000], repeats: 5 },
};
const parts = new Set((flags.only ?? 'proxy,store').split(','));
const log = (message) => process.stderr.write(`[bench ${new Date().toISOString().slice(11, 19)}] ${message}\n`);

/** Load shapes; each is one request body and header set, and the response the upstream picks for it. */
function buildLoads() {
  const codex = codexExchange();
  const anthropic = (bytes, stream, gap) => ({
    kind: 'anthropic',
    headers: anthropicRequestHeaders,
    body: anthropicRequestBody(bytes, { stream, gap }),
  });
  return {
    json20k: { label: 'JSON, 20 KB request, 2 KB answer', ...anthropic(20_000, false, false) },
    sse20k: { label: `SSE, ${SSE_DELTAS} deltas back to back, 20 KB request`, ...anthropic(20_000, true, false) },
    sseGap: { label: `SSE, ${SSE_DELTAS} deltas 5 ms apart, 20 KB request`, ...anthropic(20_000, true, true) },
    codex: {
      label: 'Codex Responses stream (llm-wire), 14 KB request',
      kind: 'codex',
      headers: codex.requestHeaders,
      body: codex.requestBody,
    },
    json1m: { label: 'JSON, 1 MB request, 2 KB answer', ...anthropic(1_048_576, false, false) },
  };
}

const SCENARIOS = flags.scenarios
  ? flags.scenarios.split(',').map((entry) => {
      const [load, concurrency] = entry.split(':');
      return { load, concurrency: Number(concurrency) };
    })
  : quick
    ? [
        { load: 'json20k', concurrency: 1 },
        { load: 'sse20k', concurrency: 16 },
      ]
    : [
        { load: 'json20k', concurrency: 1 },
        { load: 'json20k', concurrency: 16 },
        { load: 'json20k', concurrency: 64 },
        { load: 'sse20k', concurrency: 1 },
        { load: 'sse20k', concurrency: 16 },
        { load: 'sse20k', concurrency: 64 },
        { load: 'codex', concurrency: 16 },
        { load: 'json1m', concurrency: 1 },
        { load: 'json1m', concurrency: 16 },
      ];

function allCandidates() {
  return [
    directCandidate(),
    nginxCandidate(),
    nodeMinimalCandidate(),
    tokenwiseCandidate({ privacy: false }),
    tokenwiseCandidate({ privacy: true }),
    ...(flags.compare
      ? [
          tokenwiseCandidate({ privacy: false, root: path.resolve(flags.compare), suffix: '-base' }),
          tokenwiseCandidate({ privacy: true, root: path.resolve(flags.compare), suffix: '-base' }),
        ]
      : []),
    portkeyCandidate(),
  ];
}

function chooseCandidates(missingTools, portkeyReady) {
  const skipped = [];
  const chosen = candidates.filter((candidate) => {
    if (selectedNames && !selectedNames.has(candidate.name)) return false;
    if (candidate.name === 'nginx' && missingTools.includes('nginx')) {
      skipped.push({ candidate: 'nginx', reason: 'nginx is not installed' });
      return false;
    }
    if (candidate.name === 'portkey' && !portkeyReady) {
      skipped.push({ candidate: 'portkey', reason: 'the Portkey gateway could not be installed into bench/portkey' });
      return false;
    }
    return true;
  });
  return { chosen, skipped };
}

/**
 * Return the candidate names that `--candidates` lists. With `--compare`, `tokenwise` and
 * `tokenwise-privacy` also select their `-base` twins, because a comparison needs both builds. An unknown
 * name throws, so that a typo cannot drop a candidate from the run unnoticed.
 */
function selectCandidates(list) {
  const known = new Set(candidates.map((candidate) => candidate.name));
  const selected = new Set(
    list
      .split(',')
      .map((name) => name.trim())
      .filter((name) => name !== ''),
  );
  const unknown = [...selected].filter((name) => !known.has(name));
  if (unknown.length > 0) {
    const hint = unknown.some((name) => name.endsWith('-base')) && !flags.compare ? ' (the -base candidates need --compare DIR)' : '';
    throw new Error(`unknown candidate ${unknown.map((name) => `"${name}"`).join(', ')}${hint}; choose from ${[...known].join(', ')}`);
  }
  if (flags.compare) {
    for (const name of ['tokenwise', 'tokenwise-privacy']) if (selected.has(name)) selected.add(`${name}-base`);
  }
  return selected;
}

async function sleep(ms) {
  await new Promise((resolve) => setTimeout(resolve, ms));
}

/**
 * Wait at least `settleMs`, then until the processes use less than one clock tick in 250 ms, for at most
 * 20 s in all. Returns the time waited, in ms. Work a candidate does after the load (the records its sink
 * stores later) is then part of its CPU time.
 */
async function waitForIdle(pids) {
  const started = Date.now();
  await sleep(settings.settleMs);
  if (pids.length === 0) return Date.now() - started;
  let last = cpuMicros(pids);
  while (Date.now() - started < 20_000) {
    await sleep(250);
    const now = cpuMicros(pids);
    if (now - last < 1_000_000 / CLOCK_TICKS_PER_SECOND) break;
    last = now;
  }
  return Date.now() - started;
}

/** Run wrk for one scenario through one candidate, and measure the candidate's CPU time over it. */
async function measure({ candidate, scenario, scripts, loads, plan }) {
  const load = loads[scenario.load];
  const target = candidate.target(load.kind);
  const pids = candidate.pids();
  const cpuBefore = cpuMicros(pids);
  const wrk = await runWrk({
    url: target.url,
    scriptPath: scripts.get(`${candidate.name}/${scenario.load}`),
    connections: scenario.concurrency,
    durationS: settings.durationS,
    cpus: plan.load,
  });
  const settledMs = await waitForIdle(pids);
  const cpuUs = cpuMicros(pids) - cpuBefore;
  return {
    settled_ms: settledMs,
    requests: wrk.requests,
    errors: wrk.errors,
    rps: wrk.requests / (wrk.duration_us / 1e6),
    cpu_us_per_request: pids.length > 0 && wrk.requests > 0 ? cpuUs / wrk.requests : null,
    p50_ms: wrk.latency_p50_us / 1000,
    p99_ms: wrk.latency_p99_us / 1000,
  };
}

async function runProxyBench({ tmpDir, plan, candidates }) {
  const loads = buildLoads();
  const upstream = await startChild({
    name: 'bench upstream',
    command: process.execPath,
    args: [path.join(benchDir, 'lib', 'upstream.mjs')],
    cpus: plan.load,
    ready: (stdout) => {
      const line = stdout.split('\n')[0];
      return line.endsWith('}') ? JSON.parse(line) : undefined;
    },
  });
  const context = { tmpDir, plan, upstream: { url: `http://127.0.0.1:${upstream.value.port}` }, cpuProfileDir: flags['cpu-prof'] };
  const runs = [];
  const probes = [];
  try {
    for (const candidate of candidates) {
      log(`starting ${candidate.name}`);
      await candidate.start(context);
    }

    const scripts = new Map();
    for (const candidate of candidates) {
      for (const [name, load] of Object.entries(loads)) {
        const headers = { ...load.headers, ...candidate.target(load.kind).headers };
        scripts.set(`${candidate.name}/${name}`, await writeWrkScript(tmpDir, `${candidate.name}-${name}`, { headers, body: load.body }));
      }
    }

    if (settings.warmupS > 0) {
      for (const candidate of candidates) {
        for (const load of ['json20k', 'sse20k', 'codex', 'json1m']) {
          const target = candidate.target(loads[load].kind);
          await runWrk({
            url: target.url,
            scriptPath: scripts.get(`${candidate.name}/${load}`),
            connections: 16,
            durationS: settings.warmupS,
            cpus: plan.load,
          });
        }
      }
      await sleep(settings.settleMs);
    }

    for (let round = 1; round <= settings.rounds; round += 1) {
      log(`round ${round} of ${settings.rounds}, load average ${loadAverage().one}`);
      for (const scenario of SCENARIOS) {
        for (const candidate of candidates) {
          const result = await measure({ candidate, scenario, scripts, loads, plan });
          runs.push({
            round,
            candidate: candidate.name,
            load: scenario.load,
            concurrency: scenario.concurrency,
            ...result,
            load_average_1m: loadAverage().one,
          });
        }
      }
      for (const candidate of candidates) {
        const stream = await probeStream({
          ...streamRequest(candidate, loads),
          requests: settings.probeRequests,
          expectedDeltas: SSE_DELTAS,
        });
        probes.push({ round, candidate: candidate.name, ...stream, load_average_1m: loadAverage().one });
      }
    }

    // Memory with live streams, in a fresh process of each candidate: the earlier 1 MB loads leave a
    // grown heap behind, which would be counted against the streams otherwise.
    const memory = [];
    for (const candidate of candidates) {
      await candidate.stop();
      await candidate.start(context);
      const live = { ...streamRequest(candidate, loads), streams: settings.liveStreams, pids: () => candidate.pids() };
      await liveStreamsRss({ ...live, durationMs: settings.liveStreamsMs / 2 });
      const measured = await liveStreamsRss({ ...live, durationMs: settings.liveStreamsMs });
      memory.push({ candidate: candidate.name, ...measured, load_average_1m: loadAverage().one });
    }

    const portkey = candidates.find((candidate) => candidate.name === 'portkey');
    return {
      runs,
      probes,
      memory,
      loads: Object.fromEntries(
        Object.entries(loads).map(([name, load]) => [name, { label: load.label, request_bytes: load.body.length }]),
      ),
      portkey_blocked_connections: portkey?.blockedConnections() ?? [],
    };
  } finally {
    for (const candidate of candidates) await candidate.stop().catch((error) => log(`stopping ${candidate.name} failed: ${error.message}`));
    await stopChild(upstream.child);
  }
}

/** The first line a tool prints about its version (nginx and wrk print it on stderr), or null when it is not installed. */
function versionOf(command, args) {
  const result = spawnSync(command, args, { encoding: 'utf8' });
  if (result.error) return null;
  return `${result.stdout}${result.stderr}`.split('\n')[0].trim() || null;
}

/** Build the probes' streamed request (40 deltas 5 ms apart) through `candidate`. */
function streamRequest(candidate, loads) {
  const target = candidate.target('anthropic');
  return { url: target.url, headers: { ...loads.sseGap.headers, ...target.headers }, body: loads.sseGap.body };
}

/** Medians over rounds, and the latency each candidate adds over direct. */
function summarize(proxy) {
  const byKey = new Map();
  for (const run of proxy.runs) {
    const key = `${run.load}/${run.concurrency}/${run.candidate}`;
    byKey.set(key, [...(byKey.get(key) ?? []), run]);
  }
  const throughput = [...byKey.values()].map((runs) => {
    const first = runs[0];
    const pick = (field) => median(runs.map((run) => run[field]).filter((value) => value !== null));
    return {
      load: first.load,
      concurrency: first.concurrency,
      candidate: first.candidate,
      rps: pick('rps'),
      cpu_us_per_request: pick('cpu_us_per_request'),
      p50_ms: pick('p50_ms'),
      p99_ms: pick('p99_ms'),
      errors: runs.reduce((total, run) => total + run.errors, 0),
    };
  });
  for (const row of throughput) {
    const direct = throughput.find(
      (other) => other.candidate === 'direct' && other.load === row.load && other.concurrency === row.concurrency,
    );
    row.added_p50_ms = direct ? row.p50_ms - direct.p50_ms : null;
    row.added_p99_ms = direct ? row.p99_ms - direct.p99_ms : null;
  }

  const streams = [...new Set(proxy.probes.map((probe) => probe.candidate))].map((candidate) => {
    const probes = proxy.probes.filter((probe) => probe.candidate === candidate);
    const pick = (field) => median(probes.map((probe) => probe[field]).filter((value) => value !== null));
    return {
      candidate,
      ttfb_ms: pick('ttfb_ms'),
      first_delta_ms: pick('first_delta_ms'),
      delta_reads: pick('delta_reads'),
      max_deltas_per_read: Math.max(...probes.map((probe) => probe.max_deltas_per_read)),
      calls: probes.reduce((total, probe) => total + probe.calls, 0),
      calls_with_merges: probes.reduce((total, probe) => total + probe.calls_with_merges, 0),
      peak_rss_mb: (proxy.memory.find((entry) => entry.candidate === candidate)?.peak_rss_bytes ?? 0) / 1024 / 1024,
      live_stream_calls: proxy.memory.find((entry) => entry.candidate === candidate)?.completed ?? 0,
      failures:
        probes.reduce((total, probe) => total + probe.failures, 0) +
        (proxy.memory.find((entry) => entry.candidate === candidate)?.failures ?? 0),
    };
  });
  const direct = streams.find((row) => row.candidate === 'direct');
  for (const row of streams) {
    row.added_ttfb_ms = direct ? row.ttfb_ms - direct.ttfb_ms : null;
    row.added_first_delta_ms = direct ? row.first_delta_ms - direct.first_delta_ms : null;
  }
  return { throughput, streams };
}

async function main() {
  const plan = corePlan();
  pinSelf(plan.load);
  const startedAt = new Date();
  const machine = {
    cpu_model: cpus()[0]?.model ?? 'unknown',
    cpu_mhz: cpus()[0]?.speed ?? null,
    cores: plan.cores,
    memory_gib: Math.round(totalmem() / 2 ** 30),
    node: process.version,
    nginx: versionOf('nginx', ['-v']),
    wrk: versionOf('wrk', ['-v']),
    pinning: plan.pinned ? { proxy_core: plan.proxy, load_generator_cores: plan.load } : 'none (one core)',
  };
  const result = { started_at: startedAt.toISOString(), quick, settings, machine, load_average_at_start: loadAverage() };
  const tmpDir = await mkdtemp(path.join(tmpdir(), 'tokenwise-bench-'));

  try {
    if (parts.has('proxy')) {
      const missing = ensureDebianTools(log);
      if (missing.includes('wrk')) throw new Error('wrk is required for the proxy benchmark: apt-get install -y wrk');
      const portkeyReady = ensurePortkey(log);
      const { chosen, skipped } = chooseCandidates(missing, portkeyReady);
      result.skipped = skipped;
      const proxy = await runProxyBench({ tmpDir, plan, candidates: chosen });
      result.proxy = { ...proxy, ...summarize(proxy) };
    }
    if (parts.has('store')) {
      log('store: SQLite');
      result.store = [await benchSqlite({ dir: tmpDir, ...settings.store, log })];
      const url = flags['database-url'] ?? process.env.TOKENWISE_TEST_DATABASE_URL ?? 'postgres://postgres@127.0.0.1:5432/test';
      try {
        log('store: PostgreSQL');
        result.store.push(await benchPostgres({ url, ...settings.store, log }));
      } catch (error) {
        log(`store: PostgreSQL at ${url.replace(/:[^:@/]*@/, ':***@')} failed (${error.message}); left out`);
        result.store_skipped = { backend: 'postgres', reason: error.message };
      }
    }
    result.load_average_at_end = loadAverage();
    result.finished_at = new Date().toISOString();
    result.targets = evaluateTargets(result);

    const out = flags.out ?? path.join(benchDir, 'results', `${startedAt.toISOString().slice(0, 10)}.json`);
    await mkdir(path.dirname(out), { recursive: true });
    await writeFile(out, `${JSON.stringify(result, null, 2)}\n`);
    process.stdout.write(formatReport(result));
    process.stdout.write(`\nResult written to ${path.relative(process.cwd(), out) || out}\n`);
  } finally {
    await rm(tmpDir, { recursive: true, force: true });
  }
}

const candidates = allCandidates();
// Checked before anything is installed or started, so that a typo fails at once.
let selectedNames = null;
if (flags.candidates) {
  try {
    selectedNames = selectCandidates(flags.candidates);
  } catch (error) {
    process.stderr.write(`bench: ${error.message}\n`);
    process.exit(2);
  }
}

main().catch((error) => {
  process.stderr.write(`bench failed: ${error.stack ?? error}\n`);
  process.exit(1);
});
