/**
 * Entry point of the body packer thread (see body-packer.ts): it decodes, masks, compresses and flattens
 * the bodies of one batch of calls at a time, off the proxy's event loop.
 */
import { parentPort } from 'node:worker_threads';
import { type BodiesToPack, derivePromptText, type PackedBodies, type PackerReply, type PackerRequest, packBodies } from './body-packer.js';

const port = parentPort!;

/** Copy a compressed body into an ArrayBuffer of its own, which can be transferred instead of cloned. */
function ownBuffer(body: Buffer | null, transfer: ArrayBuffer[]): Buffer | null {
  if (body === null) return null;
  const copy = new Uint8Array(body);
  transfer.push(copy.buffer);
  // It arrives as a Uint8Array either way; the client wraps it as a Buffer again.
  return copy as Buffer;
}

/** Add the buffers of the items' raw bodies to `transfer`, once each, and return the items unchanged. */
function returnRawBodies(items: BodiesToPack[], transfer: ArrayBuffer[]): BodiesToPack[] {
  const buffers = new Set<ArrayBuffer>();
  for (const { bodies } of items) {
    for (const body of [bodies.request, bodies.response]) {
      if (body?.raw?.buffer instanceof ArrayBuffer) buffers.add(body.raw.buffer);
    }
  }
  transfer.push(...buffers);
  return items;
}

function pack(request: Extract<PackerRequest, { kind: 'pack' }>, transfer: ArrayBuffer[]): PackedBodies[] {
  return request.items.map((item) => {
    const { row, promptText } = packBodies(item);
    return {
      row: { ...row, request_body: ownBuffer(row.request_body, transfer), response_body: ownBuffer(row.response_body, transfer) },
      promptText,
    };
  });
}

port.on('message', (request: PackerRequest) => {
  const transfer: ArrayBuffer[] = [];
  let reply: PackerReply;
  try {
    const value =
      request.kind === 'pack'
        ? pack(request, transfer)
        : // gunzip takes the Uint8Array that a cloned Buffer arrives as.
          request.items.map(derivePromptText);
    reply = { id: request.id, ok: true, value };
  } catch (error) {
    const message = error instanceof Error ? error.message : String(error);
    // The caller packs a failed job itself, and the raw bytes it transferred exist only here now.
    transfer.length = 0;
    reply =
      request.kind === 'pack'
        ? { id: request.id, ok: false, message, items: returnRawBodies(request.items, transfer) }
        : { id: request.id, ok: false, message };
  }
  port.postMessage(reply, transfer);
});
