import { gunzipSync } from 'node:zlib';
import type { CallBodies } from '@tokenwise/core';
import { type BodiesToPack, BodyPacker, packBodies } from '@tokenwise/storage';
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
