import { describe, expect, it } from 'vitest';
import { batchesFromEnd } from './call-scores.js';

function ids(count: number, prefix = 'call'): string[] {
  return Array.from({ length: count }, (_, index) => `${prefix}-${index}`);
}

describe('batchesFromEnd', () => {
  it('returns no batch for no ids', () => {
    expect(batchesFromEnd([], 200)).toEqual([]);
  });

  it('keeps a full page in one batch', () => {
    const page = ids(200);

    expect(batchesFromEnd(page, 200)).toEqual([page]);
  });

  it('puts the remainder in the first batch', () => {
    const batches = batchesFromEnd(ids(450), 200);

    expect(batches.map((batch) => batch.length)).toEqual([50, 200, 200]);
    expect(batches.flat()).toEqual(ids(450));
  });

  it('keeps later batches when ids are prepended', () => {
    const page = ids(400);
    const live = ids(3, 'live');

    const before = batchesFromEnd(page, 200);
    const after = batchesFromEnd([...live, ...page], 200);

    expect(after).toHaveLength(3);
    expect(after[0]).toEqual(live);
    expect(after.slice(1)).toEqual(before);
  });
});
