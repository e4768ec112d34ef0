import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { answerAnthropicMessages } from './fake-provider-anthropic.js';
import { answerChatCompletions } from './fake-provider-openai.js';
import { isRecord, parseJsonBody } from './fake-provider-reply.js';

/** The models the fake Ollama has "pulled"; any other model gets Ollama's 404. */
export const FAKE_OLLAMA_MODELS = ['llama3.2:3b', 'qwen3:0.6b'] as const;
/** The reply text, streamed one piece per NDJSON line. */
export const FAKE_OLLAMA_PIECES = ['Hi', ' from', ' the', ' fake', ' Ollama', '.'] as const;
export const FAKE_OLLAMA_ANSWER = FAKE_OLLAMA_PIECES.join('');
/** Counts and durations (ns) of the final object, as Ollama reports them. */
export const FAKE_OLLAMA_STATS = {
  total_duration: 812_000_000,
  load_duration: 41_000_000,
  prompt_eval_count: 26,
  prompt_eval_duration: 130_000_000,
  eval_count: FAKE_OLLAMA_PIECES.length,
  eval_duration: 600_000_000,
} as const;
export const FAKE_OLLAMA_VERSION = '0.12.6';

export interface FakeOllamaRequest {
  method: string;
  path: string;
  headers: Record<string, string | string[] | undefined>;
  bodyText: string;
  status: number;
}

export interface FakeOllama {
  /** Origin, e.g. `http://127.0.0.1:41234`. */
  readonly url: string;
  readonly port: number;
  /** `host:port`, the form OLLAMA_HOST takes. */
  readonly hostPort: string;
  requests(): FakeOllamaRequest[];
  close(): Promise<void>;
}

/**
 * Start a fake Ollama server on 127.0.0.1 that speaks Ollama's native API: `GET /` ("Ollama is running"),
 * `/api/version`, `/api/tags`, `/api/chat` and `/api/generate`. The last two stream NDJSON
 * (`application/x-ndjson`) unless the request sets `"stream": false`. Each line is one object, and the
 * last one has `done: true`, `done_reason`, the counts and the durations in nanoseconds. An unknown model
 * gets Ollama's 404 `{"error": "..."}`. The OpenAI- and Anthropic-compatible endpoints
 * (`/v1/chat/completions`, `/v1/messages`) respond as the fake provider does. It never forwards anything.
 */
export async function startFakeOllama(options: { port?: number } = {}): Promise<FakeOllama> {
  const recorded: FakeOllamaRequest[] = [];
  const server = createServer((request, response) => {
    collect(request)
      .then((bodyText) => {
        const path = (request.url ?? '/').split('?')[0] ?? '/';
        const status = answer(request.method ?? 'GET', path, bodyText, response);
        recorded.push({ method: request.method ?? 'GET', path, headers: { ...request.headers }, bodyText, status });
      })
      .catch((error: unknown) => response.destroy(error instanceof Error ? error : new Error(String(error))));
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(options.port ?? 0, '127.0.0.1', () => resolve());
  });
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}`,
    port,
    hostPort: `127.0.0.1:${port}`,
    requests: () => recorded.map((entry) => ({ ...entry })),
    close: () => closeServer(server),
  };
}

/** Write the response to one request and return its status. */
function answer(method: string, path: string, bodyText: string, response: ServerResponse): number {
  if ((method === 'GET' || method === 'HEAD') && path === '/') {
    response.writeHead(200, { 'content-type': 'text/plain; charset=utf-8' });
    response.end(method === 'HEAD' ? undefined : 'Ollama is running');
    return 200;
  }
  if (method === 'GET' && path === '/api/version') return json(response, 200, { version: FAKE_OLLAMA_VERSION });
  if (method === 'GET' && path === '/api/tags') {
    return json(response, 200, { models: FAKE_OLLAMA_MODELS.map((name) => ({ name, model: name, size: 1_000_000 })) });
  }
  if (method === 'POST' && (path === '/api/chat' || path === '/api/generate')) return generate(path === '/api/chat', bodyText, response);
  if (method === 'POST' && path === '/v1/chat/completions')
    return reply(response, answerChatCompletions(bodyText, { toolCallFirst: false }));
  if (method === 'POST' && path === '/v1/messages') return reply(response, answerAnthropicMessages(bodyText, { toolCallFirst: false }));
  return json(response, 404, { error: `404 page not found: ${method} ${path}` });
}

function generate(chat: boolean, bodyText: string, response: ServerResponse): number {
  const body = parseJsonBody(bodyText);
  if (!isRecord(body) || typeof body.model !== 'string') return json(response, 400, { error: 'model is required' });
  const model = body.model;
  if (!(FAKE_OLLAMA_MODELS as readonly string[]).includes(model)) {
    return json(response, 404, { error: `model "${model}" not found, try pulling it first` });
  }

  const createdAt = new Date().toISOString();
  const piece = (text: string) => (chat ? { message: { role: 'assistant', content: text } } : { response: text });
  const final = { model, created_at: createdAt, ...piece(''), done: true, done_reason: 'stop', ...FAKE_OLLAMA_STATS };
  if (body.stream === false) {
    return json(response, 200, { ...final, ...piece(FAKE_OLLAMA_ANSWER), ...(chat ? {} : { context: [1, 2, 3] }) });
  }

  response.writeHead(200, { 'content-type': 'application/x-ndjson' });
  response.flushHeaders();
  for (const text of FAKE_OLLAMA_PIECES) {
    response.write(`${JSON.stringify({ model, created_at: createdAt, ...piece(text), done: false })}\n`);
  }
  response.end(`${JSON.stringify(final)}\n`);
  return 200;
}

function json(response: ServerResponse, status: number, body: unknown): number {
  response.writeHead(status, { 'content-type': 'application/json; charset=utf-8' });
  response.end(JSON.stringify(body));
  return status;
}

function reply(response: ServerResponse, fake: { status: number; headers: Record<string, string>; chunks: string[] }): number {
  response.writeHead(fake.status, fake.headers);
  for (const chunk of fake.chunks) response.write(chunk);
  response.end();
  return fake.status;
}

function collect(request: IncomingMessage): Promise<string> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    request.on('data', (chunk: Buffer) => chunks.push(chunk));
    request.on('end', () => resolve(Buffer.concat(chunks).toString('utf8')));
    request.on('error', reject);
  });
}

function closeServer(server: Server): Promise<void> {
  return new Promise((resolve) => {
    server.close(() => resolve());
    server.closeAllConnections();
  });
}
