import { type CallBodies, type CallRecord, capturedBodySize, TokenwiseError } from '@tokenwise/core';
import { BodyPacker, type CallToInsert, type ListedCall, type PackedCall, type Store } from '@tokenwise/storage';
import type { Logger } from 'pino';
import { comparePositions, type RecordSpool, type SpoolEntry, type SpooledCall, type SpoolPosition } from './record-spool.js';

export interface BatchingSinkOptions {
  store: Store;
  logger: Logger;
  /**
   * The on-disk spool every record passes through on its way to the store; without one, records wait in
   * memory only and a crash loses them. The sink closes it.
   */
  spool?: RecordSpool;
  /**
   * Maximum time a record waits in memory before a flush starts, in ms. With a spool this bounds what a
   * crash can lose: a record is fsynced to the spool within this interval plus one append.
   */
  flushIntervalMs?: number;
  /** Records per store transaction; a full batch is flushed without waiting for the interval. */
  maxBatchSize?: number;
  /**
   * Max body size per store transaction, in prompt-text characters plus compressed body bytes. A batch
   * has at least one record, however large.
   */
  maxBatchBodySize?: number;
  /**
   * Body size that written records may hold before they are sent to the packer ahead of the flush: UTF-16
   * code units of decoded text, bytes of a raw body (see `bodyChars`). The packed records still wait for the flush, so the spool and the store see one
   * batch per interval as before.
   */
  packPartChars?: number;
  /**
   * Maximum number of records held in memory: written and not yet flushed, or (without a spool) waiting
   * for the store. Further records are dropped and counted until the queue drains. With a spool, records
   * beyond it wait on disk only.
   */
  maxQueueSize?: number;
  /** With a spool: bytes of spooled records kept in memory for the store at most; the rest are read back from disk. */
  maxQueueBytes?: number;
  /** Store attempts per record before it is given up and counted as lost. */
  maxAttempts?: number;
  /**
   * Maximum wait between two tries while the store reports `store_unavailable` (a lock held elsewhere,
   * a full disk, PostgreSQL down), in ms. The wait starts at `flushIntervalMs` and doubles; those tries do
   * not use up `maxAttempts`.
   */
  maxRetryDelayMs?: number;
  /** Time between two warnings that records wait for an unavailable store, in ms. */
  waitingWarningIntervalMs?: number;
  /** Called with the calls each flush actually added, in storage order (the live stream feeds on this). */
  onStored?: (calls: ListedCall[]) => void;
  /** Masks and compresses the bodies off the event loop; by default the sink starts its own and closes it. */
  packer?: BodyPacker;
}

export interface WriteOptions {
  /**
   * Mask the secrets in the body text before it is spooled or stored (default true). False keeps the text
   * as captured, for a workspace that turned redaction off.
   */
  redactBodies?: boolean;
}

export interface SinkStats {
  /** Records not yet stored: in memory or in the spool. */
  queued: number;
  stored: number;
  /** Records refused because the queue or the spool was full, or the sink closed. */
  dropped: number;
  /** Store calls that threw (one failing batch and its per-record retries count separately). */
  storeFailures: number;
  /** True while the store reports `store_unavailable` and records wait for it. */
  storeUnavailable: boolean;
  /** Records given up after `maxAttempts` failed store attempts. */
  lost: number;
  /** Records in the spool that are not stored yet (part of `queued`). */
  spooled: number;
  /** Bytes the spool's files take. */
  spoolBytes: number;
  /** Appends to the spool that failed; their records waited in memory only. */
  spoolFailures: number;
}

export interface BatchingRecordSink {
  /**
   * Take one finished call. It is cheap and synchronous because the proxy calls it on the request path, so
   * the bodies are masked and compressed later, in a batch, on the packer's thread. A closed sink or a full
   * queue drops the record instead of throwing.
   */
  write(record: CallRecord, bodies: CallBodies | null, options?: WriteOptions): void;
  /** Spool and store everything written so far; resolves when the queue is empty or every record left has failed this round. */
  flush(): Promise<void>;
  /**
   * Wait for the store write in progress and the spool cleanup after it. Once it resolves, every call the
   * store contains is gone from the spool, unless its segment also contains a call that still waits for the
   * store. A deletion awaits this before it responds.
   */
  settled(): Promise<void>;
  /** Stop the timers, spool and try to store what is queued, close the spool; later writes are dropped. */
  close(): Promise<void>;
  stats(): SinkStats;
}

