import { type CallRecord, type Cost, computeCost, priceKeyFor, type RouteRegistry } from '@tokenwise/core';
import type { CallCostUpdate, CallFilter, Store, StoredCustomPrice } from '@tokenwise/storage';
import type { Logger } from 'pino';

/** How often the price book reloads custom prices made by other servers sharing the store, in ms. */
const DEFAULT_REFRESH_MS = 30_000;
/** Calls read per page while re-pricing. */
const REPRICE_PAGE = 1000;

export interface PriceBookOptions {
  store: Store;
  registry: RouteRegistry;
  logger: Logger;
  refreshMs?: number;
}

export interface PriceBook {
  /** The record priced with its workspace's custom price when one applies; the record itself otherwise. Never throws. */
  apply(record: CallRecord): CallRecord;
  /** Reload the custom prices now, after one was created or deleted. */
  refresh(): Promise<void>;
  /**
   * Re-price the stored calls matching `filter` with the prices in effect when each started: a custom
   * price, else the bundled price data. Returns how many calls got a different cost.
   */
  reprice(filter: CallFilter): Promise<number>;
  close(): void;
}

/**
 * The custom prices of every workspace, held in memory so the record path prices a call without a store
 * query. A price made on this server applies to the next call; one made on another server within
 * `refreshMs`.
 */
export function createPriceBook(options: PriceBookOptions): PriceBook {
  const { store, registry, logger } = options;
  let byWorkspace = new Map<string, StoredCustomPrice[]>();

  async function refresh(): Promise<void> {
    const next = new Map<string, StoredCustomPrice[]>();
    // listAllCustomPrices returns the newest effective price first, which `priceFor` relies on.
    for (const price of await store.listAllCustomPrices()) {
      const list = next.get(price.workspaceId) ?? [];
      list.push(price);
      next.set(price.workspaceId, list);
    }
    byWorkspace = next;
  }

  const loadOrWarn = () =>
    refresh().catch((error: unknown) => logger.warn({ err: error }, 'loading custom prices failed; new calls keep the bundled prices'));
  void loadOrWarn();
  const timer = setInterval(loadOrWarn, options.refreshMs ?? DEFAULT_REFRESH_MS);
  timer.unref();

  function priceFor(record: CallRecord): StoredCustomPrice | null {
    if (record.workspace_id === null || !record.billable) return null;
    const prices = byWorkspace.get(record.workspace_id);
    if (!prices) return null;
    const names = new Set<string>();
    for (const model of [record.model_answered, record.model_requested]) {
      if (model === null) continue;
      names.add(model);
      names.add(priceKeyFor(model));
    }
    const startedAt = Date.parse(record.started_at);
    return (
      prices.find(
        (price) =>
          names.has(price.model) &&
          (price.provider === null || price.provider === record.provider) &&
          Date.parse(price.effectiveFrom) <= startedAt,
      ) ?? null
    );
  }

  /**
   * Compute the cost of a stored record again. Subscription billing is known from the route, or from a
   * basis of `api_equivalent`. NOTE: an Anthropic OAuth call whose first cost was `unknown` or `unpriced`
   * is re-priced as API spend, because the record does not keep the credential type.
   */
  function costOf(record: CallRecord, price: StoredCustomPrice | null): Cost {
    const route = registry.get(record.route);
    const cost = computeCost({
      usage: record.usage,
      billable: record.billable,
      modelRequested: record.model_requested,
      modelAnswered: record.model_answered,
      priceProviderId: route?.priceProviderId ?? record.provider,
      subscriptionBilled: record.cost.basis === 'api_equivalent' || (route?.subscriptionBilled ?? false),
      at: new Date(record.started_at),
      ...(price ? { customPrice: price } : {}),
    });
    return { ...cost, price_source: price ? `custom:${price.id}` : 'bundled' };
  }

  return {
    apply(record) {
      try {
        const price = priceFor(record);
        return price ? { ...record, cost: costOf(record, price) } : record;
      } catch (error) {
        logger.warn({ err: error, call_id: record.id }, 'custom pricing failed; the call keeps its bundled price');
        return record;
      }
    },

    refresh,

    async reprice(filter) {
      let changed = 0;
      let cursor: string | undefined;
      do {
        const page = await store.searchCalls(filter, { limit: REPRICE_PAGE, cursor });
        const updates: CallCostUpdate[] = [];
        for (const { record } of page.calls) {
          const cost = costOf(record, priceFor(record));
          if (JSON.stringify(cost) !== JSON.stringify(record.cost)) updates.push({ id: record.id, cost });
        }
        changed += await store.updateCallCosts(updates);
        cursor = page.nextCursor ?? undefined;
      } while (cursor !== undefined);
      return changed;
    },

    close() {
      clearInterval(timer);
    },
  };
}
