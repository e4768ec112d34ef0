import fs from 'node:fs';
import { createRequire } from 'node:module';
import path from 'node:path';
import { calcPrice } from '@pydantic/genai-prices';
import { describe, expect, it } from 'vitest';
import type { Usage } from '../call-record.js';
import { type CostInput, computeCost } from './compute-cost.js';
import { PRICE_DATA_VERSION } from './price-data-version.js';
import { priceKeyFor } from './price-key.js';

const at = new Date('2026-11-03T14:05:09Z');

function usage(fields: Partial<Usage>): Usage {
  return {
    input_tokens: null,
    uncached_input_tokens: null,
    cache_read_tokens: null,
    cache_write_tokens: null,
    cache_write_5m_tokens: null,
    cache_write_1h_tokens: null,
    output_tokens: null,
    reasoning_tokens: null,
    web_search_requests: null,
    ...fields,
  };
}

/** Usage with every count known; cache writes unsplit unless the split is given. */
function known(fields: {
  uncached: number;
  cacheRead?: number;
  cacheWrite?: number;
  split?: [number, number];
  output: number;
  webSearches?: number;
}): Usage {
  const cacheRead = fields.cacheRead ?? 0;
  const cacheWrite = fields.cacheWrite ?? 0;
  // Without a split, only "no writes at all" is a known split.
  const unsplit = cacheWrite === 0 ? 0 : null;
  return usage({
    input_tokens: fields.uncached + cacheRead + cacheWrite,
    uncached_input_tokens: fields.uncached,
    cache_read_tokens: cacheRead,
    cache_write_tokens: cacheWrite,
    cache_write_5m_tokens: fields.split?.[0] ?? unsplit,
    cache_write_1h_tokens: fields.split?.[1] ?? unsplit,
    output_tokens: fields.output,
    reasoning_tokens: null,
    web_search_requests: fields.webSearches ?? 0,
  });
}

function cost(model: string, provider: string, callUsage: Usage, extra: Partial<CostInput> = {}) {
  return computeCost({
    usage: callUsage,
    billable: true,
    modelRequested: model,
    modelAnswered: null,
    priceProviderId: provider,
    subscriptionBilled: false,
    at,
    ...extra,
  });
}

