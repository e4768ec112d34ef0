import { TokenwiseError } from '../errors.js';
import { anthropicRoute } from './anthropic.js';
import { chatgptRoute } from './chatgpt.js';
import { codeassistRoute } from './codeassist.js';
import { geminiRoute } from './gemini.js';
import { ollamaRoute } from './ollama.js';
import { openaiRoute } from './openai.js';
import { openaiCompatibleRoutes } from './openai-compatible.js';
import type { RouteDescriptor } from './route-descriptor.js';

/** The built-in routes, in the order help output lists them. */
export const builtinRoutes: readonly RouteDescriptor[] = [
  anthropicRoute,
  openaiRoute,
  chatgptRoute,
  geminiRoute,
  codeassistRoute,
  ...openaiCompatibleRoutes,
  ollamaRoute,
];

export interface RouteRegistry {
  get(name: string): RouteDescriptor | undefined;
  names(): string[];
  all(): RouteDescriptor[];
}

/**
 * Build the registry the proxy forwards by. `upstreamOverrides` maps a built-in route name to another
 * base URL (the operator's `--upstream NAME=URL`); it is the only way to change where a route goes, so no
 * request can ever choose a host. Throws `invalid_upstream` for an unknown name or a URL that is not
 * plain http(s) without credentials, query or fragment.
 */
export function createRouteRegistry(upstreamOverrides: Readonly<Record<string, string>> = {}): RouteRegistry {
  const routes = new Map<string, RouteDescriptor>(builtinRoutes.map((route) => [route.name, route]));

  for (const [name, url] of Object.entries(upstreamOverrides)) {
    const route = routes.get(name);
    if (!route) {
      throw new TokenwiseError(
        'invalid_upstream',
        `unknown route "${name}" in --upstream ${name}=${url}; known routes: ${[...routes.keys()].join(', ')}`,
      );
    }
    routes.set(name, { ...route, baseUrl: normalizeBaseUrl(name, url) });
  }

  return {
    get: (name) => routes.get(name),
    names: () => [...routes.keys()],
    all: () => [...routes.values()],
  };
}

/** Parse `NAME=URL` pairs as given on the command line into an override map. */
export function parseUpstreamOverrides(pairs: readonly string[]): Record<string, string> {
  const overrides: Record<string, string> = {};
  for (const pair of pairs) {
    const separator = pair.indexOf('=');
    if (separator <= 0) {
      throw new TokenwiseError('invalid_upstream', `invalid --upstream "${pair}": expected NAME=URL, e.g. anthropic=http://127.0.0.1:9000`);
    }
    overrides[pair.slice(0, separator).trim().toLowerCase()] = pair.slice(separator + 1).trim();
  }
  return overrides;
}

function normalizeBaseUrl(name: string, raw: string): string {
  let url: URL;
  try {
    url = new URL(raw);
  } catch {
    throw new TokenwiseError(
      'invalid_upstream',
      `invalid URL "${raw}" for upstream ${name}: expected e.g. https://host[:port][/base/path]`,
    );
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:') {
    throw new TokenwiseError('invalid_upstream', `upstream ${name} must use http or https, got "${url.protocol}"`);
  }
  if (url.username || url.password || url.search || url.hash) {
    throw new TokenwiseError('invalid_upstream', `upstream ${name} must not carry credentials, a query or a fragment: "${raw}"`);
  }
  return `${url.origin}${url.pathname.replace(/\/+$/, '')}`;
}
