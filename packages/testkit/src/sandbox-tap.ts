import { createServer, request as httpRequest, type IncomingMessage, type Server } from 'node:http';
import { type AddressInfo, connect, type Socket } from 'node:net';

/** One request as a client sent it, before the proxy under test saw it. */
export interface TappedRequest {
  seq: number;
  /** `http`, or `upgrade` for a request with `Upgrade:` (its bytes after the head are relayed, not recorded). */
  transport: 'http' | 'upgrade';
  method: string;
  target: string;
  /** Header names and values as the client sent them: name, value, name, value… */
  rawHeaders: string[];
  body: Uint8Array;
}

export interface Tap {
  readonly url: string;
  requests(): TappedRequest[];
  close(): Promise<void>;
}

/**
 * Start a recording pass-through between a client and the proxy under test, so a test can compare what
 * the client sent with what reached the upstream. It forwards method, target, headers (only `host` is
 * set to the proxy's address) and body unchanged, streams the response back, and relays upgrades as raw
 * bytes in both directions.
 */
export async function startTap(targetUrl: string): Promise<Tap> {
  const target = new URL(targetUrl);
  const targetHost = target.hostname;
  const targetPort = Number(target.port || 80);
  const recorded: TappedRequest[] = [];
  let sequence = 0;

  const server: Server = createServer((incoming, outgoing) => {
    const chunks: Buffer[] = [];
    const forwarded = httpRequest({
      host: targetHost,
      port: targetPort,
      method: incoming.method,
      path: incoming.url,
      headers: withHost(incoming.rawHeaders, target.host),
      setHost: false,
    });
    forwarded.on('response', (response) => {
      outgoing.writeHead(response.statusCode ?? 502, response.statusMessage, response.rawHeaders);
      outgoing.flushHeaders();
      response.pipe(outgoing);
    });
    forwarded.on('error', (error) => {
      if (!outgoing.headersSent) {
        outgoing.writeHead(502, { 'content-type': 'text/plain' });
        outgoing.end(`test tap: the proxy under test at ${target.host} failed: ${error.message}\n`);
      } else {
        outgoing.destroy(error);
      }
    });
    outgoing.on('close', () => {
      if (!outgoing.writableFinished) forwarded.destroy();
    });
    incoming.on('data', (chunk: Buffer) => {
      chunks.push(chunk);
      forwarded.write(chunk);
    });
    incoming.on('end', () => {
      recorded.push({
        seq: ++sequence,
        transport: 'http',
        method: incoming.method ?? 'GET',
        target: incoming.url ?? '/',
        rawHeaders: [...incoming.rawHeaders],
        body: new Uint8Array(Buffer.concat(chunks)),
      });
      forwarded.end();
    });
  });

  server.on('upgrade', (incoming: IncomingMessage, clientSocket: Socket, head: Buffer) => {
    recorded.push({
      seq: ++sequence,
      transport: 'upgrade',
      method: incoming.method ?? 'GET',
      target: incoming.url ?? '/',
      rawHeaders: [...incoming.rawHeaders],
      body: new Uint8Array(0),
    });
    const upstream = connect(targetPort, targetHost, () => {
      const headers = withHost(incoming.rawHeaders, target.host);
      let requestHead = `${incoming.method} ${incoming.url} HTTP/${incoming.httpVersion}\r\n`;
      for (let index = 0; index < headers.length; index += 2) requestHead += `${headers[index]}: ${headers[index + 1]}\r\n`;
      upstream.write(`${requestHead}\r\n`);
      if (head.length > 0) upstream.write(head);
      upstream.pipe(clientSocket);
      clientSocket.pipe(upstream);
    });
    const closeBoth = () => {
      upstream.destroy();
      clientSocket.destroy();
    };
    upstream.on('error', closeBoth);
    clientSocket.on('error', closeBoth);
  });

  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => resolve());
  });
  const { port } = server.address() as AddressInfo;

  return {
    url: `http://127.0.0.1:${port}`,
    requests: () => recorded.map((entry) => ({ ...entry, rawHeaders: [...entry.rawHeaders] })),
    close: () =>
      new Promise((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      }),
  };
}

/** The raw header list with `host` replaced (or added), so the proxy sees its own address. */
function withHost(rawHeaders: string[], host: string): string[] {
  const headers: string[] = [];
  let hostSet = false;
  for (let index = 0; index < rawHeaders.length; index += 2) {
    const name = rawHeaders[index] as string;
    if (name.toLowerCase() === 'host') {
      if (!hostSet) headers.push(name, host);
      hostSet = true;
      continue;
    }
    headers.push(name, rawHeaders[index + 1] as string);
  }
  if (!hostSet) headers.unshift('Host', host);
  return headers;
}