describe('computeCost', () => {
  it('prices each component to the nano-dollar', () => {
    // Sonnet 4.5: $3 input, $0.30 cache read, $3.75 5-minute write, $6 1-hour write, $15 output per MTok.
    const result = cost(
      'claude-sonnet-4-5-20250929',
      'anthropic',
      known({ uncached: 9, cacheRead: 2306, cacheWrite: 412, split: [112, 300], output: 143 }),
    );
    expect(result).toEqual({
      usd: 0.0050838,
      basis: 'exact',
      price_key: 'claude-sonnet-4-5',
      breakdown: { input: 0.000027, cache_read: 0.0006918, cache_write_5m: 0.00042, cache_write_1h: 0.0018, output: 0.002145 },
      price_data_version: PRICE_DATA_VERSION,
    });
  });

  it('prices unsplit cache writes at the 5-minute rate', () => {
    const result = cost('claude-opus-4-5', 'anthropic', known({ uncached: 21, cacheWrite: 4608, output: 210 }));
    expect(result.breakdown).toEqual({ input: 0.000105, cache_write_5m: 0.0288, output: 0.00525 });
    expect(result.usd).toBe(0.034155);
  });

  it('prices web searches per thousand', () => {
    const result = cost('claude-haiku-4-5', 'anthropic', known({ uncached: 1000, output: 100, webSearches: 3 }));
    expect(result.breakdown).toEqual({ input: 0.001, output: 0.0005, web_search: 0.03 });
  });

  it('falls back to the input price when the model has no cache-write price', () => {
    const result = cost('gpt-4o', 'openai', known({ uncached: 100, cacheWrite: 400, output: 0 }));
    expect(result.breakdown).toEqual({ input: 0.00025, cache_write_5m: 0.001 });
  });

  it('applies a long-context tier to the whole call above its start', () => {
    // Gemini 2.5 Pro: $1.25 / $0.125 / $10 up to 200k prompt tokens, $2.50 / $0.25 / $15 above.
    const above = cost('gemini-2.5-pro', 'google', known({ uncached: 150_000, cacheRead: 100_000, output: 1000 }));
    expect(above.breakdown).toEqual({ input: 0.375, cache_read: 0.025, output: 0.015 });
    const library = calcPrice({ input_tokens: 250_000, cache_read_tokens: 100_000, output_tokens: 1000 }, 'gemini-2.5-pro', {
      providerId: 'google',
      timestamp: at,
    });
    expect(above.usd).toBeCloseTo(library!.total_price, 9);
  });

  it('keeps the base price at exactly the tier start', () => {
    const atStart = cost('gemini-2.5-pro', 'google', known({ uncached: 200_000, output: 0 }));
    expect(atStart.breakdown).toEqual({ input: 0.25 });
  });

  it('agrees with calcPrice when every count is known', () => {
    const cases: [string, string, Usage, Record<string, number>][] = [
      [
        'gpt-5-mini',
        'openai',
        known({ uncached: 250, cacheRead: 1280, output: 422 }),
        { input_tokens: 1530, cache_read_tokens: 1280, output_tokens: 422 },
      ],
      [
        'o4-mini',
        'openai',
        known({ uncached: 290, cacheRead: 1920, output: 845 }),
        { input_tokens: 2210, cache_read_tokens: 1920, output_tokens: 845 },
      ],
      [
        'claude-opus-4-5',
        'anthropic',
        known({ uncached: 21, cacheWrite: 4608, split: [1024, 3584], output: 210 }),
        { input_tokens: 4629, cache_write_tokens: 4608, cache_write_1h_tokens: 3584, output_tokens: 210 },
      ],
    ];
    for (const [model, provider, callUsage, libraryUsage] of cases) {
      const library = calcPrice(libraryUsage, model, { providerId: provider, timestamp: at });
      expect(cost(model, provider, callUsage).usd, model).toBeCloseTo(library!.total_price, 9);
    }
  });

  it('prices the known part of partial usage as a lower bound', () => {
    const result = cost(
      'claude-sonnet-4-5-20250929',
      'anthropic',
      usage({
        input_tokens: 2048,
        uncached_input_tokens: 2048,
        cache_read_tokens: 0,
        cache_write_tokens: 0,
        cache_write_5m_tokens: 0,
        cache_write_1h_tokens: 0,
      }),
    );
    expect(result).toMatchObject({ usd: 0.006144, basis: 'partial', breakdown: { input: 0.006144 } });
  });

  it('marks subscription traffic api_equivalent, even when partial', () => {
    const full = cost('gpt-5', 'openai', known({ uncached: 1000, output: 100 }), { subscriptionBilled: true });
    expect(full).toMatchObject({ usd: 0.00225, basis: 'api_equivalent' });
    const partial = cost('gpt-5', 'openai', usage({ uncached_input_tokens: 1000 }), { subscriptionBilled: true });
    expect(partial).toMatchObject({ usd: 0.00125, basis: 'api_equivalent' });
  });

  it('leaves the cost unknown without usage', () => {
    expect(cost('gpt-4o', 'openai', usage({}), { modelAnswered: 'gpt-4o-2024-08-06' })).toEqual({
      usd: null,
      basis: 'unknown',
      price_key: 'gpt-4o',
      breakdown: {},
      price_data_version: null,
    });
  });

  it('leaves the cost unknown with only a default search count (regression: partial $0)', () => {
    const result = cost('claude-sonnet-4-5', 'anthropic', usage({ web_search_requests: 0 }));
    expect(result).toMatchObject({ usd: null, basis: 'unknown', breakdown: {} });
  });

  it('prices reported searches without token counts as partial', () => {
    const result = cost('claude-sonnet-4-5', 'anthropic', usage({ web_search_requests: 2 }));
    expect(result).toMatchObject({ usd: 0.02, basis: 'partial', breakdown: { web_search: 0.02 } });
  });

  it('marks a model without a price unpriced', () => {
    expect(cost('acme-labs/fixture-coder-7b', 'together', known({ uncached: 120, output: 40 }))).toEqual({
      usd: null,
      basis: 'unpriced',
      price_key: 'acme-labs/fixture-coder-7b',
      breakdown: {},
      price_data_version: PRICE_DATA_VERSION,
    });
  });

  it('costs nothing when no model call happened', () => {
    expect(cost('gpt-4o', 'openai', known({ uncached: 0, output: 0 }), { billable: false })).toEqual({
      usd: 0,
      basis: 'none',
      price_key: null,
      breakdown: {},
      price_data_version: null,
    });
  });

  it('uses a custom price instead of the price data', () => {
    const result = cost('my-finetune', 'openai', known({ uncached: 1_000_000, cacheRead: 1_000_000, output: 1_000_000 }), {
      customPrice: { input_mtok: 2, output_mtok: 8, cache_read_mtok: 0.5 },
    });

    expect(result).toEqual({
      usd: 10.5,
      basis: 'exact',
      price_key: 'my-finetune',
      breakdown: { input: 2, cache_read: 0.5, output: 8 },
      price_data_version: null,
    });
  });

  it('charges cache writes at the custom input price when no cache price is set', () => {
    const result = cost('claude-sonnet-4-5', 'anthropic', known({ uncached: 0, cacheWrite: 1_000_000, split: [0, 1_000_000], output: 0 }), {
      customPrice: { input_mtok: 4, output_mtok: 20 },
    });

    expect(result.breakdown).toEqual({ cache_write_1h: 4 });
  });

  it('keeps subscription calls api_equivalent with a custom price', () => {
    const result = cost('claude-sonnet-4-5', 'anthropic', known({ uncached: 1_000_000, output: 0 }), {
      subscriptionBilled: true,
      customPrice: { input_mtok: 1, output_mtok: 1 },
    });

    expect(result.basis).toBe('api_equivalent');
    expect(result.usd).toBe(1);
  });

  it('prefers the answered model, then the requested one', () => {
    const answered = cost('gpt-4o-mini', 'openai', known({ uncached: 1_000_000, output: 0 }), { modelAnswered: 'gpt-4o-2024-08-06' });
    expect(answered).toMatchObject({ price_key: 'gpt-4o', usd: 2.5 });
    const requested = cost('gpt-4o-mini', 'openai', known({ uncached: 1_000_000, output: 0 }), { modelAnswered: 'not-a-listed-model' });
    expect(requested).toMatchObject({ price_key: 'not-a-listed-model', usd: 0.15 });
  });

  // DeepSeek's peak price runs from 00:30:00Z to 16:30:00Z; price rows are cached per second.
  it('switches time-of-day prices on the second', () => {
    const million = known({ uncached: 1_000_000, output: 0 });
    const atTime = (time: string) => ({ at: new Date(`2026-11-03T${time}Z`) });

    expect(cost('deepseek-chat', 'deepseek', million, atTime('00:29:59.000')).usd).toBe(0.135);
    expect(cost('deepseek-chat', 'deepseek', million, atTime('00:29:59.999')).usd).toBe(0.135);
    expect(cost('deepseek-chat', 'deepseek', million, atTime('00:30:00.000')).usd).toBe(0.27);
    expect(cost('deepseek-chat', 'deepseek', million, atTime('16:29:59.999')).usd).toBe(0.27);
    expect(cost('deepseek-chat', 'deepseek', million, atTime('16:30:00.000')).usd).toBe(0.135);
    expect(cost('deepseek-chat', 'deepseek', million, atTime('00:29:59.500')).usd).toBe(0.135);
  });
});

describe('priceKeyFor', () => {
  it.each([
    ['claude-sonnet-4-5-20250929', 'claude-sonnet-4-5'],
    ['gpt-4o-mini-2024-07-18', 'gpt-4o-mini'],
    ['gpt-5-codex', 'gpt-5-codex'],
    ['gemini-2.5-flash', 'gemini-2.5-flash'],
    ['model-20251399', 'model-20251399'],
  ])('%s -> %s', (model, key) => {
    expect(priceKeyFor(model)).toBe(key);
  });
});

describe('PRICE_DATA_VERSION', () => {
  it('matches the installed @pydantic/genai-prices', () => {
    const require = createRequire(import.meta.url);
    const entry = require.resolve('@pydantic/genai-prices');
    let dir = path.dirname(entry);
    while (!fs.existsSync(path.join(dir, 'package.json'))) dir = path.dirname(dir);
    const { name, version } = JSON.parse(fs.readFileSync(path.join(dir, 'package.json'), 'utf8'));
    expect(PRICE_DATA_VERSION).toBe(`${name}@${version}`);
  });
});
