import type { Store } from '@tokenwise/storage';

/** Store methods that delete call bodies, prompts or whole calls. */
const DELETIONS: ReadonlySet<PropertyKey> = new Set([
  'deleteCalls',
  'deleteDevice',
  'deleteWorkspace',
  'deleteUser',
  'deleteExpiredBodies',
]);

/**
 * Wrap `store` so that each deletion also awaits `settle` before it resolves. The record sink's `settled`
 * drops the spool segments of stored calls, so a deletion the API confirms leaves no copy of a call's
 * bodies in the spool either. Every other member is the store's own.
 */
export function withDeletionBarrier<S extends Store>(store: S, settle: () => Promise<void>): S {
  return new Proxy(store, {
    get(target, property) {
      const value: unknown = Reflect.get(target, property, target);
      if (typeof value !== 'function') return value;
      if (!DELETIONS.has(property)) return value.bind(target);
      return async (...args: unknown[]) => {
        const result: unknown = await value.apply(target, args);
        await settle();
        return result;
      };
    },
  });
}
