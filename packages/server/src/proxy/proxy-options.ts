import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Duplex } from 'node:stream';
import type { CallBodies, CallRecord, ProxyErrorKind, RouteDescriptor, RouteRegistry } from '@tokenwise/core';
import type { Logger } from 'pino';

/** The grant of a valid route token: the workspace and device its calls are recorded under. */
export interface RouteAuthorization {
  workspaceId: string;
  deviceId: string | null;
  /** False in privacy mode: records are written without bodies. */
  keepBodies: boolean;
  /** False when the workspace turned redaction off: kept body text is stored as sent. True when omitted. */
  redactBodies?: boolean;
  /** The person who paired the device, whose budgets count its calls; null or omitted when none. */
  userId?: string | null;
  /** True rejects calls while the workspace's blocking budgets cannot be checked. False when omitted. */
  budgetsFailClosed?: boolean;
}

/** Result of a budget gate: either a ticket to settle when the call ends, or an error response to send. */
export type BudgetAdmission =
  | { ok: true; ticket: BudgetTicket | null }
  | { ok: false; refusal: { status: number; kind: ProxyErrorKind; message: string; headers: Record<string, string> } };

/** A call admitted by the budget gate. */
export interface BudgetTicket {
  /** Charge the finished call's record and release its reservation; null releases it without a charge. Only the first settle counts. */
  settle(record: CallRecord | null): void;
  /** Charge a further call made on the same connection (a WebSocket relay), which reserved nothing. */
  charge(record: CallRecord): void;
}

/** Checks blocking budgets before a call is forwarded (see `createBudgetGate`). */
export interface ProxyBudgetGate {
  /**
   * Admit or reject a call. It resolves from memory, except when this process has no share of a budget
   * yet and has to obtain one from the store first.
   */
  admit(call: {
    authorization: RouteAuthorization;
    route: RouteDescriptor;
    /** The request's `authorization` header, which distinguishes subscription traffic from API-key calls. */
    authorizationHeader: string | undefined;
  }): BudgetAdmission | Promise<BudgetAdmission>;
}

/** Destination the proxy hands each finished call to. */
export interface ProxyRecordSink {
  /**
   * Take one call. The bodies are as captured, undecoded bytes in `CapturedBody.raw` with secrets in them:
   * the sink decodes them and masks the secrets before the text is spooled, stored or exported, unless
   * `redactBodies` is false (the workspace turned redaction off). The sink may transfer the bytes to
   * another thread, so nothing reads them after `write`. Credential headers are already removed. Must not
   * block; a throw is caught and counted.
   */
  write(record: CallRecord, bodies: CallBodies | null, options: { redactBodies: boolean }): void;
}

export interface ProxyOptions {
  /** The upstream of each route, from `createRouteRegistry(overrides)`. */
  registry: RouteRegistry;
  /** Looks up a route token; null for an unknown or revoked one. */
  authorize(token: string): RouteAuthorization | null | Promise<RouteAuthorization | null>;
  /** Receives one record per call. */
  sink: ProxyRecordSink;
  logger: Logger;
  /** Largest decoded body the capture keeps per direction, in bytes; default 4 MiB. */
  bodyCapBytes?: number;
  /** Time to wait for the upstream's status line and headers, in ms; default 10 minutes. */
  upstreamHeadersTimeoutMs?: number;
  /** Maximum silence between two reads of an upstream body, in ms; default 10 minutes. */
  upstreamBodyIdleTimeoutMs?: number;
  /** Blocking budgets, checked for POST requests and WebSocket upgrades; none when omitted. */
  budgets?: ProxyBudgetGate;
}

export interface ProxyStats {
  /** HTTP calls being forwarded plus WebSocket connections being relayed. */
  liveRequests: number;
  /** WebSocket connections being relayed or being opened upstream (also counted in liveRequests). */
  liveRelays: number;
  /** Records the sink threw on. */
  sinkFailures: number;
  /** Calls or connections whose capture threw; their record is degraded or missing. */
  captureFailures: number;
}

export interface ProxyHandler {
  /** Forwards one request whose target starts with `/r/`. */
  handleRequest(req: IncomingMessage, res: ServerResponse): void;
  /** Relays a WebSocket upgrade whose target starts with `/r/`. */
  handleUpgrade(req: IncomingMessage, socket: Duplex, head: Buffer): void;
  /** Destroys the upstream pools, which aborts calls still in flight, and terminates live relays. */
  close(): Promise<void>;
  stats(): ProxyStats;
}
