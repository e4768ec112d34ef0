import type { FileHandle } from 'node:fs/promises';
import { mkdir, open, readdir, stat, unlink } from 'node:fs/promises';
import { join } from 'node:path';
import { type CallRecord, TokenwiseError } from '@tokenwise/core';
import type { BodyRow, CallToStore, PackedCall } from '@tokenwise/storage';

/** A place in the spool: a segment's number and a byte offset in it. */
export interface SpoolPosition {
  segment: number;
  offset: number;
}

/**
 * A call as a spool line keeps it: its record and its packed bodies without the prompt text, which the
 * reader derives again from the request body (`BodyPacker.derivePromptTexts`). Serializing the prompt
 * text as JSON would cost the proxy more CPU than the rest of the line.
 */
export interface SpooledRecord {
  record: CallRecord;
  bodyRow: BodyRow | null;
}

/**
 * What a spool line holds: a `SpooledRecord`, or, in lines that an earlier version of Tokenwise wrote,
 * the call with its bodies as text (masked already: those versions masked secrets in the capture).
 */
export type SpoolEntry = SpooledRecord | CallToStore;

/** One call in the spool: its line spans `start` up to `end` (after the newline). */
export interface SpooledCall<Call = SpoolEntry> {
  call: Call;
  start: SpoolPosition;
  end: SpoolPosition;
  bytes: number;
}

export interface AppendResult {
  spooled: SpooledCall<PackedCall>[];
  /** Calls that did not fit under `maxBytes`, in order; nothing of them was written. */
  refused: PackedCall[];
}

export interface ReadResult {
  calls: SpooledCall[];
  /** Position of the next read. */
  next: SpoolPosition;
  /**
   * Lines skipped: a whole line that is not a spooled call (`complete`), or the tail of a line a crash
   * cut short.
   */
  skipped: { position: SpoolPosition; complete: boolean }[];
}

export interface RecordSpoolOptions {
  /** Bytes the segment files may take together; an append beyond it is refused. Default 1 GiB. */
  maxBytes?: number;
  /** A segment is closed and a new one started once it reaches this size, in bytes. Default 16 MiB. */
  segmentBytes?: number;
}

export interface RecordSpool {
  readonly dir: string;
  readonly maxBytes: number;
  /** Calls found in the segments an earlier process left, counted at open. */
  readonly recoveredCalls: number;
  /** Position of the first byte of the oldest segment, where reading starts. */
  readonly start: SpoolPosition;
  /**
   * Write the calls as lines at the end and fsync them; the returned positions are durable. Their bodies
   * are packed, so only masked text reaches the disk (unless the workspace turned redaction off).
   */
  append(calls: readonly PackedCall[]): Promise<AppendResult>;
  /** Read up to `maxCalls` whole lines from `from`, never past `limit` (the end of what was appended). */
  read(from: SpoolPosition, limit: SpoolPosition, maxCalls: number): Promise<ReadResult>;
  /** End of everything appended or recovered so far. */
  end(): SpoolPosition;
  /**
   * Delete every segment that ends at or before `position`, the one appended to included: the caller has
   * stored or given up every call before `position`. The next append then starts a new segment, so a call
   * that is stored and later deleted leaves no copy in the spool. Waits for the append in progress.
   */
  release(position: SpoolPosition): Promise<void>;
  /** Bytes the segment files take now. */
  bytes(): number;
  /** Finish the append in progress and close the head segment; `deleteSegments` removes every segment file. */
  close(options?: { deleteSegments?: boolean }): Promise<void>;
}

const SEGMENT_NAME = /^segment-(\d{12})\.jsonl$/;
const DEFAULT_MAX_BYTES = 1024 * 1024 * 1024;
const DEFAULT_SEGMENT_BYTES = 16 * 1024 * 1024;
/** First read size when looking for whole lines; doubled until a line fits. */
const READ_CHUNK_BYTES = 1024 * 1024;
const NEWLINE = 0x0a;

