import type { RouteDescriptor } from './route-descriptor.js';

/** OpenAI API (Chat Completions and Responses); clients append /v1/... to this root. */
export const openaiRoute: RouteDescriptor = {
  name: 'openai',
  provider: 'openai',
  baseUrl: 'https://api.openai.com',
  errorFormat: 'openai',
  subscriptionBilled: false,
  priceProviderId: 'openai',
  hint: 'OPENAI_BASE_URL',
};
