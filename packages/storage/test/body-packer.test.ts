import type { Worker } from 'node:worker_threads';
import { gunzipSync } from 'node:zlib';
import type { CallBodies, CapturedBody } from '@tokenwise/core';
import { type BodiesToPack, BodyPacker, LOST_BODY_ERROR, packBodies } from '@tokenwise/storage';
import { afterEach, describe, expect, it } from 'vitest';

function bodiesWith(prompt: string): CallBodies {
  const text = JSON.stringify({ model: 'claude-sonnet-4-5', messages: [{ role: 'user', content: prompt }] });
  return {
    request: { text, bytes: text.length, truncated: false, content_type: 'application/json', encoding_error: null },
    response: { text: '{"id":"msg_1"}', bytes: 14, truncated: false, content_type: 'application/json', encoding_error: null },
    request_headers: { 'anthropic-version': '2023-06-01' },
    response_headers: { 'request-id': 'req_1' },
  };
}

const items: BodiesToPack[] = [
  { apiShape: 'anthropic.messages', bodies: bodiesWith('Deploy with DB_PASSWORD=hunter2hunter2 please'), redact: true },
  { apiShape: 'anthropic.messages', bodies: bodiesWith('Deploy with DB_PASSWORD=hunter2hunter2 please'), redact: false },
  { apiShape: null, bodies: { ...bodiesWith('no shape'), response: null }, redact: true },
];

let packer: BodyPacker;

afterEach(async () => {
  await packer.close();
});

describe('body packer', () => {
  it('packs on its thread as on the caller thread', async () => {
    const failures: Error[] = [];
    packer = new BodyPacker({ onThreadFailure: (error) => failures.push(error) });

    const packed = await packer.pack(items);

    expect(failures).toEqual([]);
    expect(packed).toStrictEqual(items.map(packBodies));
    expect(Buffer.isBuffer(packed[0]!.row.request_body)).toBe(true);
  });

  it('masks the text only where asked', async () => {
    packer = new BodyPacker();

    const [masked, kept] = await packer.pack(items);

    expect(gunzipSync(masked!.row.request_body!).toString()).toContain('DB_PASSWORD=[REDACTED:env-secret] please');
    expect(masked!.promptText).toBe('deploy with db_password=[redacted:env-secret] please');
    expect(gunzipSync(kept!.row.request_body!).toString()).toContain('DB_PASSWORD=hunter2hunter2 please');
  });

  it('derives the prompt text of a packed body again', async () => {
    packer = new BodyPacker();
    const packed = await packer.pack(items);

    const prompts = await packer.derivePromptTexts(
      packed.map((bodies, index) => ({ apiShape: items[index]!.apiShape, requestBody: bodies.row.request_body })),
    );

    expect(prompts).toEqual(packed.map((bodies) => bodies.promptText));
    expect(prompts[2]).toBeNull();
  });

  it('keeps the order across message parts', async () => {
    packer = new BodyPacker();
    // Three bodies of 1.5 Mi characters go to the thread in three messages.
    const large = ['a', 'b', 'c'].map(
      (letter): BodiesToPack => ({ apiShape: 'anthropic.messages', bodies: bodiesWith(letter.repeat(1.5 * 1024 * 1024)), redact: true }),
    );

    const packed = await packer.pack(large);

    expect(packed.map((bodies) => bodies.promptText?.slice(0, 3))).toEqual(['aaa', 'bbb', 'ccc']);
  });

  it('packs on the caller thread once closed', async () => {
    packer = new BodyPacker();
    await packer.pack(items.slice(0, 1));
    await packer.close();

    expect(await packer.pack(items)).toStrictEqual(items.map(packBodies));
  });
});

const encoder = new TextEncoder();

/** Convert a body to the form `decodeBodies: false` captures: the same fields, its text as bytes in `raw`. */
function asRaw(body: CapturedBody | null): CapturedBody | null {
  if (body?.text == null) return body;
  return { ...body, text: null, raw: encoder.encode(body.text) };
}

/** Items with multi-byte text, secrets, a truncated body and an encoding error, in decoded and raw form. */
function rawAndDecodedItems(): { decoded: BodiesToPack[]; raw: BodiesToPack[] } {
  const withFields = (bodies: CallBodies, fields: Partial<CapturedBody>): CallBodies => ({
    ...bodies,
    request: { ...bodies.request!, ...fields },
  });
  const decoded: BodiesToPack[] = [
    { apiShape: 'anthropic.messages', bodies: bodiesWith('Déjà vu 😀 with DB_PASSWORD=hunter2hunter2 please'), redact: true },
    { apiShape: 'anthropic.messages', bodies: bodiesWith('Déjà vu 😀 with DB_PASSWORD=hunter2hunter2 please'), redact: false },
    { apiShape: 'anthropic.messages', bodies: withFields(bodiesWith('cut €'), { truncated: true, bytes: 90_000 }), redact: true },
    {
      apiShape: 'anthropic.messages',
      bodies: withFields(bodiesWith('half a gzip body'), { encoding_error: 'gzip decoding failed: invalid gzip data' }),
      redact: true,
    },
    { apiShape: null, bodies: { ...bodiesWith('no response'), response: null }, redact: true },
  ];
  const raw = decoded.map((item) => ({
    ...item,
    bodies: { ...item.bodies, request: asRaw(item.bodies.request), response: asRaw(item.bodies.response) },
  }));
  return { decoded, raw };
}

