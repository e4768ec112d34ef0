import { type ApiShape, extractPromptText } from '@tokenwise/core';

/** Characters of the judged request and of its answer sent to the judge at most, to bound its cost. */
export const MAX_REQUEST_CHARS = 12_000;
export const MAX_ANSWER_CHARS = 8_000;
/** Characters of the judge's reason kept. */
const MAX_REASON_CHARS = 1_000;

export interface JudgeVerdict {
  /** From 0 to 10. */
  score: number;
  reason: string;
}

/**
 * Build the instructions the judge model gets: grade one exchange against the workspace's rubric and reply with
 * a JSON object only, so the answer parses the same way whatever the provider.
 */
export function judgeInstructions(rubric: string): string {
  return [
    'You grade one exchange between an AI coding tool and a language model.',
    'Grade the model answer against this rubric:',
    '<rubric>',
    rubric,
    '</rubric>',
    'Reply with only a JSON object, no other text: {"score": <integer from 0 to 10>, "reason": "<one or two sentences>"}.',
    '10 means the answer meets the rubric fully, 0 that it does not meet it at all.',
  ].join('\n');
}

/** Build the judged exchange as the judge reads it: the request's prompt text (newest message first) and the answer. */
export function judgeExchange(request: string, answer: string): string {
  return ['<request>', clip(request, MAX_REQUEST_CHARS), '</request>', '<answer>', clip(answer, MAX_ANSWER_CHARS), '</answer>'].join('\n');
}

/** Return the readable prompt of a stored request body, else the start of the body itself. */
export function requestTextOf(apiShape: ApiShape | null, body: string): string {
  return extractPromptText(apiShape, body, MAX_REQUEST_CHARS) ?? clip(body, MAX_REQUEST_CHARS);
}

/**
 * Extract the model's answer from a stored response body: a JSON message, a JSON array of chunks (Gemini),
 * newline-delimited JSON (Ollama) or a server-sent event stream, in the Anthropic, OpenAI Chat Completions,
 * Responses and Gemini shapes. Tool calls show as `[tool call NAME]`. Falls back to the start of the body.
 */
export function answerTextOf(body: string): string {
  const parts: string[] = [];
  for (const event of jsonEventsOf(body)) collectAnswer(event, parts);
  const text = parts.join('').trim();
  return text === '' ? clip(body, MAX_ANSWER_CHARS) : clip(text, MAX_ANSWER_CHARS);
}

/**
 * Find the verdict in the judge's answer: the first JSON object with a numeric `score` from 0 to 10,
 * also when the model wrapped it in a code fence or prose. Returns null when there is none.
 */
export function parseVerdict(answer: string): JudgeVerdict | null {
  for (let start = answer.indexOf('{'); start !== -1; start = answer.indexOf('{', start + 1)) {
    for (let end = answer.indexOf('}', start); end !== -1; end = answer.indexOf('}', end + 1)) {
      let value: unknown;
      try {
        value = JSON.parse(answer.slice(start, end + 1));
      } catch {
        continue;
      }
      if (!isObject(value)) continue;
      const score = typeof value.score === 'string' ? Number(value.score) : value.score;
      if (typeof score !== 'number' || !Number.isFinite(score) || score < 0 || score > 10) break;
      const reason = typeof value.reason === 'string' ? value.reason.trim() : '';
      return { score: Math.round(score * 10) / 10, reason: clip(reason, MAX_REASON_CHARS) };
    }
  }
  return null;
}

function jsonEventsOf(body: string): unknown[] {
  const trimmed = body.trim();
  const whole = tryParse(trimmed);
  if (whole !== undefined) return Array.isArray(whole) ? whole : [whole];

  const events: unknown[] = [];
  for (const line of trimmed.split(/\r?\n/)) {
    const data = line.startsWith('data:') ? line.slice(5).trim() : line.trim();
    if (data === '' || data === '[DONE]' || line.startsWith('event:') || line.startsWith(':')) continue;
    const event = tryParse(data);
    if (event !== undefined) events.push(event);
  }
  return events;
}

