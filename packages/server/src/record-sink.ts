import { type CallBodies, type CallRecord, type RecordSink, TokenwiseError } from '@tokenwise/core';
import type { CallToStore, ListedCall, Store } from '@tokenwise/storage';
import type { Logger } from 'pino';

export interface BatchingSinkOptions {
  store: Store;
  logger: Logger;
  /** Maximum time a record waits in the queue before a flush starts, in ms. */
  flushIntervalMs?: number;
  /** Records per store transaction; a full batch is flushed without waiting for the interval. */
  maxBatchSize?: number;
  /** Maximum number of queued records; further records are dropped and counted until the queue drains. */
  maxQueueSize?: number;
  /** Store attempts per record before it is given up and counted as lost. */
  maxAttempts?: number;
  /**
   * Maximum wait between two tries while the store reports `store_unavailable` (a lock held elsewhere),
   * in ms. The wait starts at `flushIntervalMs` and doubles; those tries do not use up `maxAttempts`.
   */
  maxRetryDelayMs?: number;
  /** Called with the calls each flush actually added, in storage order (the live stream feeds on this). */
  onStored?: (calls: ListedCall[]) => void;
}

export interface SinkStats {
  queued: number;
  stored: number;
  /** Records refused because the queue was full. */
  dropped: number;
  /** Store calls that threw (one failing batch and its per-record retries count separately). */
  storeFailures: number;
  /** True while the store reports `store_unavailable` and the queue waits for it. */
  storeUnavailable: boolean;
  /** Records given up after `maxAttempts` failed store attempts. */
  lost: number;
}

export interface BatchingRecordSink extends RecordSink {
  /** Store everything queued now; resolves when the queue is empty or every record left has failed this round. */
  flush(): Promise<void>;
  /** Stop the timer and flush what is queued; later writes are dropped. */
  close(): Promise<void>;
  stats(): SinkStats;
}

interface QueuedCall extends CallToStore {
  attempts: number;
}

/**
 * The proxy's record sink on Node: `write` only appends to an in-memory queue, and a timer moves the
 * queue into the store in batches, one transaction each, off the request path. A store failure never
 * reaches a call: the batch is retried record by record so one bad record cannot sink its neighbours,
 * each record gets `maxAttempts` tries over later flushes, and everything dropped or lost is counted and
 * logged. A store that is only unavailable for now (`store_unavailable`, e.g. SQLite locked by another
 * process) is no fault of the records, so the batch goes back to the queue whole and is tried again
 * with a growing delay. The queue is bounded so a dead store cannot grow memory without limit.
 */
