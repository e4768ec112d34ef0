import type { Store } from '@tokenwise/storage';
import type { Logger } from 'pino';
import { startPeriodicJob } from '../periodic-job.js';

/** Time between two runs of the retention job, in ms. */
export const RETENTION_INTERVAL_MS = 60 * 60_000;

export interface RetentionJob {
  /** Run once now; resolves when done (failures are logged, not thrown). */
  runOnce(): Promise<void>;
  close(): Promise<void>;
}

/**
 * The periodic clean-up: bodies older than their workspace's retention, and expired sessions, device
 * codes, invites and password resets. The first run comes one interval after the start. With several app
 * processes each runs it; the deletes are idempotent.
 */
export function startRetentionJob(options: { store: Store; logger: Logger; intervalMs?: number; clock?: () => Date }): RetentionJob {
  const { store, logger } = options;
  const clock = options.clock ?? (() => new Date());

  async function run(): Promise<void> {
    try {
      const now = clock();
      const bodies = await store.deleteExpiredBodies(now);
      const credentials = await store.purgeExpiredCredentials(now);
      if (bodies > 0 || credentials > 0) logger.info({ bodies_deleted: bodies, credentials_deleted: credentials }, 'retention job ran');
    } catch (error) {
      logger.warn({ err: error }, 'retention job failed; it runs again at the next interval');
    }
  }

  return startPeriodicJob(run, options.intervalMs ?? RETENTION_INTERVAL_MS);
}
