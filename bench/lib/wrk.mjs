// Load with wrk (one thread, closed loop: each connection sends its next request when the previous
// response ended). A generated Lua script sets the method, headers and body and prints the summary
// as one JSON line.
import { execFile } from 'node:child_process';
import { writeFile } from 'node:fs/promises';
import path from 'node:path';
import { promisify } from 'node:util';
import { pinned } from './proc.mjs';

const run = promisify(execFile);
const RESULT_PREFIX = 'BENCH_RESULT ';

function luaString(value) {
  return `"${value.replace(/\\/g, '\\\\').replace(/"/g, '\\"')}"`;
}

/** Write the request body and the Lua script for one request shape; returns the script's path. */
export async function writeWrkScript(dir, name, { headers, body }) {
  const bodyPath = path.join(dir, `${name}.body`);
  const scriptPath = path.join(dir, `${name}.lua`);
  await writeFile(bodyPath, body);
  const headerLines = Object.entries(headers)
    .map(([header, value]) => `wrk.headers[${luaString(header)}] = ${luaString(value)}`)
    .join('\n');
  await writeFile(
    scriptPath,
    `wrk.method = "POST"
local file = assert(io.open(${luaString(bodyPath)}, "rb"))
wrk.body = file:read("*a")
file:close()
${headerLines}

function done(summary, latency, requests)
  io.write(string.format('${RESULT_PREFIX}{"requests":%d,"duration_us":%d,"bytes":%d,"errors_connect":%d,"errors_read":%d,"errors_write":%d,"errors_status":%d,"errors_timeout":%d,"latency_p50_us":%d,"latency_p99_us":%d,"latency_mean_us":%.1f,"latency_max_us":%d}\\n',
    summary.requests, summary.duration, summary.bytes, summary.errors.connect, summary.errors.read, summary.errors.write,
    summary.errors.status, summary.errors.timeout, latency:percentile(50), latency:percentile(99), latency.mean, latency.max))
end
`,
  );
  return scriptPath;
}

/**
 * Run wrk against `url` with `connections` connections for `durationS` seconds. Returns the summary,
 * with `errors` the sum of every error kind (a non-2xx/3xx status counts as one).
 */
export async function runWrk({ url, scriptPath, connections, durationS, cpus }) {
  const [file, args] = pinned(cpus, 'wrk', ['-t1', `-c${connections}`, `-d${durationS}s`, '--timeout', '20s', '-s', scriptPath, url]);
  const { stdout } = await run(file, args, { maxBuffer: 10 * 1024 * 1024 });
  const line = stdout.split('\n').find((candidate) => candidate.startsWith(RESULT_PREFIX));
  if (!line) throw new Error(`wrk printed no result for ${url}: ${stdout.slice(-1000)}`);
  const result = JSON.parse(line.slice(RESULT_PREFIX.length));
  result.errors = result.errors_connect + result.errors_read + result.errors_write + result.errors_status + result.errors_timeout;
  return result;
}
