import { Worker } from 'node:worker_threads';
import { gunzipSync, gzipSync } from 'node:zlib';
import {
  type ApiShape,
  type CallBodies,
  type CapturedBody,
  capturedBodySize,
  decodeCallBodies,
  extractPromptText,
  redactBodyText,
} from '@tokenwise/core';
import { BODY_GZIP_LEVEL, type BodyRow } from './body-columns.js';

/** The bodies of one call as captured, before they are stored. */
export interface BodiesToPack {
  /** The call's API shape, which decides how the prompt text is read from the request body. */
  apiShape: ApiShape | null;
  /**
   * Headers without credentials; bodies as captured, as text or as raw bytes (`CapturedBody.raw`). Raw
   * bytes are decoded first, so both forms pack to the same row.
   */
  bodies: CallBodies;
  /** Mask the secrets in the body text first (false when the workspace turned redaction off). */
  redact: boolean;
}

/**
 * Call bodies ready for `insertCalls` and for the record spool: the text masked (unless redaction was
 * off), gzip-compressed and flattened into the columns of `call_bodies`, plus the prompt text that
 * `call_prompts` keeps for search, read from the masked request body.
 */
export interface PackedBodies {
  row: BodyRow;
  /** Lowercased prompt text; null when the request has none. */
  promptText: string | null;
}

/**
 * Decode, mask, compress and flatten the bodies of one call, synchronously. `BodyPacker` runs this on its
 * worker thread; on the caller's thread it would stall the event loop for a large body.
 */
export function packBodies({ apiShape, bodies, redact }: BodiesToPack): PackedBodies {
  const decoded = decodeCallBodies(bodies, false);
  const masked = redact ? redactBodyText(decoded) : decoded;
  const request = packSide(masked.request);
  const response = packSide(masked.response);
  const promptText = extractPromptText(apiShape, masked.request?.text ?? null);
  return {
    row: {
      request_kept: request.kept,
      request_body: request.body,
      request_bytes: request.bytes,
      request_truncated: request.truncated,
      request_content_type: request.contentType,
      request_encoding_error: request.encodingError,
      response_kept: response.kept,
      response_body: response.body,
      response_bytes: response.bytes,
      response_truncated: response.truncated,
      response_content_type: response.contentType,
      response_encoding_error: response.encodingError,
      request_headers: JSON.stringify(masked.request_headers),
      response_headers: JSON.stringify(masked.response_headers),
    },
    promptText: promptText === null ? null : promptText.toLowerCase(),
  };
}

function packSide(body: CapturedBody | null) {
  if (body === null) {
    return { kept: false, body: null, bytes: null, truncated: null, contentType: null, encodingError: null };
  }
  return {
    kept: true,
    body: body.text === null ? null : gzipSync(body.text, { level: BODY_GZIP_LEVEL }),
    bytes: body.bytes,
    truncated: body.truncated,
    contentType: body.content_type,
    encodingError: body.encoding_error,
  };
}

/** The prompt text of a packed request body, derived again where the packed form left it out. */
export interface PromptToDerive {
  apiShape: ApiShape | null;
  /** The gzip-compressed request body as `packBodies` stored it; null when none was kept. */
  requestBody: Buffer | null;
}

/** Derive the lowercased prompt text of a packed request body, synchronously; see `PackedBodies.promptText`. */
export function derivePromptText({ apiShape, requestBody }: PromptToDerive): string | null {
  if (requestBody === null) return null;
  const promptText = extractPromptText(apiShape, gunzipSync(requestBody).toString('utf8'));
  return promptText === null ? null : promptText.toLowerCase();
}

/** A job for the packer thread, and its reply. */
export type PackerRequest = { id: number; kind: 'pack'; items: BodiesToPack[] } | { id: number; kind: 'prompts'; items: PromptToDerive[] };

/**
 * A failed `pack` job's reply carries its items back, their raw bytes transferred again, so that the
 * caller's thread can pack them.
 */
export type PackerReply =
  | { id: number; ok: true; value: PackedBodies[] | (string | null)[] }
  | { id: number; ok: false; message: string; items?: BodiesToPack[] };

interface Pending {
  /**
   * Does the job on the caller's thread, when the packer thread could not. `returned` contains the items a
   * failed job sent back; without them, the job's transferred bytes are gone.
   */
  runHere(returned?: BodiesToPack[]): unknown;
  resolve(value: unknown): void;
  reject(error: unknown): void;
}

/**
 * Characters of body text (or bytes of raw bodies) sent to the thread in one message at most (a body
 * longer than this goes alone). The thread then has one such part of a batch in memory at a time, which
 * keeps its heap small.
 */