interface Segment {
  number: number;
  /** Bytes of whole lines in the file (what readers may read). */
  size: number;
}

function segmentName(number: number): string {
  return `segment-${String(number).padStart(12, '0')}.jsonl`;
}

export function comparePositions(a: SpoolPosition, b: SpoolPosition): number {
  return a.segment === b.segment ? a.offset - b.offset : a.segment - b.segment;
}

/**
 * Open the on-disk spool of call records in `dir` (created 0700), counting the calls that segments left
 * by an earlier process still hold.
 *
 * The spool is a write-ahead queue between the proxy and the store. Segment files are append-only JSON
 * lines (one call each, with its bodies) and are fsynced once per append, which the sink calls once per
 * flush interval with every record of that interval. A segment is deleted once every call in it is
 * stored. A crash can cut the last line short; reading skips such a line. Replaying a segment whose calls
 * were partly stored is safe because the store skips a call id it already holds.
 */
export async function openRecordSpool(dir: string, options: RecordSpoolOptions = {}): Promise<RecordSpool> {
  const maxBytes = options.maxBytes ?? DEFAULT_MAX_BYTES;
  const segmentBytes = options.segmentBytes ?? DEFAULT_SEGMENT_BYTES;
  await mkdir(dir, { recursive: true, mode: 0o700 }).catch((error: unknown) => {
    throw spoolFailure('create', dir, error);
  });

  const segments: Segment[] = [];
  let recoveredCalls = 0;
  for (const name of (await readdir(dir)).sort()) {
    const match = SEGMENT_NAME.exec(name);
    if (!match) continue;
    const path = join(dir, name);
    const { size } = await stat(path);
    segments.push({ number: Number(match[1]), size });
    recoveredCalls += await countLines(path);
  }

  let totalBytes = segments.reduce((sum, segment) => sum + segment.size, 0);
  // Recovered segments are never appended to: a line cut short by a crash stays the last one of its file.
  let head: { segment: Segment; handle: FileHandle } | null = null;
  let nextNumber = (segments.at(-1)?.number ?? 0) + 1;
  let appending: Promise<unknown> = Promise.resolve();
  let closed = false;

  async function openHead(): Promise<{ segment: Segment; handle: FileHandle }> {
    if (head && head.segment.size < segmentBytes) return head;
    if (head) await head.handle.close();

    const segment: Segment = { number: nextNumber, size: 0 };
    nextNumber += 1;
    const handle = await open(join(dir, segmentName(segment.number)), 'ax', 0o600);
    // The new file's directory entry must survive a crash too.
    await syncDirectory(dir);
    segments.push(segment);
    head = { segment, handle };
    return head;
  }

  async function appendNow(calls: readonly PackedCall[]): Promise<AppendResult> {
    if (closed) throw new TokenwiseError('store_failed', `the record spool ${dir} is closed`);
    const lines: Buffer[] = [];
    const refused: PackedCall[] = [];
    let batchBytes = 0;
    for (const call of calls) {
      const line = Buffer.from(`${serializeLine(call)}\n`, 'utf8');
      if (refused.length > 0 || totalBytes + batchBytes + line.length > maxBytes) {
        refused.push(call);
        continue;
      }
      lines.push(line);
      batchBytes += line.length;
    }
    if (lines.length === 0) return { spooled: [], refused };

    const { segment, handle } = await openHead();
    const spooled: SpooledCall<PackedCall>[] = [];
    let offset = segment.size;
    lines.forEach((line, index) => {
      spooled.push({
        call: calls[index]!,
        start: { segment: segment.number, offset },
        end: { segment: segment.number, offset: offset + line.length },
        bytes: line.length,
      });
      offset += line.length;
    });

    const data = Buffer.concat(lines);
    let written = 0;
    try {
      while (written < data.length) {
        const { bytesWritten } = await handle.write(data, written, data.length - written);
        written += bytesWritten;
      }
      await handle.datasync();
    } catch (error) {
      // The lines written so far may be cut short; no further append goes to this file.
      segment.size += written;
      totalBytes += written;
      head = null;
      await handle.close().catch(() => undefined);
      throw spoolFailure('write', join(dir, segmentName(segment.number)), error);
    }
    segment.size += data.length;
    totalBytes += data.length;
    return { spooled, refused };
  }

  async function releaseNow(position: SpoolPosition): Promise<void> {
    const isDone = (segment: Segment) =>
      segment.number < position.segment || (segment.number === position.segment && position.offset >= segment.size);
    while (segments.length > 0 && isDone(segments[0]!)) {
      const segment = segments.shift()!;
      if (segment === head?.segment) {
        // A stored call's bytes must not wait in the head for the segment to fill up: the next append opens a new one.
        const { handle } = head;
        head = null;
        await handle.close();
      }
      totalBytes -= segment.size;
      await unlink(join(dir, segmentName(segment.number))).catch((error: unknown) => {
        if ((error as NodeJS.ErrnoException).code !== 'ENOENT') throw spoolFailure('delete', join(dir, segmentName(segment.number)), error);
      });
    }
  }

  async function read(from: SpoolPosition, limit: SpoolPosition, maxCalls: number): Promise<ReadResult> {
    const calls: SpooledCall[] = [];
    const skipped: ReadResult['skipped'] = [];
    let position = from;

    while (calls.length < maxCalls && comparePositions(position, limit) < 0) {
      const segment = segments.find((candidate) => candidate.number >= position.segment);
      if (!segment) break;
      if (segment.number !== position.segment) position = { segment: segment.number, offset: 0 };
      const endOffset = segment.number === limit.segment ? limit.offset : segment.size;
      if (position.offset >= endOffset) {
        if (segment.number >= limit.segment) break;
        position = { segment: segment.number + 1, offset: 0 };
        continue;
      }

      const lines = await readLines(join(dir, segmentName(segment.number)), position.offset, endOffset, maxCalls - calls.length);
      for (const line of lines) {
        const start = { segment: segment.number, offset: line.offset };
        const end = { segment: segment.number, offset: line.offset + line.bytes };
        const call = line.text === null ? null : parseLine(line.text);
        if (call) calls.push({ call, start, end, bytes: line.bytes });
        else skipped.push({ position: start, complete: line.text !== null });
        position = end;
      }
      if (lines.length === 0) break;
    }
    return { calls, next: position, skipped };
  }

  return {
    dir,
    maxBytes,
    recoveredCalls,
    start: { segment: segments[0]?.number ?? nextNumber, offset: 0 },
    append(calls) {
      const result = appending.then(() => appendNow(calls));
      appending = result.catch(() => undefined);
      return result;
    },
    read,
    end() {
      const last = segments.at(-1);
      return last ? { segment: last.number, offset: last.size } : { segment: nextNumber, offset: 0 };
    },
    release(position) {
      // Serialized with appends: the head's size is final here, so a line still being written is never deleted.
      const result = appending.then(() => releaseNow(position));
      appending = result.catch(() => undefined);
      return result;
    },
    bytes: () => totalBytes,
    async close(closeOptions = {}) {
      closed = true;
      await appending;
      await head?.handle.close();
      head = null;
      if (!closeOptions.deleteSegments) return;
      for (const segment of segments.splice(0)) {
        await unlink(join(dir, segmentName(segment.number))).catch(() => undefined);
      }
      totalBytes = 0;
    },
  };
}

