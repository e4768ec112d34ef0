import type { CaptureEnd, CaptureResult, HttpCapture, WebSocketCapture } from '@tokenwise/core';
import type { FaultLog } from './fault-log.js';

/** An HttpCapture whose faults are contained: `finish` returns null when no record could be built. */
export interface GuardedHttpCapture {
  requestChunk(chunk: Uint8Array): void;
  requestEnd(): void;
  responseHead(status: number, headers: Readonly<Record<string, string>>): void;
  responseChunk(chunk: Uint8Array): void;
  finish(end: CaptureEnd): CaptureResult | null;
}

/**
 * Wrap a capture so that a throw in any method is counted and logged once per call and never reaches
 * the forwarding path. After the first throw the capture's state is unknown, so it is fed nothing more.
 * `finish` is still tried, because a record of status and timing is better than no record.
 */
export function guardHttpCapture(create: () => HttpCapture, faults: FaultLog, route: string): GuardedHttpCapture {
  let failed = false;
  let capture: HttpCapture | null = null;
  const fail = (step: string, error: unknown) => {
    if (!failed) faults.report('capture_failed', error, { route, step });
    failed = true;
  };

  try {
    capture = create();
  } catch (error) {
    fail('create', error);
  }

  const feed = (step: string, call: (target: HttpCapture) => void) => {
    if (failed || !capture) return;
    try {
      call(capture);
    } catch (error) {
      fail(step, error);
    }
  };

  return {
    requestChunk: (chunk) => feed('requestChunk', (target) => target.requestChunk(chunk)),
    requestEnd: () => feed('requestEnd', (target) => target.requestEnd()),
    responseHead: (status, headers) => feed('responseHead', (target) => target.responseHead(status, headers)),
    responseChunk: (chunk) => feed('responseChunk', (target) => target.responseChunk(chunk)),
    finish(end) {
      if (!capture) return null;
      try {
        return capture.finish(end);
      } catch (error) {
        fail('finish', error);
        return null;
      }
    },
  };
}

/** Wrap a WebSocket capture like `guardHttpCapture` does, counting faults once per connection. */
export function guardWebSocketCapture(create: () => WebSocketCapture, faults: FaultLog, route: string): WebSocketCapture {
  let failed = false;
  let capture: WebSocketCapture | null = null;
  const run = (step: string, call: (target: WebSocketCapture) => void) => {
    if (failed || !capture) return;
    try {
      call(capture);
    } catch (error) {
      failed = true;
      faults.report('capture_failed', error, { route, step });
    }
  };

  try {
    capture = create();
  } catch (error) {
    failed = true;
    faults.report('capture_failed', error, { route, step: 'create' });
  }

  return {
    clientMessage: (data) => run('clientMessage', (target) => target.clientMessage(data)),
    serverMessage: (data) => run('serverMessage', (target) => target.serverMessage(data)),
    close: (end) => run('close', (target) => target.close(end)),
  };
}