describe('body packer with raw bodies', () => {
  it('packs raw bodies to the same rows as decoded ones', () => {
    const { decoded, raw } = rawAndDecodedItems();

    for (const [index, item] of raw.entries()) {
      const fromRaw = packBodies(item);
      const fromText = packBodies(decoded[index]!);
      const label = `item ${index}`;
      expect(fromRaw.promptText, label).toBe(fromText.promptText);
      for (const column of Object.keys(fromText.row) as (keyof typeof fromText.row)[]) {
        expect(fromRaw.row[column], `${label}: ${column}`).toStrictEqual(fromText.row[column]);
      }
      const text = (body: Buffer | null) => (body === null ? null : gunzipSync(body).toString('utf8'));
      expect(text(fromRaw.row.request_body), `${label}: request text`).toBe(text(fromText.row.request_body));
      expect(text(fromRaw.row.response_body), `${label}: response text`).toBe(text(fromText.row.response_body));
    }
    expect(gunzipSync(packBodies(raw[0]!).row.request_body!).toString()).toContain('Déjà vu 😀 with DB_PASSWORD=[REDACTED:env-secret]');
  });

  it('transfers raw bodies to its thread', async () => {
    const failures: Error[] = [];
    packer = new BodyPacker({ onThreadFailure: (error) => failures.push(error) });
    const { decoded, raw } = rawAndDecodedItems();
    const views = raw.flatMap(({ bodies }) => [bodies.request?.raw, bodies.response?.raw]).filter((view) => view !== undefined);
    expect(views.every((view) => view.byteLength > 0)).toBe(true);

    const packed = await packer.pack(raw);

    expect(failures).toEqual([]);
    expect(packed).toStrictEqual(decoded.map(packBodies));
    // A transferred ArrayBuffer is detached on the sending side: no copy of it was made.
    for (const view of views) {
      expect(view.byteLength).toBe(0);
      expect(view.buffer.byteLength).toBe(0);
    }
  });

  it('copies a view into a shared buffer instead of transferring it', async () => {
    packer = new BodyPacker();
    const { decoded, raw } = rawAndDecodedItems();
    // Buffer.from of a short string is a view into Node's shared 8 KiB pool.
    const pooled = Buffer.from(decoded[0]!.bodies.response!.text!);
    expect(pooled.buffer.byteLength).toBeGreaterThan(pooled.byteLength);
    // A view into the middle of a larger array, as Node's HTTP parser hands body chunks over.
    const text = encoder.encode(decoded[0]!.bodies.request!.text!);
    const larger = new Uint8Array(text.length + 20);
    larger.set(text, 10);
    const inside = larger.subarray(10, 10 + text.length);
    const item: BodiesToPack = {
      ...raw[0]!,
      bodies: {
        ...raw[0]!.bodies,
        request: { ...raw[0]!.bodies.request!, raw: inside },
        response: { ...raw[0]!.bodies.response!, raw: pooled },
      },
    };

    const [packed] = await packer.pack([item]);

    expect(packed).toStrictEqual(packBodies(decoded[0]!));
    expect(pooled.byteLength).toBe(decoded[0]!.bodies.response!.text!.length);
    expect(pooled.toString()).toBe(decoded[0]!.bodies.response!.text);
    expect(larger.byteLength).toBe(text.length + 20);
    expect(new TextDecoder().decode(inside)).toBe(decoded[0]!.bodies.request!.text);
  });

  it('copies a second view of one buffer', async () => {
    packer = new BodyPacker();
    const { decoded, raw } = rawAndDecodedItems();
    const shared = raw[0]!.bodies.request!.raw!;
    // The same array as request and response body: one transfer, one copy.
    const item: BodiesToPack = {
      ...raw[0]!,
      bodies: { ...raw[0]!.bodies, response: { ...raw[0]!.bodies.request!, content_type: 'text/plain' } },
    };
    const expected = packBodies({
      ...decoded[0]!,
      bodies: { ...decoded[0]!.bodies, response: { ...decoded[0]!.bodies.request!, content_type: 'text/plain' } },
    });

    const [packed] = await packer.pack([item]);

    expect(packed).toStrictEqual(expected);
    expect(shared.byteLength).toBe(0);
  });

  it('packs raw bodies on the caller thread once closed', async () => {
    packer = new BodyPacker();
    await packer.close();
    const { decoded, raw } = rawAndDecodedItems();

    expect(await packer.pack(raw)).toStrictEqual(decoded.map(packBodies));
    expect(raw[0]!.bodies.request!.raw!.byteLength).toBeGreaterThan(0);
  });

  it('keeps the records of bodies lost with a failed thread', async () => {
    const failures: Error[] = [];
    packer = new BodyPacker({ onThreadFailure: (error) => failures.push(error) });
    const { decoded, raw } = rawAndDecodedItems();

    const result = packer.pack(raw);
    // The thread has not loaded yet, so it dies holding the transferred bytes of the whole batch.
    await (packer as unknown as { worker: Worker }).worker.terminate();
    const packed = await result;

    expect(failures).toHaveLength(1);
    expect(packed).toHaveLength(raw.length);
    for (const [index, bodies] of packed.entries()) {
      const label = `item ${index}`;
      expect(bodies.row.request_kept, label).toBe(true);
      expect(bodies.row.request_body, label).toBeNull();
      expect(bodies.row.request_encoding_error, label).toBe(LOST_BODY_ERROR);
      expect(bodies.row.request_bytes, label).toBe(decoded[index]!.bodies.request!.bytes);
      expect(bodies.promptText, label).toBeNull();
    }
    expect(packed[4]!.row.response_kept).toBe(false);
    // Later batches are packed on this thread, whole.
    const again = rawAndDecodedItems();
    expect(await packer.pack(again.raw)).toStrictEqual(again.decoded.map(packBodies));
  });
});
