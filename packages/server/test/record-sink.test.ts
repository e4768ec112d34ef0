import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { CallBodies } from '@tokenwise/core';
import { createBatchingRecordSink } from '@tokenwise/server';
import { BodyPacker, type ListedCall } from '@tokenwise/storage';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { FlakyStore } from './helpers/flaky-store.js';
import { createLogCapture, type LogCapture } from './helpers/log-capture.js';
import { sampleRecord } from './helpers/sample-record.js';
import { holdSqliteWriteLock } from './helpers/sqlite-lock.js';
import { createServerLoggerForTest } from './helpers/test-logger.js';

describe('batching record sink', () => {
  let dir: string;
  let store: FlakyStore;
  let logs: LogCapture;

  beforeEach(async () => {
    dir = await mkdtemp(join(tmpdir(), 'tokenwise-sink-'));
    store = new FlakyStore(join(dir, 'tokenwise.db'));
    logs = createLogCapture();
  });

  afterEach(async () => {
    await store.close();
    await rm(dir, { recursive: true, force: true });
  });

  const logger = () => createServerLoggerForTest(logs);

  it('stores records in one batch per interval', async () => {
    const sink = createBatchingRecordSink({ store, logger: logger(), flushIntervalMs: 50 });
    for (let index = 0; index < 5; index += 1) sink.write(sampleRecord(), null);

    expect(store.insertAttempts).toBe(0);
    await vi.waitFor(async () => expect(await store.listCalls({ limit: 10 })).toHaveLength(5));
    expect(store.insertAttempts).toBe(1);
    expect(sink.stats()).toMatchObject({ stored: 5, queued: 0, dropped: 0, storeFailures: 0, lost: 0 });
    await sink.close();
  });

  it('flushes a full batch without waiting', async () => {
    const sink = createBatchingRecordSink({ store, logger: logger(), flushIntervalMs: 3_600_000, maxBatchSize: 3 });
    for (let index = 0; index < 3; index += 1) sink.write(sampleRecord(), null);

    await vi.waitFor(async () => expect(await store.listCalls({ limit: 10 })).toHaveLength(3));
    await sink.close();
  });

  it('keeps writes off the store until a flush', async () => {
    const sink = createBatchingRecordSink({ store, logger: logger(), flushIntervalMs: 3_600_000 });
    sink.write(sampleRecord(), null);

    expect(store.insertAttempts).toBe(0);
    expect(sink.stats().queued).toBe(1);
    await sink.flush();
    expect(await store.listCalls({ limit: 10 })).toHaveLength(1);
    await sink.close();
  });

  it('never throws from write when the store fails', async () => {
    store.failAll = true;
    const sink = createBatchingRecordSink({ store, logger: logger(), flushIntervalMs: 3_600_000, maxAttempts: 2 });

    expect(() => sink.write(sampleRecord(), null)).not.toThrow();
    await sink.flush();
    expect(sink.stats()).toMatchObject({ queued: 1, storeFailures: 2, lost: 0 });

    await sink.flush();
    expect(sink.stats()).toMatchObject({ queued: 0, storeFailures: 4, lost: 1, stored: 0 });
    expect(logs.text()).toContain('record lost');
    await sink.close();
  });

  it('stores the records of a failed batch on retry', async () => {
    store.failNext = 1;
    const sink = createBatchingRecordSink({ store, logger: logger(), flushIntervalMs: 3_600_000 });
    for (let index = 0; index < 4; index += 1) sink.write(sampleRecord(), null);

    await sink.flush();

    expect(await store.listCalls({ limit: 10 })).toHaveLength(4);
    expect(sink.stats()).toMatchObject({ stored: 4, storeFailures: 1, lost: 0 });
  });

  it('loses only the bad record of a batch', async () => {
    const sink = createBatchingRecordSink({ store, logger: logger(), flushIntervalMs: 3_600_000, maxAttempts: 1 });
    const good = [sampleRecord(), sampleRecord()];
    sink.write(good[0]!, null);
    sink.write(sampleRecord({ started_at: 'not a time' }), null);
    sink.write(good[1]!, null);

    await sink.flush();

    const stored = await store.listCalls({ limit: 10 });
    expect(stored.map((call) => call.record.id).sort()).toEqual(good.map((record) => record.id).sort());
    expect(sink.stats()).toMatchObject({ stored: 2, lost: 1 });
  });

  // Regression: a database locked by another process made every record of the batch use up its attempts,
  // so a lock held longer than a few flushes lost the records.
  it('keeps records while the database is locked', async () => {
    const lockedStore = new FlakyStore(join(dir, 'locked.db'), { busyTimeoutMs: 0 });
    const sink = createBatchingRecordSink({ store: lockedStore, logger: logger(), flushIntervalMs: 50, maxAttempts: 1 });
    const lock = await holdSqliteWriteLock(join(dir, 'locked.db'), 1500);

    for (let index = 0; index < 3; index += 1) sink.write(sampleRecord(), null);
    await vi.waitFor(() => expect(sink.stats().storeUnavailable).toBe(true));
    expect(sink.stats()).toMatchObject({ queued: 3, lost: 0 });

    await lock.released;
    await vi.waitFor(async () => expect(await lockedStore.listCalls({ limit: 10 })).toHaveLength(3), { timeout: 10_000 });
    expect(sink.stats()).toMatchObject({ stored: 3, lost: 0, dropped: 0, storeUnavailable: false });
    expect(logs.text()).toContain('the store is unavailable');
    expect(logs.text()).toContain('the store is available again');
    await sink.close();
    await lockedStore.close();
  });

  it('drops and counts records beyond the queue bound', async () => {
    const sink = createBatchingRecordSink({ store, logger: logger(), flushIntervalMs: 3_600_000, maxQueueSize: 2 });
    sink.write(sampleRecord(), null);
    sink.write(sampleRecord(), null);
    sink.write(sampleRecord(), null);

    expect(sink.stats()).toMatchObject({ queued: 2, dropped: 1 });
    expect(logs.text()).toContain('call record dropped');
    await sink.close();
    expect(await store.listCalls({ limit: 10 })).toHaveLength(2);
  });

  it('stores everything queued on close', async () => {
    const sink = createBatchingRecordSink({ store, logger: logger(), flushIntervalMs: 3_600_000 });
    for (let index = 0; index < 3; index += 1) sink.write(sampleRecord(), null);

    await sink.close();

    expect(await store.listCalls({ limit: 10 })).toHaveLength(3);
    sink.write(sampleRecord(), null);
    expect(sink.stats().dropped).toBe(1);
  });

  it('counts records still failing at close as lost', async () => {
    store.failAll = true;
    const sink = createBatchingRecordSink({ store, logger: logger(), flushIntervalMs: 3_600_000 });
    sink.write(sampleRecord(), null);

    await sink.close();

    expect(sink.stats()).toMatchObject({ queued: 0, lost: 1 });
  });

  it('reports each stored call once with its cursor', async () => {
    const published: ListedCall[] = [];
    const sink = createBatchingRecordSink({
      store,
      logger: logger(),
      flushIntervalMs: 3_600_000,
      onStored: (calls) => published.push(...calls),
    });
    const record = sampleRecord();
    sink.write(record, null);
    sink.write(record, null);

    await sink.flush();

    expect(published).toHaveLength(1);
    expect(published[0]!.record).toStrictEqual(record);
    const [listed] = await store.listCalls({ limit: 1 });
    expect(published[0]!.cursor).toBe(listed!.cursor);
  });

  it('packs body text before the flush', async () => {
    const packer = new BodyPacker();
    const pack = vi.spyOn(packer, 'pack');
    const sink = createBatchingRecordSink({ store, logger: logger(), flushIntervalMs: 3_600_000, packPartChars: 150, packer });
    const records = [sampleRecord(), sampleRecord(), sampleRecord()];
    const prompts = ['first DB_PASSWORD=hunter2hunter2', 'second prompt', 'third prompt'];

    sink.write(records[0]!, bodiesWith(prompts[0]!));
    expect(pack).not.toHaveBeenCalled();
    sink.write(records[1]!, bodiesWith(prompts[1]!));
    expect(pack).toHaveBeenCalledTimes(1);
    expect(pack.mock.calls[0]![0]).toHaveLength(2);
    sink.write(records[2]!, bodiesWith(prompts[2]!));
    expect(sink.stats().queued).toBe(3);
    expect(store.insertAttempts).toBe(0);

    await sink.flush();

    expect(pack).toHaveBeenCalledTimes(2);
    expect(pack.mock.calls[1]![0]).toHaveLength(1);
    expect(store.insertAttempts).toBe(1);
    const stored = await Promise.all(records.map((record) => store.getCall(record.id)));
    expect(stored.map((call) => JSON.parse(call!.bodies!.request!.text!).messages[0].content)).toEqual([
      'first DB_PASSWORD=[REDACTED:env-secret]',
      'second prompt',
      'third prompt',
    ]);
    expect(sink.stats()).toMatchObject({ stored: 3, queued: 0, lost: 0 });
    await sink.close();
    await packer.close();
  });

  it('splits store batches by body size', async () => {
    // Each packed record below is 211: 56 prompt characters and 155 compressed bytes.
    const sink = createBatchingRecordSink({ store, logger: logger(), flushIntervalMs: 3_600_000, maxBatchBodySize: 450 });
    const records = [sampleRecord(), sampleRecord(), sampleRecord(), sampleRecord()];

    for (const record of records) sink.write(record, bodiesWith('a prompt of some length, about a hundred characters long'));
    sink.write(sampleRecord(), null);
    await sink.flush();

    expect(store.insertAttempts).toBe(2);
    expect(await store.listCalls({ limit: 10 })).toHaveLength(5);
    expect(sink.stats()).toMatchObject({ stored: 5, queued: 0, lost: 0 });
    await sink.close();
  });

  it('loses the records of a failed part', async () => {
    const packer = new BodyPacker();
    vi.spyOn(packer, 'pack').mockRejectedValueOnce(new Error('the packer failed'));
    const sink = createBatchingRecordSink({ store, logger: logger(), flushIntervalMs: 3_600_000, packPartChars: 150, packer });
    const records = [sampleRecord(), sampleRecord(), sampleRecord()];

    for (const record of records) sink.write(record, bodiesWith('a prompt of some length'));
    await sink.flush();

    const stored = await store.listCalls({ limit: 10 });
    expect(stored.map((call) => call.record.id)).toEqual([records[2]!.id]);
    expect(sink.stats()).toMatchObject({ stored: 1, queued: 0, lost: 2 });
    expect(logs.text()).toContain('masking and compressing call bodies failed; records lost');
    await sink.close();
    await packer.close();
  });

  it('removes credential headers from stored bodies', async () => {
    const sink = createBatchingRecordSink({ store, logger: logger(), flushIntervalMs: 3_600_000 });
    const record = sampleRecord();
    sink.write(record, {
      request: null,
      response: null,
      request_headers: { Authorization: 'Bearer sk-ant-oat01-FAKE', 'x-api-key': 'sk-ant-api03-FAKE', 'anthropic-version': '2023-06-01' },
      response_headers: { 'set-cookie': 'session=FAKE', 'content-type': 'application/json' },
    });

    await sink.close();

    const stored = await store.getCall(record.id);
    expect(stored?.bodies?.request_headers).toEqual({ 'anthropic-version': '2023-06-01' });
    expect(stored?.bodies?.response_headers).toEqual({ 'content-type': 'application/json' });
  });
});

/** Bodies of an Anthropic Messages call with `prompt` as its one user message. */
function bodiesWith(prompt: string): CallBodies {
  const text = JSON.stringify({ model: 'claude-sonnet-4-5', messages: [{ role: 'user', content: prompt }] });
  return {
    request: { text, bytes: text.length, truncated: false, content_type: 'application/json', encoding_error: null },
    response: { text: '{"id":"msg_1"}', bytes: 14, truncated: false, content_type: 'application/json', encoding_error: null },
    request_headers: { 'anthropic-version': '2023-06-01' },
    response_headers: { 'request-id': 'req_1' },
  };
}
