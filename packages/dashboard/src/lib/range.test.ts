import { describe, expect, it } from 'vitest';
import { rangeQuery, toLocalInput } from './range.js';

describe('rangeQuery', () => {
  it('uses the fallback without parameters', () => {
    expect(rangeQuery(new URLSearchParams(''), '24h')).toEqual({ range: '24h' });
  });

  it('takes a preset', () => {
    expect(rangeQuery(new URLSearchParams('range=30d'), '24h')).toEqual({ range: '30d' });
  });

  it('ignores an unknown preset', () => {
    expect(rangeQuery(new URLSearchParams('range=1y'), '7d')).toEqual({ range: '7d' });
  });

  it('turns a local custom range into UTC', () => {
    const from = new Date(2026, 4, 3, 9, 0);
    const to = new Date(2026, 4, 4, 9, 0);
    const params = new URLSearchParams({ from: toLocalInput(from), to: toLocalInput(to), range: '7d' });

    expect(rangeQuery(params, '24h')).toEqual({ from: from.toISOString(), to: to.toISOString() });
  });

  it('turns yesterday into local midnight to midnight', () => {
    const now = new Date(2026, 2, 29, 10, 30);
    expect(rangeQuery(new URLSearchParams('range=yesterday'), '24h', now)).toEqual({
      from: new Date(2026, 2, 28).toISOString(),
      to: new Date(2026, 2, 29).toISOString(),
    });
  });

  it('falls back when the custom range ends before it starts', () => {
    const params = new URLSearchParams({ from: '2026-05-04T09:00', to: '2026-05-03T09:00' });
    expect(rangeQuery(params, '24h')).toEqual({ range: '24h' });
  });
});
