import { describe, expect, it } from 'vitest';
import { parseSince } from './since.js';

const now = new Date('2026-12-04T12:00:00.000Z');

describe('parseSince', () => {
  it.each([
    ['90s', '2026-12-04T11:58:30.000Z'],
    ['30m', '2026-12-04T11:30:00.000Z'],
    ['1h', '2026-12-04T11:00:00.000Z'],
    ['7d', '2026-11-27T12:00:00.000Z'],
    ['2w', '2026-11-20T12:00:00.000Z'],
  ])('reads the duration %s back from now', (value, expected) => {
    expect(parseSince(value, now).toISOString()).toBe(expected);
  });

  it.each([
    ['2026-12-04T10:00:00Z', '2026-12-04T10:00:00.000Z'],
    ['2026-12-04T10:00:00.250+02:00', '2026-12-04T08:00:00.250Z'],
  ])('reads the ISO time %s', (value, expected) => {
    expect(parseSince(value, now).toISOString()).toBe(expected);
  });

  it('reads a bare date', () => {
    expect(Number.isNaN(parseSince('2026-12-01', now).getTime())).toBe(false);
  });

  it.each(['yesterday', '1 hour', '-1h', '1y', '', '2026-13-45'])('rejects %j naming the value', (value) => {
    expect(() => parseSince(value, now, '--since')).toThrow(`invalid --since "${value}"`);
  });

  // Regression: 100000000d became a date in the year -271764, which the API then rejected as an invalid
  // ISO time, so the CLI blamed the server for a value the person typed.
  it.each(['100000000d', '999999999w', '21000d'])('rejects %j reaching before 1970', (value) => {
    expect(() => parseSince(value, now, '--since')).toThrow(`invalid --since "${value}": that reaches back before 1970`);
  });
});
