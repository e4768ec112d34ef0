/**
 * Fields that describe one connection rather than the message (RFC 9110 section 7.6.1), plus the
 * proxy-authentication pair and `trailer`; the runtime sets its own for each hop.
 */
const HOP_BY_HOP = new Set([
  'connection',
  'proxy-connection',
  'keep-alive',
  'te',
  'transfer-encoding',
  'upgrade',
  'trailer',
  'proxy-authenticate',
  'proxy-authorization',
]);

/** Fields the runtime sets for the upstream request itself. */
const REQUEST_ONLY = new Set(['host', 'expect', 'content-length']);

/**
 * Fields Cloudflare's edge adds to a request before the Worker sees it, which the client never sent:
 * the visitor's address and country, the ray id, the loop guard. They stay out of the upstream request
 * and the record. The `cf-` prefix covers `cf-connecting-ip`, `cf-ipcountry`, `cf-ray`, `cf-visitor`.
 */
const EDGE_ADDED = new Set(['x-real-ip', 'x-forwarded-for', 'x-forwarded-proto', 'cdn-loop']);

/** Fields of the WebSocket opening handshake (RFC 6455 section 4); the runtime negotiates its own per hop. */
const WEBSOCKET_HANDSHAKE = new Set(['sec-websocket-key', 'sec-websocket-version', 'sec-websocket-extensions', 'sec-websocket-accept']);

/** The client's request fields to send upstream, as a plain lowercase record (also what the capture sees). */
export function forwardRequestHeaders(headers: Headers, options: { webSocket?: boolean } = {}): Record<string, string> {
  const dropped = droppedNames(headers, REQUEST_ONLY);
  const forwarded: Record<string, string> = {};
  for (const [name, value] of headers) {
    if (dropped.has(name) || name.startsWith('cf-') || EDGE_ADDED.has(name)) continue;
    if (options.webSocket && WEBSOCKET_HANDSHAKE.has(name)) continue;
    forwarded[name] = value;
  }
  return forwarded;
}

/** The upstream's response fields to send the client: all of them minus hop-by-hop ones. */
export function forwardResponseHeaders(headers: Headers, options: { webSocket?: boolean } = {}): Headers {
  const dropped = droppedNames(headers, new Set());
  const forwarded = new Headers();
  for (const [name, value] of headers) {
    if (dropped.has(name) || (options.webSocket && WEBSOCKET_HANDSHAKE.has(name))) continue;
    forwarded.append(name, value);
  }
  return forwarded;
}

/** A plain lowercase record of headers, for the capture. */
export function headerRecord(headers: Headers): Record<string, string> {
  const record: Record<string, string> = {};
  for (const [name, value] of headers) record[name] = value;
  return record;
}

/** Names listed in `connection` are hop-by-hop for this message too (RFC 9110 section 7.6.1). */
function droppedNames(headers: Headers, extra: ReadonlySet<string>): Set<string> {
  const dropped = new Set([...HOP_BY_HOP, ...extra]);
  for (const option of (headers.get('connection') ?? '').split(',')) {
    const name = option.trim().toLowerCase();
    if (name !== '') dropped.add(name);
  }
  return dropped;
}
