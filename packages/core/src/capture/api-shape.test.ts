import { describe, expect, it } from 'vitest';
import { createRouteRegistry } from '../routes/registry.js';
import { detectApiShape } from './api-shape.js';

const routes = createRouteRegistry();
const route = (name: string) => routes.get(name)!;

describe('detectApiShape', () => {
  it.each([
    ['anthropic', '/v1/messages?beta=true', 'anthropic.messages'],
    ['anthropic', '/v1/messages/count_tokens', 'anthropic.count_tokens'],
    ['openai', '/v1/chat/completions', 'openai.chat_completions'],
    ['groq', '/openai/v1/chat/completions', 'openai.chat_completions'],
    ['openrouter', '/v1/chat/completions', 'openai.chat_completions'],
    ['openai', '/v1/responses', 'openai.responses'],
    ['chatgpt', '/responses', 'openai.responses'],
    ['gemini', '/v1beta/models/gemini-2.5-flash:generateContent', 'gemini.generate_content'],
    ['gemini', '/v1beta/models/gemini-2.5-pro:streamGenerateContent?alt=sse', 'gemini.stream_generate_content'],
    ['gemini', '/v1beta/models/gemini-2.5-pro%3AstreamGenerateContent', 'gemini.stream_generate_content'],
    ['codeassist', '/v1internal:generateContent', 'gemini.generate_content'],
    ['codeassist', '/v1internal:streamGenerateContent?alt=sse', 'gemini.stream_generate_content'],
  ])('%s POST %s is %s', (name, target, shape) => {
    expect(detectApiShape(route(name), 'POST', target).shape).toBe(shape);
  });

  it.each([
    ['openai', 'GET', '/v1/models'],
    ['chatgpt', 'GET', '/responses'],
    ['openai', 'POST', '/v1/embeddings'],
    ['openai', 'POST', '/v1/responses/resp_123/cancel'],
    ['gemini', 'POST', '/v1beta/models/gemini-2.5-flash:countTokens'],
    ['codeassist', 'POST', '/v1internal:loadCodeAssist'],
    ['gemini', 'POST', '/v1internal:generateContent'],
  ])('%s %s %s is not a model call', (name, method, target) => {
    expect(detectApiShape(route(name), method, target).shape).toBeNull();
  });

  it('takes the Gemini model and stream mode from the path', () => {
    expect(detectApiShape(route('gemini'), 'POST', '/v1beta/models/gemini-2.5-pro:streamGenerateContent?alt=sse&key=AIzaFAKE')).toEqual({
      shape: 'gemini.stream_generate_content',
      wrapped: false,
      pathModel: 'gemini-2.5-pro',
      pathStream: true,
      altSse: true,
      path: '/v1beta/models/gemini-2.5-pro:streamGenerateContent',
    });
  });

  it('marks Code Assist bodies as wrapped', () => {
    expect(detectApiShape(route('codeassist'), 'POST', '/v1internal:streamGenerateContent').wrapped).toBe(true);
  });
});
