import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { type Block, parseConversation, parseSse } from './conversation.js';

const fixtureRoots = ['llm-wire', 'llm-wire-extra'].map((name) => new URL(`../../../testkit/fixtures/${name}/`, import.meta.url).pathname);

interface FixtureCase {
  name: string;
  apiShape: string | null;
  status: string;
  requestText: string | null;
  responseText: string | null;
  toolNames: string[] | null;
  outputText: string | null;
}

/** Every fixture whose response body is stored as sent without a content coding, so its text is readable. */
function readFixtures(): FixtureCase[] {
  const cases: FixtureCase[] = [];
  for (const root of fixtureRoots) {
    for (const name of readdirSync(root, { withFileTypes: true })) {
      if (!name.isDirectory()) continue;
      const dir = join(root, name.name);
      const meta = JSON.parse(readFileSync(join(dir, 'response-meta.json'), 'utf8'));
      if (meta.content_encoding !== 'identity') continue;
      const request = JSON.parse(readFileSync(join(dir, 'request.json'), 'utf8'));
      const expected = JSON.parse(readFileSync(join(dir, 'expected.json'), 'utf8'));
      cases.push({
        name: name.name,
        apiShape: expected.api_shape,
        status: expected.status,
        requestText: request.body === null ? null : JSON.stringify(request.body),
        responseText: readFileSync(join(dir, meta.body_file), 'utf8'),
        toolNames: expected.extra?.tool_names ?? null,
        outputText: expected.checks?.output_text ?? null,
      });
    }
  }
  return cases;
}

const fixtures = readFixtures();
const answered = fixtures.filter(
  (fixture) => fixture.status === 'success' && fixture.apiShape !== null && fixture.apiShape !== 'anthropic.count_tokens',
);

const textOf = (blocks: Block[]) =>
  blocks
    .filter((block) => block.kind === 'text')
    .map((block) => block.text)
    .join('');

describe('parseConversation over the wire fixtures', () => {
  it('finds fixtures to read', () => {
    expect(answered.length).toBeGreaterThan(15);
  });

  it.each(answered.map((fixture) => [fixture.name, fixture] as const))('%s: reads the prompt and the answer', (_name, fixture) => {
    const conversation = parseConversation(fixture.apiShape, fixture.requestText, fixture.responseText);

    expect(conversation).not.toBeNull();
    expect(conversation!.messages.length).toBeGreaterThan(0);
    expect(conversation!.messages.some((message) => message.blocks.length > 0)).toBe(true);
    expect(conversation!.response?.blocks.length ?? 0).toBeGreaterThan(0);
  });

  it.each(fixtures.filter((fixture) => fixture.toolNames).map((fixture) => [fixture.name, fixture] as const))(
    '%s: lists the tool calls of the answer',
    (_name, fixture) => {
      const conversation = parseConversation(fixture.apiShape, fixture.requestText, fixture.responseText);
      const calls = conversation!.response!.blocks.filter((block) => block.kind === 'tool_call');

      expect(calls.map((block) => block.name)).toEqual(fixture.toolNames);
      for (const call of calls) expect(() => JSON.parse(call.input)).not.toThrow();
    },
  );

  it.each(fixtures.filter((fixture) => fixture.outputText).map((fixture) => [fixture.name, fixture] as const))(
    '%s: joins the streamed text exactly',
    (_name, fixture) => {
      const conversation = parseConversation(fixture.apiShape, fixture.requestText, fixture.responseText);

      expect(textOf(conversation!.response!.blocks)).toBe(fixture.outputText);
    },
  );

  it('shows the thinking of a streamed Anthropic answer', () => {
    const fixture = fixtures.find((item) => item.name === 'anthropic-stream-thinking')!;
    const blocks = parseConversation(fixture.apiShape, fixture.requestText, fixture.responseText)!.response!.blocks;

    expect(blocks[0]?.kind).toBe('thinking');
    expect(blocks.some((block) => block.kind === 'text')).toBe(true);
  });

  it('renders an inline request image as a data URL', () => {
    const fixture = fixtures.find((item) => item.name === 'transport-huge-image-request')!;
    const conversation = parseConversation(fixture.apiShape, fixture.requestText, fixture.responseText)!;
    const images = conversation.messages.flatMap((message) => message.blocks).filter((block) => block.kind === 'image');

    expect(images.length).toBeGreaterThan(0);
    expect(images[0]!.src).toMatch(/^data:image\/[a-z]+;base64,/);
  });
});

describe('parseConversation by shape', () => {
  it('pairs Anthropic tool results with their calls and keeps the system prompt', () => {
    const request = {
      model: 'claude-sonnet-4-5',
      system: [{ type: 'text', text: 'You are terse.' }],
      tools: [{ name: 'read_file', description: 'Read a file', input_schema: { type: 'object' } }],
      messages: [
        { role: 'user', content: 'Open README.md' },
        { role: 'assistant', content: [{ type: 'tool_use', id: 'toolu_1', name: 'read_file', input: { path: 'README.md' } }] },
        { role: 'user', content: [{ type: 'tool_result', tool_use_id: 'toolu_1', content: 'no such file', is_error: true }] },
      ],
    };
    const conversation = parseConversation('anthropic.messages', JSON.stringify(request), null)!;

    expect(textOf(conversation.system)).toBe('You are terse.');
    expect(conversation.tools).toEqual([{ name: 'read_file', description: 'Read a file', schema: '{\n  "type": "object"\n}' }]);
    expect(conversation.messages[1]!.blocks[0]).toMatchObject({ kind: 'tool_call', id: 'toolu_1', name: 'read_file' });
    expect(conversation.messages[2]!.blocks[0]).toMatchObject({ kind: 'tool_result', id: 'toolu_1', isError: true });
    expect(conversation.response).toBeNull();
  });

  it('reads Responses input items as turns', () => {
    const request = {
      instructions: 'Be brief.',
      input: [
        { role: 'user', content: [{ type: 'input_text', text: 'list files' }] },
        { type: 'reasoning', summary: [{ type: 'summary_text', text: 'Run ls.' }] },
        { type: 'function_call', call_id: 'call_1', name: 'shell', arguments: '{"command":["ls"]}' },
        { type: 'function_call_output', call_id: 'call_1', output: 'README.md' },
      ],
    };
    const conversation = parseConversation('openai.responses', JSON.stringify(request), null)!;

    expect(conversation.messages.map((message) => message.role)).toEqual(['user', 'assistant', 'tool']);
    expect(conversation.messages[1]!.blocks.map((block) => block.kind)).toEqual(['thinking', 'tool_call']);
  });

  it('returns null for a request that is not JSON', () => {
    expect(parseConversation('anthropic.messages', '{"model": "cut off', null)).toBeNull();
    expect(parseConversation(null, null, null)).toBeNull();
  });

  it('does not load remote images', () => {
    const request = { messages: [{ role: 'user', content: [{ type: 'image_url', image_url: { url: 'https://example.org/a.png' } }] }] };
    const block = parseConversation('openai.chat_completions', JSON.stringify(request), null)!.messages[0]!.blocks[0]!;

    expect(block).toMatchObject({ kind: 'image', src: null, description: 'image at https://example.org/a.png' });
  });
});

describe('parseSse', () => {
  it('splits events on blank lines with CRLF or LF', () => {
    expect(parseSse('event: a\r\ndata: 1\r\n\r\ndata:2\ndata: 3\n\n')).toEqual([
      { event: 'a', data: '1' },
      { event: null, data: '2\n3' },
    ]);
  });
});
