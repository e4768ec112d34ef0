import { type CallBodies, type CallRecord, type CapturedBody, DEFAULT_BODY_CAP_BYTES, redactHeaders, redactSecrets } from '@tokenwise/core';
import { expect } from 'vitest';
import { decodedRequestBody, decodedResponseBody, type WireFixture } from './fixtures.js';

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

/** Check that the record names the case's route, method and wire byte counts, and the caller's workspace and device. */
export function expectRecordCaller(
  record: CallRecord,
  fixture: WireFixture,
  caller: { workspaceId: string; deviceId: string | null },
): void {
  expect(record.route).toBe(fixture.route);
  expect(record.workspace_id).toBe(caller.workspaceId);
  expect(record.device_id).toBe(caller.deviceId);
  expect(record.method).toBe(fixture.request.method);
  expect(record.request_bytes).toBe(fixture.requestBody?.length ?? 0);
  expect(record.response_bytes).toBe(fixture.responseBody.length);
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

export interface BodyExpectations {
  /** The proxy's body cap in bytes; default the Node proxy's. */
  bodyCapBytes?: number;
  /** Header names (lowercase) that a hop adds or removes, left out of the stored header comparison. */
  hopHeaders?: ReadonlySet<string>;
}

/**
 * Check the kept bodies of a replayed case: each body is the decoded text up to the cap with secrets
 * masked, with the full decoded byte count, and the headers are those of the exchange without credentials.
 */
export function expectRecordBodies(bodies: CallBodies | null, fixture: WireFixture, options: BodyExpectations = {}): void {
  const capBytes = options.bodyCapBytes ?? DEFAULT_BODY_CAP_BYTES;
  const hopHeaders = options.hopHeaders ?? new Set<string>();
  expect(bodies, 'bodies').not.toBeNull();

  const requestBody = decodedRequestBody(fixture);
  if (requestBody === null || requestBody.length === 0) expect.soft(bodies!.request, 'bodies.request').toBeNull();
  else expectCapturedBody(bodies!.request, requestBody, fixture.request.headers['content-type'] ?? null, capBytes, 'bodies.request');
  expectCapturedBody(
    bodies!.response,
    decodedResponseBody(fixture),
    fixture.responseMeta.headers['content-type'] ?? null,
    capBytes,
    'bodies.response',
  );

  const withoutHops = (headers: Record<string, string>) =>
    Object.fromEntries(Object.entries(headers).filter(([name]) => !hopHeaders.has(name)));
  expect.soft(withoutHops(bodies!.request_headers), 'bodies.request_headers').toEqual(withoutHops(redactHeaders(fixture.request.headers)));
  expect
    .soft(withoutHops(bodies!.response_headers), 'bodies.response_headers')
    .toEqual(withoutHops(redactHeaders(fixture.responseMeta.headers)));
}

function expectCapturedBody(
  body: CapturedBody | null,
  decoded: Uint8Array,
  contentType: string | null,
  capBytes: number,
  label: string,
): void {
  expect.soft(body, label).not.toBeNull();
  if (body === null) return;
  const truncated = decoded.length > capBytes;
  const keptBytes = truncated ? decoded.subarray(0, utf8Boundary(decoded, capBytes)) : decoded;
  expect.soft(body.bytes, `${label}.bytes`).toBe(decoded.length);
  expect.soft(body.truncated, `${label}.truncated`).toBe(truncated);
  expect.soft(body.content_type, `${label}.content_type`).toBe(contentType);
  expect.soft(body.encoding_error, `${label}.encoding_error`).toBeNull();
  // A whole body may be megabytes long, so a mismatch is reported as its first differing character only.
  expect.soft(firstDifference(body.text, redactSecrets(new TextDecoder().decode(keptBytes))), `${label}.text`).toBeNull();
}

/** The largest index at or below `index` where a UTF-8 character starts, so a cut keeps whole characters only. */
function utf8Boundary(bytes: Uint8Array, index: number): number {
  let boundary = index;
  while (boundary > 0 && (bytes[boundary]! & 0xc0) === 0x80) boundary -= 1;
  return boundary;
}

/** Null when both texts are equal, else where they first differ with a little context from each. */
function firstDifference(actual: string | null, expected: string): string | null {
  if (actual === expected) return null;
  if (actual === null) return `text is null, expected ${expected.length} characters`;
  let index = 0;
  while (index < actual.length && index < expected.length && actual[index] === expected[index]) index += 1;
  const excerpt = (text: string) => JSON.stringify(text.slice(Math.max(0, index - 20), index + 40));
  return `first difference at character ${index} of ${actual.length} (expected ${expected.length}): ${excerpt(actual)} instead of ${excerpt(expected)}`;
}
