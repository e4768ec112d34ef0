// The Node floor: a pass-through proxy on node:http and undici with no capture, no store and no routing.
// It measures what a Node proxy costs before Tokenwise adds anything.
// Usage: node node-minimal-proxy.mjs PORT UPSTREAM_URL. It prints "listening" once it accepts connections.
import { createServer } from 'node:http';
import { Pool } from 'undici';

const [portArg, upstreamArg] = process.argv.slice(2);
const upstream = new URL(upstreamArg);
const pool = new Pool(upstream.origin, { connections: 256, pipelining: 1 });

/** Headers of one hop that a proxy must not forward (RFC 9110 section 7.6.1). */
const HOP_BY_HOP = new Set(['connection', 'keep-alive', 'proxy-connection', 'transfer-encoding', 'upgrade', 'te', 'trailer', 'host']);

function forwardable(headers) {
  const kept = {};
  for (const [name, value] of Object.entries(headers)) if (!HOP_BY_HOP.has(name) && value !== undefined) kept[name] = value;
  return kept;
}

const server = createServer(async (req, res) => {
  try {
    const hasBody = req.headers['content-length'] !== undefined || req.headers['transfer-encoding'] !== undefined;
    const answer = await pool.request({
      method: req.method,
      path: req.url,
      headers: forwardable(req.headers),
      body: hasBody ? req : undefined,
    });
    res.writeHead(answer.statusCode, forwardable(answer.headers));
    answer.body.pipe(res);
  } catch (error) {
    if (!res.headersSent) res.writeHead(502, { 'content-type': 'text/plain' });
    res.end(`upstream failed: ${error.message}`);
  }
});
server.keepAliveTimeout = 60_000;
server.listen(Number(portArg), '127.0.0.1', () => console.log('listening'));
