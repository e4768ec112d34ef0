/** The company behind a route, spelled as the llm-wire fixtures spell it. */
export type ProviderId =
  | 'anthropic'
  | 'openai'
  | 'google'
  | 'openrouter'
  | 'groq'
  | 'deepseek'
  | 'mistral'
  | 'xai'
  | 'together'
  | 'fireworks'
  | 'ollama';

/** The JSON shape our own errors take, so the AI tool shows them as it shows the provider's. */
export type ErrorFormat = 'anthropic' | 'openai' | 'google' | 'ollama';

/**
 * Everything the proxy knows about one route: `/r/{token}/{name}/{rest}` forwards to `baseUrl` + `/{rest}`.
 * Per-provider knowledge lives here, not in conditionals spread over the proxy.
 */
export interface RouteDescriptor {
  /** Lowercase route name as it appears in the URL. */
  readonly name: string;
  readonly provider: ProviderId;
  /** Upstream origin plus an optional base path, without a trailing slash. */
  readonly baseUrl: string;
  readonly errorFormat: ErrorFormat;
  /**
   * True when every call on this route is billed to a subscription plan rather than per token
   * (the ChatGPT backend), so its cost is an API-equivalent amount.
   */
  readonly subscriptionBilled: boolean;
  /** Provider id in the `@pydantic/genai-prices` catalog, used to price this route's calls. */
  readonly priceProviderId: string;
  /**
   * True when the route's models run on the person's own machine (Ollama): calls are recorded with their
   * tokens and timings, and their cost is a known 0 with basis `none`.
   */
  readonly localModels?: boolean;
  /** Environment variable or setting a person uses to point a tool at this route, for help output. */
  readonly hint?: string;
}
