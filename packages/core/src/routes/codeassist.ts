import type { RouteDescriptor } from './route-descriptor.js';

/**
 * Gemini Code Assist, used by Gemini CLI with a Google login. The CLI reads CODE_ASSIST_ENDPOINT and
 * appends /v1internal:<method>; requests and responses wrap the Gemini API shapes. Its calls are covered by
 * the person's Code Assist or Google AI plan (or its free tier), not billed per token, so cost is an
 * API-equivalent amount.
 */
export const codeassistRoute: RouteDescriptor = {
  name: 'codeassist',
  provider: 'google',
  baseUrl: 'https://cloudcode-pa.googleapis.com',
  errorFormat: 'google',
  subscriptionBilled: true,
  priceProviderId: 'google',
  hint: 'CODE_ASSIST_ENDPOINT',
};
