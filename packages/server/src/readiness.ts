import type { ServerResponse } from 'node:http';
import type { Store } from '@tokenwise/storage';
import type { Logger } from 'pino';
import { sendJson } from './api-responses.js';

export interface ReadinessOptions {
  store: Store;
  logger: Logger;
  /** How long the store check may take before the server reports itself not ready, in ms. */
  timeoutMs?: number;
}

/**
 * `GET /readyz` for load balancers: 200 while the store responds and its schema is the one this server
 * was built for, 503 otherwise or while the server stops. `/healthz` stays 200 in those cases, because
 * restarting the process fixes neither a database outage nor a newer schema. The 503 body names no
 * internals; the reason goes to the log, rate-limited like every warning.
 */
export function createReadinessCheck(options: ReadinessOptions) {
  const { store, logger } = options;
  const timeoutMs = options.timeoutMs ?? 5_000;

  async function check(): Promise<void> {
    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(new Error(`the store did not respond within ${timeoutMs} ms`)), timeoutMs);
    });
    try {
      await Promise.race([store.checkReady(), timeout]);
    } finally {
      clearTimeout(timer);
    }
  }

  return {
    async respond(res: ServerResponse, stopping: boolean): Promise<void> {
      if (stopping) {
        sendJson(res, 503, { status: 'stopping' });
        return;
      }
      try {
        await check();
        sendJson(res, 200, { status: 'ready' });
      } catch (error) {
        logger.warn({ err: error }, 'readiness check failed: the store is unreachable or its schema changed');
        sendJson(res, 503, {
          status: 'not_ready',
          message: 'the store is unreachable or its schema changed; details are in the server log',
        });
      }
    },
  };
}
