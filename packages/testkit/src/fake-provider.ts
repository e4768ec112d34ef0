import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo, Socket } from 'node:net';
import { brotliDecompressSync, gunzipSync, inflateSync } from 'node:zlib';
import { decompress as zstdDecompress } from 'fzstd';
import { type WebSocket, WebSocketServer } from 'ws';
import { answerAnthropicCountTokens, answerAnthropicMessages, anthropicError } from './fake-provider-anthropic.js';
import { answerCodeAssistMethod, answerGemini, type GeminiVerb } from './fake-provider-gemini.js';
import {
  answerChatCompletions,
  answerModels,
  answerResponses,
  answerResponsesWebSocketMessage,
  openaiError,
} from './fake-provider-openai.js';
import type { FakeAnswer, FakeReply, FakeTurnBehavior } from './fake-provider-reply.js';

export type { FakeAnswer } from './fake-provider-reply.js';

/** How the fake provider behaves; every field can be changed between calls with `configure`. */
export interface FakeProviderBehavior extends FakeTurnBehavior {
  /** `accept`: relay Responses over WebSocket; `reject`: answer every upgrade 426, so Codex falls back to SSE. */
  websocket: 'accept' | 'reject';
  /**
   * Strip a leading `/r/{token}/{route}` from request paths, for clients pointed straight at the fake
   * provider with a proxy-style base URL. Off by default, so a proxy that forgot to strip it is caught.
   */
  stripRoutePrefix: boolean;
  /**
   * Headers added to every HTTP response, such as the rate-limit headers a provider sends
   * (`anthropic-ratelimit-*`, `x-codex-*`); none by default.
   */
  extraResponseHeaders: Record<string, string>;
}

export interface FakeProviderOptions extends Partial<FakeProviderBehavior> {
  /** Address to listen on; 127.0.0.1 unless a test needs another loopback address. */
  host?: string;
  /** 0 (the default) picks a free port. */
  port?: number;
}

/** One request as the fake provider received it, with what it answered. */
export interface RecordedRequest {
  /** Order of arrival, from 1. */
  seq: number;
  /** `http`; `websocket-upgrade` for the upgrade request; `websocket-message` for each client message on it. */
  transport: 'http' | 'websocket-upgrade' | 'websocket-message';
  method: string;
  /** Path and query exactly as received (before any route prefix is stripped). */
  target: string;
  /** Path the fake routed by, without the query. */
  path: string;
  /** The query string with its `?`, or empty. */
  query: string;
  /** Header names and values exactly as received, in order: name, value, name, value… */
  rawHeaders: string[];
  /** Headers with lowercase names; repeated headers joined with `, `. */
  headers: Record<string, string>;
  /** Body bytes as received, before any content coding is undone; for a WebSocket message, its payload. */
  body: Uint8Array;
  /** The body with its content coding undone, as UTF-8 text; null when it could not be decoded. */
  bodyText: string | null;
  answer: FakeAnswer;
}

export interface FakeProvider {
  /** Origin, e.g. `http://127.0.0.1:41234`, without a trailing slash. */
  readonly url: string;
  readonly port: number;
  /** Every request received so far, in order of arrival (copies). */
  requests(): RecordedRequest[];
  /** Forget the recorded requests. */
  clear(): void;
  configure(behavior: Partial<FakeProviderBehavior>): void;
  close(): Promise<void>;
}

const ROUTE_PREFIX = /^\/r\/[^/]+\/[^/]+/;
const GEMINI_MODEL_CALL = /^\/v1(?:beta)?\/models\/([^/:]+):(generateContent|streamGenerateContent|countTokens)$/;
const CODE_ASSIST_CALL = /^\/v1internal:([A-Za-z]+)$/;

/**
 * Start a fake LLM provider on 127.0.0.1 that speaks the Anthropic, OpenAI (API and ChatGPT backend),
 * Gemini and Code Assist wire formats with fixed answers (see `fake-provider-answers.ts`), and records
 * every request for assertions. It never forwards anything anywhere.
 */
