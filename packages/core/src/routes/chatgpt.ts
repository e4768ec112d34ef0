import type { RouteDescriptor } from './route-descriptor.js';

/**
 * The ChatGPT backend that Codex CLI talks to when signed in with a ChatGPT plan. Codex appends
 * /responses (and /models) to its base URL, so the route's root is the backend's Codex base path.
 * Every call is billed to the plan, so cost is recorded as an API-equivalent amount.
 */
export const chatgptRoute: RouteDescriptor = {
  name: 'chatgpt',
  provider: 'openai',
  baseUrl: 'https://chatgpt.com/backend-api/codex',
  errorFormat: 'openai',
  subscriptionBilled: true,
  priceProviderId: 'openai',
  hint: 'model_providers.<id>.base_url with requires_openai_auth = true',
};
