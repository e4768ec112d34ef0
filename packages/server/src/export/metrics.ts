import { createHash, timingSafeEqual } from 'node:crypto';
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { CallRecord } from '@tokenwise/core';
import { Counter, collectDefaultMetrics, Gauge, Histogram, Registry } from 'prom-client';
import type { ProxyStats } from '../proxy/index.js';
import type { SinkStats } from '../record-sink.js';
import type { OtlpExporterStats } from './otlp-exporter.js';

export interface MetricsSources {
  /** The proxy's counters; null on a server that runs no proxy (`--role app`). */
  proxy(): ProxyStats | null;
  sink(): SinkStats;
  /** The OTLP exporter's counters; null when no collector is configured. */
  exporter(): OtlpExporterStats | null;
}

export interface ServerMetricsOptions {
  sources: MetricsSources;
  /** Bearer token `/metrics` requires; undefined turns `/metrics` off. */
  token?: string;
  /** Distinct `model` label values kept; later models are counted under `model="other"`. */
  maxModels?: number;
}

export interface ServerMetrics {
  /**
   * Count one finished call. It is cheap and never throws (its body is one try/catch) because it runs in
   * the record sink.
   */
  observe(record: CallRecord): void;
  /**
   * Respond to `GET /metrics` with 404 when metrics are off, 401 without the right bearer token, else the
   * text exposition.
   */
  handle(req: IncomingMessage, res: ServerResponse): void;
  /** The exposition text, as a scrape receives it. */
  render(): Promise<string>;
}

/** Maximum length of a model name used as a label value. Longer names are cut because a client chooses the name. */
const MAX_MODEL_LABEL_LENGTH = 100;
const DURATION_BUCKETS_S = [0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 600];
const TTFT_BUCKETS_S = [0.05, 0.1, 0.25, 0.5, 1, 2, 5, 10, 30, 60];
const CALL_LABELS = ['provider', 'route', 'model', 'tool'] as const;

/**
 * Create the Prometheus metrics of one `tokenwise serve` process, in a registry of its own. Calls, tokens,
 * cost and latency are counted per provider, route, model and tool, summed over every workspace. No label
 * carries a workspace, device, session, path or token. Models come from requests, so the label keeps the
 * first `maxModels` names and counts the rest as `other`. Health gauges and counters (live requests, the
 * record queue and spool, store and export failures) are read from the components when scraped.
 */
export function createServerMetrics(options: ServerMetricsOptions): ServerMetrics {
  const { sources } = options;
  const maxModels = options.maxModels ?? 200;
  const register = new Registry();
  // The process metrics start an event-loop delay monitor that runs until exit, so only a server that
  // serves /metrics gets them.
  if (options.token !== undefined) collectDefaultMetrics({ register, prefix: 'tokenwise_' });

  const calls = new Counter({
    name: 'tokenwise_calls_total',
    help: 'LLM calls recorded by this process, by outcome (success, error, truncated, aborted).',
    labelNames: [...CALL_LABELS, 'status'],
    registers: [register],
  });
  const tokens = new Counter({
    name: 'tokenwise_tokens_total',
    help: 'Tokens reported by the providers. type: input (including cache reads and writes), output (including reasoning), cache_read, cache_write, reasoning.',
    labelNames: [...CALL_LABELS, 'type'],
    registers: [register],
  });
  const cost = new Counter({
    name: 'tokenwise_cost_usd_total',
    help: 'Cost of the calls in US dollars, as recorded (API-equivalent prices for subscription traffic; 0 for local models).',
    labelNames: CALL_LABELS,
    registers: [register],
  });
  const duration = new Histogram({
    name: 'tokenwise_call_duration_seconds',
    help: 'Time from forwarding a call to its last response byte.',
    labelNames: CALL_LABELS,
    buckets: DURATION_BUCKETS_S,
    registers: [register],
  });
  const ttft = new Histogram({
    name: 'tokenwise_time_to_first_token_seconds',
    help: 'Time from forwarding a call to its first output, for calls that produced output.',
    labelNames: CALL_LABELS,
    buckets: TTFT_BUCKETS_S,
    registers: [register],
  });

  registerHealth(register, sources);

  const models = new Set<string>();
  const modelLabel = (record: CallRecord): string => {
    const name = (record.model_answered ?? record.model_requested ?? 'unknown').slice(0, MAX_MODEL_LABEL_LENGTH);
    if (models.has(name)) return name;
    if (models.size >= maxModels) return 'other';
    models.add(name);
    return name;
  };

  const tokenDigest = options.token === undefined ? null : sha256(options.token);
  const render = () => register.metrics();

  return {
    observe(record) {
      // Without a token the endpoint serves no metrics, so counting the calls would be wasted work.
      if (tokenDigest === null) return;
      try {
        const labels = { provider: record.provider, route: record.route, model: modelLabel(record), tool: record.tool };
        calls.inc({ ...labels, status: record.status });
        const usage = record.usage;
        const counts = {
          input: usage.input_tokens,
          output: usage.output_tokens,
          cache_read: usage.cache_read_tokens,
          cache_write: usage.cache_write_tokens,
          reasoning: usage.reasoning_tokens,
        };
        for (const [type, count] of Object.entries(counts)) {
          if (count !== null && count > 0) tokens.inc({ ...labels, type }, count);
        }
        if (record.cost.usd !== null && record.cost.usd > 0) cost.inc(labels, record.cost.usd);
        duration.observe(labels, record.timing.total_ms / 1000);
        if (record.timing.ttft_ms !== null) ttft.observe(labels, record.timing.ttft_ms / 1000);
      } catch {
        // A metric is worth less than the call, so a bad value is skipped and never thrown into the sink.
      }
    },

    handle(req, res) {
      if (tokenDigest === null) {
        sendText(
          res,
          404,
          'metrics are off: start tokenwise serve with --metrics-token (TOKENWISE_METRICS_TOKEN) and scrape with that bearer token\n',
        );
        return;
      }
      const presented = /^Bearer\s+(\S+)\s*$/i.exec(req.headers.authorization ?? '')?.[1];
      if (presented === undefined || !timingSafeEqual(sha256(presented), tokenDigest)) {
        res.setHeader('www-authenticate', 'Bearer realm="tokenwise metrics"');
        sendText(res, 401, 'invalid or missing bearer token: send "Authorization: Bearer <the --metrics-token value>"\n');
        return;
      }
      render()
        .then((body) => {
          res.writeHead(200, { 'content-type': register.contentType, 'cache-control': 'no-store' });
          res.end(req.method === 'HEAD' ? undefined : body);
        })
        .catch(() => sendText(res, 500, 'could not collect the metrics; see the tokenwise serve log\n'));
    },

    render,
  };
}

