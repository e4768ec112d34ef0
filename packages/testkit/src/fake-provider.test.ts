import { gzipSync } from 'node:zlib';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import WebSocket from 'ws';
import { type FakeProvider, startFakeProvider } from './fake-provider.js';
import { FAKE_ANSWER_TEXT, FAKE_MODELS, FAKE_PREWARM_USAGE, FAKE_TOOL_COMMAND, FAKE_USAGE } from './fake-provider-answers.js';

let fake: FakeProvider;

beforeAll(async () => {
  fake = await startFakeProvider();
});
afterAll(async () => {
  await fake.close();
});
beforeEach(async () => {
  fake.clear();
  fake.configure({ toolCallFirst: false, websocket: 'accept', stripRoutePrefix: false });
});

function post(path: string, body: unknown, headers: Record<string, string> = {}): Promise<Response> {
  return fetch(`${fake.url}${path}`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', ...headers },
    body: JSON.stringify(body),
  });
}

/** Split an SSE body into events of `event:` name and parsed `data:` JSON. */
function sseEvents(text: string): { event: string | null; data: string }[] {
  return text
    .split(/\r?\n\r?\n/)
    .filter((block) => block.trim() !== '')
    .map((block) => ({
      event: /^event: (.*)$/m.exec(block)?.[1] ?? null,
      data: /^data: (.*)$/m.exec(block)?.[1] ?? '',
    }));
}

describe('Anthropic Messages', () => {
  const request = { model: 'claude-sonnet-4-5', max_tokens: 64, messages: [{ role: 'user', content: 'Say hi.' }] };

  it('streams the documented event sequence', async () => {
    const response = await post('/v1/messages?beta=true', { ...request, stream: true });
    expect(response.headers.get('content-type')).toBe('text/event-stream; charset=utf-8');
    const events = sseEvents(await response.text());

    expect(events.map((event) => event.event)).toEqual([
      'message_start',
      'content_block_start',
      'ping',
      'content_block_delta',
      'content_block_delta',
      'content_block_stop',
      'message_delta',
      'message_stop',
    ]);
    for (const event of events) expect(JSON.parse(event.data).type).toBe(event.event);
    const deltas = events.filter((event) => event.event === 'content_block_delta').map((event) => JSON.parse(event.data).delta.text);
    expect(deltas.join('')).toBe(FAKE_ANSWER_TEXT);

    const start = JSON.parse(events[0]!.data).message;
    expect(start.model).toBe(FAKE_MODELS.anthropic);
    expect(start.usage.cache_creation).toEqual({
      ephemeral_5m_input_tokens: FAKE_USAGE.anthropic.ephemeral_5m_input_tokens,
      ephemeral_1h_input_tokens: FAKE_USAGE.anthropic.ephemeral_1h_input_tokens,
    });
    const delta = JSON.parse(events[6]!.data);
    expect(delta.delta.stop_reason).toBe('end_turn');
    expect(delta.usage.output_tokens).toBe(FAKE_USAGE.anthropic.output_tokens);
    expect(response.headers.get('request-id')).toBe(fake.requests()[0]?.answer.upstreamRequestId);
  });

  it('answers JSON without stream', async () => {
    const response = await post('/v1/messages', request);
    const message = await response.json();

    expect(message.content).toEqual([{ type: 'text', text: FAKE_ANSWER_TEXT }]);
    expect(message.usage.input_tokens).toBe(FAKE_USAGE.anthropic.input_tokens);
    expect(message.usage.cache_read_input_tokens).toBe(FAKE_USAGE.anthropic.cache_read_input_tokens);
    expect(message.id).toBe(fake.requests()[0]?.answer.responseId);
  });

  it('counts tokens', async () => {
    const response = await post('/v1/messages/count_tokens', { model: request.model, messages: request.messages });
    expect(await response.json()).toEqual({ input_tokens: FAKE_USAGE.countTokens });
    expect(fake.requests()[0]?.answer.kind).toBe('metadata');
  });

  it('rejects a body without messages', async () => {
    const response = await post('/v1/messages', { model: 'x' });
    expect(response.status).toBe(400);
    expect((await response.json()).error.type).toBe('invalid_request_error');
  });

  it('calls the shell tool first in tool-call mode', async () => {
    fake.configure({ toolCallFirst: true });
    const tools = [{ name: 'Bash', input_schema: { type: 'object' } }];

    const first = await (await post('/v1/messages', { ...request, tools })).json();
    expect(first.stop_reason).toBe('tool_use');
    expect(first.content[0]).toMatchObject({ type: 'tool_use', name: 'Bash', input: { command: FAKE_TOOL_COMMAND } });

    const messages = [
      ...request.messages,
      { role: 'assistant', content: first.content },
      { role: 'user', content: [{ type: 'tool_result', tool_use_id: first.content[0].id, content: 'hi-from-tool' }] },
    ];
    const second = await (await post('/v1/messages', { ...request, tools, messages })).json();
    expect(second.stop_reason).toBe('end_turn');
    expect(fake.requests().map((recorded) => recorded.answer.kind)).toEqual(['tool_call', 'text']);
  });
});