const MAX_CHARS_PER_MESSAGE = 2 * 1024 * 1024;
/**
 * Heap bounds of the thread, in MB. A small young generation keeps the heap of a thread that only turns
 * text over from growing to tens of MB. The old generation has room for a 4 MiB body (the capture's
 * default cap) in UTF-16, its lowercase copy and its parsed JSON. A thread that runs out of memory fails,
 * and its jobs then run on the caller's thread.
 */
const THREAD_RESOURCE_LIMITS = { maxYoungGenerationSizeMb: 4, maxOldGenerationSizeMb: 128 };

export interface BodyPackerOptions {
  /** Called when the worker thread fails; the jobs it held, and later ones, run on the caller's thread. */
  onThreadFailure?: (error: Error) => void;
}

/**
 * Decodes, masks, compresses and flattens call bodies in batches on a worker thread, so that neither the
 * decoding, the secret scan nor gzip of a large body runs on the proxy's event loop. Raw bodies
 * (`CapturedBody.raw`) are transferred to the thread, not copied: once `pack` was called, their arrays
 * are detached on the caller's side and read as empty. The thread starts with the first batch and does
 * not keep the process alive while idle. If it fails, its batches and all later ones are packed on the
 * caller's thread instead: slower, but every body is still masked before it is returned.
 */
export class BodyPacker {
  private worker: Worker | null = null;
  private failed = false;
  private closed = false;
  private readonly pending = new Map<number, Pending>();
  private readonly inFlight = new Set<Promise<unknown>>();
  private nextId = 1;
  private readonly onThreadFailure: (error: Error) => void;

  constructor(options: BodyPackerOptions = {}) {
    this.onThreadFailure = options.onThreadFailure ?? (() => undefined);
  }

  /** Pack every item, in order. A failing thread does not make it reject; see the class comment. */
  async pack(items: readonly BodiesToPack[]): Promise<PackedBodies[]> {
    const parts = await Promise.all(partsOf(items).map((part) => this.packPart(part)));
    return parts.flat().map(restoreBuffers);
  }

  /** Derive the prompt text of packed request bodies, in order, like `derivePromptText`. */
  async derivePromptTexts(items: readonly PromptToDerive[]): Promise<(string | null)[]> {
    if (items.length === 0) return [];
    return (await this.run({ kind: 'prompts', items: [...items] }, () => items.map(derivePromptText))) as (string | null)[];
  }

  /** Finish the jobs already sent, then stop the thread; later jobs run on the caller's thread. */
  async close(): Promise<void> {
    this.closed = true;
    await Promise.all(this.inFlight);
    const worker = this.worker;
    this.worker = null;
    await worker?.terminate();
  }

  /** Pack one part on the thread, its raw bodies transferred; see the class comment. */
  private packPart(part: BodiesToPack[]): Promise<PackedBodies[]> {
    const transfer = new Set<ArrayBuffer>();
    const sent = part.map((item) => withTransferableRaw(item, transfer));
    // Sizes before the transfer tell a transferred body from one that was sent back or never sent.
    const rawSizes = sent.map(({ bodies }) => [bodies.request?.raw?.byteLength, bodies.response?.raw?.byteLength]);
    const runHere = (returned?: BodiesToPack[]) =>
      returned !== undefined ? returned.map(packBodies) : sent.map((item, index) => packBodies(withLostRaw(item, rawSizes[index]!)));
    return this.run({ kind: 'pack', items: sent }, runHere, [...transfer]) as Promise<PackedBodies[]>;
  }

  private run(
    job: DistributiveOmit<PackerRequest, 'id'>,
    runHere: (returned?: BodiesToPack[]) => unknown,
    transfer: ArrayBuffer[] = [],
  ): Promise<unknown> {
    const worker = this.failed || this.closed ? null : this.start();
    if (worker === null) return new Promise((resolve) => resolve(runHere()));

    const id = this.nextId++;
    const result = new Promise<unknown>((resolve, reject) => {
      this.pending.set(id, { runHere, resolve, reject });
      worker.ref();
      worker.postMessage({ ...job, id }, transfer);
    });
    const settled: Promise<unknown> = result.then(
      () => this.inFlight.delete(settled),
      () => this.inFlight.delete(settled),
    );
    this.inFlight.add(settled);
    return result;
  }

  private start(): Worker {
    if (this.worker) return this.worker;

    const worker = new Worker(new URL('./body-packer-thread.js', import.meta.url), { resourceLimits: THREAD_RESOURCE_LIMITS });
    worker.unref();
    worker.on('message', (reply: PackerReply) => this.settle(reply));
    worker.on('error', (error) => this.fail(worker, error));
    worker.on('exit', (code) => {
      if (this.worker === worker && !this.closed) this.fail(worker, new Error(`the body packer thread exited with code ${code}`));
    });
    this.worker = worker;
    return worker;
  }

