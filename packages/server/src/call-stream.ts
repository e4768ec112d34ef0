import type { ListedCall } from '@tokenwise/storage';

export type CallListener = (calls: ListedCall[]) => void;

/** In-process fan-out of newly stored calls to the open `calls/stream` connections. */
export interface CallStream {
  publish(calls: ListedCall[]): void;
  /** Returns the function that unsubscribes. */
  subscribe(listener: CallListener): () => void;
  subscriberCount(): number;
}

export function createCallStream(): CallStream {
  const listeners = new Set<CallListener>();
  return {
    publish(calls) {
      if (calls.length === 0) return;
      for (const listener of listeners) listener(calls);
    },
    subscribe(listener) {
      listeners.add(listener);
      return () => listeners.delete(listener);
    },
    subscriberCount: () => listeners.size,
  };
}
