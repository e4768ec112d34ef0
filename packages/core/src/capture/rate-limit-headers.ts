/** Header name prefixes of the providers' rate-limit and plan-usage reports. */
const RATE_LIMIT_PREFIXES = ['anthropic-ratelimit-', 'x-ratelimit-', 'x-codex-'];
/** Headers kept per call at most, and characters per value: the summary stays small on the narrow row. */
export const MAX_RATE_LIMIT_HEADERS = 40;
export const MAX_RATE_LIMIT_VALUE_CHARS = 200;

/**
 * Pick the rate-limit and plan-usage headers of a response: Anthropic's `anthropic-ratelimit-*` (including
 * the `unified-*` headers of subscription plans), OpenAI's `x-ratelimit-*`, the ChatGPT backend's
 * `x-codex-*` usage headers, and `retry-after`. These carry counts, percentages and reset times, never
 * credentials. Returns null when the response has none.
 */
export function pickRateLimitHeaders(headers: Readonly<Record<string, string>>): Record<string, string> | null {
  const picked: Record<string, string> = {};
  let count = 0;
  for (const name of Object.keys(headers).sort()) {
    const lower = name.toLowerCase();
    const wanted = lower === 'retry-after' || RATE_LIMIT_PREFIXES.some((prefix) => lower.startsWith(prefix));
    if (!wanted || lower === '__proto__') continue;
    picked[lower] = String(headers[name]).slice(0, MAX_RATE_LIMIT_VALUE_CHARS);
    count += 1;
    if (count === MAX_RATE_LIMIT_HEADERS) break;
  }
  return count === 0 ? null : picked;
}
