import { calcPrice, type ModelPrice, type TieredPrices } from '@pydantic/genai-prices';
import type { Cost, CostComponent, Usage } from '../call-record.js';
import { PRICE_DATA_VERSION } from './price-data-version.js';
import { priceKeyFor } from './price-key.js';

export interface CostInput {
  usage: Usage;
  /** False when no model call happened: the cost is a known 0 with basis `none`. */
  billable: boolean;
  modelRequested: string | null;
  modelAnswered: string | null;
  /** Provider id in the genai-prices catalog (the route's `priceProviderId`). */
  priceProviderId: string;
  /** The tokens are charged to a subscription (OAuth bearer, ChatGPT backend), not per token. */
  subscriptionBilled: boolean;
  /** When the call happened, for prices that changed over time. */
  at: Date;
  /** A price to use instead of the bundled price data, e.g. a workspace's custom price for the model. */
  customPrice?: CustomPrice;
}

/**
 * A price set by hand, in USD per million tokens. A cache price left out is charged at the input price,
 * and a 1-hour cache write at the 5-minute one.
 */
export interface CustomPrice {
  input_mtok: number;
  output_mtok: number;
  cache_read_mtok?: number | null;
  cache_write_mtok?: number | null;
  cache_write_1h_mtok?: number | null;
}

interface Component {
  name: CostComponent;
  count: number | null;
  /** Price keys in the genai-prices catalog, most specific first: a missing price falls back to its ancestor. */
  priceKeys: readonly string[];
  /** Units per price: 1e6 for `_mtok`, 1e3 for `_kcount`. */
  per: number;
}

/**
 * Price one call. The catalog gives the model's price row through `calcPrice`, so its model matching and
 * dated prices apply. The arithmetic is done here, per component and in integer nano-dollars, because
 * `calcPrice` returns only input and output totals and counts a missing count as zero, which would make
 * partial usage look exact. A long-context tier applies to the whole call once the total input exceeds
 * its start, as in genai-prices.
 */
export function computeCost(input: CostInput): Cost {
  if (!input.billable) return { usd: 0, basis: 'none', price_key: null, breakdown: {}, price_data_version: null };

  const model = input.modelAnswered ?? input.modelRequested;
  const priceKey = model === null ? null : priceKeyFor(model);
  const components = componentsOf(input.usage);
  const known = components.filter((component) => component.count !== null);
  if (!reportsUsage(known)) return { usd: null, basis: 'unknown', price_key: priceKey, breakdown: {}, price_data_version: null };

  const prices = input.customPrice ? toModelPrice(input.customPrice) : findModelPrice(input);
  if (prices === null) return { usd: null, basis: 'unpriced', price_key: priceKey, breakdown: {}, price_data_version: PRICE_DATA_VERSION };

  const tierTokens = input.usage.input_tokens ?? knownInputTokens(input.usage);
  const breakdown: Partial<Record<CostComponent, number>> = {};
  let totalNanos = 0;
  for (const component of known) {
    const nanos = Math.round(component.count! * unitPrice(prices, component.priceKeys, tierTokens) * (1e9 / component.per));
    if (nanos === 0) continue;
    breakdown[component.name] = nanos / 1e9;
    totalNanos += nanos;
  }

  const complete = known.length === components.length;
  // Subscription traffic is never real spend, even when only part of it could be priced.
  let basis: Cost['basis'] = complete ? 'exact' : 'partial';
  if (input.subscriptionBilled) basis = 'api_equivalent';
  const priceDataVersion = input.customPrice ? null : PRICE_DATA_VERSION;
  return { usd: totalNanos / 1e9, basis, price_key: priceKey, breakdown, price_data_version: priceDataVersion };
}

/** The custom price as a catalog row, leaving out the prices it does not set so `unitPrice` falls back along `priceKeys`. */
function toModelPrice(price: CustomPrice): ModelPrice {
  const row: Record<string, number> = { input_mtok: price.input_mtok, output_mtok: price.output_mtok };
  if (typeof price.cache_read_mtok === 'number') row.cache_read_mtok = price.cache_read_mtok;
  if (typeof price.cache_write_mtok === 'number') row.cache_write_mtok = price.cache_write_mtok;
  if (typeof price.cache_write_1h_mtok === 'number') row.cache_write_1h_mtok = price.cache_write_1h_mtok;
  return row as ModelPrice;
}