describe('OpenAI Chat Completions', () => {
  const request = { model: 'gpt-5', messages: [{ role: 'user', content: 'Say hi.' }] };

  it('answers JSON with usage', async () => {
    const completion = await (await post('/v1/chat/completions', request)).json();
    expect(completion.choices[0].message.content).toBe(FAKE_ANSWER_TEXT);
    expect(completion.usage.prompt_tokens_details.cached_tokens).toBe(FAKE_USAGE.openai.cached_tokens);
    expect(completion.usage.completion_tokens_details.reasoning_tokens).toBe(FAKE_USAGE.openai.reasoning_tokens);
  });

  it('streams a usage chunk only with include_usage', async () => {
    const withUsage = sseEvents(
      await (await post('/v1/chat/completions', { ...request, stream: true, stream_options: { include_usage: true } })).text(),
    );
    expect(withUsage.at(-1)?.data).toBe('[DONE]');
    const usageChunk = JSON.parse(withUsage.at(-2)!.data);
    expect(usageChunk.choices).toEqual([]);
    expect(usageChunk.usage.prompt_tokens).toBe(FAKE_USAGE.openai.input_tokens);

    const withoutUsage = sseEvents(await (await post('/v1/chat/completions', { ...request, stream: true })).text());
    const chunks = withoutUsage.slice(0, -1).map((event) => JSON.parse(event.data));
    expect(chunks.every((chunk) => !('usage' in chunk))).toBe(true);
    expect(chunks.map((chunk) => chunk.choices[0]?.delta?.content ?? '').join('')).toBe(FAKE_ANSWER_TEXT);
  });
});

