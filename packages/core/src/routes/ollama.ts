import type { RouteDescriptor } from './route-descriptor.js';

/**
 * Ollama on the person's machine: its native API (`/api/chat`, `/api/generate`) and its OpenAI- and
 * Anthropic-compatible endpoints (`/v1/chat/completions`, `/v1/responses`, `/v1/messages`). Clients read
 * OLLAMA_HOST, so the Ollama observer listens there and forwards to the real Ollama moved to another port.
 * Models run locally, so calls cost nothing; their tokens and timings are still recorded.
 */
export const ollamaRoute: RouteDescriptor = {
  name: 'ollama',
  provider: 'ollama',
  baseUrl: 'http://127.0.0.1:11434',
  errorFormat: 'ollama',
  subscriptionBilled: false,
  priceProviderId: 'ollama',
  localModels: true,
  hint: 'OLLAMA_HOST',
};