  private settle(reply: PackerReply): void {
    const pending = this.pending.get(reply.id);
    if (!pending) return;
    this.pending.delete(reply.id);
    if (this.pending.size === 0) this.worker?.unref();

    // A job the thread failed is run here, where a throw at least reaches the caller.
    if (reply.ok) pending.resolve(reply.value);
    else settleHere(pending, reply.items);
  }

  private fail(worker: Worker, error: Error): void {
    if (this.worker !== worker) return;
    this.worker = null;
    this.failed = true;
    this.onThreadFailure(error);
    void worker.terminate();
    const stranded = [...this.pending.values()];
    this.pending.clear();
    for (const pending of stranded) settleHere(pending);
  }
}

type DistributiveOmit<T, K extends keyof T> = T extends unknown ? Omit<T, K> : never;

/** Split the items into parts of at most `MAX_CHARS_PER_MESSAGE` characters of body text each, in order. */
function partsOf(items: readonly BodiesToPack[]): BodiesToPack[][] {
  const parts: BodiesToPack[][] = [];
  let part: BodiesToPack[] = [];
  let partChars = 0;
  for (const item of items) {
    const chars = capturedBodySize(item.bodies.request) + capturedBodySize(item.bodies.response);
    if (part.length > 0 && partChars + chars > MAX_CHARS_PER_MESSAGE) {
      parts.push(part);
      part = [];
      partChars = 0;
    }
    part.push(item);
    partChars += chars;
  }
  if (part.length > 0) parts.push(part);
  return parts;
}

function settleHere(pending: Pending, returned?: BodiesToPack[]): void {
  try {
    pending.resolve(pending.runHere(returned));
  } catch (error) {
    pending.reject(error);
  }
}

/**
 * Give each raw body of the item an array that owns its whole ArrayBuffer, and add each buffer to
 * `transfer`. A view into a larger buffer (a pooled Buffer's slab, a read buffer) is copied, because
 * transferring its buffer would detach memory that other objects still use. So is a second view of a
 * buffer already listed.
 */
function withTransferableRaw(item: BodiesToPack, transfer: Set<ArrayBuffer>): BodiesToPack {
  const own = (body: CapturedBody | null): CapturedBody | null => {
    if (body?.raw === undefined) return body;
    const { raw } = body;
    const buffer = raw.buffer;
    const owns = buffer instanceof ArrayBuffer && raw.byteOffset === 0 && raw.byteLength === buffer.byteLength && !transfer.has(buffer);
    if (owns) {
      transfer.add(buffer);
      return body;
    }
    const copy = new Uint8Array(raw);
    transfer.add(copy.buffer);
    return { ...body, raw: copy };
  };
  const request = own(item.bodies.request);
  const response = own(item.bodies.response);
  if (request === item.bodies.request && response === item.bodies.response) return item;
  return { ...item, bodies: { ...item.bodies, request, response } };
}

/** Marks a body whose bytes were lost with the packer thread; see `withLostRaw`. */
export const LOST_BODY_ERROR = 'the body packer thread failed after the body was sent to it; the body text is lost';

/**
 * Replace each raw body of the item that was transferred to a thread that then failed (its array is
 * detached, so shorter than `rawSizes` recorded) by a body without text whose `encoding_error` is
 * `LOST_BODY_ERROR`. The record keeps its other fields.
 * NOTE: a thread that dies (out of memory on a huge body, say) takes the raw bytes of every part it held
 * with it. Cloned text survived that and was packed on the caller's thread; raw bytes are not kept twice.
 */
function withLostRaw(item: BodiesToPack, rawSizes: (number | undefined)[]): BodiesToPack {
  const check = (body: CapturedBody | null, size: number | undefined): CapturedBody | null => {
    if (body?.raw === undefined || size === undefined || body.raw.byteLength === size) return body;
    const { raw: _lost, ...rest } = body;
    return { ...rest, text: null, encoding_error: LOST_BODY_ERROR };
  };
  const request = check(item.bodies.request, rawSizes[0]);
  const response = check(item.bodies.response, rawSizes[1]);
  if (request === item.bodies.request && response === item.bodies.response) return item;
  return { ...item, bodies: { ...item.bodies, request, response } };
}

/** Structured cloning turns the thread's Buffers into plain Uint8Arrays; the stores bind Buffers. */
function restoreBuffers(packed: PackedBodies): PackedBodies {
  const asBuffer = (value: Uint8Array | null): Buffer | null =>
    value === null || Buffer.isBuffer(value) ? value : Buffer.from(value.buffer, value.byteOffset, value.byteLength);
  return {
    ...packed,
    row: { ...packed.row, request_body: asBuffer(packed.row.request_body), response_body: asBuffer(packed.row.response_body) },
  };
}
