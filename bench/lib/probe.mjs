// Stream probes: time to first byte, time to the first delta, whether deltas sent 5 ms apart arrive in
// separate reads, and RSS with many live streams. They use raw sockets so every socket read is seen as it
// arrived, because an HTTP client library splits one read into its chunked-encoding frames and hides a merge.
import { connect } from 'node:net';
import { setTimeout as sleep } from 'node:timers/promises';
import { rssBytes } from './proc.mjs';

const DELTA_EVENT = 'event: content_block_delta';

/** Send one request with `connection: close` and collect each read with its arrival time in ms. */
function exchange({ url, headers, body }) {
  const target = new URL(url);
  const head = [
    `POST ${target.pathname}${target.search} HTTP/1.1`,
    `host: ${target.host}`,
    'connection: close',
    `content-length: ${body.length}`,
    ...Object.entries(headers).map(([name, value]) => `${name}: ${value}`),
    '',
    '',
  ].join('\r\n');

  return new Promise((resolve, reject) => {
    const reads = [];
    const startMs = performance.now();
    const socket = connect({ host: target.hostname, port: Number(target.port), noDelay: true });
    socket.setTimeout(30_000, () => socket.destroy(new Error(`no data for 30 s from ${url}`)));
    socket.on('connect', () => {
      socket.write(head);
      socket.write(body);
    });
    socket.on('data', (chunk) => reads.push({ atMs: performance.now() - startMs, text: chunk.toString('latin1') }));
    socket.on('error', reject);
    socket.on('close', () => resolve(reads));
  });
}

/** Count occurrences of `needle` in `text`. */
function count(text, needle) {
  let found = 0;
  for (let index = text.indexOf(needle); index !== -1; index = text.indexOf(needle, index + needle.length)) found += 1;
  return found;
}

/**
 * Measure `requests` streamed calls one after another. Returns per-call medians: ms to the first byte,
 * ms to the first read with a delta, and reads with deltas. Also returns the calls in which two or more
 * deltas arrived in one read, and the largest number of deltas seen in one read.
 */
export async function probeStream({ url, headers, body, requests, expectedDeltas }) {
  const ttfb = [];
  const firstDelta = [];
  const deltaReads = [];
  let maxDeltasPerRead = 0;
  let callsWithMerges = 0;
  let failures = 0;
  for (let index = 0; index < requests; index += 1) {
    const reads = await exchange({ url, headers, body });
    const all = reads.map((read) => read.text).join('');
    if (!all.startsWith('HTTP/1.1 200') || count(all, DELTA_EVENT) !== expectedDeltas) {
      failures += 1;
      continue;
    }
    ttfb.push(reads[0].atMs);
    const withDeltas = reads.filter((read) => read.text.includes(DELTA_EVENT));
    firstDelta.push(withDeltas[0].atMs);
    deltaReads.push(withDeltas.length);
    const maxInOneRead = Math.max(...withDeltas.map((read) => count(read.text, DELTA_EVENT)));
    maxDeltasPerRead = Math.max(maxDeltasPerRead, maxInOneRead);
    if (maxInOneRead > 1) callsWithMerges += 1;
  }
  return {
    ttfb_ms: median(ttfb),
    first_delta_ms: median(firstDelta),
    delta_reads: median(deltaReads),
    max_deltas_per_read: maxDeltasPerRead,
    calls: requests,
    calls_with_merges: callsWithMerges,
    failures,
  };
}

/**
 * Keep `streams` streamed calls open at once for `durationMs` (each connection starts its next call when
 * one ends) and sample the RSS of `pids` every 20 ms. Returns the peak RSS in bytes and the calls made.
 */
export async function liveStreamsRss({ url, headers, body, streams, durationMs, pids }) {
  const endAt = performance.now() + durationMs;
  let completed = 0;
  let failures = 0;
  const loop = async () => {
    while (performance.now() < endAt) {
      try {
        const reads = await exchange({ url, headers, body });
        if (reads.length > 0 && reads[0].text.startsWith('HTTP/1.1 200')) completed += 1;
        else failures += 1;
      } catch {
        failures += 1;
      }
    }
  };
  const running = Promise.all(Array.from({ length: streams }, loop));
  let peak = 0;
  let done = false;
  running.finally(() => {
    done = true;
  });
  while (!done) {
    peak = Math.max(peak, rssBytes(pids()));
    await sleep(20);
  }
  await running;
  return { peak_rss_bytes: peak, completed, failures };
}

export function median(values) {
  if (values.length === 0) return null;
  const sorted = [...values].sort((a, b) => a - b);
  const middle = Math.floor(sorted.length / 2);
  return sorted.length % 2 === 1 ? sorted[middle] : (sorted[middle - 1] + sorted[middle]) / 2;
}
