import { randomBytes } from 'node:crypto';

/** What the fake provider did with one request, kept beside the recorded request for assertions. */
export interface FakeAnswer {
  /** API the request was routed to, e.g. `anthropic.messages`, `openai.responses`, `codeassist.loadCodeAssist`. */
  endpoint: string;
  /** `text`: the fixed answer; `tool_call`: a shell tool call; `prewarm`: an empty Codex prewarm; `metadata`: a non-model answer. */
  kind: 'text' | 'tool_call' | 'prewarm' | 'metadata' | 'error';
  status: number;
  stream: 'sse' | 'json-array' | 'websocket' | null;
  /** Message, completion or response id in the answer body; null when the answer has none. */
  responseId: string | null;
  /** Value of the `request-id` (Anthropic) or `x-request-id` (OpenAI) response header; null when not sent. */
  upstreamRequestId: string | null;
  model: string | null;
  /** Bytes of the HTTP response body the fake wrote; absent for WebSocket answers. */
  responseBytes?: number;
}

/** An HTTP answer. Each chunk is written and flushed on its own, the way a provider's stream arrives in reads. */
export interface FakeReply {
  status: number;
  headers: Record<string, string>;
  chunks: string[];
  answer: FakeAnswer;
}

/** Behaviour switches shared by every API family. */
export interface FakeTurnBehavior {
  /** Answer the first call of a turn (no tool result in the request yet) with a shell tool call. */
  toolCallFirst: boolean;
  /**
   * Text of every text answer instead of `FAKE_ANSWER_TEXT`, in every API family (Gemini's JSON mode
   * included), for clients that parse the answer, such as an LLM judge expecting a JSON verdict.
   */
  answerText?: string;
}

export function fakeId(prefix: string, hexLength = 24): string {
  return `${prefix}${randomBytes(Math.ceil(hexLength / 2))
    .toString('hex')
    .slice(0, hexLength)}`;
}

export function jsonReply(status: number, headers: Record<string, string>, body: unknown, answer: FakeAnswer): FakeReply {
  return {
    status,
    headers: { 'content-type': 'application/json', ...headers },
    chunks: [typeof body === 'string' ? body : JSON.stringify(body)],
    answer,
  };
}

/** Format an SSE event with an `event:` line, as Anthropic and the Responses API send them. */
export function namedSseEvent(type: string, data: unknown): string {
  return `event: ${type}\ndata: ${JSON.stringify(data)}\n\n`;
}

/** Split the answer text in two deltas, so a client has to join stream pieces to print it. */
export function splitText(text: string): [string, string] {
  const middle = Math.ceil(text.length / 2);
  return [text.slice(0, middle), text.slice(middle)];
}

export function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

/** Parse a JSON request body; `undefined` when it is not JSON, so the caller can answer 400. */
export function parseJsonBody(text: string): unknown {
  try {
    return JSON.parse(text);
  } catch {
    return undefined;
  }
}

/** Names of the function tools a request offers, across the Anthropic, OpenAI and Gemini tool shapes. */
export function offeredToolNames(tools: unknown): Set<string> {
  const names = new Set<string>();
  if (!Array.isArray(tools)) return names;
  for (const tool of tools) {
    if (!isRecord(tool)) continue;
    if (typeof tool.name === 'string') names.add(tool.name);
    if (isRecord(tool.function) && typeof tool.function.name === 'string') names.add(tool.function.name);
    if (Array.isArray(tool.functionDeclarations)) {
      for (const declaration of tool.functionDeclarations) {
        if (isRecord(declaration) && typeof declaration.name === 'string') names.add(declaration.name);
      }
    }
  }
  return names;
}

export function nowSeconds(): number {
  return Math.floor(Date.now() / 1000);
}
