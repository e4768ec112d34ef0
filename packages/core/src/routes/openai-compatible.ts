import type { ProviderId, RouteDescriptor } from './route-descriptor.js';

function openaiCompatible(name: ProviderId, baseUrl: string): RouteDescriptor {
  return {
    name,
    provider: name,
    baseUrl,
    errorFormat: 'openai',
    subscriptionBilled: false,
    priceProviderId: name,
  };
}

/**
 * Hosts that speak the OpenAI Chat Completions (and some the Responses) wire format. Each base URL is
 * the root that precedes `/v1/...` (or `/openai/v1/...` for Groq) in the provider's own documentation.
 */
export const openaiCompatibleRoutes: readonly RouteDescriptor[] = [
  openaiCompatible('openrouter', 'https://openrouter.ai/api'),
  openaiCompatible('groq', 'https://api.groq.com'),
  openaiCompatible('deepseek', 'https://api.deepseek.com'),
  openaiCompatible('mistral', 'https://api.mistral.ai'),
  openaiCompatible('xai', 'https://api.x.ai'),
  openaiCompatible('together', 'https://api.together.xyz'),
  openaiCompatible('fireworks', 'https://api.fireworks.ai/inference'),
];
