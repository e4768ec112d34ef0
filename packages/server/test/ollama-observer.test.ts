import { writeFile } from 'node:fs/promises';
import { createServer } from 'node:net';
import { join } from 'node:path';
import type { CallRecord } from '@tokenwise/core';
import { OLLAMA_OBSERVER_FILE, parseOllamaListen } from '@tokenwise/server';
import {
  FAKE_OLLAMA_ANSWER,
  FAKE_OLLAMA_PIECES,
  FAKE_OLLAMA_STATS,
  type FakeOllama,
  makeTestDir,
  startFakeOllama,
} from '@tokenwise/testkit';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { startTestServer, type TestServer } from './helpers/test-server.js';

let ollama: FakeOllama;
let running: TestServer | undefined;

beforeEach(async () => {
  ollama = await startFakeOllama();
});

afterEach(async () => {
  await running?.dispose();
  running = undefined;
  await ollama.close();
});

async function startWithObserver(): Promise<{ running: TestServer; observer: string }> {
  const started = await startTestServer({ upstreams: { ollama: ollama.url }, ollamaListen: { host: '127.0.0.1', port: 0 } });
  await started.server.ollamaObserver!.listening();
  return { running: started, observer: started.server.ollamaObserver!.url()! };
}

async function storedCalls(server: TestServer): Promise<CallRecord[]> {
  const response = await server.api('/api/v1/calls?limit=50');
  return ((await response.json()) as { calls: CallRecord[] }).calls;
}

