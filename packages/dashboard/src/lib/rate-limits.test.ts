import { describe, expect, it } from 'vitest';
import { readGauges } from './rate-limits.js';

describe('readGauges', () => {
  it('reads Anthropic limit and remaining pairs', () => {
    const gauges = readGauges({
      'anthropic-ratelimit-requests-limit': '50',
      'anthropic-ratelimit-requests-remaining': '40',
      'anthropic-ratelimit-requests-reset': '2026-05-04T10:00:30Z',
    });

    expect(gauges).toHaveLength(1);
    expect(gauges[0]).toMatchObject({ label: 'requests', detail: '40 of 50 left' });
    expect(gauges[0]!.reset).toMatch(/^May [45], \d\d:\d\d:30$/);
    expect(gauges[0]!.used).toBeCloseTo(0.2);
  });

  it('reads subscription utilization as a fraction', () => {
    const [gauge] = readGauges({ 'anthropic-ratelimit-unified-5h-utilization': '0.42' });
    expect(gauge).toMatchObject({ label: 'plan 5h window', used: 0.42 });
  });

  it('reads Codex used percentages with their windows', () => {
    const gauges = readGauges({
      'x-codex-primary-used-percent': '75',
      'x-codex-primary-window-minutes': '300',
      'x-codex-primary-reset-after-seconds': '3600',
      'x-codex-secondary-used-percent': '10',
    });

    expect(gauges[0]).toEqual({ label: 'plan primary window (5 h)', used: 0.75, detail: null, reset: 'in 1 h' });
    expect(gauges[1]).toMatchObject({ label: 'plan secondary window', used: 0.1 });
  });

  it('reads OpenAI limit and remaining pairs', () => {
    const [gauge] = readGauges({
      'x-ratelimit-limit-tokens': '1000',
      'x-ratelimit-remaining-tokens': '250',
      'x-ratelimit-reset-tokens': '6m0s',
    });
    expect(gauge).toEqual({ label: 'tokens', used: 0.75, detail: '250 of 1000 left', reset: '6m0s after the call' });
  });

  it('ignores unparseable values', () => {
    expect(readGauges({ 'anthropic-ratelimit-requests-limit': 'many', 'x-codex-primary-used-percent': 'n/a' })).toEqual([]);
  });
});
