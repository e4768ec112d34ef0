import type { CallRecord } from '@tokenwise/core';
import { describe, expect, it } from 'vitest';
import { matchesLive, readFilters } from './call-filters.js';

const call = {
  id: '0196a1b2-0000-7000-8000-000000000001',
  started_at: '2026-05-04T10:00:00.000Z',
  tool: 'claude-code',
  provider: 'anthropic',
  device_id: 'd-1',
  status: 'success',
  session_id: 's-1',
  model_requested: 'claude-haiku-4-5',
  model_answered: 'claude-haiku-4-5-20251001',
} as CallRecord;

const always = { from: null, to: null };

describe('readFilters', () => {
  it('keeps only known, non-empty filters', () => {
    expect(readFilters(new URLSearchParams('tool=codex&q=&other=1&status=error'))).toEqual({ tool: 'codex', status: 'error' });
  });
});

describe('matchesLive', () => {
  it('matches without filters', () => {
    expect(matchesLive(call, {}, always)).toBe(true);
  });

  it('matches one of several comma-separated values', () => {
    expect(matchesLive(call, { tool: 'codex,claude-code' }, always)).toBe(true);
    expect(matchesLive(call, { tool: 'codex' }, always)).toBe(false);
  });

  it('matches a model without its date suffix', () => {
    expect(matchesLive(call, { model: 'claude-haiku-4-5' }, always)).toBe(true);
    expect(matchesLive(call, { model: 'claude-haiku' }, always)).toBe(false);
  });

  it('checks the time window', () => {
    expect(matchesLive(call, {}, { from: new Date('2026-05-04T11:00:00Z'), to: null })).toBe(false);
    expect(matchesLive(call, {}, { from: null, to: new Date('2026-05-04T10:00:00Z') })).toBe(false);
  });

  it('cannot decide prompt search on the record', () => {
    expect(matchesLive(call, { q: 'migration' }, always)).toBe('unknown');
  });
});