function collectAnswer(event: unknown, parts: string[]): void {
  if (!isObject(event)) return;
  // Anthropic: a whole message, or content_block_start / content_block_delta events.
  if (event.type === 'message' && Array.isArray(event.content)) {
    for (const block of event.content) collectBlock(block, parts);
    return;
  }
  if (event.type === 'content_block_start') collectBlock(event.content_block, parts);
  if (event.type === 'content_block_delta' && isObject(event.delta) && typeof event.delta.text === 'string') parts.push(event.delta.text);

  // OpenAI Chat Completions: choices[].message (whole) or choices[].delta (stream).
  if (Array.isArray(event.choices)) {
    for (const choice of event.choices) {
      if (!isObject(choice)) continue;
      const message = isObject(choice.message) ? choice.message : isObject(choice.delta) ? choice.delta : null;
      if (!message) continue;
      if (typeof message.content === 'string') parts.push(message.content);
      if (Array.isArray(message.tool_calls)) {
        for (const call of message.tool_calls) {
          if (isObject(call) && isObject(call.function) && typeof call.function.name === 'string')
            parts.push(`\n[tool call ${call.function.name}]\n`);
        }
      }
    }
  }

  // Responses: the whole response, or output_text deltas.
  if (event.object === 'response' && Array.isArray(event.output)) collectResponsesOutput(event.output, parts);
  if (event.type === 'response.output_text.delta' && typeof event.delta === 'string') parts.push(event.delta);
  if (event.type === 'response.output_item.done' && isObject(event.item) && event.item.type === 'function_call') {
    parts.push(`\n[tool call ${String(event.item.name)}]\n`);
  }

  // Gemini: candidates[].content.parts[], in whole answers and in each chunk of a stream (Code Assist wraps them in `response`).
  const gemini = isObject(event.response) ? event.response : event;
  if (Array.isArray(gemini.candidates)) {
    for (const candidate of gemini.candidates) {
      if (!isObject(candidate) || !isObject(candidate.content) || !Array.isArray(candidate.content.parts)) continue;
      for (const part of candidate.content.parts) {
        if (!isObject(part)) continue;
        if (typeof part.text === 'string' && part.thought !== true) parts.push(part.text);
        if (isObject(part.functionCall)) parts.push(`\n[tool call ${String(part.functionCall.name)}]\n`);
      }
    }
  }

  // Ollama's native API: message.content (chat) or response (generate).
  if (isObject(event.message) && typeof event.message.content === 'string' && event.model !== undefined) parts.push(event.message.content);
  if (typeof event.response === 'string' && event.model !== undefined) parts.push(event.response);
}

function collectBlock(block: unknown, parts: string[]): void {
  if (!isObject(block)) return;
  if (block.type === 'text' && typeof block.text === 'string') parts.push(block.text);
  if (block.type === 'tool_use' || block.type === 'server_tool_use') parts.push(`\n[tool call ${String(block.name)}]\n`);
}

function collectResponsesOutput(output: unknown[], parts: string[]): void {
  for (const item of output) {
    if (!isObject(item)) continue;
    if (item.type === 'function_call') parts.push(`\n[tool call ${String(item.name)}]\n`);
    if (item.type !== 'message' || !Array.isArray(item.content)) continue;
    for (const content of item.content) {
      if (isObject(content) && content.type === 'output_text' && typeof content.text === 'string') parts.push(content.text);
    }
  }
}

function tryParse(text: string): unknown {
  if (text === '' || (text[0] !== '{' && text[0] !== '[')) return undefined;
  try {
    return JSON.parse(text);
  } catch {
    return undefined;
  }
}

function isObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

function clip(text: string, maxChars: number): string {
  return text.length > maxChars ? `${text.slice(0, maxChars)}\n[cut after ${maxChars} characters]` : text;
}