export async function startFakeProvider(options: FakeProviderOptions = {}): Promise<FakeProvider> {
  const behavior: FakeProviderBehavior = {
    toolCallFirst: options.toolCallFirst ?? false,
    ...(options.answerText === undefined ? {} : { answerText: options.answerText }),
    websocket: options.websocket ?? 'accept',
    stripRoutePrefix: options.stripRoutePrefix ?? false,
    extraResponseHeaders: options.extraResponseHeaders ?? {},
  };
  const recorded: RecordedRequest[] = [];
  let sequence = 0;
  const record = (entry: Omit<RecordedRequest, 'seq'>) => recorded.push({ seq: ++sequence, ...entry });

  const server = createServer({ keepAlive: true }, (request, response) => {
    collectBody(request)
      .then((body) => {
        const target = request.url ?? '/';
        const { path, query } = splitTarget(target, behavior.stripRoutePrefix);
        const bodyText = decodeBody(body, request.headers['content-encoding']);
        const reply = route(request.method ?? 'GET', path, new URLSearchParams(query), bodyText ?? '', behavior);
        reply.answer.responseBytes = reply.chunks.reduce((total, chunk) => total + Buffer.byteLength(chunk), 0);
        record({
          transport: 'http',
          method: request.method ?? 'GET',
          target,
          path,
          query,
          rawHeaders: [...request.rawHeaders],
          headers: lowercaseHeaders(request),
          body,
          bodyText,
          answer: reply.answer,
        });
        writeReply(response, { ...reply, headers: { ...reply.headers, ...behavior.extraResponseHeaders } });
      })
      .catch((error: unknown) => {
        response.destroy(error instanceof Error ? error : new Error(String(error)));
      });
  });

  const webSockets = new WebSocketServer({ noServer: true });
  server.on('upgrade', (request: IncomingMessage, socket: Socket, head: Buffer) => {
    handleUpgrade({ request, socket, head, webSockets, behavior, record });
  });

  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(options.port ?? 0, options.host ?? '127.0.0.1', () => resolve());
  });
  const address = server.address() as AddressInfo;
  const host = address.family === 'IPv6' ? `[${address.address}]` : address.address;

  return {
    url: `http://${host}:${address.port}`,
    port: address.port,
    requests: () => recorded.map((entry) => ({ ...entry, headers: { ...entry.headers }, rawHeaders: [...entry.rawHeaders] })),
    clear: () => {
      recorded.length = 0;
    },
    configure: (change) => {
      Object.assign(behavior, change);
    },
    close: () => closeServer(server, webSockets),
  };
}

/** Pick the API by method and path; every answer is fixed apart from the stream/tool-call switches. */
function route(method: string, path: string, query: URLSearchParams, bodyText: string, behavior: FakeProviderBehavior): FakeReply {
  if (method === 'POST' && path === '/v1/messages') return answerAnthropicMessages(bodyText, behavior);
  if (method === 'POST' && path === '/v1/messages/count_tokens') return answerAnthropicCountTokens(bodyText);

  if (method === 'POST' && path.endsWith('/chat/completions')) return answerChatCompletions(bodyText, behavior);
  if (method === 'POST' && path.endsWith('/responses')) return answerResponses(bodyText, behavior, responsesEndpoint(path));
  if (method === 'GET' && path.endsWith('/models'))
    return answerModels(query, path.startsWith('/backend-api/') ? 'chatgpt.models' : 'openai.models');

  const geminiCall = GEMINI_MODEL_CALL.exec(path);
  if (method === 'POST' && geminiCall) {
    return answerGemini(geminiCall[2] as GeminiVerb, query, bodyText, { behavior, codeAssist: false });
  }
  const codeAssistCall = CODE_ASSIST_CALL.exec(path);
  if (method === 'POST' && codeAssistCall) {
    const codeAssistMethod = codeAssistCall[1] as string;
    if (codeAssistMethod === 'generateContent' || codeAssistMethod === 'streamGenerateContent' || codeAssistMethod === 'countTokens') {
      return answerGemini(codeAssistMethod, query, bodyText, { behavior, codeAssist: true });
    }
    return answerCodeAssistMethod(codeAssistMethod);
  }

  if (path.startsWith('/v1/messages')) return anthropicError(404, 'not_found_error', `the fake provider does not serve ${method} ${path}`);
  return openaiError(404, 'invalid_request_error', `the fake provider does not serve ${method} ${path}`);
}

function responsesEndpoint(path: string): string {
  return path.startsWith('/backend-api/') ? 'chatgpt.responses' : 'openai.responses';
}

interface UpgradeContext {
  request: IncomingMessage;
  socket: Socket;
  head: Buffer;
  webSockets: WebSocketServer;
  behavior: FakeProviderBehavior;
  record: (entry: Omit<RecordedRequest, 'seq'>) => void;
}

/**
 * Accept or reject the Responses WebSocket (`GET …/responses` with `Upgrade: websocket`). A rejection is
 * a 426, as from a server without WebSocket support, and Codex 0.171.0 then falls back to SSE.
 */
