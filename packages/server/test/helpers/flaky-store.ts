import type { CallToStore, StoredCallRef } from '@tokenwise/storage';
import { SqliteStore } from '@tokenwise/storage';

/**
 * A real SQLite store whose `insertCalls` can be made to fail, to see how its callers cope with a store
 * that is down (`failAll`) or has a passing hiccup (`failNext`). Every other method is the real one.
 */
export class FlakyStore extends SqliteStore {
  failAll = false;
  failNext = 0;
  insertAttempts = 0;

  override async insertCalls(calls: readonly CallToStore[]): Promise<StoredCallRef[]> {
    this.insertAttempts += 1;
    if (this.failAll || this.failNext > 0) {
      this.failNext = Math.max(0, this.failNext - 1);
      throw new Error('disk I/O error (simulated)');
    }
    return super.insertCalls(calls);
  }
}
