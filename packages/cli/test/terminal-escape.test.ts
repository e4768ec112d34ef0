import { once } from 'node:events';
import { mkdtemp, rm } from 'node:fs/promises';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it, vi } from 'vitest';
import { runCli, type ServeProcess, startServe, startTail } from './helpers/cli-process.js';

/** A model name as a hostile request or upstream could send it: colours, a window title, a forged row. */
const EVIL_MODEL = 'evil\u001b[31mRED\u001b]0;TITLE\u0007\r\nFAKE ROW\u202e';
/** Bytes a terminal acts on: C0 controls except the LF ending each line, DEL, C1 controls, bidi overrides. */
// biome-ignore lint/suspicious/noControlCharactersInRegex: the tests look for exactly these characters.
const TERMINAL_CONTROLS = /[\u0000-\u0009\u000b-\u001f\u007f-\u009f\u202a-\u202e\u2066-\u2069]/;

let upstream: Server;
let upstreamUrl: string;
let dataDir: string;
let server: ServeProcess | null = null;

beforeAll(async () => {
  // An Anthropic upstream that responds to every request with the hostile model name.
  upstream = createServer((req, res) => {
    req.resume();
    req.on('end', () => {
      res.writeHead(200, { 'content-type': 'application/json' });
      res.end(
        JSON.stringify({
          id: 'msg_evil',
          type: 'message',
          role: 'assistant',
          model: EVIL_MODEL,
          content: [{ type: 'text', text: 'hi' }],
          stop_reason: 'end_turn',
          usage: { input_tokens: 3, output_tokens: 1 },
        }),
      );
    });
  });
  upstream.listen(0, '127.0.0.1');
  await once(upstream, 'listening');
  upstreamUrl = `http://127.0.0.1:${(upstream.address() as AddressInfo).port}`;
});

afterAll(async () => {
  upstream.close();
});

beforeEach(async () => {
  dataDir = await mkdtemp(join(tmpdir(), 'tokenwise-escape-'));
  server = await startServe(['--port', '0', '--data-dir', dataDir, '--upstream', `anthropic=${upstreamUrl}`]);
});

afterEach(async () => {
  await server?.stop();
  server = null;
  await rm(dataDir, { recursive: true, force: true });
});

async function callWithEvilModel(running: ServeProcess): Promise<void> {
  const response = await fetch(`${running.url}/r/${running.routeToken}/anthropic/v1/messages`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', 'x-api-key': 'sk-ant-api03-FAKE-escape', 'anthropic-version': '2023-06-01' },
    body: JSON.stringify({ model: EVIL_MODEL, max_tokens: 16, messages: [{ role: 'user', content: 'hi' }] }),
  });
  await response.arrayBuffer();
  expect(response.status).toBe(200);
}

// Regression: `calls` and `tail` printed model names raw, so anyone holding a route token (through the
// request's `model`) or an upstream could change the terminal's colours and title or forge table rows.
describe('recorded control characters', () => {
  it('reach the terminal escaped in calls and tail', async () => {
    const running = server!;
    const tail = await startTail(['--data-dir', dataDir]);
    await callWithEvilModel(running);
    await tail.waitForStdout(/evil/);
    await vi.waitFor(async () => expect((await runCli(['calls', '--data-dir', dataDir])).stdout).toContain('evil'));

    const table = await runCli(['calls', '--data-dir', dataDir]);
    const json = await runCli(['calls', '--json', '--data-dir', dataDir]);
    expect(await tail.stop()).toBe(0);

    for (const output of [table.stdout, tail.stdout()]) {
      expect(output).not.toMatch(TERMINAL_CONTROLS);
      expect(output).toContain('evil\\x1b[31mRED\\x1b]0;TITLE\\x');
      // The header and one row: the CR/LF in the name did not split it.
      expect(output.trimEnd().split('\n')).toHaveLength(2);
    }
    expect((JSON.parse(json.stdout) as { model_answered: string }).model_answered).toBe(EVIL_MODEL);
  });
});
