import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { CallBodies } from '@tokenwise/core';
import { createBatchingRecordSink } from '@tokenwise/server';
import { BodyPacker } from '@tokenwise/storage';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { FlakyStore } from './helpers/flaky-store.js';
import { createLogCapture } from './helpers/log-capture.js';
import { sampleRecord } from './helpers/sample-record.js';
import { createServerLoggerForTest } from './helpers/test-logger.js';

/** Bodies as the Node proxy captures them (`decodeBodies: false`): the text's UTF-8 bytes in `raw`. */
function rawBodiesWith(prompt: string): CallBodies {
  const text = JSON.stringify({ model: 'claude-sonnet-4-5', messages: [{ role: 'user', content: prompt }] });
  const raw = new TextEncoder().encode(text);
  return {
    request: { text: null, raw, bytes: raw.length, truncated: false, content_type: 'application/json', encoding_error: null },
    response: {
      text: null,
      raw: new TextEncoder().encode('{"id":"msg_1"}'),
      bytes: 14,
      truncated: false,
      content_type: 'application/json',
      encoding_error: null,
    },
    request_headers: { 'anthropic-version': '2023-06-01' },
    response_headers: { 'request-id': 'req_1' },
  };
}

describe('batching record sink with raw bodies', () => {
  let dir: string;
  let store: FlakyStore;

  beforeEach(async () => {
    dir = await mkdtemp(join(tmpdir(), 'tokenwise-sink-raw-'));
    store = new FlakyStore(join(dir, 'tokenwise.db'));
  });

  afterEach(async () => {
    await store.close();
    await rm(dir, { recursive: true, force: true });
  });

  it('counts raw bytes toward a part and stores the decoded text', async () => {
    const packer = new BodyPacker();
    const pack = vi.spyOn(packer, 'pack');
    const logger = createServerLoggerForTest(createLogCapture());
    const sink = createBatchingRecordSink({ store, logger, flushIntervalMs: 3_600_000, packPartChars: 150, packer });
    const records = [sampleRecord(), sampleRecord(), sampleRecord()];
    const prompts = ['first DB_PASSWORD=hunter2hunter2 déjà 😀', 'second prompt €', 'third prompt'];
    const bodies = prompts.map(rawBodiesWith);

    sink.write(records[0]!, bodies[0]!);
    expect(pack).not.toHaveBeenCalled();
    expect(bodies[0]!.request!.raw!.byteLength).toBeGreaterThan(0);
    // The second body takes the part past 150 bytes, so both are sent to the packer's thread inside `write`.
    sink.write(records[1]!, bodies[1]!);
    expect(pack).toHaveBeenCalledTimes(1);
    expect(bodies[0]!.request!.raw!.byteLength).toBe(0);
    expect(bodies[1]!.response!.raw!.byteLength).toBe(0);
    sink.write(records[2]!, bodies[2]!);

    await sink.flush();

    expect(pack).toHaveBeenCalledTimes(2);
    const stored = await Promise.all(records.map((record) => store.getCall(record.id)));
    expect(stored.map((call) => JSON.parse(call!.bodies!.request!.text!).messages[0].content)).toEqual([
      'first DB_PASSWORD=[REDACTED:env-secret] déjà 😀',
      'second prompt €',
      'third prompt',
    ]);
    expect(stored[1]!.bodies!.request!.bytes).toBe(bodies[1]!.request!.bytes);
    expect(stored[1]!.bodies!.response!.text).toBe('{"id":"msg_1"}');
    expect(sink.stats()).toMatchObject({ stored: 3, queued: 0, lost: 0 });
    await sink.close();
    await packer.close();
  });
});
