// The fake provider every candidate forwards to, run as its own process on 127.0.0.1 so its CPU time is
// never counted as a candidate's. It keeps no record of requests, so memory stays flat over millions of
// requests. The testkit's fake providers keep every request body for assertions, which a load test
// cannot afford. It serves bytes prepared once:
//   POST …/v1/messages   a ~2 KB JSON message, or with "stream":true an SSE stream of 40 deltas, written
//                        back to back, or 5 ms apart when the body carries GAP_MARKER;
//   POST …/v1/responses  the Codex CLI stream of the llm-wire corpus, its recorded reads back to back.
// Usage: node bench/lib/upstream.mjs; prints {"port": N} on its first line of stdout.
import { createServer } from 'node:http';
import { anthropicJsonResponse, anthropicSseResponse, codexExchange, GAP_MARKER, GAP_MS } from './payloads.mjs';

const json = anthropicJsonResponse();
const sse = anthropicSseResponse();
const codex = codexExchange();
const streamMarker = Buffer.from('"stream":true');
const gapMarker = Buffer.from(GAP_MARKER);

const server = createServer({ keepAlive: true }, (req, res) => {
  const chunks = [];
  req.on('data', (chunk) => chunks.push(chunk));
  req.on('end', () => {
    const body = chunks.length === 1 ? chunks[0] : Buffer.concat(chunks);
    const path = (req.url ?? '/').split('?')[0];
    res.sendDate = false;
    if (req.method === 'POST' && path.endsWith('/messages')) {
      if (body.includes(streamMarker)) writeAnthropicStream(res, body.includes(gapMarker) ? GAP_MS : 0);
      else res.writeHead(200, { 'content-type': 'application/json', 'content-length': json.length, 'request-id': 'req_bench' }).end(json);
    } else if (req.method === 'POST' && path.endsWith('/responses')) {
      res.writeHead(200, codex.responseHeaders);
      for (const read of codex.reads) res.write(read);
      res.end();
    } else {
      const error = JSON.stringify({ error: { message: `the bench upstream does not serve ${req.method} ${path}` } });
      res.writeHead(404, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(error) }).end(error);
    }
  });
});
// Each write must leave as its own segment, so a merged chunk downstream is the proxy's doing.
server.on('connection', (socket) => socket.setNoDelay(true));
server.keepAliveTimeout = 60_000;

function writeAnthropicStream(res, gapMs) {
  res.writeHead(200, { 'content-type': 'text/event-stream; charset=utf-8', 'cache-control': 'no-cache', 'request-id': 'req_bench' });
  res.write(sse.head);
  if (gapMs === 0) {
    for (const delta of sse.deltas) res.write(delta);
    res.end(sse.tail);
    return;
  }
  let next = 0;
  const timer = setInterval(() => {
    if (res.destroyed) {
      clearInterval(timer);
      return;
    }
    res.write(sse.deltas[next]);
    next += 1;
    if (next === sse.deltas.length) {
      clearInterval(timer);
      res.end(sse.tail);
    }
  }, gapMs);
}

server.listen(0, '127.0.0.1', () => {
  process.stdout.write(`${JSON.stringify({ port: server.address().port })}\n`);
});
process.on('SIGTERM', () => process.exit(0));