describe('OpenAI Responses', () => {
  const request = { model: 'gpt-5', input: 'Say hi.' };

  it('streams typed events ending in response.completed', async () => {
    const events = sseEvents(await (await post('/v1/responses', { ...request, stream: true })).text());
    expect(events[0]?.event).toBe('response.created');
    expect(events.at(-1)?.event).toBe('response.completed');
    const text = events.filter((event) => event.event === 'response.output_text.delta').map((event) => JSON.parse(event.data).delta);
    expect(text.join('')).toBe(FAKE_ANSWER_TEXT);
    const completed = JSON.parse(events.at(-1)!.data).response;
    expect(completed.usage).toEqual({
      input_tokens: FAKE_USAGE.openai.input_tokens,
      input_tokens_details: { cached_tokens: FAKE_USAGE.openai.cached_tokens },
      output_tokens: FAKE_USAGE.openai.output_tokens,
      output_tokens_details: { reasoning_tokens: FAKE_USAGE.openai.reasoning_tokens },
      total_tokens: FAKE_USAGE.openai.input_tokens + FAKE_USAGE.openai.output_tokens,
    });
  });

  it('answers the ChatGPT backend path and Codex model list', async () => {
    const response = await (await post('/backend-api/codex/responses', request)).json();
    expect(response.status).toBe('completed');
    const models = await (await fetch(`${fake.url}/backend-api/codex/models?client_version=0.171.0`)).json();
    expect(models).toEqual({ models: [] });
    const list = await (await fetch(`${fake.url}/v1/models`)).json();
    expect(list.data[0].id).toBe(FAKE_MODELS.openai);
    expect(fake.requests().map((recorded) => recorded.answer.endpoint)).toEqual(['chatgpt.responses', 'chatgpt.models', 'openai.models']);
  });

  it('reads a gzip request body', async () => {
    const response = await fetch(`${fake.url}/v1/responses`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', 'content-encoding': 'gzip' },
      body: gzipSync(JSON.stringify(request)),
    });
    expect(response.status).toBe(200);
    expect(fake.requests()[0]?.bodyText).toBe(JSON.stringify(request));
  });

  it('answers each response.create over WebSocket', async () => {
    const socket = new WebSocket(`${fake.url.replace('http', 'ws')}/v1/responses`, { headers: { authorization: 'Bearer FAKE' } });
    const frames: Record<string, unknown>[] = [];
    socket.on('message', (data) => frames.push(JSON.parse(data.toString())));
    await new Promise((resolve) => socket.once('open', resolve));

    const completed = () => frames.filter((frame) => frame.type === 'response.completed').length;
    socket.send(JSON.stringify({ type: 'response.create', ...request, generate: false, input: [] }));
    await expect.poll(completed).toBe(1);
    socket.send(JSON.stringify({ type: 'response.create', ...request }));
    await expect.poll(completed).toBe(2);
    socket.close();

    const finals = frames.filter((frame) => frame.type === 'response.completed') as {
      response: { output: unknown[]; usage: { output_tokens: number } };
    }[];
    expect(finals[0]?.response.output).toEqual([]);
    expect(finals[0]?.response.usage.output_tokens).toBe(FAKE_PREWARM_USAGE.output_tokens);
    expect(finals[1]?.response.usage.output_tokens).toBe(FAKE_USAGE.openai.output_tokens);
    expect(fake.requests().map((recorded) => `${recorded.transport} ${recorded.answer.kind}`)).toEqual([
      'websocket-upgrade metadata',
      'websocket-message prewarm',
      'websocket-message text',
    ]);
    expect(fake.requests()[1]?.headers.authorization).toBe('Bearer FAKE');
  });

  it('answers 426 to upgrades when told to reject them', async () => {
    fake.configure({ websocket: 'reject' });
    const socket = new WebSocket(`${fake.url.replace('http', 'ws')}/v1/responses`);
    // Closing a socket whose handshake failed emits an error; it is expected here.
    socket.on('error', () => {});
    const status = await new Promise<number | undefined>((resolve) => {
      socket.once('unexpected-response', (_request, response) => resolve(response.statusCode));
      socket.once('open', () => resolve(101));
    });
    socket.terminate();
    expect(status).toBe(426);
    expect(fake.requests()[0]?.answer.status).toBe(426);
  });
});

