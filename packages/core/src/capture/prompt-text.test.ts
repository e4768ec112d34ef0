import { describe, expect, it } from 'vitest';
import { extractPromptText } from './prompt-text.js';

describe('extractPromptText', () => {
  it('puts the newest Anthropic message first and the system prompt last', () => {
    const body = JSON.stringify({
      system: [{ type: 'text', text: 'You are Claude Code.' }],
      tools: [{ name: 'Bash', description: 'never searched' }],
      messages: [
        { role: 'user', content: 'first question' },
        {
          role: 'assistant',
          content: [
            { type: 'text', text: 'an answer' },
            { type: 'tool_use', name: 'Bash', input: { cmd: 'ls' } },
          ],
        },
        {
          role: 'user',
          content: [
            { type: 'tool_result', content: 'tool output' },
            { type: 'text', text: 'fix the migration' },
          ],
        },
      ],
    });

    expect(extractPromptText('anthropic.messages', body)).toBe('fix the migration\nan answer\nfirst question\nYou are Claude Code.');
  });

  it('reads OpenAI chat messages', () => {
    const body = JSON.stringify({
      messages: [
        { role: 'system', content: 'be brief' },
        {
          role: 'user',
          content: [
            { type: 'text', text: 'hello' },
            { type: 'image_url', image_url: { url: 'data:' } },
          ],
        },
      ],
    });

    expect(extractPromptText('openai.chat_completions', body)).toBe('hello\nbe brief');
  });

  it('reads Responses input items and instructions', () => {
    const body = JSON.stringify({
      instructions: 'You are Codex.',
      input: [
        { type: 'message', role: 'user', content: [{ type: 'input_text', text: 'rename the file' }] },
        { type: 'function_call', name: 'exec_command', arguments: '{"cmd":"mv"}' },
        { type: 'function_call_output', output: 'done' },
      ],
    });

    expect(extractPromptText('openai.responses', body)).toBe('rename the file\nYou are Codex.');
  });

  it('reads a Responses string input', () => {
    expect(extractPromptText('openai.responses', JSON.stringify({ input: 'hi there' }))).toBe('hi there');
  });

  it('reads Gemini contents, also wrapped by Code Assist, without thoughts', () => {
    const gemini = { systemInstruction: { parts: [{ text: 'sys' }] }, contents: [{ role: 'user', parts: [{ text: 'q1' }] }] };
    const wrapped = {
      model: 'gemini-2.5-pro',
      request: { contents: [{ role: 'model', parts: [{ text: 'hidden', thought: true }, { text: 'a1' }] }] },
    };

    expect(extractPromptText('gemini.generate_content', JSON.stringify(gemini))).toBe('q1\nsys');
    expect(extractPromptText('gemini.stream_generate_content', JSON.stringify(wrapped))).toBe('a1');
  });

  it('cuts at the maximum length', () => {
    const body = JSON.stringify({ messages: [{ role: 'user', content: 'x'.repeat(100) }] });

    expect(extractPromptText('anthropic.messages', body, 10)).toBe('x'.repeat(10));
  });

  it('returns null for bodies it cannot read', () => {
    expect(extractPromptText('anthropic.messages', 'not json')).toBeNull();
    expect(extractPromptText('anthropic.messages', '[1, 2]')).toBeNull();
    expect(extractPromptText(null, '{"messages": []}')).toBeNull();
    expect(extractPromptText('anthropic.messages', JSON.stringify({ messages: [] }))).toBeNull();
  });
});
