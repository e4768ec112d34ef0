import { mkdir, mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { OLLAMA_OBSERVER_FILE, serve } from '@tokenwise/server';
import { type FakeOllama, startFakeOllama } from '@tokenwise/testkit';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it, vi } from 'vitest';
import { type ConnectHome, createConnectHome, startLocalServer } from './helpers/connect-home.js';

const UNIT = '[Unit]\nDescription=Ollama Service\n\n[Service]\nExecStart=/usr/local/bin/ollama serve\nUser=ollama\n';

let local: Awaited<ReturnType<typeof startLocalServer>>;
let home: ConnectHome;
let systemdDir: string;
let env: NodeJS.ProcessEnv;

beforeAll(async () => {
  local = await startLocalServer();
});
afterAll(async () => {
  await local?.close();
});
beforeEach(async () => {
  home = await createConnectHome(local.dataDir);
  await home.write('.ollama/id_ed25519.pub', 'ssh-ed25519 AAAA fake\n');
  systemdDir = await mkdtemp(join(tmpdir(), 'tokenwise-systemd-'));
  await writeFile(join(systemdDir, 'ollama.service'), UNIT);
  env = { TOKENWISE_SYSTEMD_DIR: systemdDir };
});
afterEach(async () => {
  await home.remove();
  await rm(systemdDir, { recursive: true, force: true });
  await rm(join(local.dataDir, OLLAMA_OBSERVER_FILE), { force: true });
});

const dropIn = () => join(systemdDir, 'ollama.service.d', 'tokenwise.conf');

describe('connect ollama', () => {
  it('writes the observer settings and moves the systemd service', async () => {
    const result = await home.tokenwise(['connect', '--only', 'ollama', '--yes'], { env });
    expect(result.code, result.stdout + result.stderr).toBe(0);
    expect(result.stdout).toContain("Warning: this moves Ollama's own port");
    expect(result.stdout).toContain('sudo systemctl daemon-reload && sudo systemctl restart ollama');
    expect(result.stdout).toContain('Connected: Ollama (local models).');

    const observer = JSON.parse(await readFile(join(local.dataDir, OLLAMA_OBSERVER_FILE), 'utf8')) as unknown;
    expect(observer).toEqual({ listen: '127.0.0.1:11434', upstream: 'http://127.0.0.1:11435' });
    expect(await readFile(dropIn(), 'utf8')).toBe(
      '# >>> tokenwise >>>\n# Added by "tokenwise connect"; "tokenwise disconnect" removes this block.\n[Service]\nEnvironment="OLLAMA_HOST=127.0.0.1:11435"\n# <<< tokenwise <<<\n',
    );
    // The shell profiles stay as they were: Ollama's clients keep their address.
    expect(Object.keys(await home.tree())).toEqual(['.ollama/id_ed25519.pub']);

    const status = await home.tokenwise(['status'], { env });
    expect(status.stdout).toContain('Ollama (local models): installed, connected\n');
    expect(status.stdout).toContain('the Tokenwise observer there forwards to Ollama on http://127.0.0.1:11435');
  });

  it('undoes everything on disconnect', async () => {
    expect((await home.tokenwise(['connect', '--only', 'ollama', '--yes'], { env })).code).toBe(0);

    const result = await home.tokenwise(['disconnect', '--yes'], { env });
    expect(result.code, result.stdout).toBe(0);
    expect((await home.tokenwise(['status'], { env })).stdout).toContain('Ollama (local models): installed, not connected\n');
    await expect(readFile(join(local.dataDir, OLLAMA_OBSERVER_FILE))).rejects.toThrow(/ENOENT/);
    expect(await readdir(systemdDir)).toEqual(['ollama.service']);
    expect(await readFile(join(systemdDir, 'ollama.service'), 'utf8')).toBe(UNIT);
  });

  it("moves Ollama's port only after a yes", async () => {
    const result = await home.tokenwise(['connect', '--only', 'ollama'], { env, answers: ['y', 'n'] });
    expect(result.code, result.stdout).toBe(0);
    expect(result.stdout + result.stderr).toContain(`Apply this change to ${dropIn()}?`);

    await expect(readFile(dropIn())).rejects.toThrow(/ENOENT/);
    expect(result.stdout).toContain('No tool was connected.');

    expect((await home.tokenwise(['disconnect', '--yes'], { env })).code).toBe(0);
    await expect(readFile(join(local.dataDir, OLLAMA_OBSERVER_FILE))).rejects.toThrow(/ENOENT/);
  });

  it('observes the address OLLAMA_HOST names', async () => {
    const result = await home.tokenwise(['connect', '--only', 'ollama', '--yes'], { env: { ...env, OLLAMA_HOST: '0.0.0.0:11500' } });
    expect(result.code, result.stdout).toBe(0);

    const observer = JSON.parse(await readFile(join(local.dataDir, OLLAMA_OBSERVER_FILE), 'utf8')) as unknown;
    expect(observer).toEqual({ listen: '0.0.0.0:11500', upstream: 'http://127.0.0.1:11501' });
    expect(await readFile(dropIn(), 'utf8')).toContain('Environment="OLLAMA_HOST=127.0.0.1:11501"');
  });

  it('says how to move Ollama without systemd', async () => {
    await rm(join(systemdDir, 'ollama.service'));
    const result = await home.tokenwise(['connect', '--only', 'ollama', '--yes'], { env });
    expect(result.code, result.stdout).toBe(0);
    expect(result.stdout).toContain('"OLLAMA_HOST=127.0.0.1:11435 ollama serve"');
    await expect(readFile(dropIn())).rejects.toThrow(/ENOENT/);
  });
});

describe('serve after connect ollama', () => {
  let ollama: FakeOllama;
  let dataDir: string;

  beforeEach(async () => {
    ollama = await startFakeOllama();
    dataDir = await mkdtemp(join(tmpdir(), 'tokenwise-ollama-serve-'));
  });
  afterEach(async () => {
    await ollama.close();
    await rm(dataDir, { recursive: true, force: true });
  });

  it('records local model calls through the observer', async () => {
    // What connect writes, with ports a test can use: the observer on a free port, Ollama moved to the fake.
    await mkdir(dataDir, { recursive: true });
    await writeFile(join(dataDir, OLLAMA_OBSERVER_FILE), JSON.stringify({ listen: '127.0.0.1:0', upstream: ollama.url }));
    const server = await serve({ host: '127.0.0.1', port: 0, dataDir, upstreams: {}, logLevel: 'silent', bodyCapBytes: undefined });
    try {
      await server.ollamaObserver!.listening();
      const response = await fetch(`${server.ollamaObserver!.url()}/api/chat`, {
        method: 'POST',
        body: JSON.stringify({ model: 'llama3.2:3b', messages: [{ role: 'user', content: 'hi' }] }),
      });
      await response.text();

      const calls = await vi.waitFor(async () => {
        const listed = await fetch(`${server.url}/api/v1/calls`, { headers: { authorization: `Bearer ${server.apiToken}` } });
        const body = (await listed.json()) as { calls: Array<{ provider: string; usage: { output_tokens: number } }> };
        expect(body.calls).toHaveLength(1);
        return body.calls;
      }, 10_000);
      expect(calls[0]).toMatchObject({ provider: 'ollama', usage: { output_tokens: 6 } });
    } finally {
      await server.close();
    }
  });
});
