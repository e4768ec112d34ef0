import { describe, expect, it } from 'vitest';
import { formatUserCode, generateSecret, generateUserCode, normalizeUserCode } from './secrets.js';

describe('user codes', () => {
  it('uses eight consonants without look-alikes', () => {
    for (let index = 0; index < 200; index += 1) expect(generateUserCode()).toMatch(/^[BCDFGHJKLMNPQRSTVWXZ]{8}$/);
  });

  it('reads a code however it was typed', () => {
    expect(normalizeUserCode('bcdf-ghjk')).toBe('BCDFGHJK');
    expect(normalizeUserCode(' BCDF GHJK ')).toBe('BCDFGHJK');
    expect(formatUserCode('BCDFGHJK')).toBe('BCDF-GHJK');
  });

  it('rejects codes of other letters or lengths', () => {
    expect(normalizeUserCode('BCDF-GHJ')).toBeNull();
    expect(normalizeUserCode('ABCD-EFGH')).toBeNull();
    expect(normalizeUserCode('BCDF-GHJ1')).toBeNull();
  });
});

describe('secrets', () => {
  it('prefixes each kind', () => {
    expect(generateSecret('session')).toMatch(/^tws_[\w-]{43}$/);
    expect(generateSecret('deviceCode')).toMatch(/^twd_[\w-]{43}$/);
  });
});
