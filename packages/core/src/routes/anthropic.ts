import type { RouteDescriptor } from './route-descriptor.js';

/** Anthropic Messages API; Claude Code sets ANTHROPIC_BASE_URL to this route's root and appends /v1/messages. */
export const anthropicRoute: RouteDescriptor = {
  name: 'anthropic',
  provider: 'anthropic',
  baseUrl: 'https://api.anthropic.com',
  errorFormat: 'anthropic',
  subscriptionBilled: false,
  priceProviderId: 'anthropic',
  hint: 'ANTHROPIC_BASE_URL',
};
