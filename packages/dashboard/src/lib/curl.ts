/**
 * Build a curl command that repeats a recorded call through this server, with shell variables in place of
 * every credential: the route token and the provider's key are never in the stored headers, and the
 * person fills them in from their own environment.
 */

/** Request headers curl sets itself or the proxy replaces; copying them would break the repeated request. */
const SKIPPED_HEADERS = new Set([
  'host',
  'content-length',
  'connection',
  'accept-encoding',
  'transfer-encoding',
  'keep-alive',
  'te',
  'upgrade',
]);

const KEY_HEADERS: Record<string, string> = {
  anthropic: '-H "x-api-key: $ANTHROPIC_API_KEY"',
  openai: '-H "authorization: Bearer $OPENAI_API_KEY"',
  google: '-H "x-goog-api-key: $GEMINI_API_KEY"',
};

export interface CurlInput {
  origin: string;
  route: string;
  provider: string;
  method: string;
  path: string;
  headers: Record<string, string>;
  body: string | null;
}

export function buildCurl(input: CurlInput): string {
  const lines = [`curl -X ${input.method} "${input.origin}/r/$TOKENWISE_ROUTE_TOKEN/${input.route}${input.path}"`];
  const keyHeader = KEY_HEADERS[input.provider];
  if (keyHeader) lines.push(keyHeader);
  for (const [name, value] of Object.entries(input.headers)) {
    if (SKIPPED_HEADERS.has(name.toLowerCase())) continue;
    lines.push(`-H ${shellQuote(`${name}: ${value}`)}`);
  }
  if (input.body !== null && input.body !== '') {
    lines.push("--data-binary @- <<'TOKENWISE_BODY'");
    return `${lines.join(' \\\n  ')}\n${input.body}\nTOKENWISE_BODY`;
  }
  return lines.join(' \\\n  ');
}

/** Quote for POSIX shells: single quotes, with each embedded single quote closed, escaped and reopened. */
export function shellQuote(text: string): string {
  return `'${text.replace(/'/g, `'\\''`)}'`;
}