/** Gauges and counters read from the components' own counters at each scrape. */
function registerHealth(register: Registry, sources: MetricsSources): void {
  const gauge = (name: string, help: string, read: () => number | null) =>
    new Gauge({
      name,
      help,
      registers: [register],
      collect() {
        const value = read();
        if (value !== null) this.set(value);
      },
    });
  // The components keep running totals; each scrape adds what grew since the last one.
  const counter = (name: string, help: string, read: () => number | null) => {
    let last = 0;
    return new Counter({
      name,
      help,
      registers: [register],
      collect() {
        const value = read();
        if (value === null || value <= last) return;
        this.inc(value - last);
        last = value;
      },
    });
  };

  gauge(
    'tokenwise_live_requests',
    'HTTP calls being forwarded plus WebSocket connections being relayed.',
    () => sources.proxy()?.liveRequests ?? null,
  );
  gauge(
    'tokenwise_live_websocket_relays',
    'WebSocket connections being relayed or opened upstream.',
    () => sources.proxy()?.liveRelays ?? null,
  );
  gauge('tokenwise_record_queue', 'Call records not yet stored, in memory or in the spool.', () => sources.sink().queued);
  gauge('tokenwise_spool_records', 'Call records in the spool that are not stored yet.', () => sources.sink().spooled);
  gauge('tokenwise_spool_bytes', "Bytes the spool's files take.", () => sources.sink().spoolBytes);
  gauge('tokenwise_store_unavailable', '1 while the store reports itself unavailable and records wait for it, else 0.', () =>
    sources.sink().storeUnavailable ? 1 : 0,
  );
  counter('tokenwise_records_stored_total', 'Call records stored.', () => sources.sink().stored);
  counter('tokenwise_records_dropped_total', 'Call records dropped because the queue or the spool was full.', () => sources.sink().dropped);
  counter('tokenwise_records_lost_total', 'Call records given up after failed store attempts.', () => sources.sink().lost);
  counter('tokenwise_store_failures_total', 'Store writes that failed.', () => sources.sink().storeFailures);
  counter('tokenwise_spool_failures_total', 'Spool appends that failed.', () => sources.sink().spoolFailures);
  counter('tokenwise_record_sink_failures_total', 'Records the sink threw on.', () => sources.proxy()?.sinkFailures ?? null);
  counter(
    'tokenwise_capture_failures_total',
    'Calls whose capture failed; their record is degraded or missing.',
    () => sources.proxy()?.captureFailures ?? null,
  );
  gauge('tokenwise_otlp_queue_spans', 'Spans waiting for the OTLP collector.', () => sources.exporter()?.queued ?? null);
  counter('tokenwise_otlp_spans_exported_total', 'Spans the OTLP collector accepted.', () => sources.exporter()?.exported ?? null);
  counter(
    'tokenwise_otlp_spans_dropped_total',
    'Spans dropped because the export queue was full.',
    () => sources.exporter()?.dropped ?? null,
  );
  counter(
    'tokenwise_otlp_spans_failed_total',
    'Spans given up after failed exports or rejected by the collector.',
    () => sources.exporter()?.failed ?? null,
  );
}

function sendText(res: ServerResponse, status: number, text: string): void {
  res.writeHead(status, { 'content-type': 'text/plain; charset=utf-8', 'cache-control': 'no-store' });
  res.end(text);
}

function sha256(value: string): Buffer {
  return createHash('sha256').update(value).digest();
}
