import type { CallBodies } from '@tokenwise/core';
import { describe, expect, it } from 'vitest';
import { fromBodyRow, toBodyRow } from './body-columns.js';

function bodies(index: number): CallBodies {
  return {
    request: {
      text: `{"prompt":"request ${index} ${'x'.repeat(index * 100)}"}`,
      bytes: 40 + index * 100,
      truncated: false,
      content_type: 'application/json',
      encoding_error: null,
    },
    response: {
      text: `{"answer":"response ${index}"}`,
      bytes: 30,
      truncated: index % 2 === 0,
      content_type: 'application/json',
      encoding_error: null,
    },
    request_headers: { 'content-type': 'application/json' },
    response_headers: { 'request-id': `req_${index}` },
  };
}

describe('toBodyRow', () => {
  // Compression is limited to a few at a time; a limiter that lost a slot would hang here.
  it('compresses a whole batch at once intact', async () => {
    const originals = Array.from({ length: 400 }, (_, index) => bodies(index));

    const rows = await Promise.all(originals.map((original) => toBodyRow(original)));
    const restored = await Promise.all(rows.map((row) => fromBodyRow(row)));

    expect(restored).toEqual(originals);
  });

  it('keeps a missing body missing', async () => {
    const original: CallBodies = { ...bodies(1), response: null };

    const restored = await fromBodyRow(await toBodyRow(original));

    expect(restored.response).toBeNull();
    expect(restored.request).toEqual(original.request);
  });
});
