import { Worker } from 'node:worker_threads';
import { gunzipSync, gzipSync } from 'node:zlib';
import { type ApiShape, type CallBodies, type CapturedBody, extractPromptText, redactBodyText } from '@tokenwise/core';
import { BODY_GZIP_LEVEL, type BodyRow } from './body-columns.js';

/** The bodies of one call as captured, before they are stored. */
export interface BodiesToPack {
  /** The call's API shape, which decides how the prompt text is read from the request body. */
  apiShape: ApiShape | null;
  /** Headers without credentials; body text as captured. */
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
 * Mask, compress and flatten the bodies of one call, synchronously. `BodyPacker` runs this on its
 * worker thread; on the caller's thread it would stall the event loop for a large body.
 */
export function packBodies({ apiShape, bodies, redact }: BodiesToPack): PackedBodies {
  const masked = redact ? redactBodyText(bodies) : bodies;
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

export type PackerReply = { id: number; ok: true; value: PackedBodies[] | (string | null)[] } | { id: number; ok: false; message: string };

interface Pending {
  /** Does the job on the caller's thread, when the packer thread could not. */
  runHere(): unknown;
  resolve(value: unknown): void;
  reject(error: unknown): void;
}

/**
 * Characters of body text sent to the thread in one message at most (a body longer than this goes alone).
 * The thread then has one such part of a batch in memory at a time, which keeps its heap small.
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
 * Masks, compresses and flattens call bodies in batches on a worker thread, so that neither the secret
 * scan nor gzip of a large body runs on the proxy's event loop. The thread starts with the first batch
 * and does not keep the process alive while idle. If it fails, its batches and all later ones are packed
 * on the caller's thread instead: slower, but every body is still masked before it is returned.
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
    const parts = await Promise.all(
      partsOf(items).map((part) => this.run({ kind: 'pack', items: part }, () => part.map(packBodies)) as Promise<PackedBodies[]>),
    );
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

  private run(job: DistributiveOmit<PackerRequest, 'id'>, runHere: () => unknown): Promise<unknown> {
    const worker = this.failed || this.closed ? null : this.start();
    if (worker === null) return new Promise((resolve) => resolve(runHere()));

    const id = this.nextId++;
    const result = new Promise<unknown>((resolve, reject) => {
      this.pending.set(id, { runHere, resolve, reject });
      worker.ref();
      worker.postMessage({ ...job, id });
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
    else settleHere(pending);
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
    const chars = (item.bodies.request?.text?.length ?? 0) + (item.bodies.response?.text?.length ?? 0);
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

function settleHere(pending: Pending): void {
  try {
    pending.resolve(pending.runHere());
  } catch (error) {
    pending.reject(error);
  }
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
