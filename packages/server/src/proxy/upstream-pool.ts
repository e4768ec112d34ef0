import { Client, type Dispatcher, Pool } from 'undici';

export interface UpstreamPoolOptions {
  headersTimeoutMs: number;
  bodyIdleTimeoutMs: number;
}

/**
 * The `context` a request's `onRequestStart` receives from an UpstreamPool. `connectionReused` is true
 * when the connection has already carried a complete response, so the upstream may have closed it as
 * idle while the request was on its way.
 */
export interface ConnectionContext {
  connectionReused: boolean;
}

/** Read `connectionReused` from the context undici hands to `onRequestStart`; false for any other context. */
export function isReusedConnection(context: unknown): boolean {
  return (context as Partial<ConnectionContext> | undefined)?.connectionReused === true;
}

/**
 * Idle connections are closed after 4 s unless the upstream's `keep-alive: timeout=N` header says
 * otherwise, which undici honours (minus a 2 s margin, capped at 10 minutes). 4 s is below the default
 * idle timeouts of common upstream servers (Node's 5 s, nginx's 75 s, AWS load balancers' 60 s), so a
 * connection is normally dropped by the proxy before the upstream drops it. Before it reuses an idle
 * connection, undici 7.30 also yields one event-loop turn so that a close already received is noticed.
 * What remains is a close that crosses the request on the wire, or one the event loop processes only after
 * a stall. The forwarding handler retries those itself (see `ForwardingHandler`).
 */
const KEEP_ALIVE_TIMEOUT_MS = 4_000;
const KEEP_ALIVE_HINT_MARGIN_MS = 2_000;
const KEEP_ALIVE_MAX_TIMEOUT_MS = 600_000;

/** The connections to one upstream origin: a keep-alive pool, plus one-off connections for retries. */
export class UpstreamPool {
  readonly #origin: string;
  readonly #clientOptions: Client.Options;
  readonly #pool: Pool;
  readonly #oneOffClients = new Set<Client>();

  constructor(origin: string, options: UpstreamPoolOptions) {
    this.#origin = origin;
    this.#clientOptions = {
      headersTimeout: options.headersTimeoutMs,
      bodyTimeout: options.bodyIdleTimeoutMs,
      keepAliveTimeout: KEEP_ALIVE_TIMEOUT_MS,
      keepAliveTimeoutThreshold: KEEP_ALIVE_HINT_MARGIN_MS,
      keepAliveMaxTimeout: KEEP_ALIVE_MAX_TIMEOUT_MS,
    };
    this.#pool = new Pool(origin, {
      ...this.#clientOptions,
      factory: (url, clientOptions) => new ReuseTrackingClient(url, clientOptions as Client.Options),
    });
  }

  /** Send a request on a pooled connection; `onRequestStart` receives a ConnectionContext. */
  dispatch(options: Dispatcher.DispatchOptions, handler: Dispatcher.DispatchHandler): void {
    this.#pool.dispatch(options, handler);
  }

  /** Send a request on a connection of its own, closed once the response has ended. */
  dispatchOnNewConnection(options: Dispatcher.DispatchOptions, handler: Dispatcher.DispatchHandler): void {
    const client = new Client(this.#origin, { ...this.#clientOptions, pipelining: 0 });
    this.#oneOffClients.add(client);
    client.dispatch(options, handler);
    // `close` lets the request finish first; then the connection goes.
    client.close().then(
      () => this.#oneOffClients.delete(client),
      () => this.#oneOffClients.delete(client),
    );
  }

  /** Abort every request in flight and close every connection. */
  async destroy(): Promise<void> {
    const clients = [...this.#oneOffClients];
    this.#oneOffClients.clear();
    await Promise.all([this.#pool.destroy(), ...clients.map((client) => client.destroy())]);
  }
}

/**
 * One pooled connection that counts the responses it completed since it last connected, and passes each
 * request a ConnectionContext. The Pool hands its clients undici's older handler form (`onConnect`,
 * `onComplete`). A request written right after a reconnect counts as sent on a new connection.
 */
class ReuseTrackingClient extends Client {
  #completedResponses = 0;

  constructor(origin: string | URL, options: Client.Options) {
    super(origin, options);
    const reset = () => {
      this.#completedResponses = 0;
    };
    this.on('connect', reset);
    this.on('disconnect', reset);
  }

  override dispatch(options: Dispatcher.DispatchOptions, handler: Dispatcher.DispatchHandler): boolean {
    return super.dispatch(options, this.#track(handler));
  }

  #track(handler: Dispatcher.DispatchHandler): Dispatcher.DispatchHandler {
    const connection = (): ConnectionContext => ({ connectionReused: this.#completedResponses > 0 });
    const completed = () => {
      this.#completedResponses += 1;
    };

    return new Proxy(handler, {
      get(target, property, receiver) {
        const value: unknown = Reflect.get(target, property, receiver);
        if (typeof value !== 'function') return value;
        const method = value as (...args: unknown[]) => unknown;

        switch (property) {
          case 'onConnect':
            return (abort: unknown) => method.call(target, abort, connection());
          case 'onRequestStart':
            return (controller: unknown) => method.call(target, controller, connection());
          case 'onComplete':
          case 'onResponseEnd':
            return (...args: unknown[]) => {
              completed();
              return method.apply(target, args);
            };
          default:
            return method.bind(target);
        }
      },
    });
  }
}
