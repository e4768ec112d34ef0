import type { CallBodies, CallRecord } from '@tokenwise/core';
import type { Logger } from 'pino';
import { SERVER_VERSION } from '../version.js';
import { callSpan, isModelCall, type OtlpSpan, spanBodies } from './genai-span.js';

export interface OtlpExporterOptions {
  /** Full URL of the collector's trace endpoint, e.g. `http://127.0.0.1:4318/v1/traces`. */
  tracesUrl: string;
  /** Extra request headers, such as a backend's API key. */
  headers?: Record<string, string>;
  /** Put the captured request and response bodies on the spans (cut to 16 Ki characters each). */
  includeBodies?: boolean;
  /** The upstream base URL of a route, for `server.address`; null when unknown. */
  upstreamOf(route: string): string | null;
  logger: Logger;
  /** Spans held in memory at most; further spans are dropped and counted until the queue drains. */
  maxQueueSize?: number;
  /** Spans per export request; a full batch is sent without waiting for the interval. */
  maxBatchSize?: number;
  /** Maximum time a span waits before an export starts, in ms. */
  flushIntervalMs?: number;
  /** Time one export request may take, in ms. */
  timeoutMs?: number;
  /** Tries per batch when the collector is unreachable or responds 429, 502, 503 or 504. */
  maxAttempts?: number;
  /** Time between two warnings about failed exports, in ms. */
  warningIntervalMs?: number;
}

export interface OtlpExporterStats {
  /** Spans the collector accepted (less any it reported as rejected). */
  exported: number;
  /** Spans dropped because the queue was full or the exporter closed. */
  dropped: number;
  /** Spans given up after failed export requests, or rejected by the collector. */
  failed: number;
  /** Spans waiting in memory. */
  queued: number;
  /** Export requests that failed (a batch tried three times counts three times). */
  requestFailures: number;
}

export interface OtlpExporter {
  /** Queue the span of one call; never blocks and never throws. */
  write(record: CallRecord, bodies: CallBodies | null): void;
  /** Send everything queued; resolves when the queue is empty or the last batch was given up. */
  flush(): Promise<void>;
  /** Stop the timer and send what is queued, each batch once, for at most one request timeout; the rest is dropped. */
  close(): Promise<void>;
  stats(): OtlpExporterStats;
}

const RETRYABLE_STATUSES = new Set([429, 502, 503, 504]);

/**
 * Export each call as an OpenTelemetry span over OTLP/HTTP with the JSON encoding. `write` only appends to
 * a bounded in-memory queue after the record is built, so the proxy never waits for the collector. A timer
 * sends batches one request at a time. A collector that is down or overloaded gets each batch again with a
 * growing delay, up to `maxAttempts` tries; then the batch is counted as failed. A full queue drops new
 * spans and counts them. Failures are logged at most once per `warningIntervalMs`.
 */
