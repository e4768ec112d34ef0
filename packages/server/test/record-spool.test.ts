import { randomBytes } from 'node:crypto';
import { appendFile, mkdir, mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { gunzipSync } from 'node:zlib';
import { TokenwiseError } from '@tokenwise/core';
import { createBatchingRecordSink, openRecordSpool } from '@tokenwise/server';
import { type CallToInsert, type CallToStore, type PackedCall, packBodies, SqliteStore, type StoredCallRef } from '@tokenwise/storage';
import { FAKE_CREDENTIALS, scanForFakeCredentials } from '@tokenwise/testkit';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { createLogCapture, type LogCapture } from './helpers/log-capture.js';
import { sampleRecord } from './helpers/sample-record.js';
import { createServerLoggerForTest } from './helpers/test-logger.js';

/** A real SQLite store that reports `store_unavailable`, as a locked file or a stopped PostgreSQL does, while `down` is set. */
class SwitchableStore extends SqliteStore {
  down = false;
  insertAttempts = 0;

  override async insertCalls(calls: readonly CallToInsert[]): Promise<StoredCallRef[]> {
    this.insertAttempts += 1;
    if (this.down) throw new TokenwiseError('store_unavailable', 'the store is down (simulated)');
    return super.insertCalls(calls);
  }
}

function calls(count: number, bodyText = 'hello'): CallToStore[] {
  return Array.from({ length: count }, () => ({
    record: sampleRecord(),
    bodies: {
      request: { text: bodyText, bytes: bodyText.length, truncated: false, content_type: 'application/json', encoding_error: null },
      response: null,
      request_headers: {},
      response_headers: {},
    },
  }));
}

/** Calls as the sink hands them to the spool: bodies masked and compressed. */
function packedCalls(count: number, bodyText = 'hello'): PackedCall[] {
  return calls(count, bodyText).map(({ record, bodies }) => ({
    record,
    packed: packBodies({ apiShape: record.api_shape, bodies: bodies!, redact: true }),
  }));
}

/** What the spool reads back of a packed call: everything but the prompt text. */
function asSpooled({ record, packed }: PackedCall) {
  return { record, bodyRow: packed?.row ?? null };
}

let dir: string;
let logs: LogCapture;

beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), 'tokenwise-spool-'));
  logs = createLogCapture();
});

afterEach(async () => {
  await rm(dir, { recursive: true, force: true });
});

const logger = () => createServerLoggerForTest(logs);
const segmentFiles = async (spoolDir: string) => (await readdir(spoolDir)).filter((name) => name.endsWith('.jsonl')).sort();

