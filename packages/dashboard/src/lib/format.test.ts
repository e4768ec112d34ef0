import { describe, expect, it } from 'vitest';
import { formatAgo, formatBytes, formatDuration, formatPercent, formatTokens, formatUsd, shortId } from './format.js';

describe('formatUsd', () => {
  it.each([
    [null, '–'],
    [0, '$0.00'],
    [0.0001234, '$0.00012'],
    [0.0456, '$0.046'],
    [3.416, '$3.42'],
    [12345.6, '$12,346'],
  ])('%s -> %s', (value, expected) => {
    expect(formatUsd(value)).toBe(expected);
  });
});

describe('formatTokens', () => {
  it.each([
    [null, '–'],
    [0, '0'],
    [950, '950'],
    [1200, '1.2k'],
    [12_345, '12.3k'],
    [4_100_000, '4.1M'],
    [91_203_311, '91.2M'],
    [2_050_000_000, '2.05B'],
  ])('%s -> %s', (value, expected) => {
    expect(formatTokens(value)).toBe(expected);
  });
});

describe('formatDuration', () => {
  it.each([
    [null, '–'],
    [0.4, '0.40 ms'],
    [840, '840 ms'],
    [2400, '2.4 s'],
    [14_020, '14 s'],
    [192_000, '3 min 12 s'],
    [3_900_000, '1 h 05 min'],
  ])('%s -> %s', (value, expected) => {
    expect(formatDuration(value)).toBe(expected);
  });
});

describe('other formats', () => {
  it('formats ratios as percentages', () => {
    expect(formatPercent(0.965)).toBe('96.5%');
    expect(formatPercent(null)).toBe('–');
  });

  it('formats bytes in binary units', () => {
    expect(formatBytes(812)).toBe('812 B');
    expect(formatBytes(48_211)).toBe('47.1 KiB');
    expect(formatBytes(1_572_864)).toBe('1.5 MiB');
  });

  it('formats relative times', () => {
    const now = new Date('2026-05-04T10:00:00Z');
    expect(formatAgo(null, now)).toBe('never');
    expect(formatAgo('2026-05-04T09:59:30Z', now)).toBe('just now');
    expect(formatAgo('2026-05-04T09:15:00Z', now)).toBe('45 min ago');
    expect(formatAgo('2026-05-01T10:00:00Z', now)).toBe('3 d ago');
  });

  it('keeps the end of long ids', () => {
    expect(shortId('0196a1b2-c3d4-7e5f-8a9b-0c1d2e3f4a5b')).toBe('…2e3f4a5b');
    expect(shortId('abc')).toBe('abc');
  });
});