export function createOtlpExporter(options: OtlpExporterOptions): OtlpExporter {
  const { tracesUrl, logger } = options;
  const maxQueueSize = options.maxQueueSize ?? 4096;
  const maxBatchSize = options.maxBatchSize ?? 256;
  const flushIntervalMs = options.flushIntervalMs ?? 2000;
  const timeoutMs = options.timeoutMs ?? 10_000;
  const maxAttempts = options.maxAttempts ?? 3;
  const warningIntervalMs = options.warningIntervalMs ?? 60_000;
  const headers = { 'content-type': 'application/json', ...options.headers };

  const queue: OtlpSpan[] = [];
  const stats = { exported: 0, dropped: 0, failed: 0, requestFailures: 0 };
  let sending: Promise<void> | null = null;
  /** Spans at the head of the queue whose export request is under way. */
  let inFlight = 0;
  let closed = false;
  /** Set by close: a failed batch is not tried again, so shutdown waits for one request per batch at most. */
  let closing = false;
  let timer: NodeJS.Timeout | null = null;
  let lastWarningMs = Number.NEGATIVE_INFINITY;
  let suppressedWarnings = 0;

  const warn = (details: Record<string, unknown>, message: string) => {
    const now = Date.now();
    if (now - lastWarningMs < warningIntervalMs) {
      suppressedWarnings += 1;
      return;
    }
    lastWarningMs = now;
    logger.warn({ ...details, collector: redactUrl(tracesUrl), suppressed_since_last: suppressedWarnings }, message);
    suppressedWarnings = 0;
  };

  const schedule = (delayMs: number) => {
    if (timer !== null || closing) return;
    timer = setTimeout(() => {
      timer = null;
      void drain();
    }, delayMs);
    timer.unref();
  };

  /** Send batches until the queue is empty; one request at a time. */
  const drain = (): Promise<void> => {
    sending ??= (async () => {
      try {
        while (queue.length > 0) {
          const batch = queue.slice(0, maxBatchSize);
          inFlight = batch.length;
          const delivered = await sendWithRetries(batch);
          inFlight = 0;
          queue.splice(0, batch.length);
          if (!delivered) break;
        }
      } finally {
        sending = null;
      }
      if (queue.length > 0) schedule(flushIntervalMs);
    })();
    return sending;
  };

  /** Try one batch up to `maxAttempts` times; false when it was given up. */
  const sendWithRetries = async (batch: OtlpSpan[]): Promise<boolean> => {
    const body = JSON.stringify(exportRequest(batch));
    for (let attempt = 1; attempt <= maxAttempts; attempt += 1) {
      const result = await post(body);
      if (result.ok) {
        stats.exported += batch.length - result.rejected;
        stats.failed += result.rejected;
        if (result.rejected > 0) warn({ rejected: result.rejected, reason: result.message }, 'the OTLP collector rejected some spans');
        return true;
      }
      stats.requestFailures += 1;
      const last = attempt === maxAttempts || !result.retryable || closing;
      warn(
        { status: result.status, error: result.message, spans: batch.length, attempt, given_up: last },
        last ? 'OTLP export failed; the spans of this batch are dropped' : 'OTLP export failed; retrying',
      );
      if (last) break;
      await delay(result.retryAfterMs ?? flushIntervalMs * 2 ** (attempt - 1));
    }
    stats.failed += batch.length;
    return false;
  };

  const post = async (body: string): Promise<PostResult> => {
    try {
      const response = await fetch(tracesUrl, { method: 'POST', headers, body, signal: AbortSignal.timeout(timeoutMs) });
      const text = await response.text().catch(() => '');
      if (response.ok) return { ok: true, ...partialSuccess(text) };
      return {
        ok: false,
        status: response.status,
        retryable: RETRYABLE_STATUSES.has(response.status),
        retryAfterMs: retryAfterMs(response.headers.get('retry-after')),
        message: text.slice(0, 200),
      };
    } catch (error) {
      const cause = (error as { cause?: { code?: string } }).cause?.code;
      return { ok: false, status: null, retryable: true, retryAfterMs: null, message: cause ?? (error as Error).message };
    }
  };

  return {
    write(record, bodies) {
      try {
        if (closed) {
          stats.dropped += 1;
          return;
        }
        if (!isModelCall(record)) return;
        if (queue.length >= maxQueueSize) {
          stats.dropped += 1;
          warn({ max_queue_size: maxQueueSize }, 'the OTLP export queue is full; spans are dropped until the collector catches up');
          return;
        }
        const kept = options.includeBodies ? spanBodies(bodies) : null;
        queue.push(callSpan(record, options.upstreamOf(record.route), kept));
        if (queue.length >= maxBatchSize && sending === null) void drain();
        else schedule(flushIntervalMs);
      } catch (error) {
        stats.dropped += 1;
        logger.error({ err: error, call_id: record.id }, 'could not build the OTLP span of a call');
      }
    },

    async flush() {
      while (queue.length > 0 || sending !== null) {
        const before = queue.length;
        await drain();
        if (queue.length >= before) break;
      }
    },

    async close() {
      closing = true;
      if (timer !== null) clearTimeout(timer);
      timer = null;
      // A collector that accepts connections but never responds must not hold the shutdown for long.
      await Promise.race([this.flush(), delay(timeoutMs)]);
      closed = true;
      // A batch still under way is counted as exported or failed when its request ends.
      stats.dropped += queue.length - inFlight;
      queue.splice(inFlight);
    },

    stats: () => ({ ...stats, queued: queue.length }),
  };
}

type PostResult =
  | { ok: true; rejected: number; message: string | null }
  | { ok: false; status: number | null; retryable: boolean; retryAfterMs: number | null; message: string };

/** Build the ExportTraceServiceRequest of one batch, under the resource `service.name = tokenwise`. */
function exportRequest(spans: OtlpSpan[]) {
  return {
    resourceSpans: [
      {
        resource: {
          attributes: [
            { key: 'service.name', value: { stringValue: 'tokenwise' } },
            { key: 'service.version', value: { stringValue: SERVER_VERSION } },
          ],
        },
        scopeSpans: [{ scope: { name: '@tokenwise/server', version: SERVER_VERSION }, spans }],
      },
    ],
  };
}

/** Read `partialSuccess.rejectedSpans` from an ExportTraceServiceResponse; an empty or non-JSON body rejects nothing. */
function partialSuccess(text: string): { rejected: number; message: string | null } {
  try {
    const parsed = JSON.parse(text) as { partialSuccess?: { rejectedSpans?: string | number; errorMessage?: string } };
    const rejected = Number(parsed.partialSuccess?.rejectedSpans ?? 0);
    return {
      rejected: Number.isSafeInteger(rejected) && rejected > 0 ? rejected : 0,
      message: parsed.partialSuccess?.errorMessage ?? null,
    };
  } catch {
    return { rejected: 0, message: null };
  }
}

function retryAfterMs(value: string | null): number | null {
  if (value === null || !/^\d{1,4}$/.test(value.trim())) return null;
  return Number(value) * 1000;
}

/** Return the collector URL for logs, without credentials or query, which may carry a key. */
export function redactUrl(value: string): string {
  const url = new URL(value);
  return `${url.protocol}//${url.host}${url.pathname}`;
}

function delay(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms).unref());
}
