/**
 * Property test of the WebSocket relay's frame handling. A Responses turn fragmented into continuation
 * frames of any size in both directions, with the client's bytes arriving in TCP writes cut anywhere,
 * gives the record of the same turn sent in whole frames.
 */
import { randomBytes } from 'node:crypto';
import { once } from 'node:events';
import { createServer } from 'node:http';
import { type AddressInfo, connect } from 'node:net';
import type { CallRecord } from '@tokenwise/core';
import { FAKE_CREDENTIALS } from '@tokenwise/testkit';
import fc from 'fast-check';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { WebSocketServer } from 'ws';
import { startTestProxy, TEST_TOKEN, type TestProxy } from './proxy-harness.js';

const CREATE = JSON.stringify({
  type: 'response.create',
  model: 'gpt-5-codex',
  input: [{ role: 'user', content: [{ type: 'input_text', text: 'say hi, and repeat this line '.repeat(20) }] }],
  prompt_cache_key: '0199a000-0000-7000-8000-00000000c0de',
});

const RESPONSE = { id: 'resp_frames', object: 'response', model: 'gpt-5-codex', output: [] };
const SERVER_EVENTS = [
  { type: 'response.created', response: { ...RESPONSE, status: 'in_progress', usage: null } },
  { type: 'response.output_item.added', output_index: 0, item: { id: 'msg_1', type: 'message', content: [] } },
  ...['hel', 'lo ', 'the', 're'].map((delta) => ({ type: 'response.output_text.delta', item_id: 'msg_1', output_index: 0, delta })),
  {
    type: 'response.completed',
    response: {
      ...RESPONSE,
      status: 'completed',
      usage: {
        input_tokens: 812,
        input_tokens_details: { cached_tokens: 512 },
        output_tokens: 9,
        output_tokens_details: { reasoning_tokens: 0 },
      },
    },
  },
].map((event) => JSON.stringify(event));

/** Fragment size of the upstream's messages for the session under way; 0 sends whole messages. */
let serverFragmentBytes = 0;
let upstreamUrl: string;
let closeUpstream: () => Promise<void>;
let proxy: TestProxy;

beforeAll(async () => {
  const wss = new WebSocketServer({ noServer: true });
  const server = createServer((_req, res) => res.writeHead(404).end());
  server.on('upgrade', (req, socket, head) => {
    wss.handleUpgrade(req, socket, head, (ws) => {
      ws.on('message', (data) => {
        if (JSON.parse(String(data)).type !== 'response.create') return;
        for (const event of SERVER_EVENTS) {
          if (serverFragmentBytes === 0) {
            ws.send(event);
            continue;
          }
          for (let start = 0; start < event.length; start += serverFragmentBytes) {
            ws.send(event.slice(start, start + serverFragmentBytes), { binary: false, fin: start + serverFragmentBytes >= event.length });
          }
        }
      });
    });
  });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  upstreamUrl = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  closeUpstream = async () => {
    for (const client of wss.clients) client.terminate();
    server.closeAllConnections();
    await new Promise((resolve) => server.close(resolve));
  };
  proxy = await startTestProxy({ upstreams: { chatgpt: upstreamUrl } });
});

afterAll(async () => {
  await proxy.close();
  await closeUpstream();
});

/** Build one masked client frame (RFC 6455 section 5.2): client frames must be masked. */
function clientFrame(opcode: number, fin: boolean, payload: Buffer): Buffer {
  const mask = randomBytes(4);
  let header: Buffer;
  if (payload.length < 126) {
    header = Buffer.from([(fin ? 0x80 : 0) | opcode, 0x80 | payload.length]);
  } else if (payload.length < 65536) {
    header = Buffer.alloc(4);
    header[0] = (fin ? 0x80 : 0) | opcode;
    header[1] = 0x80 | 126;
    header.writeUInt16BE(payload.length, 2);
  } else {
    header = Buffer.alloc(10);
    header[0] = (fin ? 0x80 : 0) | opcode;
    header[1] = 0x80 | 127;
    header.writeBigUInt64BE(BigInt(payload.length), 2);
  }
  const masked = Buffer.from(payload.map((byte, index) => byte ^ mask[index % 4]!));
  return Buffer.concat([header, mask, masked]);
}

