import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { FAKE_ANSWER_TEXT } from './fake-provider-answers.js';
import { checkSandboxSupport, type Sandbox, startSandbox } from './sandbox.js';

const support = checkSandboxSupport();
// `.ci/run` sets TOKENWISE_E2E=required: there a machine without network namespaces fails instead of skipping.
const required = process.env.TOKENWISE_E2E === 'required';
if (!support.ok && !required) console.warn(`skipping the sandbox tests: ${support.reason}`);

describe.skipIf(!support.ok && !required)('sandbox', () => {
  let sandbox: Sandbox;

  beforeAll(async () => {
    sandbox = await startSandbox();
  });
  afterAll(async () => {
    await sandbox?.close();
  });

  it('has only loopback and no routes', async () => {
    expect(await sandbox.networkInterfaces()).toEqual(['lo']);

    for (const family of ['-4', '-6']) {
      const routes = await sandbox.run('ip', [family, 'route', 'show']);
      expect(routes.exitCode, routes.stderr).toBe(0);
      expect(routes.stdout.trim(), `ip ${family} route show`).not.toMatch(/default|via/);
    }
  });

  it('records and rejects connections through the proxy', async () => {
    // The CONNECT only names a host; it goes to the refusing proxy on 127.0.0.1 and nowhere else.
    const script = `
      const http = require('node:http');
      const proxy = new URL(process.env.HTTPS_PROXY);
      const request = http.request({ host: proxy.hostname, port: proxy.port, method: 'CONNECT', path: 'api.example.org:443' });
      request.on('connect', (response, socket) => { console.log(response.statusCode); socket.destroy(); });
      request.on('error', (error) => { console.log('error', error.message); });
      request.end();
    `;
    const result = await sandbox.run('node', ['-e', script]);

    expect(result.stdout.trim()).toBe('403');
    const attempts = await sandbox.proxyAttempts();
    expect(attempts.map((attempt) => `${attempt.method} ${attempt.target}`)).toContain('CONNECT api.example.org:443');
  });

  it('starts processes with only the sandbox environment', async () => {
    process.env.TOKENWISE_SANDBOX_HOST_ONLY = 'host value';
    try {
      const result = await sandbox.run('node', ['-e', 'console.log(JSON.stringify(process.env))'], {
        env: { EXTRA: 'added', NO_COLOR: undefined },
      });
      const env = JSON.parse(result.stdout) as Record<string, string>;

      expect(env.TOKENWISE_SANDBOX_HOST_ONLY).toBeUndefined();
      expect(env.HOME).toBe(sandbox.home);
      expect(env.EXTRA).toBe('added');
      expect(env.NO_COLOR).toBeUndefined();
      expect(env.NO_PROXY).toBe('127.0.0.1,localhost');
      expect(env.HTTPS_PROXY).toBe(sandbox.proxyUrl);
      expect(env.CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC).toBe('1');
    } finally {
      delete process.env.TOKENWISE_SANDBOX_HOST_ONLY;
    }
  });

  it('kills a process that runs past its timeout', async () => {
    const result = await sandbox.run('sleep', ['30'], { timeoutMs: 300 });

    expect(result.timedOut).toBe(true);
    expect(result.signal).toBe('SIGTERM');
    expect(result.durationMs).toBeLessThan(10_000);
  });

  it('stops a background process and returns its output', async () => {
    const background = await sandbox.start('node', ['-e', 'console.log("started"); setInterval(() => {}, 1000)']);
    await expect.poll(async () => (await background.output()).stdout, { timeout: 10_000 }).toContain('started');

    const result = await background.stop();
    expect(result.signal).toBe('SIGTERM');
    expect(result.stdout).toContain('started');
  });

  it('taps requests on their way to a fake provider', async () => {
    const fake = await sandbox.startFakeProvider();
    const tap = await sandbox.startTap(fake.url);
    const body = JSON.stringify({ model: 'm', max_tokens: 8, messages: [{ role: 'user', content: 'Say hi.' }] });
    const script = `
      fetch(process.argv[1] + '/v1/messages?beta=true', {
        method: 'POST',
        headers: { 'content-type': 'application/json', 'x-api-key': 'sk-ant-FAKE-tap' },
        body: process.argv[2],
      }).then((response) => response.json()).then((message) => console.log(message.content[0].text));
    `;
    const result = await sandbox.run('node', ['-e', script, tap.url, body]);

    expect(result.stdout.trim()).toBe(FAKE_ANSWER_TEXT);
    const [sent] = await tap.requests();
    const [arrived] = await fake.requests();
    expect(sent?.target).toBe('/v1/messages?beta=true');
    expect(arrived?.target).toBe('/v1/messages?beta=true');
    expect(Buffer.from(sent!.body).toString()).toBe(body);
    expect(Buffer.from(arrived!.body).toString()).toBe(body);
    expect(arrived?.headers['x-api-key']).toBe('sk-ant-FAKE-tap');
    expect(arrived?.headers.host).toBe(new URL(fake.url).host);
    await tap.close();
    await fake.close();
  });
});