function componentsOf(usage: Usage): Component[] {
  // Without the TTL split every write is priced at the 5-minute rate, Anthropic's default TTL.
  const splitKnown = usage.cache_write_5m_tokens !== null && usage.cache_write_1h_tokens !== null;
  return [
    { name: 'input', count: usage.uncached_input_tokens, priceKeys: ['input_mtok'], per: 1e6 },
    { name: 'cache_read', count: usage.cache_read_tokens, priceKeys: ['cache_read_mtok', 'input_mtok'], per: 1e6 },
    {
      name: 'cache_write_5m',
      count: splitKnown ? usage.cache_write_5m_tokens : usage.cache_write_tokens,
      priceKeys: ['cache_write_mtok', 'input_mtok'],
      per: 1e6,
    },
    {
      name: 'cache_write_1h',
      count: splitKnown ? usage.cache_write_1h_tokens : zeroWhenKnown(usage.cache_write_tokens),
      priceKeys: ['cache_write_1h_mtok', 'cache_write_mtok', 'input_mtok'],
      per: 1e6,
    },
    { name: 'output', count: usage.output_tokens, priceKeys: ['output_mtok'], per: 1e6 },
    { name: 'web_search', count: usage.web_search_requests, priceKeys: ['web_searches_kcount'], per: 1e3 },
  ];
}

/**
 * Decide whether the known components say anything about the call's price. Parsers report
 * `web_search_requests` as 0 whenever the provider names no searches, so a web-search count of 0 with
 * every token count unknown is no usage at all: its cost is unknown, not a lower bound of $0.
 */
function reportsUsage(known: readonly Component[]): boolean {
  return known.some((component) => component.name !== 'web_search' || (component.count ?? 0) > 0);
}

function zeroWhenKnown(count: number | null): number | null {
  return count === null ? null : 0;
}

function knownInputTokens(usage: Usage): number {
  return (usage.uncached_input_tokens ?? 0) + (usage.cache_read_tokens ?? 0) + (usage.cache_write_tokens ?? 0);
}

/**
 * Price rows found, by provider, models and UTC second. In the price data of genai-prices 0.1.8 every dated
 * price starts at a midnight UTC and every time-of-day price starts and ends on a whole second, so all of a
 * second gets one row. Matching a model name against the catalog took about 25 us per call on the
 * benchmark machine; this makes it once per second and model.
 */
const priceRows = new Map<string, ModelPrice | null>();
/** Entries `priceRows` keeps at most; when full it starts over, because entries are only good for a second. */
const MAX_CACHED_PRICE_ROWS = 512;

/** Find the model's price row for the call's time; null when the catalog has no price for it. */
function findModelPrice(input: CostInput): ModelPrice | null {
  const second = Math.floor(input.at.getTime() / 1000);
  const key = `${input.priceProviderId}\n${input.modelAnswered ?? ''}\n${input.modelRequested ?? ''}\n${second}`;
  const cached = priceRows.get(key);
  if (cached !== undefined) return cached;

  const row = lookUpModelPrice(input);
  if (priceRows.size >= MAX_CACHED_PRICE_ROWS) priceRows.clear();
  priceRows.set(key, row);
  return row;
}

function lookUpModelPrice(input: CostInput): ModelPrice | null {
  for (const model of [input.modelAnswered, input.modelRequested]) {
    if (model === null) continue;
    try {
      const result = calcPrice({ input_tokens: 0, output_tokens: 0 }, model, { providerId: input.priceProviderId, timestamp: input.at });
      if (result) return result.model_price;
    } catch {
      // A catalog row genai-prices itself cannot evaluate counts as no price.
    }
  }
  return null;
}

function unitPrice(prices: ModelPrice, keys: readonly string[], tierTokens: number): number {
  for (const key of keys) {
    const price = prices[key];
    if (typeof price === 'number') return price;
    if (price !== undefined) return tieredPrice(price, tierTokens);
  }
  return 0;
}

/** genai-prices picks the last tier whose start the total input tokens exceed (strictly greater). */
function tieredPrice(price: TieredPrices, tierTokens: number): number {
  let selected = price.base;
  for (const tier of [...price.tiers].sort((a, b) => a.start - b.start)) {
    if (tierTokens > tier.start) selected = tier.price;
  }
  return selected;
}