/** Split a text message into a first frame and continuation frames at the given offsets. */
function fragmented(message: string, cuts: number[]): Buffer {
  const payload = Buffer.from(message);
  const bounds = [0, ...cuts.filter((cut) => cut > 0 && cut < payload.length), payload.length];
  const frames: Buffer[] = [];
  for (let index = 0; index + 1 < bounds.length; index += 1) {
    frames.push(clientFrame(index === 0 ? 0x1 : 0x0, index + 2 === bounds.length, payload.subarray(bounds[index], bounds[index + 1])));
  }
  return Buffer.concat(frames);
}

/** Run one turn over a raw socket: the handshake, the client message written in pieces, then a close once the turn ended. */
async function session(messageCuts: number[], writeCuts: number[]): Promise<CallRecord> {
  const socket = connect(proxy.port, '127.0.0.1');
  socket.on('error', () => {});
  await once(socket, 'connect');
  socket.write(
    [
      `GET /r/${TEST_TOKEN}/chatgpt/responses HTTP/1.1`,
      `host: 127.0.0.1:${proxy.port}`,
      'upgrade: websocket',
      'connection: Upgrade',
      `sec-websocket-key: ${randomBytes(16).toString('base64')}`,
      'sec-websocket-version: 13',
      `authorization: Bearer ${FAKE_CREDENTIALS.chatgptBearer}`,
      `chatgpt-account-id: ${FAKE_CREDENTIALS.chatgptAccountId}`,
      'originator: codex_exec',
      'user-agent: codex_exec/0.171.0 (Debian 12.0.0; x86_64)',
      '',
      '',
    ].join('\r\n'),
  );

  let received = Buffer.alloc(0);
  const arrived = (text: string) =>
    new Promise<void>((resolve) => {
      const check = () => {
        if (!received.includes(text)) return;
        socket.off('data', onData);
        resolve();
      };
      const onData = (chunk: Buffer) => {
        received = Buffer.concat([received, chunk]);
        check();
      };
      socket.on('data', onData);
      check();
    });
  await arrived('\r\n\r\n');
  expect(received.toString('latin1')).toMatch(/^HTTP\/1\.1 101 /);

  const bytes = fragmented(CREATE, messageCuts);
  const bounds = [0, ...writeCuts.filter((cut) => cut > 0 && cut < bytes.length), bytes.length];
  for (let index = 0; index + 1 < bounds.length; index += 1) {
    socket.write(bytes.subarray(bounds[index], bounds[index + 1]));
    // A pause between writes, so they reach the proxy as separate reads.
    await new Promise((resolve) => setImmediate(resolve));
  }

  const record = (await proxy.sink.next()).record;
  socket.end(clientFrame(0x8, true, Buffer.from([0x03, 0xe8])));
  await once(socket, 'close');
  return record;
}

/** Return the record without what differs between two runs of the same turn. */
function comparable(record: CallRecord): Partial<CallRecord> {
  const { id, started_at, timing, ...rest } = record;
  return rest;
}

const offsets = (max: number) => fc.uniqueArray(fc.integer({ min: 1, max }), { maxLength: 12 }).map((cuts) => cuts.sort((a, b) => a - b));

describe('WebSocket relay framing', () => {
  it('records the same turn for any fragmentation', async () => {
    serverFragmentBytes = 0;
    const whole = comparable(await session([], []));
    expect(whole).toMatchObject({ status: 'success', stream_format: 'websocket', usage: { input_tokens: 812, output_tokens: 9 } });

    await fc.assert(
      fc.asyncProperty(
        offsets(CREATE.length),
        offsets(CREATE.length + 64),
        fc.integer({ min: 0, max: 40 }),
        async (messageCuts, writeCuts, serverBytes) => {
          serverFragmentBytes = serverBytes;
          expect(comparable(await session(messageCuts, writeCuts))).toStrictEqual(whole);
        },
      ),
      { numRuns: 25 },
    );
  });
});
