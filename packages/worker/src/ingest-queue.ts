import type { CallBodies, CallRecord } from '@tokenwise/core';
import { describeError } from './token-verifier.js';
import { logEvent } from './worker-log.js';

export interface IngestQueueOptions {
  serverUrl: string;
  ingestSecret: string;
  /** How long a drain waits for records of concurrent requests before it sends, in ms. */
  gatherMs?: number;
  /** Pause before each retry of a failed batch, in ms; one more attempt than entries. */
  retryDelaysMs?: readonly number[];
  /** Time the server has to answer one ingest request, in ms. */
  attemptTimeoutMs?: number;
}

export interface IngestQueue {
  /** Queue one finished call and keep the request alive (through `ctx.waitUntil`) until it is sent. */
  enqueue(record: CallRecord, bodies: CallBodies | null, ctx: ExecutionContext): void;
}

interface QueuedCall {
  id: string;
  /** `{"record": …, "bodies": …}` serialized once, so the byte budget is exact. */
  json: string;
}

/** Calls per ingest request, well under the server's limit of 500. */
const MAX_BATCH_CALLS = 100;
/** JSON bytes per ingest request; the server reads at most 32 MiB. */
const MAX_BATCH_BYTES = 8 * 1024 * 1024;
/** JSON bytes queued in one isolate; past it a call is queued without its bodies, and past twice it is dropped. */
const MAX_QUEUED_BYTES = 16 * 1024 * 1024;
/**
 * Four attempts of at most 5 s with pauses of 0.25, 1 and 3 s take under 25 s, inside the 30 s that
 * Cloudflare lets `waitUntil` work run after the response.
 */
const DEFAULT_RETRY_DELAYS_MS = [250, 1000, 3000];
const DEFAULT_ATTEMPT_TIMEOUT_MS = 5000;
const DEFAULT_GATHER_MS = 50;
/** Statuses after which sending the same batch again cannot succeed. */
const FINAL_STATUSES = new Set([400, 401, 403, 404, 413]);

/**
 * Sends call records to the server's `/api/v1/ingest` in batches. Records of concurrent requests in one
 * isolate share a queue of plain strings. Every enqueue starts a drain in its own request's `waitUntil`,
 * and a drain takes whatever is queued, so each record is sent by exactly one request and no request
 * awaits another's I/O, which the Workers runtime forbids. A batch whose send failed or timed out is sent
 * again as it was; the server skips calls it already stored, so a retry never doubles a call.
 */
export function createIngestQueue(options: IngestQueueOptions): IngestQueue {
  const gatherMs = options.gatherMs ?? DEFAULT_GATHER_MS;
  const retryDelaysMs = options.retryDelaysMs ?? DEFAULT_RETRY_DELAYS_MS;
  const attemptTimeoutMs = options.attemptTimeoutMs ?? DEFAULT_ATTEMPT_TIMEOUT_MS;
  const url = `${options.serverUrl}/api/v1/ingest`;
  const queue: QueuedCall[] = [];
  let queuedBytes = 0;

  function add(record: CallRecord, bodies: CallBodies | null): void {
    let json = JSON.stringify({ record, bodies });
    if (queuedBytes + json.length > MAX_QUEUED_BYTES && bodies !== null) {
      logEvent('warn', 'ingest queue full; call queued without its bodies', { call_id: record.id, queued_bytes: queuedBytes });
      json = JSON.stringify({ record, bodies: null });
    }
    if (queuedBytes + json.length > 2 * MAX_QUEUED_BYTES) {
      logEvent('error', 'ingest queue full; call record dropped', { call_id: record.id, queued_bytes: queuedBytes });
      return;
    }
    queue.push({ id: record.id, json });
    queuedBytes += json.length;
  }

  function takeBatch(): QueuedCall[] {
    const batch: QueuedCall[] = [];
    let bytes = 0;
    while (queue.length > 0 && batch.length < MAX_BATCH_CALLS) {
      const next = queue[0]!;
      if (batch.length > 0 && bytes + next.json.length > MAX_BATCH_BYTES) break;
      queue.shift();
      queuedBytes -= next.json.length;
      bytes += next.json.length;
      batch.push(next);
    }
    return batch;
  }

  async function send(batch: QueuedCall[]): Promise<void> {
    const body = `{"calls":[${batch.map((call) => call.json).join(',')}]}`;
    for (let attempt = 0; attempt <= retryDelaysMs.length; attempt += 1) {
      if (attempt > 0) await sleep(retryDelaysMs[attempt - 1]!);
      let problem: string;
      try {
        const response = await fetch(url, {
          method: 'POST',
          headers: { authorization: `Bearer ${options.ingestSecret}`, 'content-type': 'application/json' },
          body,
          signal: AbortSignal.timeout(attemptTimeoutMs),
        });
        const text = await response.text();
        if (response.ok) return;
        problem = `HTTP ${response.status}: ${text.slice(0, 300)}`;
        if (FINAL_STATUSES.has(response.status)) {
          logEvent('error', 'server rejected call records; records lost', { records: batch.length, call_ids: ids(batch), problem });
          return;
        }
      } catch (error) {
        problem = describeError(error);
      }
      logEvent('warn', 'sending call records failed', { records: batch.length, attempt: attempt + 1, problem });
    }
    logEvent('error', 'sending call records failed after every retry; records lost', { records: batch.length, call_ids: ids(batch) });
  }

  async function drain(): Promise<void> {
    await sleep(gatherMs);
    for (let batch = takeBatch(); batch.length > 0; batch = takeBatch()) await send(batch);
  }

  return {
    enqueue(record, bodies, ctx) {
      add(record, bodies);
      ctx.waitUntil(drain());
    },
  };
}

function ids(batch: QueuedCall[]): string[] {
  return batch.slice(0, 10).map((call) => call.id);
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}