/** A part of the written records sent to the packer ahead of the flush. */
interface PackedPart {
  records: number;
  result: Promise<PackOutcome>;
}

type PackOutcome = { ok: true; calls: PackedCall[] } | { ok: false; error: unknown };

/** A call as written, before its bodies are packed. */
interface WrittenCall {
  record: CallRecord;
  /** Body text as captured: secrets still in it until packed. */
  bodies: CallBodies | null;
  redact: boolean;
}

type QueuedCall = CallToInsert & {
  attempts: number;
  /** Position of the record's line in the spool; null while the record is in memory only. */
  spooled: Pick<SpooledCall, 'start' | 'end' | 'bytes'> | null;
};

const DEFAULT_MAX_QUEUE_BYTES = 64 * 1024 * 1024;
/**
 * Body size (as `bodyChars` counts it) that goes to the packer as soon as written records hold this much. The
 * body then waits on the main thread for milliseconds instead of a flush interval, and each message to
 * the packer stays small. With 64 streamed calls (bench/run.mjs, memory measurement) the packer thread's
 * heap went from 22–27 MB to 14–15 MB.
 */
const DEFAULT_PACK_PART_CHARS = 256 * 1024;
/**
 * Store batches of this much prompt text and compressed body are one message of about a megabyte to the
 * SQLite writer thread. Batches of 200 calls with 20 KB prompts were 4 MB each, and the writer's heap
 * grew from 13 MB to 20 MB with them under 64 streamed calls (bench/run.mjs, memory measurement).
 */
const DEFAULT_MAX_BATCH_BODY_SIZE = 1024 * 1024;

/**
 * The proxy's record sink on Node. `write` only appends to memory; timers move records on, off the
 * request path. Each flush interval's records are packed in one batch on the packer's thread (secrets
 * masked, bodies compressed), so body text with secrets never leaves memory. With a spool, the packed
 * records are appended to it and fsynced in one batch, then stored in batches of one transaction each. The store reads from memory while the backlog
 * is small and from the spool once it outgrows `maxQueueBytes`, so a dead store costs disk (up to the
 * spool's bound), not memory. Records in the spool at start (a crash, or a store down at shutdown) are
 * stored first. The store skips ids it already has, so a replay stores each call once.
 *
 * A store failure never reaches a call: the batch is retried record by record so one bad record cannot
 * sink its neighbours, each record gets `maxAttempts` tries over later flushes, and everything dropped or
 * lost is counted and logged. A store that is only unavailable for now (`store_unavailable`) is no fault
 * of the records, so the batch goes back whole and is tried again with a growing delay, while a counter
 * and a warning every `waitingWarningIntervalMs` say how many records wait.
 */
