import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Store } from '@tokenwise/storage';
import type { Logger } from 'pino';
import type { Caller, Principals } from '../accounts/principal.js';
import { createInsightsApi, isInsightsPath } from './insights-api.js';
import { type InsightsRunResult, startInsightsJob } from './insights-job.js';

export interface InsightsAppOptions {
  store: Store;
  principals: Principals;
  logger: Logger;
  /** Runs the insights job; false on proxy-only servers. */
  runJobs: boolean;
  /** Time between two runs of the job, in ms; one minute by default. */
  intervalMs?: number;
}

/** Wire the insights job and its API routes together for `serve`. */
export function createInsightsApp(options: InsightsAppOptions) {
  const logger = options.logger.child({ component: 'insights' });
  const job = options.runJobs ? startInsightsJob({ store: options.store, logger, intervalMs: options.intervalMs }) : null;
  const api = createInsightsApi({ store: options.store, principals: options.principals, job, logger });

  return {
    /** Serve an insights route; false when the request is for none of them. */
    handle: (req: IncomingMessage, res: ServerResponse, url: URL, caller: Caller): Promise<boolean> => api(req, res, url, caller),
    /** True when an insights route exists at `path`, whatever the method. */
    matchesPath: isInsightsPath,
    /** Run the job now (tests, and `POST /api/v1/insights/run`). */
    runOnce: (): Promise<InsightsRunResult> => job?.runOnce() ?? Promise.resolve({ calls: 0, groups: 0 }),
    close: async (): Promise<void> => {
      await job?.close();
    },
  };
}
