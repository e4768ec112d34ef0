import { request as httpRequest, type IncomingHttpHeaders } from 'node:http';

export interface ClientResponse {
  status: number;
  headers: IncomingHttpHeaders;
  rawHeaders: string[];
  /** Body bytes as received (no content decoding). */
  body: Buffer;
  /** False when the connection ended before the response's proper end. */
  complete: boolean;
}

export interface ClientRequestSpec {
  method?: string;
  path: string;
  headers?: Record<string, string>;
  body?: Uint8Array | string | null;
  /** Hang up as soon as this many response body bytes have arrived. */
  abortAfterBytes?: number;
}

/** Send one request with node:http on a fresh connection and read the whole response, however it ends. */
export function sendRequest(origin: string, spec: ClientRequestSpec): Promise<ClientResponse> {
  const url = new URL(origin);
  return new Promise((resolve, reject) => {
    const req = httpRequest({
      host: url.hostname,
      port: url.port,
      method: spec.method ?? 'GET',
      path: spec.path,
      headers: spec.headers,
      agent: false,
    });
    let responded = false;
    req.on('error', (error) => {
      if (!responded) reject(error);
    });
    req.once('response', (res) => {
      responded = true;
      const chunks: Buffer[] = [];
      let receivedBytes = 0;
      res.on('data', (chunk: Buffer) => {
        chunks.push(chunk);
        receivedBytes += chunk.length;
        if (spec.abortAfterBytes !== undefined && receivedBytes >= spec.abortAfterBytes) req.destroy();
      });
      res.on('error', () => {});
      res.once('close', () =>
        resolve({
          status: res.statusCode ?? 0,
          headers: res.headers,
          rawHeaders: res.rawHeaders,
          body: Buffer.concat(chunks),
          complete: res.complete,
        }),
      );
    });
    req.end(spec.body ?? undefined);
  });
}

/** Header pairs of a raw header list, names lowercased, sorted: the Workers runtime does not keep the order. */
export function sortedHeaderPairs(rawHeaders: readonly string[], ignored: ReadonlySet<string>): [string, string][] {
  const pairs: [string, string][] = [];
  for (let i = 0; i + 1 < rawHeaders.length; i += 2) {
    const name = rawHeaders[i]!.toLowerCase();
    if (!ignored.has(name)) pairs.push([name, rawHeaders[i + 1]!]);
  }
  return pairs.sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
}
