import type { CallRecord } from '@tokenwise/core';
import { expect } from 'vitest';
import type { WireFixture } from './fixtures.js';

/**
 * Checks of a call record against a replayed llm-wire case, shared by every proxy that replays the
 * corpus (the Node proxy and the Worker), so both are held to the same expectations.
 */

/** Recorded times are replayed this much faster; set TOKENWISE_REPLAY_TIME_SCALE=1 to replay in real time. */
export const REPLAY_TIME_SCALE = Number(process.env.TOKENWISE_REPLAY_TIME_SCALE ?? '0.1');

/**
 * A timing may be late by scheduling, socket and upload delays (the record's clock starts before the
 * request body is sent, the corpus's clock after), never early by more than timer rounding. The late
 * bound is wide because a loaded 2-core CI machine delays timers by hundreds of ms; which read completes
 * the first output event is checked exactly, on a scripted clock, by the capture's own fixture test.
 */
const TIMING_EARLY_MS = 5;
const TIMING_LATE_MS = 1000;
const TIMING_LATE_FACTOR = 1.5;

/** Expected record fields compared on their own: timings on the scaled clock, cost to 9 decimals. */
const COMPARED_APART = new Set(['timing', 'cost']);

/** Body bytes after which the client hangs up, for a case recorded with a client abort. */
export function clientAbortBytes(fixture: WireFixture): number | undefined {
  const lastRead = fixture.responseMeta.client_aborts_after_chunk;
  if (lastRead === undefined) return undefined;
  return fixture.responseMeta.chunks.slice(0, lastRead + 1).reduce((sum, length) => sum + length, 0);
}

/** Check every field of the case's expected record, cost to 9 decimals; timings are left to `expectRecordTimings`. */
export function expectRecordFields(record: CallRecord, fixture: WireFixture): void {
  const recordFields = record as unknown as Record<string, unknown>;
  for (const [field, expected] of Object.entries(fixture.expectedRecord)) {
    if (COMPARED_APART.has(field)) continue;
    expect.soft(recordFields[field], field).toEqual(expected);
  }

  const cost = fixture.expectedRecord.cost as WireFixture['expected']['cost'];
  expect.soft(record.cost.basis, 'cost.basis').toBe(cost.basis);
  expect.soft(record.cost.price_key, 'cost.price_key').toBe(cost.price_key);
  if (cost.usd === null) expect.soft(record.cost.usd, 'cost.usd').toBeNull();
  else expect.soft(record.cost.usd, 'cost.usd').toBeCloseTo(cost.usd, 9);
  expect.soft(Object.keys(record.cost.breakdown).sort(), 'cost.breakdown components').toEqual(Object.keys(cost.breakdown).sort());
  for (const [component, usd] of Object.entries(cost.breakdown)) {
    expect
      .soft(record.cost.breakdown[component as keyof CallRecord['cost']['breakdown']], `cost.breakdown.${component}`)
      .toBeCloseTo(usd, 9);
  }
}

/** Check `total_ms` and `ttft_ms` against the case's recorded times on the replay's scaled clock. */
export function expectRecordTimings(record: CallRecord, fixture: WireFixture, timeScale = REPLAY_TIME_SCALE): void {
  expectScaledTiming(record.timing.total_ms, fixture.expected.timing.total_ms, 'timing.total_ms', timeScale);
  if (fixture.expected.timing.ttft_ms === null) expect(record.timing.ttft_ms, 'timing.ttft_ms').toBeNull();
  else expectScaledTiming(record.timing.ttft_ms, fixture.expected.timing.ttft_ms, 'timing.ttft_ms', timeScale);
}

function expectScaledTiming(actualMs: number | null, recordedMs: number, field: string, timeScale: number): void {
  const scaledMs = recordedMs * timeScale;
  expect(actualMs, field).not.toBeNull();
  expect(actualMs!, `${field} (recorded ${recordedMs} ms x ${timeScale})`).toBeGreaterThanOrEqual(scaledMs - TIMING_EARLY_MS);
  expect(actualMs!, `${field} (recorded ${recordedMs} ms x ${timeScale})`).toBeLessThanOrEqual(
    scaledMs * TIMING_LATE_FACTOR + TIMING_LATE_MS,
  );
}
