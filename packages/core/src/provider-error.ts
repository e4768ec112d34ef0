import type { ErrorFormat } from './routes/route-descriptor.js';

/** Error kinds the proxy itself answers with, mapped to each provider's own error vocabulary below. */
export type ProxyErrorKind =
  | 'invalid_route'
  | 'not_found'
  | 'invalid_request'
  | 'upstream_unreachable'
  | 'upstream_invalid_response'
  | 'upstream_timeout'
  | 'internal'
  /** A blocking budget is spent: 429 until the budget's period resets. */
  | 'budget_exceeded'
  /** Budgets could not be checked and the workspace chose to refuse calls then (fail-closed): 503. */
  | 'budget_unavailable';

const ANTHROPIC_TYPES: Record<ProxyErrorKind, string> = {
  invalid_route: 'authentication_error',
  not_found: 'not_found_error',
  invalid_request: 'invalid_request_error',
  upstream_unreachable: 'api_error',
  upstream_invalid_response: 'api_error',
  upstream_timeout: 'timeout_error',
  internal: 'api_error',
  budget_exceeded: 'rate_limit_error',
  budget_unavailable: 'overloaded_error',
};

const OPENAI_TYPES: Record<ProxyErrorKind, string> = {
  invalid_route: 'invalid_request_error',
  not_found: 'invalid_request_error',
  invalid_request: 'invalid_request_error',
  upstream_unreachable: 'server_error',
  upstream_invalid_response: 'server_error',
  upstream_timeout: 'server_error',
  internal: 'server_error',
  budget_exceeded: 'insufficient_quota',
  budget_unavailable: 'server_error',
};

const GOOGLE_STATUSES: Record<ProxyErrorKind, string> = {
  invalid_route: 'UNAUTHENTICATED',
  not_found: 'NOT_FOUND',
  invalid_request: 'INVALID_ARGUMENT',
  upstream_unreachable: 'UNAVAILABLE',
  upstream_invalid_response: 'UNAVAILABLE',
  upstream_timeout: 'DEADLINE_EXCEEDED',
  internal: 'INTERNAL',
  budget_exceeded: 'RESOURCE_EXHAUSTED',
  budget_unavailable: 'UNAVAILABLE',
};

/**
 * Render an error of the proxy's own in the JSON shape the provider uses, so the AI tool shows the message
 * as it would show one from the provider. Shapes: Anthropic `{type:"error",error:{type,message}}`,
 * OpenAI `{error:{message,type,param,code}}`, Google `{error:{code,message,status}}`, Ollama `{error}` (a
 * string, as Ollama's own API and its clients expect).
 */
export function formatProviderError(format: ErrorFormat, status: number, kind: ProxyErrorKind, message: string): string {
  switch (format) {
    case 'anthropic':
      return JSON.stringify({ type: 'error', error: { type: ANTHROPIC_TYPES[kind], message } });
    case 'openai':
      return JSON.stringify({ error: { message, type: OPENAI_TYPES[kind], param: null, code: kind } });
    case 'google':
      return JSON.stringify({ error: { code: status, message, status: GOOGLE_STATUSES[kind] } });
    case 'ollama':
      return JSON.stringify({ error: message });
  }
}
