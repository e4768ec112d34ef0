// Request and response bytes of the benchmark loads. Every candidate gets the same bytes, built once.
// The Codex load replays a case of the testkit's llm-wire corpus. The Anthropic loads are built here in
// the shape of the Messages API, because their sizes are part of what is measured.
import path from 'node:path';
import { fixturesRoot, loadWireFixture } from '@tokenwise/testkit';

/** Number of `content_block_delta` events in each Anthropic stream. */
export const SSE_DELTAS = 40;
/** Marker in a request body that makes the bench upstream space the deltas this many ms apart. */
export const GAP_MARKER = 'bench_gap_5ms';
export const GAP_MS = 5;

const ANTHROPIC_MODEL = 'claude-sonnet-4-5';
const ANTHROPIC_ANSWERED_MODEL = 'claude-sonnet-4-5-20250929';
const FAKE_ANTHROPIC_KEY = 'sk-ant-api03-FAKE-BENCH-KEY-DO-NOT-USE-000000000000000000000000000000000000000000000000000000-AAAAAA';

const PROSE =
  'The proxy forwards each request unchanged and records the tokens, the cost and the latency of the call. ' +
  'Keep the diff small, run the tests, and explain why the change is safe before you commit it. ';

/** Repeat `PROSE` until the text is `bytes` long (ASCII, so characters equal bytes). */
function prose(bytes) {
  return PROSE.repeat(Math.ceil(bytes / PROSE.length)).slice(0, bytes);
}

/**
 * Build an Anthropic Messages request body of about `bytes` bytes: a system prompt and a user turn padded
 * with prose, as Claude Code sends with a long context.
 */
export function anthropicRequestBody(bytes, { stream, gap }) {
  const shell = {
    model: ANTHROPIC_MODEL,
    max_tokens: 1024,
    stream,
    metadata: { user_id: gap ? GAP_MARKER : 'bench_user' },
    system: 'You are a concise assistant for software engineers.',
    messages: [{ role: 'user', content: '' }],
  };
  const overhead = Buffer.byteLength(JSON.stringify(shell));
  shell.messages[0].content = prose(Math.max(0, bytes - overhead));
  return Buffer.from(JSON.stringify(shell));
}

export const anthropicRequestHeaders = {
  'content-type': 'application/json',
  accept: 'application/json',
  'anthropic-version': '2023-06-01',
  'user-agent': 'claude-cli/2.1.197 (external, cli)',
  'x-api-key': FAKE_ANTHROPIC_KEY,
};

/** Build a non-streamed Messages response of about 2 KB. */
export function anthropicJsonResponse() {
  const body = {
    id: 'msg_bench000000000000000000000',
    type: 'message',
    role: 'assistant',
    model: ANTHROPIC_ANSWERED_MODEL,
    content: [{ type: 'text', text: prose(1700) }],
    stop_reason: 'end_turn',
    stop_sequence: null,
    usage: {
      input_tokens: 5012,
      cache_creation_input_tokens: 0,
      cache_read_input_tokens: 0,
      output_tokens: 412,
      service_tier: 'standard',
    },
  };
  return Buffer.from(JSON.stringify(body));
}

function sseEvent(type, data) {
  return Buffer.from(`event: ${type}\ndata: ${JSON.stringify({ type, ...data })}\n\n`);
}

/**
 * Build a Messages stream split into the events written before the deltas, the `SSE_DELTAS` deltas, and
 * the events after them, so the upstream can space the deltas in time.
 */
export function anthropicSseResponse() {
  const head = Buffer.concat([
    sseEvent('message_start', {
      message: {
        id: 'msg_bench000000000000000000000',
        type: 'message',
        role: 'assistant',
        model: ANTHROPIC_ANSWERED_MODEL,
        content: [],
        stop_reason: null,
        stop_sequence: null,
        usage: { input_tokens: 5012, cache_creation_input_tokens: 0, cache_read_input_tokens: 0, output_tokens: 1 },
      },
    }),
    sseEvent('content_block_start', { index: 0, content_block: { type: 'text', text: '' } }),
  ]);
  const deltas = [];
  for (let index = 0; index < SSE_DELTAS; index += 1) {
    deltas.push(sseEvent('content_block_delta', { index: 0, delta: { type: 'text_delta', text: `word${index} of the streamed answer ` } }));
  }
  const tail = Buffer.concat([
    sseEvent('content_block_stop', { index: 0 }),
    sseEvent('message_delta', { delta: { stop_reason: 'end_turn', stop_sequence: null }, usage: { output_tokens: 412 } }),
    sseEvent('message_stop', {}),
  ]);
  return { head, deltas, tail };
}

/** Load the Codex CLI exchange of the llm-wire corpus: its request, and its response as the recorded reads. */
export function codexExchange() {
  const fixture = loadWireFixture(path.join(fixturesRoot(), 'llm-wire', 'openai-responses-codex-cli'));
  const reads = [];
  let offset = 0;
  for (const length of fixture.responseMeta.chunks) {
    reads.push(Buffer.from(fixture.responseBody.subarray(offset, offset + length)));
    offset += length;
  }
  return {
    requestBody: Buffer.from(fixture.requestBody),
    requestHeaders: { ...fixture.request.headers },
    responseHeaders: { 'content-type': fixture.responseMeta.headers['content-type'], 'x-request-id': 'req_bench' },
    reads,
  };
}
