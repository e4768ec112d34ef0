import { redactSecrets } from '@tokenwise/core';
import { SERVER_VERSION } from '../version.js';
import { answerTextOf, type JudgeVerdict, judgeExchange, judgeInstructions, parseVerdict } from './judge-prompt.js';

/** The API shape the judge speaks on each route it supports, and the path after the route. */
const JUDGE_ROUTES: Record<string, { shape: 'anthropic' | 'chat' | 'gemini'; path: string }> = {
  anthropic: { shape: 'anthropic', path: '/v1/messages' },
  openai: { shape: 'chat', path: '/v1/chat/completions' },
  openrouter: { shape: 'chat', path: '/v1/chat/completions' },
  groq: { shape: 'chat', path: '/openai/v1/chat/completions' },
  deepseek: { shape: 'chat', path: '/v1/chat/completions' },
  mistral: { shape: 'chat', path: '/v1/chat/completions' },
  xai: { shape: 'chat', path: '/v1/chat/completions' },
  together: { shape: 'chat', path: '/v1/chat/completions' },
  fireworks: { shape: 'chat', path: '/v1/chat/completions' },
  gemini: { shape: 'gemini', path: '/v1beta/models/{model}:generateContent' },
  ollama: { shape: 'chat', path: '/v1/chat/completions' },
};

export const JUDGE_ROUTE_NAMES: readonly string[] = Object.keys(JUDGE_ROUTES);

/** Output tokens the judge may spend on one verdict. */
const MAX_VERDICT_TOKENS = 400;
/** How long one judge request may take, in ms. */
export const JUDGE_TIMEOUT_MS = 60_000;
/** The judge's user agent; the proxy records its calls with the tool id `tokenwise-judge`. */
export const JUDGE_USER_AGENT = `tokenwise-judge/${SERVER_VERSION}`;

export interface JudgeRequest {
  /** `http://host:port/r/<route token>`: the judge's requests go through this server's own proxy. */
  proxyBase: string;
  route: string;
  model: string;
  rubric: string;
  apiKey: string;
  requestText: string;
  answerText: string;
  timeoutMs?: number;
}

export interface JudgeAnswer extends JudgeVerdict {
  /** The judge's message or response id, which its recorded call carries as `response_id`. */
  responseId: string | null;
}

/** The judge's request failed or its answer had no score; the message never contains the API key. */
export class JudgeError extends Error {
  constructor(
    message: string,
    readonly responseId: string | null = null,
  ) {
    super(message);
    this.name = 'JudgeError';
  }
}

/** Ask the judge model for a verdict on one exchange, through the proxy route of the workspace's choice. */
export async function askJudge(request: JudgeRequest): Promise<JudgeAnswer> {
  const route = JUDGE_ROUTES[request.route];
  if (!route) throw new JudgeError(`the judge cannot use the route "${request.route}": choose one of ${JUDGE_ROUTE_NAMES.join(', ')}`);
  const instructions = judgeInstructions(request.rubric);
  const exchange = judgeExchange(request.requestText, request.answerText);
  const { headers, body } = buildRequest(route.shape, request, instructions, exchange);
  const url = `${request.proxyBase}/${request.route}${route.path.replace('{model}', encodeURIComponent(request.model))}`;

  let response: Response;
  try {
    response = await fetch(url, {
      method: 'POST',
      headers: { 'content-type': 'application/json', 'user-agent': JUDGE_USER_AGENT, ...headers },
      body: JSON.stringify(body),
      signal: AbortSignal.timeout(request.timeoutMs ?? JUDGE_TIMEOUT_MS),
    });
  } catch (error) {
    const cause = error instanceof Error ? ((error.cause as Error | undefined)?.message ?? error.message) : String(error);
    throw new JudgeError(`the judge request to the ${request.route} route failed: ${cause}`);
  }
  const text = await response.text();
  if (!response.ok) {
    const message = withoutKey(errorMessageOf(text), request.apiKey);
    throw new JudgeError(`the judge request to the ${request.route} route returned HTTP ${response.status}: ${message}`);
  }
  const responseId = responseIdOf(text);
  const verdict = parseVerdict(answerTextOf(text));
  if (!verdict) throw new JudgeError('the judge answered without a JSON score from 0 to 10', responseId);
  return { ...verdict, responseId };
}

function buildRequest(
  shape: 'anthropic' | 'chat' | 'gemini',
  request: JudgeRequest,
  instructions: string,
  exchange: string,
): { headers: Record<string, string>; body: unknown } {
  if (shape === 'anthropic') {
    return {
      headers: { 'x-api-key': request.apiKey, 'anthropic-version': '2023-06-01' },
      body: { model: request.model, max_tokens: MAX_VERDICT_TOKENS, system: instructions, messages: [{ role: 'user', content: exchange }] },
    };
  }
  if (shape === 'gemini') {
    return {
      headers: { 'x-goog-api-key': request.apiKey },
      body: {
        systemInstruction: { parts: [{ text: instructions }] },
        contents: [{ role: 'user', parts: [{ text: exchange }] }],
        generationConfig: { responseMimeType: 'application/json', maxOutputTokens: MAX_VERDICT_TOKENS },
      },
    };
  }
  // No max_tokens here: OpenAI's reasoning models reject it, and the instructions ask for a short answer.
  return {
    headers: { authorization: `Bearer ${request.apiKey}` },
    body: {
      model: request.model,
      messages: [
        { role: 'system', content: instructions },
        { role: 'user', content: exchange },
      ],
    },
  };
}

function responseIdOf(text: string): string | null {
  try {
    const parsed = JSON.parse(text) as Record<string, unknown>;
    const id = parsed.id ?? parsed.responseId;
    return typeof id === 'string' ? id : null;
  } catch {
    return null;
  }
}

/**
 * Remove the key from a provider's message: some quote the key they rejected, whole or in part, and the
 * message is stored with the judged call.
 */
function withoutKey(message: string, apiKey: string): string {
  const masked = redactSecrets(message.split(apiKey).join('[REDACTED:judge-api-key]'));
  return apiKey.length >= 12 ? masked.split(apiKey.slice(-4)).join('****') : masked;
}

/** Return the provider's error message, or the start of the body. */
function errorMessageOf(text: string): string {
  try {
    const parsed = JSON.parse(text) as { error?: { message?: unknown } | string; message?: unknown };
    const message = typeof parsed.error === 'object' ? parsed.error?.message : (parsed.error ?? parsed.message);
    if (typeof message === 'string') return message.slice(0, 300);
  } catch {
    // Not JSON: the start of the body follows.
  }
  return text.slice(0, 300) || '(empty body)';
}
