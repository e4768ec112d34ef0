import type { RouteDescriptor } from './route-descriptor.js';

/** Gemini API; Gemini CLI and @google/genai read GOOGLE_GEMINI_BASE_URL and append /v1beta/models/... */
export const geminiRoute: RouteDescriptor = {
  name: 'gemini',
  provider: 'google',
  baseUrl: 'https://generativelanguage.googleapis.com',
  errorFormat: 'google',
  subscriptionBilled: false,
  priceProviderId: 'google',
  hint: 'GOOGLE_GEMINI_BASE_URL',
};
