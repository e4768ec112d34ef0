// The printed tables and the check of each figure against its target.

/** The concurrency at which CPU per request is compared with its target. */
const CPU_TARGET_CONCURRENCY = 16;

function row(summary, load, concurrency, candidate) {
  return summary?.throughput.find((entry) => entry.load === load && entry.concurrency === concurrency && entry.candidate === candidate);
}

/** Compare each target with its measured value; `met` is null when the value was not measured. */
export function evaluateTargets(result) {
  const proxy = result.proxy;
  const targets = [];
  const add = (name, value, limit, direction, unit) => {
    let met = null;
    if (value !== null && value !== undefined) met = direction === 'max' ? value <= limit : value >= limit;
    targets.push({ name, value: value ?? null, limit: `${direction === 'max' ? '≤' : '≥'} ${limit} ${unit}`, met });
  };
  const cpu = (load, candidate) => row(proxy, load, CPU_TARGET_CONCURRENCY, candidate)?.cpu_us_per_request;
  add('CPU per request, privacy mode, JSON 20 KB (c=16)', cpu('json20k', 'tokenwise-privacy'), 400, 'max', 'µs');
  add('CPU per request, privacy mode, SSE 40 deltas (c=16)', cpu('sse20k', 'tokenwise-privacy'), 550, 'max', 'µs');
  add('CPU per request, bodies captured, JSON 20 KB (c=16)', cpu('json20k', 'tokenwise'), 600, 'max', 'µs');
  add('CPU per request, bodies captured, SSE 40 deltas (c=16)', cpu('sse20k', 'tokenwise'), 750, 'max', 'µs');
  for (const candidate of ['tokenwise', 'tokenwise-privacy']) {
    add(`p50 latency added at c=1, JSON 20 KB, ${candidate}`, row(proxy, 'json20k', 1, candidate)?.added_p50_ms, 0.5, 'max', 'ms');
    add(`p99 latency added at c=1, JSON 20 KB, ${candidate}`, row(proxy, 'json20k', 1, candidate)?.added_p99_ms, 3, 'max', 'ms');
    const stream = proxy?.streams.find((entry) => entry.candidate === candidate);
    add(`SSE first delta added over direct, ${candidate}`, stream?.added_first_delta_ms, 1, 'max', 'ms');
    add(`SSE reads with deltas per call (median; 40 = each delta separate), ${candidate}`, stream?.delta_reads, 40, 'min', 'reads');
    add(`peak RSS with ${result.settings.liveStreams} live streams, ${candidate}`, stream?.peak_rss_mb, 200, 'max', 'MB');
  }
  const store = (backend) => result.store?.find((entry) => entry.backend === backend);
  add('records/s into SQLite (metrics only, batches of 200)', store('sqlite')?.insert.records_per_s_metrics_only, 20_000, 'min', '/s');
  add(
    'records/s into PostgreSQL (metrics only, batches of 200)',
    store('postgres')?.insert.records_per_s_metrics_only,
    10_000,
    'min',
    '/s',
  );
  for (const backend of ['sqlite', 'postgres']) {
    const methods = store(backend)?.store_methods ?? {};
    const sizes = Object.keys(methods).map(Number);
    const largest = sizes.length > 0 ? Math.max(...sizes) : null;
    const timings = largest === null ? {} : methods[largest];
    const slowest = (prefix) => {
      const values = Object.entries(timings)
        .filter(([name]) => name.startsWith(prefix))
        .map(([, ms]) => ms);
      return values.length > 0 ? Math.max(...values) : null;
    };
    add(`slowest Store.overview, ${backend}, ${largest ?? '?'} calls`, slowest('overview'), 150, 'max', 'ms');
    add(`slowest Store.searchCalls, ${backend}, ${largest ?? '?'} calls`, slowest('searchCalls'), 150, 'max', 'ms');
  }
  return targets;
}

function verdict(met) {
  if (met === null) return 'not measured';
  return met ? 'yes' : 'NO';
}

function table(headers, rows) {
  const cells = rows.map((cellsOfRow) => cellsOfRow.map((cell) => (cell === null || cell === undefined ? '–' : String(cell))));
  const widths = headers.map((header, index) => Math.max(header.length, ...cells.map((cellsOfRow) => cellsOfRow[index].length)));
  const line = (values) => `| ${values.map((value, index) => value.padEnd(widths[index])).join(' | ')} |`;
  return [line(headers), `| ${widths.map((width) => '-'.repeat(width)).join(' | ')} |`, ...cells.map(line)].join('\n');
}

const fixed = (value, digits) => (value === null || value === undefined ? null : value.toFixed(digits));
const signed = (value, digits) => (value === null || value === undefined ? null : `${value >= 0 ? '+' : ''}${value.toFixed(digits)}`);

