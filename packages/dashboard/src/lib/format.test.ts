import { describe, expect, it } from 'vitest';
import {
  formatAgo,
  formatBytes,
  formatDateTime,
  formatDuration,
  formatDurationTicks,
  formatPercent,
  formatRange,
  formatTokens,
  formatUsd,
  formatUsdTicks,
  shortId,
} from './format.js';

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
    [0, '0 ms'],
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

describe('formatRange', () => {
  // Local times, so the expectations hold in any time zone the tests run in.
  const now = new Date(2026, 11, 5, 1, 14);

  it('names both dates of a one-day range', () => {
    const from = new Date(2026, 11, 4, 0, 0).toISOString();
    const to = new Date(2026, 11, 5, 0, 0).toISOString();
    expect(formatRange(from, to, now)).toBe('Dec 4, 00:00 to Dec 5, 00:00');
  });

  it('names both dates of a 24 h range ending now', () => {
    const from = new Date(2026, 11, 4, 1, 14, 20).toISOString();
    const to = new Date(2026, 11, 5, 1, 14, 20).toISOString();
    expect(formatRange(from, to, now)).toBe('Dec 4, 01:14 to Dec 5, 01:14');
  });

  it('adds the year when a range reaches into another year', () => {
    const from = new Date(2025, 11, 31, 0, 0).toISOString();
    const to = new Date(2026, 0, 1, 0, 0).toISOString();
    expect(formatRange(from, to, now)).toBe('Dec 31, 2025, 00:00 to Jan 1, 2026, 00:00');
  });
});

describe('formatDateTime', () => {
  it('shows the date even for today', () => {
    const now = new Date(2026, 11, 5, 2, 0);
    expect(formatDateTime(new Date(2026, 11, 5, 1, 21, 56).toISOString(), now)).toBe('Dec 5, 01:21:56');
    expect(formatDateTime(null, now)).toBe('–');
  });
});

describe('axis ticks', () => {
  it('keeps duration ticks in one unit', () => {
    expect(formatDurationTicks([0, 10_000, 20_000])).toEqual(['0 s', '10 s', '20 s']);
    expect(formatDurationTicks([0, 500, 1000, 1500])).toEqual(['0.0 s', '0.5 s', '1.0 s', '1.5 s']);
    expect(formatDurationTicks([0, 50, 100])).toEqual(['0 ms', '50 ms', '100 ms']);
  });

  it('puts a dollar sign on every cost tick', () => {
    expect(formatUsdTicks([0, 0.0002, 0.0004, 0.0006])).toEqual(['$0.0000', '$0.0002', '$0.0004', '$0.0006']);
    expect(formatUsdTicks([0, 5, 10])).toEqual(['$0.00', '$5.00', '$10.00']);
  });
});
