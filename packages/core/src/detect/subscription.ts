import type { RouteDescriptor } from '../routes/route-descriptor.js';

/**
 * Tell whether the call's tokens are charged to a subscription plan rather than per token. That holds
 * for every call on a subscription route (the ChatGPT backend) and for Anthropic calls made with a Claude
 * OAuth access token (`Authorization: Bearer sk-ant-oat…`, which Claude Code sends after a Pro or Max login).
 */
export function isSubscriptionBilled(route: RouteDescriptor, headers: Readonly<Record<string, string>>): boolean {
  if (route.subscriptionBilled) return true;
  return /^Bearer\s+sk-ant-oat/i.test(headers.authorization ?? '');
}