describe('Ollama observer', () => {
  it('records a streamed /api/chat and passes its NDJSON through', async () => {
    const started = await startWithObserver();
    running = started.running;

    const response = await fetch(`${started.observer}/api/chat`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', 'user-agent': 'ollama-python/0.6.0 (x86_64 linux) Python/3.12.3' },
      body: JSON.stringify({ model: 'llama3.2:3b', messages: [{ role: 'user', content: 'hi' }] }),
    });
    const lines = (await response.text())
      .trim()
      .split('\n')
      .map((line) => JSON.parse(line) as { message: { content: string }; done: boolean; eval_count?: number });

    expect(response.headers.get('content-type')).toBe('application/x-ndjson');
    expect(lines.map((line) => line.message.content).join('')).toBe(FAKE_OLLAMA_ANSWER);
    expect(lines.at(-1)).toMatchObject({ done: true, eval_count: FAKE_OLLAMA_PIECES.length });

    await vi.waitFor(async () => expect(await storedCalls(running!)).toHaveLength(1));
    const [call] = await storedCalls(running);
    expect(call).toMatchObject({
      route: 'ollama',
      provider: 'ollama',
      api_shape: 'ollama.chat',
      path: '/api/chat',
      model_requested: 'llama3.2:3b',
      model_answered: 'llama3.2:3b',
      status: 'success',
      streaming: true,
      stream_format: 'ndjson',
      stop_reason: 'stop',
      usage: { input_tokens: FAKE_OLLAMA_STATS.prompt_eval_count, output_tokens: FAKE_OLLAMA_STATS.eval_count },
      cost: { usd: 0, basis: 'none' },
    });
    expect(call!.timing.ttft_ms).not.toBeNull();
    expect(call!.workspace_id).not.toBeNull();
  });

  it("keeps Ollama's own timings in the store", async () => {
    const started = await startWithObserver();
    running = started.running;

    const response = await fetch(`${started.observer}/api/chat`, {
      method: 'POST',
      body: JSON.stringify({ model: 'llama3.2:3b', messages: [{ role: 'user', content: 'hi' }] }),
    });
    await response.text();

    await vi.waitFor(async () => expect(await storedCalls(running!)).toHaveLength(1));
    const [listed] = await storedCalls(running);
    // The fake reports nanoseconds; the record keeps ms.
    const expected = {
      model_load_ms: FAKE_OLLAMA_STATS.load_duration / 1e6,
      prompt_eval_ms: FAKE_OLLAMA_STATS.prompt_eval_duration / 1e6,
      eval_ms: FAKE_OLLAMA_STATS.eval_duration / 1e6,
    };
    expect(listed!.timing).toMatchObject(expected);
    const detail = (await (await running.api(`/api/v1/calls/${listed!.id}/detail`)).json()) as { timing: Record<string, unknown> };
    expect(detail.timing).toMatchObject(expected);
  });

  it('records /api/generate and the compatible endpoints', async () => {
    const started = await startWithObserver();
    running = started.running;

    const generate = await fetch(`${started.observer}/api/generate`, {
      method: 'POST',
      body: JSON.stringify({ model: 'qwen3:0.6b', prompt: 'why is the sky blue?', stream: false }),
    });
    expect(((await generate.json()) as { response: string }).response).toBe(FAKE_OLLAMA_ANSWER);
    const compatible = await fetch(`${started.observer}/v1/chat/completions`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', authorization: 'Bearer ollama' },
      body: JSON.stringify({ model: 'qwen3:0.6b', messages: [{ role: 'user', content: 'hi' }] }),
    });
    expect(compatible.status).toBe(200);
    await compatible.text();
    const anthropic = await fetch(`${started.observer}/v1/messages`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', 'x-api-key': 'ollama', 'anthropic-version': '2023-06-01' },
      body: JSON.stringify({ model: 'qwen3:0.6b', max_tokens: 64, messages: [{ role: 'user', content: 'hi' }] }),
    });
    expect(anthropic.status).toBe(200);
    await anthropic.text();

    await vi.waitFor(async () => expect(await storedCalls(running!)).toHaveLength(3));
    const calls = await storedCalls(running);
    const generated = calls.find((call) => call.api_shape === 'ollama.generate')!;
    expect(generated).toMatchObject({ stream_requested: false, streaming: false, status: 'success', cost: { usd: 0, basis: 'none' } });
    expect(generated.usage.output_tokens).toBe(FAKE_OLLAMA_STATS.eval_count);
    const chat = calls.find((call) => call.api_shape === 'openai.chat_completions')!;
    expect(chat).toMatchObject({ route: 'ollama', status: 'success', cost: { usd: 0, basis: 'none' } });
    const messages = calls.find((call) => call.api_shape === 'anthropic.messages')!;
    expect(messages).toMatchObject({ route: 'ollama', provider: 'ollama', status: 'success', cost: { usd: 0, basis: 'none' } });
    expect(messages.usage.output_tokens).toBeGreaterThan(0);
  });

  it('passes model listings through unrecorded', async () => {
    const started = await startWithObserver();
    running = started.running;

    const root = await fetch(`${started.observer}/`);
    expect(await root.text()).toBe('Ollama is running');
    const tags = await fetch(`${started.observer}/api/tags`);
    expect(((await tags.json()) as { models: unknown[] }).models.length).toBeGreaterThan(0);
    // A recorded call after them, so the wait below proves the listings were not recorded.
    await (
      await fetch(`${started.observer}/api/generate`, { method: 'POST', body: JSON.stringify({ model: 'qwen3:0.6b', prompt: 'x' }) })
    ).text();

    await vi.waitFor(async () => expect(await storedCalls(running!)).toHaveLength(1));
    expect(ollama.requests().map((request) => request.path)).toEqual(['/', '/api/tags', '/api/generate']);
  });

  it("records Ollama's error for an unknown model", async () => {
    const started = await startWithObserver();
    running = started.running;

    const response = await fetch(`${started.observer}/api/chat`, { method: 'POST', body: JSON.stringify({ model: 'nope', messages: [] }) });
    expect(response.status).toBe(404);
    expect(await response.json()).toEqual({ error: 'model "nope" not found, try pulling it first' });

    await vi.waitFor(async () => expect(await storedCalls(running!)).toHaveLength(1));
    const [call] = await storedCalls(running);
    expect(call).toMatchObject({ status: 'error', http_status: 404, error: { message: 'model "nope" not found, try pulling it first' } });
  });

  it("answers in Ollama's error shape when Ollama is down", async () => {
    const started = await startWithObserver();
    running = started.running;
    await ollama.close();

    const listing = await fetch(`${started.observer}/api/tags`);
    expect(listing.status).toBe(502);
    expect(((await listing.json()) as { error: string }).error).toContain(`could not reach Ollama at ${ollama.url}`);
    const chat = await fetch(`${started.observer}/api/chat`, {
      method: 'POST',
      body: JSON.stringify({ model: 'llama3.2:3b', messages: [] }),
    });
    expect(chat.status).toBe(502);
    expect(typeof ((await chat.json()) as { error: unknown }).error).toBe('string');
    ollama = await startFakeOllama();
  });

  it('rejects an observer that would forward to itself', async () => {
    await expect(
      startTestServer({ upstreams: { ollama: ollama.url }, ollamaListen: { host: 'localhost', port: ollama.port } }),
    ).rejects.toThrow(/would listen on localhost:\d+, where it forwards to/);
  });

  it('takes its port once Ollama has moved away', async () => {
    const holder = createServer();
    await new Promise<void>((resolve) => holder.listen(0, '127.0.0.1', () => resolve()));
    const port = (holder.address() as { port: number }).port;

    running = await startTestServer({ upstreams: { ollama: ollama.url }, ollamaListen: { host: '127.0.0.1', port } });
    expect(running.server.ollamaObserver!.url()).toBeNull();
    expect(running.logs.text()).toContain('the Ollama observer port is in use');

    await new Promise<void>((resolve) => holder.close(() => resolve()));
    await running.server.ollamaObserver!.listening();
    expect(running.server.ollamaObserver!.url()).toBe(`http://127.0.0.1:${port}`);
  }, 20_000);

  it('starts from the settings connect wrote into the data directory', async () => {
    const { dir } = await makeTestDir('tokenwise-ollama-');
    await writeFile(join(dir, OLLAMA_OBSERVER_FILE), JSON.stringify({ listen: '127.0.0.1:0', upstream: ollama.url }));

    running = await startTestServer({ dataDir: dir });
    await running.server.ollamaObserver!.listening();
    const response = await fetch(`${running.server.ollamaObserver!.url()}/api/generate`, {
      method: 'POST',
      body: JSON.stringify({ model: 'qwen3:0.6b', prompt: 'x', stream: false }),
    });

    expect(response.status).toBe(200);
    expect(ollama.requests().at(-1)?.path).toBe('/api/generate');
  });
});

describe('parseOllamaListen', () => {
  it('reads the forms OLLAMA_HOST takes', () => {
    expect(parseOllamaListen('127.0.0.1:11434', 'x')).toEqual({ host: '127.0.0.1', port: 11434 });
    expect(parseOllamaListen('0.0.0.0', 'x')).toEqual({ host: '0.0.0.0', port: 11434 });
    expect(parseOllamaListen(':11500', 'x')).toEqual({ host: '127.0.0.1', port: 11500 });
    expect(parseOllamaListen('http://localhost:8080', 'x')).toEqual({ host: 'localhost', port: 8080 });
    expect(parseOllamaListen('[::1]:11434', 'x')).toEqual({ host: '::1', port: 11434 });
  });

  it('rejects a path or another scheme', () => {
    expect(() => parseOllamaListen('127.0.0.1:11434/api', '--ollama-listen')).toThrow(/invalid --ollama-listen "127.0.0.1:11434\/api"/);
    expect(() => parseOllamaListen('https://127.0.0.1:11434', '--ollama-listen')).toThrow(/expected HOST:PORT/);
  });
});
