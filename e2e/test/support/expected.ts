/**
 * What a correct record says about a fake-provider answer, derived here from the fake's wire numbers
 * and the providers' published prices, independently of the capture code under test.
 */
import type { CostComponent, Usage } from '@tokenwise/core';
import { FAKE_MODELS, FAKE_USAGE } from '@tokenwise/testkit';

export type ApiFamily = 'anthropic' | 'openai' | 'gemini';

/**
 * USD per million tokens, standard tier, from the providers' pricing pages (Anthropic, OpenAI, Google AI
 * for Developers), as also carried by @pydantic/genai-prices 0.1.8. A missing component is not charged.
 */
const PRICES_PER_MILLION: Record<string, Partial<Record<CostComponent, number>>> = {
  'claude-sonnet-4-5': { input: 3, cache_read: 0.3, cache_write_5m: 3.75, cache_write_1h: 6, output: 15 },
  'gpt-5': { input: 1.25, cache_read: 0.125, output: 10 },
  'gemini-2.5-flash': { input: 0.3, cache_read: 0.03, output: 2.5 },
};

/** The price row of each family's fixed answer model: the answered model without its date suffix. */
export const PRICE_KEYS: Record<ApiFamily, string> = {
  anthropic: 'claude-sonnet-4-5',
  openai: 'gpt-5',
  gemini: 'gemini-2.5-flash',
};

export const ANSWER_MODELS: Record<ApiFamily, string> = FAKE_MODELS;

/** Normalized usage of one answer: input includes cache reads and writes, output includes reasoning. */
export function expectedUsage(family: ApiFamily): Usage {
  switch (family) {
    case 'anthropic': {
      const wire = FAKE_USAGE.anthropic;
      return {
        input_tokens: wire.input_tokens + wire.cache_read_input_tokens + wire.cache_creation_input_tokens,
        uncached_input_tokens: wire.input_tokens,
        cache_read_tokens: wire.cache_read_input_tokens,
        cache_write_tokens: wire.cache_creation_input_tokens,
        cache_write_5m_tokens: wire.ephemeral_5m_input_tokens,
        cache_write_1h_tokens: wire.ephemeral_1h_input_tokens,
        output_tokens: wire.output_tokens,
        // The Messages API does not report thinking tokens separately here: unknown, not zero.
        reasoning_tokens: null,
        web_search_requests: 0,
      };
    }
    case 'openai': {
      const wire = FAKE_USAGE.openai;
      return {
        input_tokens: wire.input_tokens,
        uncached_input_tokens: wire.input_tokens - wire.cached_tokens,
        cache_read_tokens: wire.cached_tokens,
        cache_write_tokens: 0,
        cache_write_5m_tokens: 0,
        cache_write_1h_tokens: 0,
        output_tokens: wire.output_tokens,
        reasoning_tokens: wire.reasoning_tokens,
        web_search_requests: 0,
      };
    }
    case 'gemini': {
      const wire = FAKE_USAGE.gemini;
      return {
        input_tokens: wire.promptTokenCount,
        uncached_input_tokens: wire.promptTokenCount - wire.cachedContentTokenCount,
        cache_read_tokens: wire.cachedContentTokenCount,
        cache_write_tokens: 0,
        cache_write_5m_tokens: 0,
        cache_write_1h_tokens: 0,
        output_tokens: wire.candidatesTokenCount + wire.thoughtsTokenCount,
        reasoning_tokens: wire.thoughtsTokenCount,
        web_search_requests: 0,
      };
    }
  }
}

export interface ExpectedCost {
  usd: number;
  price_key: string;
  breakdown: Partial<Record<CostComponent, number>>;
}

/** Tokens times price per component, rounded to 9 decimal places as the record stores them. */
export function expectedCost(family: ApiFamily): ExpectedCost {
  const usage = expectedUsage(family);
  const priceKey = PRICE_KEYS[family];
  const prices = PRICES_PER_MILLION[priceKey] ?? {};
  const tokens: Record<CostComponent, number> = {
    input: usage.uncached_input_tokens ?? 0,
    cache_read: usage.cache_read_tokens ?? 0,
    cache_write_5m: usage.cache_write_5m_tokens ?? 0,
    cache_write_1h: usage.cache_write_1h_tokens ?? 0,
    output: usage.output_tokens ?? 0,
    web_search: 0,
  };

  const breakdown: Partial<Record<CostComponent, number>> = {};
  let usd = 0;
  for (const [component, count] of Object.entries(tokens) as [CostComponent, number][]) {
    const price = prices[component];
    if (price === undefined || count === 0) continue;
    const amount = round9((count * price) / 1_000_000);
    breakdown[component] = amount;
    usd += amount;
  }
  return { usd: round9(usd), price_key: priceKey, breakdown };
}

function round9(value: number): number {
  return Math.round(value * 1e9) / 1e9;
}