/** Format the result as Markdown tables, the form BENCHMARKS.md keeps. */
export function formatReport(result) {
  const parts = [];
  const load = `load average ${result.load_average_at_start.one} at start, ${result.load_average_at_end?.one ?? '?'} at end`;
  parts.push(
    `Tokenwise benchmark, ${result.started_at}: ${result.machine.cores} cores (${result.machine.cpu_model}), Node ${result.machine.node}, ${load}; ${result.settings.rounds} round(s) of ${result.settings.durationS} s per run, medians.`,
  );
  if (result.skipped?.length) parts.push(`Left out: ${result.skipped.map((skip) => `${skip.candidate} (${skip.reason})`).join('; ')}.`);

  const proxy = result.proxy;
  if (proxy) {
    parts.push('\n### Throughput, CPU and latency (wrk, closed loop)\n');
    parts.push(
      table(
        ['load', 'c', 'candidate', 'req/s', 'CPU µs/req', 'p50 ms', 'p99 ms', '+p50 ms', '+p99 ms', 'errors'],
        proxy.throughput.map((entry) => [
          proxy.loads[entry.load].label,
          entry.concurrency,
          entry.candidate,
          fixed(entry.rps, 0),
          fixed(entry.cpu_us_per_request, 0),
          fixed(entry.p50_ms, 2),
          fixed(entry.p99_ms, 2),
          entry.candidate === 'direct' ? null : signed(entry.added_p50_ms, 2),
          entry.candidate === 'direct' ? null : signed(entry.added_p99_ms, 2),
          entry.errors,
        ]),
      ),
    );
    parts.push(
      `\n### Streams: SSE of 40 deltas 5 ms apart, and peak RSS of a fresh process with ${result.settings.liveStreams} live streams\n`,
    );
    parts.push(
      table(
        [
          'candidate',
          'TTFB ms',
          '+TTFB ms',
          'first delta ms',
          '+first delta ms',
          'reads with deltas',
          'calls with merged deltas',
          'max deltas/read',
          'peak RSS MB',
          'failures',
        ],
        proxy.streams.map((entry) => [
          entry.candidate,
          fixed(entry.ttfb_ms, 2),
          entry.candidate === 'direct' ? null : signed(entry.added_ttfb_ms, 2),
          fixed(entry.first_delta_ms, 2),
          entry.candidate === 'direct' ? null : signed(entry.added_first_delta_ms, 2),
          entry.delta_reads,
          `${entry.calls_with_merges} of ${entry.calls}`,
          entry.max_deltas_per_read,
          entry.candidate === 'direct' ? null : fixed(entry.peak_rss_mb, 0),
          entry.failures,
        ]),
      ),
    );
    if (proxy.portkey_blocked_connections.length > 0) {
      parts.push(`\nThe loopback guard blocked the Portkey gateway's connections: ${proxy.portkey_blocked_connections.join('; ')}`);
    }
  }

  if (result.store) {
    parts.push('\n### Store: records/s through Store.insertCalls, batches of 200\n');
    parts.push(
      table(
        ['backend', 'metrics only', 'with bodies (20 KB + 2 KB)'],
        result.store.map((entry) => [entry.backend, entry.insert.records_per_s_metrics_only, entry.insert.records_per_s_with_bodies]),
      ),
    );
    parts.push("\n### The store's dashboard reads, ms (median of warm runs)\n");
    const methodNames = Object.keys(Object.values(result.store[0].store_methods)[0] ?? {});
    const methodRows = result.store.flatMap((entry) =>
      Object.entries(entry.store_methods).map(([size, timings]) => [
        entry.backend,
        Number(size).toLocaleString('en-US'),
        ...methodNames.map((name) => timings[name]),
      ]),
    );
    parts.push(table(['backend', 'calls', ...methodNames], methodRows));
    parts.push('\n### The same questions in plain SQL, ms (median of warm runs; – where the variant has no such query)\n');
    const queryNames = Object.keys(Object.values(result.store[0].queries)[0].shipped);
    const rows = [];
    for (const entry of result.store) {
      for (const [size, timings] of Object.entries(entry.queries)) {
        for (const [variant, byQuery] of Object.entries(timings)) {
          rows.push([
            entry.backend,
            Number(size).toLocaleString('en-US'),
            variant.replaceAll('_', ' '),
            ...queryNames.map((name) => byQuery[name]),
          ]);
        }
      }
    }
    parts.push(table(['backend', 'calls', 'indexes', ...queryNames], rows));
  }

  parts.push('\n### Targets\n');
  parts.push(
    table(
      ['target', 'measured', 'limit', 'met'],
      result.targets.map((target) => [
        target.name,
        typeof target.value === 'number' ? fixed(target.value, target.value >= 100 ? 0 : 2) : null,
        target.limit,
        verdict(target.met),
      ]),
    ),
  );
  return `${parts.join('\n')}\n`;
}