describe('record spool', () => {
  it('reads back what it appended, in order', async () => {
    const spool = await openRecordSpool(join(dir, 'spool'));
    const written = packedCalls(3);
    const { spooled, refused } = await spool.append(written);

    expect(refused).toEqual([]);
    const read = await spool.read(spool.start, spool.end(), 10);
    expect(read.calls.map((entry) => entry.call)).toStrictEqual(written.map(asSpooled));
    expect(read.calls.map((entry) => entry.end)).toEqual(spooled.map((entry) => entry.end));
    expect(read.next).toEqual(spool.end());
    await spool.close();
  });

  it('stops reading at the limit and at maxCalls', async () => {
    const spool = await openRecordSpool(join(dir, 'spool'));
    const { spooled } = await spool.append(packedCalls(5));

    const upToThird = await spool.read(spool.start, spooled[2]!.end, 10);
    expect(upToThird.calls).toHaveLength(3);
    const firstTwo = await spool.read(spool.start, spool.end(), 2);
    expect(firstTwo.calls).toHaveLength(2);
    const rest = await spool.read(firstTwo.next, spool.end(), 10);
    expect(rest.calls.map((entry) => entry.call.record.id)).toEqual(spooled.slice(2).map((entry) => entry.call.record.id));
    await spool.close();
  });

  it('refuses calls beyond maxBytes', async () => {
    const spool = await openRecordSpool(join(dir, 'spool'), { maxBytes: 4096 });
    const { spooled, refused } = await spool.append(packedCalls(20, 'x'.repeat(300)));

    expect(spooled.length).toBeGreaterThan(0);
    expect(refused.length).toBe(20 - spooled.length);
    expect(spool.bytes()).toBeLessThanOrEqual(4096);
    await spool.close();
  });

  it('rotates segments and deletes released ones', async () => {
    const spoolDir = join(dir, 'spool');
    const spool = await openRecordSpool(spoolDir, { segmentBytes: 1024 });
    const first = await spool.append(packedCalls(4, 'y'.repeat(300)));
    const second = await spool.append(packedCalls(4, 'y'.repeat(300)));
    expect(second.spooled[0]!.start.segment).toBeGreaterThan(first.spooled[0]!.start.segment);
    expect(await segmentFiles(spoolDir)).toHaveLength(2);

    const bytesBefore = spool.bytes();
    await spool.release(second.spooled[0]!.start);
    expect(await segmentFiles(spoolDir)).toHaveLength(1);
    expect(spool.bytes()).toBeLessThan(bytesBefore);
    await spool.close();
  });

  it('deletes a fully released head segment', async () => {
    const spoolDir = join(dir, 'spool');
    const spool = await openRecordSpool(spoolDir);
    const first = await spool.append(packedCalls(2));
    await spool.release(first.spooled.at(-1)!.end);
    expect(await segmentFiles(spoolDir)).toEqual([]);
    expect(spool.bytes()).toBe(0);

    // The next append starts a new segment, and reading it gives the new call only.
    const second = await spool.append(packedCalls(1));
    expect(second.spooled[0]!.start.segment).toBeGreaterThan(first.spooled[0]!.start.segment);
    expect(await segmentFiles(spoolDir)).toHaveLength(1);
    const read = await spool.read(first.spooled.at(-1)!.end, spool.end(), 10);
    expect(read.calls).toHaveLength(1);
    await spool.close();
  });

  it('keeps a head segment released only in part', async () => {
    const spoolDir = join(dir, 'spool');
    const spool = await openRecordSpool(spoolDir);
    const appended = await spool.append(packedCalls(2));
    await spool.release(appended.spooled[1]!.start);
    expect(await segmentFiles(spoolDir)).toHaveLength(1);
    await spool.close();
  });

  it('recovers the calls an earlier process left', async () => {
    const spoolDir = join(dir, 'spool');
    const earlier = await openRecordSpool(spoolDir);
    const written = packedCalls(3);
    await earlier.append(written);
    await earlier.close();

    const later = await openRecordSpool(spoolDir);
    expect(later.recoveredCalls).toBe(3);
    const read = await later.read(later.start, later.end(), 10);
    expect(read.calls.map((entry) => entry.call)).toStrictEqual(written.map(asSpooled));
    const next = await later.append(packedCalls(1));
    expect(next.spooled[0]!.start.segment).toBeGreaterThan(read.calls[0]!.start.segment);
    await later.close();
  });

  it('skips a last line cut short by a crash', async () => {
    const spoolDir = join(dir, 'spool');
    const earlier = await openRecordSpool(spoolDir);
    await earlier.append(packedCalls(2));
    await earlier.close();
    const [segment] = await segmentFiles(spoolDir);
    await appendFile(join(spoolDir, segment!), '{"record":{"id":"cut-sh');

    const later = await openRecordSpool(spoolDir);
    expect(later.recoveredCalls).toBe(2);
    const read = await later.read(later.start, later.end(), 10);
    expect(read.calls).toHaveLength(2);
    expect(read.skipped).toEqual([{ position: expect.any(Object), complete: false }]);
    expect(read.next).toEqual(later.end());
    await later.close();
  });

  it('skips a whole line that is not a call', async () => {
    const spoolDir = join(dir, 'spool');
    const earlier = await openRecordSpool(spoolDir);
    await earlier.append(packedCalls(1));
    await earlier.close();
    await writeFile(join(spoolDir, 'segment-000000000099.jsonl'), 'not json\n{"record":{}}\n');

    const later = await openRecordSpool(spoolDir);
    const read = await later.read(later.start, later.end(), 10);
    expect(read.calls).toHaveLength(1);
    expect(read.skipped.map((line) => line.complete)).toEqual([true, true]);
    await later.close();
  });

  it('reads a line longer than one read chunk', async () => {
    const spool = await openRecordSpool(join(dir, 'spool'));
    // Random text barely compresses, so its line is longer than the 1 MiB first read.
    const [big] = packedCalls(1, randomBytes(3 * 1024 * 1024).toString('base64'));
    await spool.append([big!, ...packedCalls(1)]);
    const read = await spool.read(spool.start, spool.end(), 10);
    expect(read.calls).toHaveLength(2);
    expect(read.calls[0]!.bytes).toBeGreaterThan(2 * 1024 * 1024);
    expect(read.calls[0]!.call).toStrictEqual(asSpooled(big!));
    await spool.close();
  });
});

