import { mkdtemp, rm } from 'node:fs/promises';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { FAKE_OLLAMA_STATS, type FakeOllama, startFakeOllama } from '@tokenwise/testkit';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { runCli, startServe } from './helpers/cli-process.js';

const METRICS_TOKEN = 'cli-metrics-token-0123456789';

let ollama: FakeOllama;
let collector: Server;
let collectorUrl: string;
const received: string[] = [];
let dataDir: string;

beforeEach(async () => {
  ollama = await startFakeOllama();
  received.length = 0;
  collector = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (chunk: Buffer) => chunks.push(chunk));
    req.on('end', () => {
      if (req.url === '/v1/traces') received.push(Buffer.concat(chunks).toString('utf8'));
      res.end('{}');
    });
  });
  await new Promise<void>((resolve) => collector.listen(0, '127.0.0.1', () => resolve()));
  collectorUrl = `http://127.0.0.1:${(collector.address() as AddressInfo).port}`;
  dataDir = await mkdtemp(join(tmpdir(), 'tokenwise-serve-export-'));
});

afterEach(async () => {
  await ollama.close();
  await new Promise<void>((resolve) => {
    collector.close(() => resolve());
    collector.closeAllConnections();
  });
  await rm(dataDir, { recursive: true, force: true });
});

describe('tokenwise serve with export and the Ollama observer', () => {
  it('records, exports and counts a local model call', async () => {
    const serve = await startServe([
      '--port',
      '0',
      '--data-dir',
      dataDir,
      '--upstream',
      `ollama=${ollama.url}`,
      '--ollama-listen',
      '127.0.0.1:0',
      '--otlp-endpoint',
      collectorUrl,
      '--metrics-token',
      METRICS_TOKEN,
    ]);
    try {
      const observer = /Ollama observer: (http:\/\/\S+) records local models/.exec(serve.stderr())?.[1];
      expect(observer, serve.stderr()).toBeDefined();
      expect(serve.stderr()).toContain(`OpenTelemetry export: ${collectorUrl}/v1/traces`);

      const response = await fetch(`${observer}/api/chat`, {
        method: 'POST',
        body: JSON.stringify({ model: 'qwen3:0.6b', messages: [{ role: 'user', content: 'hi' }] }),
      });
      await response.text();
      expect(response.status).toBe(200);

      await vi.waitFor(() => expect(received.join('')).toContain('"gen_ai.provider.name","value":{"stringValue":"ollama"}'), {
        timeout: 15_000,
      });
      await vi.waitFor(
        async () => {
          const listed = await runCli(['calls', '--json', '--data-dir', dataDir]);
          expect(listed.stdout).toContain('"provider":"ollama"');
        },
        { timeout: 15_000 },
      );

      const metrics = await fetch(`${serve.url}/metrics`, { headers: { authorization: `Bearer ${METRICS_TOKEN}` } });
      const text = await metrics.text();
      expect(text).toContain(
        'tokenwise_calls_total{provider="ollama",route="ollama",model="qwen3:0.6b",tool="unknown",status="success"} 1',
      );
      expect(text).toContain(
        `tokenwise_tokens_total{provider="ollama",route="ollama",model="qwen3:0.6b",tool="unknown",type="output"} ${FAKE_OLLAMA_STATS.eval_count}`,
      );
      expect(text).not.toContain(serve.routeToken);
    } finally {
      expect(await serve.stop()).toBe(0);
    }
  });
});
