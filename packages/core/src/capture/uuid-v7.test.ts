import { describe, expect, it } from 'vitest';
import { uuidV7 } from './uuid-v7.js';

const FORMAT = /^[0-9a-f]{8}-[0-9a-f]{4}-7[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/;

describe('uuidV7', () => {
  it('encodes milliseconds, version and variant', () => {
    const unixMs = Date.parse('2026-12-05T04:00:00.123Z');
    const id = uuidV7(unixMs);
    expect(id).toMatch(FORMAT);
    expect(Number.parseInt(id.replace(/-/g, '').slice(0, 12), 16)).toBe(unixMs);
  });

  it('gives distinct ids across several refills of the random pool', () => {
    const unixMs = Date.parse('2026-12-05T04:00:00.000Z');
    const ids = Array.from({ length: 5000 }, () => uuidV7(unixMs));
    expect(new Set(ids).size).toBe(ids.length);
    for (const id of ids.slice(0, 50)) expect(id).toMatch(FORMAT);
    // The random part is not a counter: ids of one millisecond do not sort in the order they were made.
    expect([...ids].sort()).not.toEqual(ids);
  });

  it('sorts ids of later milliseconds after earlier ones', () => {
    const ids = [0, 1, 255, 256, 65_536, 1_764_900_000_000].map((ms) => uuidV7(ms));
    expect([...ids].sort()).toEqual(ids);
  });
});
