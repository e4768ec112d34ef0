import { createServerLogger } from '@tokenwise/server';
import type { Logger } from 'pino';
import type { LogCapture } from './log-capture.js';

/** Create the server's own logger, writing into a capture. */
export function createServerLoggerForTest(logs: LogCapture): Logger {
  return createServerLogger({ destination: logs.stream, level: 'debug' }).logger;
}
