/// <reference path="../sql-js.d.ts" />
import { describe, expect, it } from 'vitest';
import type { ConnectContext } from '../connect-types.js';
import { ollama } from './ollama.js';

function context(serverUrl: string, env: NodeJS.ProcessEnv = {}): ConnectContext {
  return {
    home: '/nonexistent-home',
    env: { TOKENWISE_SYSTEMD_DIR: '/nonexistent-systemd', ...env },
    platform: 'linux',
    serverUrl,
    routeUrl: (route) => `${serverUrl}/r/twr_fake/${route}`,
    dataDir: '/nonexistent-data',
  };
}

describe('ollama target', () => {
  it('skips a server on another machine', async () => {
    const plan = await ollama.plan(context('https://tokenwise.example.com'));
    expect(plan.skipped).toContain('the Ollama observer runs inside "tokenwise serve" on the machine Ollama runs on');
    expect(plan.files).toEqual([]);
  });

  it('skips an OLLAMA_HOST it cannot read', async () => {
    const plan = await ollama.plan(context('http://127.0.0.1:4747', { OLLAMA_HOST: 'https://127.0.0.1:11434/x' }));
    expect(plan.skipped).toContain('invalid OLLAMA_HOST');
  });

  it('plans the observer file for a local server', async () => {
    const plan = await ollama.plan(context('http://127.0.0.1:4747'));
    expect(plan.skipped).toBeUndefined();
    expect(plan.files).toEqual([
      {
        path: '/nonexistent-data/ollama-observer.json',
        format: 'json',
        settings: [
          { key: ['listen'], value: '127.0.0.1:11434' },
          { key: ['upstream'], value: 'http://127.0.0.1:11435' },
        ],
      },
    ]);
    expect(plan.blockFiles).toBeUndefined();
  });
});