describe('batching sink with a spool', () => {
  let store: SwitchableStore;
  let spoolDir: string;

  beforeEach(() => {
    store = new SwitchableStore(join(dir, 'tokenwise.db'));
    spoolDir = join(dir, 'spool');
  });

  afterEach(async () => {
    await store.close();
  });

  async function storedIds(): Promise<string[]> {
    return (await store.listCalls({ limit: 10_000 })).map((call) => call.record.id).sort();
  }

  it('stores records through the spool and deletes it on close', async () => {
    const sink = createBatchingRecordSink({ store, logger: logger(), spool: await openRecordSpool(spoolDir), flushIntervalMs: 20 });
    const written = calls(5);
    for (const call of written) sink.write(call.record, call.bodies);

    await vi.waitFor(async () => expect(await storedIds()).toHaveLength(5));
    expect(sink.stats()).toMatchObject({ stored: 5, queued: 0, spooled: 0, dropped: 0, lost: 0 });
    await sink.close();
    expect(await segmentFiles(spoolDir)).toEqual([]);
  });

  it('keeps records on disk while the store is down', async () => {
    store.down = true;
    const sink = createBatchingRecordSink({ store, logger: logger(), spool: await openRecordSpool(spoolDir), flushIntervalMs: 20 });
    const written = calls(30);
    for (const call of written) sink.write(call.record, call.bodies);

    await vi.waitFor(() => expect(sink.stats()).toMatchObject({ storeUnavailable: true, spooled: 30, queued: 30 }));
    expect(sink.stats().spoolBytes).toBeGreaterThan(0);
    expect(logs.text()).toContain('the store is unavailable; call records wait in the spool');

    store.down = false;
    await vi.waitFor(async () => expect(await storedIds()).toEqual(written.map((call) => call.record.id).sort()), { timeout: 10_000 });
    expect(sink.stats()).toMatchObject({ stored: 30, queued: 0, spooled: 0, storeUnavailable: false, lost: 0, dropped: 0 });
    await sink.close();
  });

  it('warns how many records wait, repeatedly', async () => {
    store.down = true;
    const sink = createBatchingRecordSink({
      store,
      logger: logger(),
      spool: await openRecordSpool(spoolDir),
      flushIntervalMs: 20,
      waitingWarningIntervalMs: 50,
    });
    for (const call of calls(3)) sink.write(call.record, call.bodies);

    await vi.waitFor(() => {
      const warnings = logs.lines().filter((line) => line.msg === 'call records still wait for the store');
      expect(warnings.length).toBeGreaterThanOrEqual(2);
      expect(warnings.at(-1)!.waiting).toBe(3);
    });
    await sink.close();
  });

  it('reads records back from disk beyond the memory bound', async () => {
    store.down = true;
    const sink = createBatchingRecordSink({
      store,
      logger: logger(),
      spool: await openRecordSpool(spoolDir, { segmentBytes: 4096 }),
      flushIntervalMs: 20,
      maxQueueBytes: 2048,
      maxBatchSize: 7,
    });
    const written = calls(60, 'w'.repeat(200));
    for (let round = 0; round < 6; round += 1) {
      for (const call of written.slice(round * 10, round * 10 + 10)) sink.write(call.record, call.bodies);
      await vi.waitFor(() => expect(sink.stats().spooled).toBe(round * 10 + 10));
    }
    expect((await segmentFiles(spoolDir)).length).toBeGreaterThan(2);

    store.down = false;
    await vi.waitFor(async () => expect(await storedIds()).toEqual(written.map((call) => call.record.id).sort()), { timeout: 10_000 });
    expect(sink.stats()).toMatchObject({ stored: 60, queued: 0, spooled: 0 });
    // Stored segments are deleted as the store catches up; only the one being appended to may remain.
    expect((await segmentFiles(spoolDir)).length).toBeLessThanOrEqual(1);
    await sink.close();
  });

  it('leaves waiting records for the next start, which stores each once', async () => {
    store.down = true;
    const first = createBatchingRecordSink({ store, logger: logger(), spool: await openRecordSpool(spoolDir), flushIntervalMs: 20 });
    const written = calls(12);
    for (const call of written) first.write(call.record, call.bodies);
    await first.close();
    expect(first.stats()).toMatchObject({ lost: 0, spooled: 12 });
    expect(logs.text()).toContain('call records wait in the spool; the next start with this data directory stores them');

    store.down = false;
    // Half of them reached the store before the crash that left them in the spool.
    await store.insertCalls(written.slice(0, 6));
    const second = createBatchingRecordSink({ store, logger: logger(), spool: await openRecordSpool(spoolDir), flushIntervalMs: 20 });
    expect(second.stats().spooled).toBe(12);
    await vi.waitFor(() => expect(second.stats().spooled).toBe(0));
    expect(await storedIds()).toEqual(written.map((call) => call.record.id).sort());
    expect(second.stats().stored).toBe(6);
    await second.close();
    expect(await segmentFiles(spoolDir)).toEqual([]);
  });

  it('drops and counts records once the spool is full', async () => {
    store.down = true;
    const sink = createBatchingRecordSink({
      store,
      logger: logger(),
      spool: await openRecordSpool(spoolDir, { maxBytes: 8 * 1024 }),
      flushIntervalMs: 20,
    });
    for (const call of calls(40, 'v'.repeat(500))) sink.write(call.record, call.bodies);

    await vi.waitFor(() => expect(sink.stats().spooled + sink.stats().dropped).toBe(40));
    expect(sink.stats().dropped).toBeGreaterThan(0);
    expect(logs.text()).toContain('call records dropped: the record spool is full');
    await sink.close();
  });

  /** A Messages request whose prompt carries a fake key, as a coding agent pastes one. */
  function callWithKeyInPrompt(): CallToStore {
    const text = JSON.stringify({
      model: 'claude-sonnet-4-5',
      messages: [{ role: 'user', content: `why is ${FAKE_CREDENTIALS.keyInPrompt} rejected by the spool service?` }],
    });
    return {
      record: sampleRecord({ workspace_id: 'ws_spool' }),
      bodies: {
        request: { text, bytes: text.length, truncated: false, content_type: 'application/json', encoding_error: null },
        response: null,
        request_headers: { 'anthropic-version': '2023-06-01' },
        response_headers: {},
      },
    };
  }

  it('writes only masked body text to the spool', async () => {
    store.down = true;
    const sink = createBatchingRecordSink({ store, logger: logger(), spool: await openRecordSpool(spoolDir), flushIntervalMs: 20 });
    const call = callWithKeyInPrompt();
    sink.write(call.record, call.bodies);
    await vi.waitFor(() => expect(sink.stats().spooled).toBe(1));

    expect(await scanForFakeCredentials(spoolDir)).toEqual([]);
    const [segment] = await segmentFiles(spoolDir);
    const line = JSON.parse(await readFile(join(spoolDir, segment!), 'utf8')) as { body_row: { request_body: string } };
    const spooledText = gunzipSync(Buffer.from(line.body_row.request_body, 'base64')).toString('utf8');
    expect(spooledText).toContain('why is [REDACTED:anthropic-key] rejected');

    store.down = false;
    await vi.waitFor(async () => expect(await storedIds()).toEqual([call.record.id]));
    expect((await store.getCall(call.record.id))?.bodies?.request?.text).toBe(spooledText);
    await sink.close();
  });

  it('stores the prompt text of records read back from the spool', async () => {
    store.down = true;
    // Nothing fits in memory, so the store gets every record from the spool file.
    const sink = createBatchingRecordSink({
      store,
      logger: logger(),
      spool: await openRecordSpool(spoolDir),
      flushIntervalMs: 20,
      maxQueueBytes: 1,
    });
    const call = callWithKeyInPrompt();
    sink.write(call.record, call.bodies);
    await vi.waitFor(() => expect(sink.stats().spooled).toBe(1));

    store.down = false;
    await vi.waitFor(async () => expect(await storedIds()).toEqual([call.record.id]));
    const found = await store.searchCalls({ workspaceId: 'ws_spool', promptText: 'rejected by the spool' }, { limit: 10 });
    expect(found.calls.map((listed) => listed.record.id)).toEqual([call.record.id]);
    const masked = await store.searchCalls({ workspaceId: 'ws_spool', promptText: 'redacted:anthropic-key' }, { limit: 10 });
    expect(masked.calls).toHaveLength(1);
    await sink.close();
  });

  it('keeps body text as sent where redaction is off', async () => {
    const sink = createBatchingRecordSink({ store, logger: logger(), spool: await openRecordSpool(spoolDir), flushIntervalMs: 20 });
    const [masked, kept] = calls(2, 'DB_PASSWORD=correct-horse-battery-staple');
    sink.write(masked!.record, masked!.bodies);
    sink.write(kept!.record, kept!.bodies, { redactBodies: false });
    await sink.close();

    expect((await store.getCall(masked!.record.id))?.bodies?.request?.text).toBe('DB_PASSWORD=[REDACTED:env-secret]');
    expect((await store.getCall(kept!.record.id))?.bodies?.request?.text).toBe('DB_PASSWORD=correct-horse-battery-staple');
  });

  it('stores a line that an earlier version wrote with its bodies as text', async () => {
    const [earlier] = calls(1, 'stored by an earlier version');
    await mkdir(spoolDir, { recursive: true });
    await writeFile(join(spoolDir, 'segment-000000000001.jsonl'), `${JSON.stringify(earlier)}\n`);

    const sink = createBatchingRecordSink({ store, logger: logger(), spool: await openRecordSpool(spoolDir), flushIntervalMs: 20 });
    await vi.waitFor(async () => expect(await storedIds()).toEqual([earlier!.record.id]));
    expect((await store.getCall(earlier!.record.id))?.bodies?.request?.text).toBe('stored by an earlier version');
    await sink.close();
  });

  it('keeps records in memory when the spool cannot be written', async () => {
    const spool = await openRecordSpool(spoolDir);
    await spool.close();
    const sink = createBatchingRecordSink({ store, logger: logger(), spool, flushIntervalMs: 20 });
    const written = calls(3);
    for (const call of written) sink.write(call.record, call.bodies);

    await vi.waitFor(async () => expect(await storedIds()).toHaveLength(3));
    expect(sink.stats()).toMatchObject({ spoolFailures: 1, stored: 3, queued: 0 });
    expect(logs.text()).toContain('appending call records to the spool failed');
    await sink.close();
  });
});