/** A spool line: the record, and the body columns with each compressed body as base64. */
interface SpoolLine {
  record: CallRecord;
  body_row: (Omit<BodyRow, 'request_body' | 'response_body'> & { request_body: string | null; response_body: string | null }) | null;
}

function serializeLine({ record, packed }: PackedCall): string {
  const row = packed?.row ?? null;
  const line: SpoolLine = {
    record,
    body_row:
      row === null
        ? null
        : {
            ...row,
            request_body: row.request_body?.toString('base64') ?? null,
            response_body: row.response_body?.toString('base64') ?? null,
          },
  };
  return JSON.stringify(line);
}

/** Parse one spooled line; null when it is not a call (cut short, or written by something else). */
function parseLine(text: string): SpoolEntry | null {
  try {
    const value = JSON.parse(text) as { record?: { id?: unknown }; bodies?: unknown; body_row?: SpoolLine['body_row'] };
    if (typeof value?.record?.id !== 'string') return null;
    if (value.body_row !== undefined) {
      const row = value.body_row;
      const bodyRow =
        row === null ? null : { ...row, request_body: fromBase64(row.request_body), response_body: fromBase64(row.response_body) };
      return { record: value.record as CallRecord, bodyRow };
    }
    if (value.bodies === undefined) return null;
    return value as CallToStore;
  } catch {
    return null;
  }
}

