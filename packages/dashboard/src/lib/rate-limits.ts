/**
 * Reads the rate-limit and plan-usage headers providers send with each response into gauges: how much of
 * each limit is used and when it resets. Formats read (as the providers document or send them):
 * - Anthropic API keys: `anthropic-ratelimit-{requests,tokens,input-tokens,output-tokens}-{limit,remaining,reset}`;
 * - Claude subscriptions: `anthropic-ratelimit-unified-{5h,7d,…}-utilization` (a fraction) and `-reset`;
 * - OpenAI: `x-ratelimit-{limit,remaining,reset}-{requests,tokens}`;
 * - Codex with ChatGPT: `x-codex-{primary,secondary}-used-percent`, `-window-minutes`, `-reset-after-seconds`.
 * Headers of other forms are listed as they are.
 */

import { formatDateTime } from './format.js';

export interface Gauge {
  label: string;
  /** Fraction of the limit used, 0 to 1 (may exceed 1 when over the limit). */
  used: number;
  detail: string | null;
  reset: string | null;
}

export function readGauges(headers: Record<string, string>): Gauge[] {
  const gauges: Gauge[] = [];
  const lower = Object.fromEntries(Object.entries(headers).map(([name, value]) => [name.toLowerCase(), value]));

  for (const [name, value] of Object.entries(lower)) {
    let match = /^anthropic-ratelimit-(.+)-limit$/.exec(name);
    if (match) {
      const remaining = Number(lower[`anthropic-ratelimit-${match[1]}-remaining`]);
      const limit = Number(value);
      if (limit > 0 && Number.isFinite(remaining)) {
        gauges.push({
          label: match[1]!.replace(/-/g, ' '),
          used: 1 - remaining / limit,
          detail: `${remaining} of ${limit} left`,
          reset: formatResetTime(lower[`anthropic-ratelimit-${match[1]}-reset`]),
        });
      }
      continue;
    }
    match = /^x-ratelimit-limit-(.+)$/.exec(name);
    if (match) {
      const remaining = Number(lower[`x-ratelimit-remaining-${match[1]}`]);
      const limit = Number(value);
      if (limit > 0 && Number.isFinite(remaining)) {
        gauges.push({
          label: match[1]!.replace(/-/g, ' '),
          used: 1 - remaining / limit,
          detail: `${remaining} of ${limit} left`,
          reset: formatResetAfter(lower[`x-ratelimit-reset-${match[1]}`]),
        });
      }
      continue;
    }
    match = /^anthropic-ratelimit-unified-(.+)-utilization$/.exec(name);
    if (match) {
      const used = Number(value);
      if (Number.isFinite(used)) {
        gauges.push({
          label: `plan ${match[1]} window`,
          used,
          detail: null,
          reset: formatResetTime(lower[`anthropic-ratelimit-unified-${match[1]}-reset`]),
        });
      }
      continue;
    }
    match = /^x-codex-(.+)-used-percent$/.exec(name);
    if (match) {
      const used = Number(value) / 100;
      const minutes = Number(lower[`x-codex-${match[1]}-window-minutes`]);
      const resetAfter = Number(lower[`x-codex-${match[1]}-reset-after-seconds`]);
      if (Number.isFinite(used)) {
        gauges.push({
          label: `plan ${match[1]} window${minutes > 0 ? ` (${formatMinutes(minutes)})` : ''}`,
          used,
          detail: null,
          reset: resetAfter >= 0 && Number.isFinite(resetAfter) ? `in ${formatMinutes(Math.round(resetAfter / 60))}` : null,
        });
      }
    }
  }
  return gauges.sort((a, b) => b.used - a.used);
}

function formatMinutes(minutes: number): string {
  if (minutes < 60) return `${minutes} min`;
  if (minutes < 48 * 60) return `${Math.round(minutes / 60)} h`;
  return `${Math.round(minutes / 60 / 24)} d`;
}

/**
 * Show a reset time as a local date and time. Unified reset headers carry epoch seconds, the other Anthropic
 * ones RFC 3339 times; any other value is shown as sent.
 */
function formatResetTime(value: string | undefined): string | null {
  if (value === undefined) return null;
  const seconds = Number(value);
  if (Number.isFinite(seconds) && seconds >= 1e9) return formatDateTime(new Date(seconds * 1000).toISOString());
  if (/^\d{4}-\d{2}-\d{2}T/.test(value) && !Number.isNaN(Date.parse(value))) return formatDateTime(value);
  return value;
}

/** OpenAI reset headers carry a duration such as "6m0s" or "1.5s": the limit resets that long after the call. */
function formatResetAfter(value: string | undefined): string | null {
  if (value === undefined) return null;
  return /^[\d.]+(ms|[hms])/.test(value) ? `${value} after the call` : value;
}
