import type { RouteDescriptor } from './route-descriptor.js';

/**
 * Gemini Code Assist, used by Gemini CLI with a Google login. The CLI reads CODE_ASSIST_ENDPOINT and
 * appends /v1internal:<method>; requests and responses wrap the Gemini API shapes.
 */
export const codeassistRoute: RouteDescriptor = {
  name: 'codeassist',
  provider: 'google',
  baseUrl: 'https://cloudcode-pa.googleapis.com',
  errorFormat: 'google',
  subscriptionBilled: false,
  priceProviderId: 'google',
  hint: 'CODE_ASSIST_ENDPOINT',
};