function handleUpgrade({ request, socket, head, webSockets, behavior, record }: UpgradeContext): void {
  const target = request.url ?? '/';
  const { path, query } = splitTarget(target, behavior.stripRoutePrefix);
  const headers = lowercaseHeaders(request);
  const accepted = behavior.websocket === 'accept' && path.endsWith('/responses');
  const status = accepted ? 101 : 426;
  const endpoint = responsesEndpoint(path);
  const answer: FakeAnswer = {
    endpoint: `${endpoint}.websocket`,
    kind: accepted ? 'metadata' : 'error',
    status,
    stream: accepted ? 'websocket' : null,
    responseId: null,
    upstreamRequestId: null,
    model: null,
  };
  record({
    transport: 'websocket-upgrade',
    method: request.method ?? 'GET',
    target,
    path,
    query,
    rawHeaders: [...request.rawHeaders],
    headers,
    body: new Uint8Array(0),
    bodyText: '',
    answer,
  });

  if (!accepted) {
    const body = JSON.stringify({
      error: { message: 'WebSocket is not supported on this endpoint', type: 'invalid_request_error', param: null, code: null },
    });
    socket.end(
      `HTTP/1.1 426 Upgrade Required\r\nContent-Type: application/json\r\nContent-Length: ${Buffer.byteLength(body)}\r\nConnection: close\r\n\r\n${body}`,
    );
    return;
  }

  webSockets.handleUpgrade(request, socket, head, (webSocket: WebSocket) => {
    webSocket.on('message', (data: Buffer | ArrayBuffer | Buffer[], isBinary: boolean) => {
      const bytes = new Uint8Array(Array.isArray(data) ? Buffer.concat(data) : Buffer.from(data as ArrayBuffer));
      const text = isBinary ? null : Buffer.from(bytes).toString('utf8');
      const reply = text === null ? undefined : answerResponsesWebSocketMessage(text, behavior, `${endpoint}.websocket`);
      const messageAnswer: FakeAnswer = reply?.answer ?? { ...answer, kind: 'error', status: 400, stream: 'websocket' };
      record({
        transport: 'websocket-message',
        method: 'WS',
        target,
        path,
        query,
        rawHeaders: [...request.rawHeaders],
        headers,
        body: bytes,
        bodyText: text,
        answer: messageAnswer,
      });

      if (!reply) {
        webSocket.send(
          JSON.stringify({
            type: 'error',
            status: 400,
            error: { type: 'invalid_request_error', message: 'expected a response.create message' },
          }),
        );
        return;
      }
      for (const event of reply.events) webSocket.send(JSON.stringify(event));
    });
  });
}

function writeReply(response: ServerResponse, reply: FakeReply): void {
  response.writeHead(reply.status, reply.headers);
  if (reply.chunks.length === 1 && !reply.answer.stream) {
    response.end(reply.chunks[0]);
    return;
  }
  response.flushHeaders();
  for (const chunk of reply.chunks) response.write(chunk);
  response.end();
}

function collectBody(request: IncomingMessage): Promise<Uint8Array> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    request.on('data', (chunk: Buffer) => chunks.push(chunk));
    request.on('end', () => resolve(new Uint8Array(Buffer.concat(chunks))));
    request.on('error', reject);
  });
}

/** Undo the request's content coding (Codex can send zstd bodies) to read the JSON; null when that fails. */
function decodeBody(body: Uint8Array, contentEncoding: string | undefined): string | null {
  try {
    let bytes: Uint8Array = body;
    const codings = (contentEncoding ?? '')
      .split(',')
      .map((coding) => coding.trim().toLowerCase())
      .filter((coding) => coding !== '' && coding !== 'identity')
      .reverse();
    for (const coding of codings) {
      if (coding === 'gzip' || coding === 'x-gzip') bytes = gunzipSync(bytes);
      else if (coding === 'deflate') bytes = inflateSync(bytes);
      else if (coding === 'br') bytes = brotliDecompressSync(bytes);
      else if (coding === 'zstd') bytes = zstdDecompress(bytes);
      else return null;
    }
    return Buffer.from(bytes).toString('utf8');
  } catch {
    return null;
  }
}

function splitTarget(target: string, stripRoutePrefix: boolean): { path: string; query: string } {
  const queryStart = target.indexOf('?');
  let path = queryStart === -1 ? target : target.slice(0, queryStart);
  const query = queryStart === -1 ? '' : target.slice(queryStart);
  if (stripRoutePrefix) path = path.replace(ROUTE_PREFIX, '') || '/';
  return { path, query };
}

function lowercaseHeaders(request: IncomingMessage): Record<string, string> {
  const headers: Record<string, string> = {};
  for (let index = 0; index < request.rawHeaders.length; index += 2) {
    const name = (request.rawHeaders[index] as string).toLowerCase();
    const value = request.rawHeaders[index + 1] as string;
    headers[name] = name in headers ? `${headers[name]}, ${value}` : value;
  }
  return headers;
}

function closeServer(server: Server, webSockets: WebSocketServer): Promise<void> {
  for (const client of webSockets.clients) client.terminate();
  webSockets.close();
  return new Promise((resolve) => {
    server.close(() => resolve());
    server.closeAllConnections();
  });
}
