/**
 * The parts of the Cloudflare Workers runtime this package uses that the TypeScript `WebWorker` library
 * does not declare. Declared here instead of depending on `@cloudflare/workers-types`, whose global
 * declarations clash with that library. Source: the Workers runtime API reference (Request, Response,
 * WebSockets, Streams, Context pages) and workerd 1.20260426.
 */
declare global {
  /** The `ctx` argument of a Worker's `fetch` handler. */
  interface ExecutionContext {
    /** Keep the Worker running after the response until `promise` settles (at most 30 s on Cloudflare). */
    waitUntil(promise: Promise<unknown>): void;
    passThroughOnException(): void;
  }

  interface RequestInit {
    /** `manual`: hand the response body over still content-encoded, as the upstream sent it. */
    encodeResponseBody?: 'automatic' | 'manual';
  }

  interface ResponseInit {
    /** `manual`: the body is already encoded as `content-encoding` says, so the runtime must not encode it again. */
    encodeBody?: 'automatic' | 'manual';
    /** The client end of a `WebSocketPair`, with status 101. */
    webSocket?: WebSocket | null;
  }

  interface Response {
    /** The accepted WebSocket of a `fetch` sent with `Upgrade: websocket`; null otherwise. */
    readonly webSocket: WebSocket | null;
  }

  interface WebSocket {
    /** Start handling this end's events; required on a Worker's own end and on an upstream's. */
    accept(): void;
  }

  /** Two connected WebSockets: `0` goes to the client in the 101 response, `1` stays in the Worker. */
  var WebSocketPair: {
    new (): { 0: WebSocket; 1: WebSocket };
  };

  /** An identity transform that declares the body's length, so the runtime sends `content-length`. */
  var FixedLengthStream: {
    new (expectedLength: number | bigint): TransformStream<Uint8Array, Uint8Array>;
  };
}

export {};