function fromBase64(text: string | null): Buffer | null {
  return text === null ? null : Buffer.from(text, 'base64');
}

interface Line {
  offset: number;
  bytes: number;
  /** Null for a last line without its newline, which a crash cut short. */
  text: string | null;
}

/** Read whole lines of `path` from `from` up to `to`, at most `maxLines`; a line without a newline at `to` is returned with null text. */
async function readLines(path: string, from: number, to: number, maxLines: number): Promise<Line[]> {
  const handle = await open(path, 'r');
  try {
    const lines: Line[] = [];
    let offset = from;
    let chunkBytes = READ_CHUNK_BYTES;
    while (offset < to && lines.length < maxLines) {
      const length = Math.min(chunkBytes, to - offset);
      const buffer = Buffer.alloc(length);
      const { bytesRead } = await handle.read(buffer, 0, length, offset);
      const data = buffer.subarray(0, bytesRead);

      let lineStart = 0;
      for (let newline = data.indexOf(NEWLINE); newline !== -1 && lines.length < maxLines; newline = data.indexOf(NEWLINE, lineStart)) {
        lines.push({ offset: offset + lineStart, bytes: newline + 1 - lineStart, text: data.toString('utf8', lineStart, newline) });
        lineStart = newline + 1;
      }

      if (lineStart === 0) {
        if (offset + bytesRead >= to || bytesRead === 0) {
          // No newline before the end: the tail of a line a crash cut short.
          lines.push({ offset, bytes: to - offset, text: null });
          break;
        }
        // One line longer than the chunk: read again with room for it.
        chunkBytes *= 2;
        continue;
      }
      offset += lineStart;
      chunkBytes = READ_CHUNK_BYTES;
    }
    return lines;
  } finally {
    await handle.close();
  }
}

async function countLines(path: string): Promise<number> {
  const handle = await open(path, 'r');
  try {
    const buffer = Buffer.alloc(READ_CHUNK_BYTES);
    let count = 0;
    let position = 0;
    for (;;) {
      const { bytesRead } = await handle.read(buffer, 0, buffer.length, position);
      if (bytesRead === 0) return count;
      for (let index = buffer.indexOf(NEWLINE); index !== -1 && index < bytesRead; index = buffer.indexOf(NEWLINE, index + 1)) count += 1;
      position += bytesRead;
    }
  } finally {
    await handle.close();
  }
}

async function syncDirectory(dir: string): Promise<void> {
  const handle = await open(dir, 'r');
  try {
    await handle.sync();
  } finally {
    await handle.close();
  }
}

function spoolFailure(action: 'create' | 'write' | 'delete', path: string, error: unknown): TokenwiseError {
  const code = (error as NodeJS.ErrnoException).code ?? 'error';
  const fix =
    code === 'ENOSPC' || code === 'EDQUOT'
      ? 'the disk is full; free some space'
      : `check that the user running tokenwise can write ${path} and that its disk works`;
  return new TokenwiseError('store_failed', `failed to ${action} the record spool file ${path} (${code}): ${fix}`, { cause: error });
}
