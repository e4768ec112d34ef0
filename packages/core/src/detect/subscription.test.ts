import { describe, expect, it } from 'vitest';
import { anthropicRoute } from '../routes/anthropic.js';
import { chatgptRoute } from '../routes/chatgpt.js';
import { isSubscriptionBilled } from './subscription.js';

describe('isSubscriptionBilled', () => {
  it('marks Claude OAuth bearers', () => {
    expect(isSubscriptionBilled(anthropicRoute, { authorization: 'Bearer sk-ant-oat01-FAKE' })).toBe(true);
  });

  it('does not mark API keys or other bearers', () => {
    expect(isSubscriptionBilled(anthropicRoute, { 'x-api-key': 'sk-ant-api03-FAKE' })).toBe(false);
    expect(isSubscriptionBilled(anthropicRoute, { authorization: 'Bearer gateway-token-FAKE' })).toBe(false);
  });

  it('marks every call on the ChatGPT backend', () => {
    expect(isSubscriptionBilled(chatgptRoute, {})).toBe(true);
  });
});
