import { describe, expect, it } from 'vitest';
import { answerTextOf, MAX_ANSWER_CHARS, parseVerdict, requestTextOf } from './judge-prompt.js';

describe('parseVerdict', () => {
  it.each([
    ['bare JSON', '{"score": 7, "reason": "Mostly right."}', { score: 7, reason: 'Mostly right.' }],
    ['a code fence', 'Here:\n```json\n{"score": 3, "reason": "Ignored the test."}\n```', { score: 3, reason: 'Ignored the test.' }],
    ['a score as text', '{"score": "8.25", "reason": "ok"}', { score: 8.3, reason: 'ok' }],
    ['no reason', '{"score": 10}', { score: 10, reason: '' }],
    ['an earlier object without a score', '{"note": 1} then {"score": 2, "reason": "bad"}', { score: 2, reason: 'bad' }],
  ])('reads %s', (_name, answer, verdict) => {
    expect(parseVerdict(answer)).toEqual(verdict);
  });

  it.each([
    ['no JSON', 'I would give it a 7.'],
    ['a score above 10', '{"score": 11, "reason": "great"}'],
    ['a negative score', '{"score": -1}'],
    ['a score that is no number', '{"score": "high"}'],
  ])('rejects %s', (_name, answer) => {
    expect(parseVerdict(answer)).toBeNull();
  });
});

describe('answerTextOf', () => {
  it('reads an Anthropic message with a tool call', () => {
    const body = JSON.stringify({
      type: 'message',
      content: [
        { type: 'text', text: 'Running the tests.' },
        { type: 'tool_use', name: 'Bash', input: {} },
      ],
    });

    expect(answerTextOf(body)).toBe('Running the tests.\n[tool call Bash]');
  });

  it('joins an Anthropic event stream', () => {
    const body = [
      'event: message_start\ndata: {"type":"message_start","message":{"type":"message","content":[]}}',
      'event: content_block_start\ndata: {"type":"content_block_start","index":0,"content_block":{"type":"text","text":""}}',
      'event: content_block_delta\ndata: {"type":"content_block_delta","index":0,"delta":{"type":"text_delta","text":"Hel"}}',
      'event: content_block_delta\ndata: {"type":"content_block_delta","index":0,"delta":{"type":"text_delta","text":"lo"}}',
      'event: message_stop\ndata: {"type":"message_stop"}',
    ].join('\n\n');

    expect(answerTextOf(body)).toBe('Hello');
  });

  it('joins a Chat Completions stream', () => {
    const body = [
      'data: {"choices":[{"delta":{"role":"assistant","content":""}}]}',
      'data: {"choices":[{"delta":{"content":"4"}}]}',
      'data: {"choices":[{"delta":{"content":"2"}}]}',
      'data: [DONE]',
    ].join('\n\n');

    expect(answerTextOf(body)).toBe('42');
  });

  it('reads Responses output and Gemini chunks', () => {
    const responses = JSON.stringify({
      object: 'response',
      output: [{ type: 'message', content: [{ type: 'output_text', text: 'Done.' }] }],
    });
    const gemini = JSON.stringify([
      { candidates: [{ content: { parts: [{ text: 'thinking', thought: true }, { text: 'Yes' }] } }] },
      { candidates: [{ content: { parts: [{ text: ', it works.' }] } }] },
    ]);

    expect(answerTextOf(responses)).toBe('Done.');
    expect(answerTextOf(gemini)).toBe('Yes, it works.');
  });

  it('falls back to the body and cuts it', () => {
    expect(answerTextOf('plain words')).toBe('plain words');
    expect(answerTextOf('x'.repeat(MAX_ANSWER_CHARS + 5))).toContain(`[cut after ${MAX_ANSWER_CHARS} characters]`);
  });
});

describe('requestTextOf', () => {
  it('reads the prompt of a Messages request, newest message first', () => {
    const body = JSON.stringify({
      system: 'Be brief.',
      messages: [
        { role: 'user', content: 'first' },
        { role: 'user', content: 'second' },
      ],
    });

    expect(requestTextOf('anthropic.messages', body)).toBe('second\nfirst\nBe brief.');
  });
});