export function createBatchingRecordSink(options: BatchingSinkOptions): BatchingRecordSink {
  const { store, logger } = options;
  const flushIntervalMs = options.flushIntervalMs ?? 1000;
  const maxBatchSize = options.maxBatchSize ?? 200;
  const maxQueueSize = options.maxQueueSize ?? 10_000;
  const maxAttempts = options.maxAttempts ?? 3;
  const maxRetryDelayMs = options.maxRetryDelayMs ?? 30_000;

  const queue: QueuedCall[] = [];
  const stats = { stored: 0, dropped: 0, storeFailures: 0, lost: 0 };
  let timer: NodeJS.Timeout | null = null;
  let timerDueMs = 0;
  let flushChain: Promise<void> = Promise.resolve();
  let closed = false;
  /** Delay before the next try while the store is unavailable, in ms; null while it takes writes. */
  let unavailableDelayMs: number | null = null;

  /** Start a flush after `delayMs`, unless one is already due no later than that. */
  function schedule(delayMs: number): void {
    if (closed) return;
    const dueMs = Date.now() + delayMs;
    if (timer !== null) {
      if (timerDueMs <= dueMs) return;
      clearTimeout(timer);
    }
    timerDueMs = dueMs;
    timer = setTimeout(() => {
      timer = null;
      void flush();
    }, delayMs);
    // A pending flush must not keep the process alive; close() flushes explicitly.
    timer.unref();
  }

  /** Store one batch; returns the records to try again later, or 'unavailable' when the whole batch must wait. */
  async function storeBatch(batch: QueuedCall[]): Promise<QueuedCall[] | 'unavailable'> {
    try {
      publish(batch, await store.insertCalls(batch));
      noteAvailable();
      return [];
    } catch (error) {
      stats.storeFailures += 1;
      if (isUnavailable(error)) {
        noteUnavailable(error, batch.length);
        return 'unavailable';
      }
      logger.error({ err: error, records: batch.length }, 'storing a batch of call records failed; retrying one by one');
    }

    const retry: QueuedCall[] = [];
    for (const call of batch) {
      try {
        publish([call], await store.insertCalls([call]));
      } catch (error) {
        stats.storeFailures += 1;
        call.attempts += 1;
        if (call.attempts < maxAttempts) {
          retry.push(call);
        } else {
          stats.lost += 1;
          logger.error({ err: error, call_id: call.record.id, attempts: call.attempts }, 'storing a call record failed; record lost');
        }
      }
    }
    return retry;
  }

  function publish(batch: QueuedCall[], stored: { id: string; cursor: string }[]): void {
    stats.stored += stored.length;
    if (stored.length === 0 || !options.onStored) return;

    const byId = new Map(batch.map((call) => [call.record.id, call.record]));
    const calls = stored.map((ref) => ({ cursor: ref.cursor, record: byId.get(ref.id)! }));
    try {
      options.onStored(calls);
    } catch (error) {
      logger.error({ err: error }, 'notifying listeners of stored calls failed');
    }
  }

  function noteUnavailable(error: unknown, records: number): void {
    if (unavailableDelayMs === null) {
      unavailableDelayMs = flushIntervalMs;
      logger.warn({ err: error, records }, 'the store is unavailable; call records wait in the queue and are retried');
    } else {
      unavailableDelayMs = Math.min(unavailableDelayMs * 2, maxRetryDelayMs);
    }
  }

  function noteAvailable(): void {
    if (unavailableDelayMs === null) return;
    unavailableDelayMs = null;
    logger.info({ queued: queue.length }, 'the store is available again; storing the queued call records');
  }

  async function drain(): Promise<void> {
    const retryLater: QueuedCall[] = [];
    while (queue.length > 0) {
      const batch = queue.splice(0, maxBatchSize);
      const result = await storeBatch(batch);
      if (result === 'unavailable') {
        // Keep arrival order: the batch goes back in front of what came in meanwhile.
        queue.unshift(...retryLater, ...batch);
        schedule(unavailableDelayMs ?? flushIntervalMs);
        return;
      }
      retryLater.push(...result);
    }
    if (retryLater.length > 0) {
      queue.unshift(...retryLater);
      schedule(flushIntervalMs);
    }
  }

  function flush(): Promise<void> {
    if (timer !== null) {
      clearTimeout(timer);
      timer = null;
    }
    // Flushes run one after another, which keeps batches in arrival order: a caller arriving mid-flush
    // waits for it and then drains what came in meanwhile.
    flushChain = flushChain.then(drain).catch((error: unknown) => {
      logger.error({ err: error }, 'flushing call records failed');
    });
    return flushChain;
  }

  return {
    write(record: CallRecord, bodies: CallBodies | null): void {
      if (closed || queue.length >= maxQueueSize) {
        stats.dropped += 1;
        logger.warn(
          { call_id: record.id, queued: queue.length, dropped: stats.dropped },
          'call record dropped: the store queue is full or closed',
        );
        return;
      }
      queue.push({ record, bodies: bodies === null ? null : withoutCredentialHeaders(bodies), attempts: 0 });
      // While the store is unavailable the retry timer is already set; a full batch must not cut it short.
      if (unavailableDelayMs === null) schedule(queue.length >= maxBatchSize ? 0 : flushIntervalMs);
    },
    flush,
    async close() {
      closed = true;
      if (timer !== null) {
        clearTimeout(timer);
        timer = null;
      }
      await flush();
      // Records still queued failed their attempt in this last flush; with the store closing they are lost.
      if (queue.length > 0) {
        stats.lost += queue.length;
        logger.error({ records: queue.length }, 'call records not stored before shutdown; records lost');
        queue.length = 0;
      }
    },
    stats: () => ({ queued: queue.length, ...stats, storeUnavailable: unavailableDelayMs !== null }),
  };
}

function isUnavailable(error: unknown): boolean {
  return error instanceof TokenwiseError && error.code === 'store_unavailable';
}

/**
 * Headers that carry credentials or account ids. The capture already leaves them out of body headers;
 * removing them again here means a capture bug cannot put a key into the database.
 */
const CREDENTIAL_HEADERS = new Set([
  'authorization',
  'proxy-authorization',
  'x-api-key',
  'api-key',
  'x-goog-api-key',
  'cookie',
  'set-cookie',
  'chatgpt-account-id',
]);

function withoutCredentialHeaders(bodies: CallBodies): CallBodies {
  const clean = (headers: Record<string, string>) =>
    Object.fromEntries(Object.entries(headers).filter(([name]) => !CREDENTIAL_HEADERS.has(name.toLowerCase())));
  return { ...bodies, request_headers: clean(bodies.request_headers), response_headers: clean(bodies.response_headers) };
}