export function createBatchingRecordSink(options: BatchingSinkOptions): BatchingRecordSink {
  const { store, logger, spool } = options;
  const ownPacker = options.packer === undefined;
  const packer =
    options.packer ??
    new BodyPacker({
      onThreadFailure: (error) =>
        logger.error({ err: error }, 'the body packer thread failed; call bodies are now masked and compressed on the main thread'),
    });
  const flushIntervalMs = options.flushIntervalMs ?? 1000;
  const maxBatchSize = options.maxBatchSize ?? 200;
  const packPartChars = options.packPartChars ?? DEFAULT_PACK_PART_CHARS;
  const maxBatchBodySize = options.maxBatchBodySize ?? DEFAULT_MAX_BATCH_BODY_SIZE;
  const maxQueueSize = options.maxQueueSize ?? 10_000;
  const maxQueueBytes = options.maxQueueBytes ?? DEFAULT_MAX_QUEUE_BYTES;
  const maxAttempts = options.maxAttempts ?? 3;
  const maxRetryDelayMs = options.maxRetryDelayMs ?? 30_000;
  const waitingWarningIntervalMs = options.waitingWarningIntervalMs ?? 60_000;

  /** Records written and not yet sent to the packer. */
  let pending: WrittenCall[] = [];
  /** Body size of `pending`, as `bodyChars` counts it. */
  let pendingChars = 0;
  /** Parts of the records written since the last flush that were sent to the packer, oldest first. */
  let packedParts: PackedPart[] = [];
  /** Records in `packedParts`. */
  let sentRecords = 0;
  /** Records sent to the packer and not yet spooled or queued. */
  let packing = 0;
  /** Records waiting for the store, oldest first. */
  const queue: QueuedCall[] = [];
  let queueBytes = 0;
  /** With a spool: where the records that wait on disk only begin; null while `queue` contains every waiting record. */
  let diskFrom: SpoolPosition | null = null;
  /** With a spool: the end of the last append whose records are accounted for. */
  let appendedEnd: SpoolPosition = spool?.end() ?? { segment: 0, offset: 0 };
  let spooledWaiting = spool?.recoveredCalls ?? 0;
  let memoryWaiting = 0;

  const stats = { stored: 0, dropped: 0, storeFailures: 0, lost: 0, spoolFailures: 0 };
  const storeTimer = createTimer(() => void drainNow());
  // While the store is unavailable its retry timer decides when to try again; a pack must not cut it short.
  const packTimer = createTimer(async () => {
    await packPending();
    if (unavailableDelayMs === null) await drainNow();
  });
  let waitingWarning: NodeJS.Timeout | null = null;
  let packChain: Promise<void> = Promise.resolve();
  let drainChain: Promise<void> = Promise.resolve();
  let closed = false;
  /** Delay before the next try while the store is unavailable, in ms; null while it takes writes. */
  let unavailableDelayMs: number | null = null;

  if (spool && spooledWaiting > 0) {
    diskFrom = spool.start;
    logger.info(
      { records: spooledWaiting, spool_dir: spool.dir },
      'storing the call records an earlier run left in the spool; those already stored are skipped',
    );
    storeTimer.schedule(0);
  }

  const waiting = () => pending.length + packing + spooledWaiting + memoryWaiting;

  /** Store one batch; returns the records to try again later, or 'unavailable' when the whole batch must wait. */
  async function storeBatch(batch: QueuedCall[]): Promise<QueuedCall[] | 'unavailable'> {
    try {
      publish(batch, await store.insertCalls(batch));
      noteAvailable();
      for (const call of batch) markDone(call);
      return [];
    } catch (error) {
      stats.storeFailures += 1;
      if (isUnavailable(error)) {
        noteUnavailable(error);
        return 'unavailable';
      }
      logger.error({ err: error, records: batch.length }, 'storing a batch of call records failed; retrying one by one');
    }

    const retry: QueuedCall[] = [];
    for (const call of batch) {
      try {
        publish([call], await store.insertCalls([call]));
        markDone(call);
      } catch (error) {
        stats.storeFailures += 1;
        if (isUnavailable(error)) {
          // The store went away mid-batch; the records stored so far are skipped as duplicates next time.
          noteUnavailable(error);
          return 'unavailable';
        }
        call.attempts += 1;
        if (call.attempts < maxAttempts) {
          retry.push(call);
        } else {
          stats.lost += 1;
          markDone(call);
          logger.error({ err: error, call_id: call.record.id, attempts: call.attempts }, 'storing a call record failed; record lost');
        }
      }
    }
    return retry;
  }

  function markDone(call: QueuedCall): void {
    if (call.spooled) spooledWaiting = Math.max(0, spooledWaiting - 1);
    else memoryWaiting -= 1;
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

  function noteUnavailable(error: unknown): void {
    if (unavailableDelayMs !== null) {
      unavailableDelayMs = Math.min(unavailableDelayMs * 2, maxRetryDelayMs);
      return;
    }
    unavailableDelayMs = flushIntervalMs;
    logger.warn(
      { err: error, waiting: waiting(), spool_dir: spool?.dir ?? null },
      spool
        ? 'the store is unavailable; call records wait in the spool and are stored when it is back'
        : 'the store is unavailable; call records wait in the queue and are retried',
    );
    waitingWarning = setInterval(() => {
      logger.warn(
        { waiting: waiting(), spool_bytes: spool?.bytes() ?? 0, spool_dir: spool?.dir ?? null },
        'call records still wait for the store',
      );
    }, waitingWarningIntervalMs);
    waitingWarning.unref();
  }

  function noteAvailable(): void {
    if (unavailableDelayMs === null) return;
    unavailableDelayMs = null;
    stopWaitingWarning();
    logger.info({ waiting: waiting() }, 'the store is available again; storing the waiting call records');
  }

  function stopWaitingWarning(): void {
    if (waitingWarning !== null) clearInterval(waitingWarning);
    waitingWarning = null;
  }

  /** Take the next batch for the store: from memory, else read back from the spool. */
  async function nextBatch(): Promise<QueuedCall[]> {
    if (queue.length === 0 && spool && diskFrom !== null) await readBack(spool, diskFrom);
    let count = 0;
    let size = 0;
    while (count < queue.length && count < maxBatchSize) {
      size += bodySize(queue[count]!);
      if (count > 0 && size > maxBatchBodySize) break;
      count += 1;
    }
    const batch = queue.splice(0, count);
    for (const call of batch) queueBytes -= call.spooled?.bytes ?? 0;
    return batch;
  }

  async function readBack(from: RecordSpool, start: SpoolPosition): Promise<void> {
    const limit = appendedEnd;
    const result = await from.read(start, limit, maxBatchSize);
    for (const line of result.skipped) {
      if (line.complete) spooledWaiting = Math.max(0, spooledWaiting - 1);
      logger.warn(
        { spool_dir: from.dir, segment: line.position.segment, offset: line.position.offset },
        'skipped a spool line that is not a call record (cut short by a crash?)',
      );
    }
    const calls = await toCallsToInsert(result.calls.map((spooled) => spooled.call));
    result.calls.forEach(({ start: lineStart, end, bytes }, index) => {
      queue.push({ ...calls[index]!, attempts: 0, spooled: { start: lineStart, end, bytes } });
      queueBytes += bytes;
    });

    const advanced = comparePositions(result.next, start) > 0;
    if (!advanced) {
      // A segment file went missing: reading again would loop, so the records still counted for it are gone.
      logger.error(
        { spool_dir: from.dir, segment: start.segment, offset: start.offset },
        'reading the record spool made no progress; were segment files deleted?',
      );
      spooledWaiting = queue.filter((call) => call.spooled !== null).length;
    }
    diskFrom = advanced && comparePositions(result.next, appendedEnd) < 0 ? result.next : null;
  }

  /** Delete the spool segments whose records are all stored or given up. */
  async function releaseSpool(retrying: QueuedCall[]): Promise<void> {
    if (!spool) return;
    const firstWaiting = [...retrying, ...queue].find((call) => call.spooled !== null)?.spooled?.start ?? diskFrom ?? appendedEnd;
    try {
      await spool.release(firstWaiting);
    } catch (error) {
      logger.warn({ err: error, spool_dir: spool.dir }, 'deleting a stored spool segment failed; it is tried again later');
    }
  }

  async function drain(): Promise<void> {
    const retryLater: QueuedCall[] = [];
    for (;;) {
      const batch = await nextBatch();
      if (batch.length === 0) break;
      const result = await storeBatch(batch);
      if (result === 'unavailable') {
        // Keep arrival order: the batch goes back in front of what came in meanwhile.
        requeueFront([...retryLater, ...batch]);
        storeTimer.schedule(unavailableDelayMs ?? flushIntervalMs);
        await releaseSpool([]);
        return;
      }
      retryLater.push(...result);
      await releaseSpool(retryLater);
    }
    if (retryLater.length > 0) {
      requeueFront(retryLater);
      storeTimer.schedule(flushIntervalMs);
    }
  }

  function requeueFront(calls: QueuedCall[]): void {
    queue.unshift(...calls);
    for (const call of calls) queueBytes += call.spooled?.bytes ?? 0;
  }

  function drainNow(): Promise<void> {
    storeTimer.cancel();
    // Drains run one after another, which keeps batches in arrival order: a caller arriving mid-drain
    // waits for it and then drains what came in meanwhile.
    drainChain = drainChain.then(drain).catch((error: unknown) => {
      logger.error({ err: error }, 'storing call records failed');
    });
    return drainChain;
  }

  /** Give spooled records their prompt text again, which the spool leaves out; see `SpooledRecord`. */
  async function toCallsToInsert(entries: SpoolEntry[]): Promise<CallToInsert[]> {
    const withBody = entries.filter((entry) => 'bodyRow' in entry && entry.bodyRow !== null);
    const promptTexts = await packer.derivePromptTexts(
      withBody.map((entry) => ({
        apiShape: entry.record.api_shape,
        requestBody: 'bodyRow' in entry ? (entry.bodyRow?.request_body ?? null) : null,
      })),
    );
    const promptTextOf = new Map(withBody.map((entry, index) => [entry, promptTexts[index] ?? null]));
    return entries.map((entry): CallToInsert => {
      if (!('bodyRow' in entry)) return entry;
      const { record, bodyRow } = entry;
      return { record, packed: bodyRow === null ? null : { row: bodyRow, promptText: promptTextOf.get(entry) ?? null } };
    });
  }

  /** Mask and compress the bodies of written records on the packer's thread. */
  async function pack(batch: WrittenCall[]): Promise<PackedCall[]> {
    const withBodies = batch.filter((call) => call.bodies !== null);
    const packed = await packer.pack(
      withBodies.map((call) => ({ apiShape: call.record.api_shape, bodies: call.bodies!, redact: call.redact })),
    );
    let next = 0;
    return batch.map((call) => ({ record: call.record, packed: call.bodies === null ? null : packed[next++]! }));
  }

  /** Send the pending records to the packer now. `packPending` collects the result at the flush. */
  function sendPending(): void {
    if (pending.length === 0) return;
    const written = pending;
    pending = [];
    pendingChars = 0;
    packing += written.length;
    // Settled here, because a part can fail before the flush awaits it, and an unawaited rejection would be unhandled.
    const result = pack(written).then(
      (calls): PackOutcome => ({ ok: true, calls }),
      (error: unknown): PackOutcome => ({ ok: false, error }),
    );
    packedParts.push({ records: written.length, result });
    sentRecords += written.length;
  }

  /** Wait for the packed parts in order. A failed part's records are lost, because text that could not be masked must not be stored. */
  async function collectParts(parts: PackedPart[]): Promise<PackedCall[]> {
    const batch: PackedCall[] = [];
    for (const part of parts) {
      const outcome = await part.result;
      packing -= part.records;
      if (outcome.ok) {
        batch.push(...outcome.calls);
        continue;
      }
      stats.lost += part.records;
      logger.error({ err: outcome.error, records: part.records }, 'masking and compressing call bodies failed; records lost');
    }
    return batch;
  }

  /**
   * Pack the records written since the last flush, the parts already sent included. Then append them to
   * the spool, fsynced, and queue them for the store. Without a spool, queue them in memory.
   */
  function packPending(): Promise<void> {
    packTimer.cancel();
    sendPending();
    const parts = packedParts;
    packedParts = [];
    sentRecords = 0;
    packChain = packChain.then(async () => {
      if (parts.length === 0) return;
      const batch = await collectParts(parts);
      if (batch.length === 0) return;

      if (!spool) {
        for (const call of batch) enqueueInMemory(call);
        return;
      }
      try {
        const { spooled, refused } = await spool.append(batch);
        accept(spooled);
        if (refused.length > 0) {
          stats.dropped += refused.length;
          logger.warn(
            {
              records: refused.length,
              dropped: stats.dropped,
              spool_dir: spool.dir,
              spool_bytes: spool.bytes(),
              max_bytes: spool.maxBytes,
            },
            'call records dropped: the record spool is full; bring the store back so the waiting records drain, or raise the spool bound',
          );
        }
      } catch (error) {
        stats.spoolFailures += 1;
        logger.warn({ err: error, records: batch.length }, 'appending call records to the spool failed; they wait in memory only');
        for (const call of batch) enqueueInMemory(call);
      }
    });
    return packChain;
  }

  function accept(spooled: SpooledCall<PackedCall>[]): void {
    const last = spooled.at(-1);
    if (!last) return;
    appendedEnd = last.end;
    spooledWaiting += spooled.length;
    const bytes = spooled.reduce((sum, call) => sum + call.bytes, 0);
    if (diskFrom === null && queue.length + spooled.length <= maxQueueSize && queueBytes + bytes <= maxQueueBytes) {
      for (const { call, start, end, bytes: lineBytes } of spooled)
        queue.push({ ...call, attempts: 0, spooled: { start, end, bytes: lineBytes } });
      queueBytes += bytes;
    } else if (diskFrom === null) {
      diskFrom = spooled[0]!.start;
    }
  }

  function enqueueInMemory(call: CallToInsert): void {
    if (queue.length >= maxQueueSize) {
      drop(call.record, 'the store queue is full');
      return;
    }
    queue.push({ ...call, attempts: 0, spooled: null });
    memoryWaiting += 1;
  }

  function drop(record: CallRecord, reason: string): void {
    stats.dropped += 1;
    logger.warn({ call_id: record.id, waiting: waiting(), dropped: stats.dropped, reason }, 'call record dropped');
  }

  async function flush(): Promise<void> {
    await packPending();
    await drainNow();
  }

  return {
    write(record, bodies, writeOptions = {}): void {
      if (closed) {
        drop(record, 'the sink is closed');
        return;
      }
      if (pending.length + packing >= maxQueueSize) {
        drop(record, 'too many records since the last flush');
        return;
      }
      pending.push({
        record,
        bodies: bodies === null ? null : withoutCredentialHeaders(bodies),
        redact: writeOptions.redactBodies ?? true,
      });
      pendingChars += bodyChars(bodies);
      if (pendingChars >= packPartChars) sendPending();
      packTimer.schedule(pending.length + sentRecords >= maxBatchSize ? 0 : flushIntervalMs);
    },
    flush,
    settled: () => drainChain,
    async close() {
      closed = true;
      packTimer.cancel();
      storeTimer.cancel();
      stopWaitingWarning();
      await flush();
      storeTimer.cancel();
      stopWaitingWarning();
      if (ownPacker) await packer.close();

      // Records only in memory that failed their attempt in this last flush are lost with the process.
      const inMemory = queue.filter((call) => call.spooled === null).length;
      if (inMemory > 0) {
        stats.lost += inMemory;
        memoryWaiting -= inMemory;
        logger.error({ records: inMemory }, 'call records not stored before shutdown; records lost');
      }
      queue.length = 0;
      queueBytes = 0;
      if (spool) {
        const leftOnDisk = spooledWaiting > 0 || diskFrom !== null;
        if (leftOnDisk) {
          logger.warn(
            { records: spooledWaiting, spool_dir: spool.dir },
            'call records wait in the spool; the next start with this data directory stores them',
          );
        }
        // With every record stored, the segments would only be replayed as duplicates at the next start.
        await spool.close({ deleteSegments: !leftOnDisk });
      }
    },
    stats: () => ({
      queued: waiting(),
      ...stats,
      storeUnavailable: unavailableDelayMs !== null,
      spooled: spooledWaiting,
      spoolBytes: spool?.bytes() ?? 0,
    }),
  };
}

interface Timer {
  /** Run the task after `delayMs`, unless it is already due no later. */
  schedule(delayMs: number): void;
  cancel(): void;
}

/** Create a one-shot timer that keeps the earliest due time. It never keeps the process alive, because close() flushes explicitly. */
function createTimer(task: () => Promise<void> | void): Timer {
  let timer: NodeJS.Timeout | null = null;
  let dueMs = 0;
  return {
    schedule(delayMs) {
      const due = Date.now() + delayMs;
      if (timer !== null) {
        if (dueMs <= due) return;
        clearTimeout(timer);
      }
      dueMs = due;
      timer = setTimeout(() => {
        timer = null;
        void task();
      }, delayMs);
      timer.unref();
    },
    cancel() {
      if (timer !== null) clearTimeout(timer);
      timer = null;
    },
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

/** Size of a call's bodies in a store batch: text characters, or prompt-text characters plus compressed bytes once packed. */
function bodySize(call: CallToInsert): number {
  if ('bodies' in call) return bodyChars(call.bodies);
  if (call.packed === null) return 0;
  const { row, promptText } = call.packed;
  return (promptText?.length ?? 0) + (row.request_body?.length ?? 0) + (row.response_body?.length ?? 0);
}

/** Measure body text in UTF-16 code units. A raw body (`CapturedBody.raw`, sent to the packer undecoded) counts its bytes. */
function bodyChars(bodies: CallBodies | null): number {
  return capturedBodySize(bodies?.request ?? null) + capturedBodySize(bodies?.response ?? null);
}

function withoutCredentialHeaders(bodies: CallBodies): CallBodies {
  const clean = (headers: Record<string, string>) =>
    Object.fromEntries(Object.entries(headers).filter(([name]) => !CREDENTIAL_HEADERS.has(name.toLowerCase())));
  return { ...bodies, request_headers: clean(bodies.request_headers), response_headers: clean(bodies.response_headers) };
}
