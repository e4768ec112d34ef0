import type { Store } from '@tokenwise/storage';
import type { Logger } from 'pino';
import { type CallStream, createCallStream } from './call-stream.js';

export interface StoreFollowerOptions {
  store: Store;
  logger: Logger;
  /** Time between two reads of new calls, in ms; `poke` reads sooner. */
  intervalMs?: number;
  /** Calls per read; a full page is followed by the next one at once. */
  pageSize?: number;
}

export interface StoreFollower {
  /** Calls stored by any server, in storage order, each published once. */
  stream: CallStream;
  /** Read new calls now, for example because this process just stored some. */
  poke(): void;
  /** Stop reading; a read in progress finishes first. */
  close(): Promise<void>;
}

/**
 * Feed the live call stream from the store instead of from this process's own writes. With several
 * servers on one PostgreSQL database, the proxies store calls the API process never sees, so the API
 * reads every call stored after its cursor. Cursors follow commit order in every store, so paging
 * forward skips nothing. While nobody listens it only moves its cursor to the latest call, so a new
 * listener gets calls stored from then on, not a backlog.
 */
export async function startStoreFollower(options: StoreFollowerOptions): Promise<StoreFollower> {
  const { store, logger } = options;
  const intervalMs = options.intervalMs ?? 1_000;
  const pageSize = options.pageSize ?? 500;
  const stream = createCallStream();

  let cursor = (await store.latestCursor()) ?? '0';
  let timer: NodeJS.Timeout | null = null;
  let reading: Promise<void> | null = null;
  let again = false;
  let closed = false;
  let failing = false;

  async function readNewCalls(): Promise<void> {
    if (stream.subscriberCount() === 0) {
      cursor = (await store.latestCursor()) ?? cursor;
      return;
    }
    for (;;) {
      const page = await store.listCalls({ limit: pageSize, after: cursor });
      if (page.length === 0) return;
      cursor = page.at(-1)!.cursor;
      stream.publish(page);
      if (page.length < pageSize) return;
    }
  }

  function read(): void {
    if (closed) return;
    if (reading) {
      again = true;
      return;
    }
    if (timer) clearTimeout(timer);
    timer = null;

    reading = readNewCalls()
      .then(() => {
        if (failing) logger.info('following new calls in the store works again');
        failing = false;
      })
      .catch((error: unknown) => {
        failing = true;
        logger.warn({ err: error }, 'reading new calls from the store failed; the live call stream waits for the next read');
      })
      .finally(() => {
        reading = null;
        if (closed) return;
        if (again) {
          again = false;
          read();
        } else {
          timer = setTimeout(read, intervalMs);
          timer.unref();
        }
      });
  }

  timer = setTimeout(read, intervalMs);
  timer.unref();

  return {
    stream,
    poke: read,
    async close() {
      closed = true;
      if (timer) clearTimeout(timer);
      await reading;
    },
  };
}