describe('Gemini', () => {
  const request = { contents: [{ role: 'user', parts: [{ text: 'Say hi.' }] }] };

  it('answers generateContent with pretty-printed JSON', async () => {
    const text = await (await post('/v1beta/models/gemini-2.5-flash:generateContent', request)).text();
    expect(text).toContain('\n  "candidates": [');
    const body = JSON.parse(text);
    expect(body.candidates[0].content.parts[0].text).toBe(FAKE_ANSWER_TEXT);
    expect(body.usageMetadata.thoughtsTokenCount).toBe(FAKE_USAGE.gemini.thoughtsTokenCount);
    expect(body.modelVersion).toBe(FAKE_MODELS.gemini);
  });

  it('streams alt=sse with CRLF framing and running usage', async () => {
    const text = await (await post('/v1beta/models/gemini-2.5-flash:streamGenerateContent?alt=sse', request)).text();
    const events = text.split('\r\n\r\n').filter((event) => event !== '');
    expect(events).toHaveLength(2);
    expect(events.every((event) => event.startsWith('data: {"candidates": ['))).toBe(true);
    const chunks = events.map((event) => JSON.parse(event.slice('data: '.length)));
    expect(chunks.map((chunk) => chunk.candidates[0].content.parts[0].text).join('')).toBe(FAKE_ANSWER_TEXT);
    expect(chunks[1].usageMetadata.candidatesTokenCount).toBe(FAKE_USAGE.gemini.candidatesTokenCount);
    expect(chunks[1].candidates[0].finishReason).toBe('STOP');
  });

  it('streams a JSON array without alt=sse', async () => {
    const chunks = JSON.parse(await (await post('/v1beta/models/gemini-2.5-flash:streamGenerateContent', request)).text());
    expect(chunks).toHaveLength(2);
    expect(fake.requests()[0]?.answer.stream).toBe('json-array');
  });

  it('fills a requested JSON schema from the schema alone', async () => {
    const schema = {
      type: 'object',
      properties: { complexity_reasoning: { type: 'string' }, complexity_score: { type: 'integer', minimum: 1, maximum: 100 } },
    };
    const body = await (
      await post('/v1beta/models/gemini-2.5-flash-lite:generateContent', {
        ...request,
        generationConfig: { responseMimeType: 'application/json', responseJsonSchema: schema },
      })
    ).json();
    expect(JSON.parse(body.candidates[0].content.parts[0].text)).toEqual({ complexity_reasoning: FAKE_ANSWER_TEXT, complexity_score: 1 });
  });

  it('wraps Code Assist requests and answers', async () => {
    const load = await (await post('/v1internal:loadCodeAssist', { metadata: {} })).json();
    expect(load.currentTier.id).toBe('standard-tier');
    const text = await (await post('/v1internal:streamGenerateContent?alt=sse', { model: 'gemini-2.5-pro', project: 'p', request })).text();
    const first = JSON.parse(text.split('\r\n\r\n')[0]!.slice('data: '.length));
    expect(first.response.candidates[0].content.parts[0].text).toBeTypeOf('string');
    expect(fake.requests().map((recorded) => recorded.answer.endpoint)).toEqual([
      'codeassist.loadCodeAssist',
      'codeassist.stream_generate_content',
    ]);
  });
});

describe('recording and routing', () => {
  it('keeps raw headers and body bytes', async () => {
    await post('/v1/messages?beta=true', { model: 'm', messages: [] }, { 'X-Api-Key': 'sk-ant-FAKE', 'anthropic-beta': 'a,b' });
    const [recorded] = fake.requests();
    expect(recorded?.target).toBe('/v1/messages?beta=true');
    expect(recorded?.query).toBe('?beta=true');
    expect(recorded?.rawHeaders).toContain('sk-ant-FAKE');
    expect(recorded?.headers['anthropic-beta']).toBe('a,b');
    expect(Buffer.from(recorded!.body).toString()).toBe('{"model":"m","messages":[]}');
    expect(recorded?.answer.responseBytes).toBeGreaterThan(0);
  });

  it('strips a route prefix only when told to', async () => {
    const before = await post('/r/tok12345678/anthropic/v1/messages', { messages: [] });
    expect(before.status).toBe(404);

    fake.configure({ stripRoutePrefix: true });
    const after = await post('/r/tok12345678/anthropic/v1/messages', { messages: [] });
    expect(after.status).toBe(200);
    expect(fake.requests()[1]?.path).toBe('/v1/messages');
  });

  it('answers 404 for unknown paths', async () => {
    const response = await fetch(`${fake.url}/v2/unknown`);
    expect(response.status).toBe(404);
    expect((await response.json()).error.message).toContain('/v2/unknown');
  });
});
