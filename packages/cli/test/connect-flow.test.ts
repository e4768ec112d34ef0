import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { type AddressInfo, createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { type ConnectHome, createConnectHome, startLocalServer } from './helpers/connect-home.js';

let local: Awaited<ReturnType<typeof startLocalServer>>;
let home: ConnectHome;

beforeAll(async () => {
  local = await startLocalServer();
});
afterAll(async () => {
  await local?.close();
});
beforeEach(async () => {
  home = await createConnectHome(local.dataDir);
});
afterEach(async () => {
  await home.remove();
});

function routeUrl(route: string): string {
  return `${local.server.url}/r/${local.server.routeToken}/${route}`;
}

const CHATGPT_AUTH = JSON.stringify({ auth_mode: 'chatgpt', OPENAI_API_KEY: null, tokens: { access_token: 'FAKE' } });

describe('connect codex', () => {
  it('adds its own provider for a ChatGPT login', async () => {
    await home.write('.codex/auth.json', CHATGPT_AUTH);
    await home.write('.codex/config.toml', 'model = "gpt-5.1-codex"\n\n[tui]\nnotifications = true\n');
    const before = await home.tree();

    const result = await home.tokenwise(['connect', '--only', 'codex', '--yes']);
    expect(result.code, result.stdout).toBe(0);
    expect(result.stdout).toContain('Codex CLI (chatgpt):');
    expect(result.stdout).toContain('"codex resume" lists the sessions of the current provider only');
    const text = await home.read('.codex/config.toml');
    expect(text.indexOf('model_provider = "tokenwise"')).toBeLessThan(text.indexOf('[tui]'));
    expect(text).toContain(
      `[model_providers.tokenwise]\nname = "Tokenwise"\nbase_url = "${routeUrl('chatgpt')}"\nwire_api = "responses"\nrequires_openai_auth = true\nsupports_websockets = false\n`,
    );
    expect(text).not.toContain('[model_providers.openai]');
    expect(await home.read('.codex/auth.json')).toBe(CHATGPT_AUTH);

    expect((await home.tokenwise(['disconnect', '--yes'])).code).toBe(0);
    expect(await home.tree()).toEqual(before);
  });

  it('switches variant when the login changes', async () => {
    const original = '# mine\nmodel = "gpt-5"\n';
    await home.write('.codex/config.toml', original);
    expect((await home.tokenwise(['connect', '--only', 'codex', '--yes'])).code).toBe(0);
    expect(await home.read('.codex/config.toml')).toContain('openai_base_url');

    await home.write('.codex/auth.json', CHATGPT_AUTH);
    const again = await home.tokenwise(['connect', '--only', 'codex', '--yes']);
    expect(again.code, again.stdout).toBe(0);
    const text = await home.read('.codex/config.toml');
    expect(text).not.toContain('openai_base_url');
    expect(text).toContain('model_provider = "tokenwise"');

    expect((await home.tokenwise(['disconnect', '--yes'])).code).toBe(0);
    const after = await home.read('.codex/config.toml');
    expect(after).toContain('# mine\nmodel = "gpt-5"\n');
    expect(after).not.toContain('tokenwise');
  });

  it('leaves a custom model provider alone and says why', async () => {
    const config = 'model_provider = "ollama"\n\n[model_providers.ollama]\nname = "Ollama"\nbase_url = "http://localhost:11434/v1"\n';
    await home.write('.codex/config.toml', config);

    const result = await home.tokenwise(['connect', '--only', 'codex', '--yes']);
    expect(result.stdout).toContain('Codex uses the model provider "ollama" at http://localhost:11434/v1');
    expect(result.stdout).toContain('--upstream NAME=URL');
    expect(await home.read('.codex/config.toml')).toBe(config);
  });
});

describe('connect gemini-cli', () => {
  it('keeps a chosen auth type and sets both endpoints', async () => {
    const settings = '{ "security": { "auth": { "selectedType": "oauth-personal" } } }\n';
    await home.write('.gemini/settings.json', settings);

    const result = await home.tokenwise(['connect', '--only', 'gemini-cli', '--yes']);
    expect(result.code, result.stdout).toBe(0);
    expect(await home.read('.gemini/settings.json')).toBe(settings);
    const bashrc = await home.read('.bashrc');
    expect(bashrc).toContain(`export GOOGLE_GEMINI_BASE_URL='${routeUrl('gemini')}'`);
    expect(bashrc).toContain(`export CODE_ASSIST_ENDPOINT='${routeUrl('codeassist')}'`);

    expect((await home.tokenwise(['disconnect', '--yes'])).code).toBe(0);
    await expect(home.read('.bashrc')).rejects.toThrow(/ENOENT/);
  });
});

describe('connect shell profiles', () => {
  it('writes zsh under ZDOTDIR and fish in conf.d', async () => {
    await home.write('zdot/.zshrc', 'setopt autocd\n');
    await home.write('.config/fish/config.fish', 'set -g fish_greeting\n');
    const env = { ZDOTDIR: home.path('zdot'), SHELL: '/usr/bin/zsh' };
    const before = await home.tree();

    const result = await home.tokenwise(['connect', '--only', 'claude-cli', '--yes'], { env });
    expect(result.code, result.stdout).toBe(0);
    expect(await home.read('zdot/.zshrc')).toBe(
      `setopt autocd\n\n# >>> tokenwise >>>\n# Added by "tokenwise connect"; "tokenwise disconnect" removes this block.\nexport ANTHROPIC_BASE_URL='${routeUrl('anthropic')}'\n# <<< tokenwise <<<\n`,
    );
    expect(await home.read('.config/fish/conf.d/tokenwise.fish')).toContain(`set -gx ANTHROPIC_BASE_URL '${routeUrl('anthropic')}'`);
    await expect(home.read('.bashrc')).rejects.toThrow(/ENOENT/);

    expect((await home.tokenwise(['disconnect', '--yes'], { env })).code).toBe(0);
    expect(await home.tree()).toEqual(before);
  });

  it('keeps a block other tools still need', async () => {
    expect((await home.tokenwise(['connect', '--only', 'claude-cli,gemini-cli', '--yes'])).code).toBe(0);
    expect((await home.tokenwise(['disconnect', '--only', 'gemini-cli', '--yes'])).code).toBe(0);

    const bashrc = await home.read('.bashrc');
    expect(bashrc).toContain('export ANTHROPIC_BASE_URL=');
    expect(bashrc).not.toContain('GOOGLE_GEMINI_BASE_URL');
    expect((await home.tokenwise(['disconnect', '--yes'])).code).toBe(0);
    await expect(home.read('.bashrc')).rejects.toThrow(/ENOENT/);
  });
});

describe('connect questions', () => {
  it('applies only the files answered yes', async () => {
    await home.write('.claude/settings.json', '{}\n');
    await home.write('.gemini/settings.json', '{}\n');

    const result = await home.tokenwise(['connect', '--only', 'claude-code,gemini-cli'], { answers: ['n', 'y', 'y'] });
    expect(result.stderr).toContain(`Apply this change to ${home.path('.claude/settings.json')}? [Y/n]`);
    expect(await home.read('.claude/settings.json')).toBe('{}\n');
    expect(await home.read('.gemini/settings.json')).toContain('gemini-api-key');
    expect(result.stdout).toContain('Connected: Gemini CLI.');
  });

  it('stops without a terminal and without --yes', async () => {
    await home.write('.claude/settings.json', '{}\n');
    const result = await home.tokenwise(['connect', '--only', 'claude-code']);
    expect(result.code).toBe(1);
    expect(result.stderr).toContain('rerun with --yes');
    expect(await home.read('.claude/settings.json')).toBe('{}\n');
  });

  it('prints plan and result as JSON', async () => {
    const result = await home.tokenwise(['connect', '--only', 'claude-code', '--yes', '--json']);
    expect(result.code).toBe(0);
    const report = JSON.parse(result.stdout);
    expect(report.server).toBe(local.server.url);
    expect(report.targets[0].id).toBe('claude-code');
    expect(report.targets[0].files[0].result).toBe('applied');
    expect(report.targets[0].files[0].diff).toContain('+    "ANTHROPIC_BASE_URL"');
  });
});

describe('connect route tokens', () => {
  it('creates a token through the API and revokes it on disconnect', async () => {
    const otherDataDir = await mkdtemp(join(tmpdir(), 'tokenwise-connect-remote-'));
    try {
      const env = { TOKENWISE_API_TOKEN: local.server.apiToken };
      const connected = await home.tokenwise(['connect', '--server', local.server.url, '--only', 'claude-code', '--yes'], {
        env,
        dataDir: otherDataDir,
      });
      expect(connected.code, connected.stderr).toBe(0);
      const url: string = JSON.parse(await home.read('.claude/settings.json')).env.ANTHROPIC_BASE_URL;
      const token = /\/r\/([^/]+)\/anthropic$/.exec(url)?.[1];
      expect(token).toBeDefined();
      expect(token).not.toBe(local.server.routeToken);
      expect((await fetch(`${local.server.url}/api/v1/route-tokens/self`, { headers: { authorization: `Bearer ${token}` } })).status).toBe(
        200,
      );

      const disconnected = await home.tokenwise(['disconnect', '--yes'], { dataDir: otherDataDir });
      expect(disconnected.stdout).toContain(`Revoked the route token on ${local.server.url}.`);
      expect((await fetch(`${local.server.url}/api/v1/route-tokens/self`, { headers: { authorization: `Bearer ${token}` } })).status).toBe(
        401,
      );
      const proxied = await fetch(`${local.server.url}/r/${token}/anthropic/v1/messages`, { method: 'POST', body: '{}' });
      expect(proxied.status).toBe(401);
    } finally {
      await rm(otherDataDir, { recursive: true, force: true });
    }
  });

  it('keeps the local server token on disconnect', async () => {
    expect((await home.tokenwise(['connect', '--only', 'claude-code', '--yes'])).code).toBe(0);
    const result = await home.tokenwise(['disconnect', '--yes']);
    expect(result.stdout).toContain("Kept the route token: it is the local server's own token");
    const self = await fetch(`${local.server.url}/api/v1/route-tokens/self`, {
      headers: { authorization: `Bearer ${local.server.routeToken}` },
    });
    expect(self.status).toBe(200);
  });

  it('rejects an unknown token before changing anything', async () => {
    const result = await home.tokenwise(['connect', '--only', 'claude-code', '--yes', '--token', 'twr_unknown-token-0000']);
    expect(result.code).toBe(1);
    expect(result.stderr).toContain('rejected the route token');
    await expect(home.read('.claude/settings.json')).rejects.toThrow(/ENOENT/);
  });

  it('reports each tool in status', async () => {
    expect((await home.tokenwise(['connect', '--only', 'claude-code', '--yes'])).code).toBe(0);
    const status = await home.tokenwise(['status', '--json']);
    const report = JSON.parse(status.stdout);
    const claude = report.tools.find((tool: { id: string }) => tool.id === 'claude-code');
    expect(claude.connected).toBe(true);
    expect(claude.traffic[0].url).toBe(routeUrl('anthropic'));
    const codex = report.tools.find((tool: { id: string }) => tool.id === 'codex');
    expect(codex.connected).toBe(false);
    expect(report.server.problem).toBeNull();
    expect((await readFile(home.path('.claude/settings.json'), 'utf8')).length).toBeGreaterThan(0);
  });
});

describe('connect messages', () => {
  it('mentions shell profiles only when one changed', async () => {
    const first = await home.tokenwise(['connect', '--only', 'gemini-cli', '--yes']);
    expect(first.stdout).toContain('Shell profiles changed');

    const second = await home.tokenwise(['connect', '--only', 'gemini-cli', '--yes']);
    expect(second.code, second.stdout).toBe(0);
    expect(second.stdout).toContain('Already connected: nothing to change.');
    expect(second.stdout).not.toContain('Shell profiles changed');
  });

  it('explains an unreachable server', async () => {
    const closed = await closedPort();
    const server = `http://127.0.0.1:${closed}`;
    const otherDataDir = await mkdtemp(join(tmpdir(), 'tokenwise-connect-unreachable-'));
    try {
      const applied = await home.tokenwise(['connect', '--server', server, '--only', 'claude-code', '--yes'], { dataDir: otherDataDir });
      expect(applied.code).toBe(1);
      expect(applied.stderr).toContain(`failed to reach the Tokenwise server at ${server}: connection refused`);
      expect(applied.stderr).not.toContain('TypeError');

      const dryRun = await home.tokenwise(['connect', '--server', server, '--only', 'claude-code', '--dry-run'], { dataDir: otherDataDir });
      expect(dryRun.code).toBe(0);
      expect(dryRun.stdout).toContain(`Warning: failed to reach the Tokenwise server at ${server}: connection refused`);

      const badPort = await home.tokenwise(['connect', '--server', 'http://127.0.0.1:1', '--only', 'claude-code', '--yes'], {
        dataDir: otherDataDir,
      });
      expect(badPort.stderr).toContain('fetch blocks this port as unsafe');
    } finally {
      await rm(otherDataDir, { recursive: true, force: true });
    }
  });
});

/** Find a port on 127.0.0.1 that nothing listens on, by binding it once and closing it. */
async function closedPort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  await new Promise<void>((resolve) => server.close(() => resolve()));
  return port;
}

describe('disconnect after revocation', () => {
  it('says the token was already revoked', async () => {
    const otherDataDir = await mkdtemp(join(tmpdir(), 'tokenwise-connect-revoked-'));
    try {
      const env = { TOKENWISE_API_TOKEN: local.server.apiToken };
      const args = ['connect', '--server', local.server.url, '--only', 'claude-code', '--yes'];
      expect((await home.tokenwise(args, { env, dataDir: otherDataDir })).code).toBe(0);
      const url: string = JSON.parse(await home.read('.claude/settings.json')).env.ANTHROPIC_BASE_URL;
      const token = /\/r\/([^/]+)\/anthropic$/.exec(url)![1]!;
      const self = (await (
        await fetch(`${local.server.url}/api/v1/route-tokens/self`, { headers: { authorization: `Bearer ${token}` } })
      ).json()) as {
        id: string;
      };
      const revoked = await fetch(`${local.server.url}/api/v1/route-tokens/${self.id}`, {
        method: 'DELETE',
        headers: { authorization: `Bearer ${local.server.apiToken}` },
      });
      expect(revoked.status).toBe(200);

      const disconnected = await home.tokenwise(['disconnect', '--yes'], { dataDir: otherDataDir });
      expect(disconnected.stdout).toContain(`The route token was already revoked on ${local.server.url}.`);
      expect(disconnected.stdout).not.toContain('Revoked the route token');
    } finally {
      await rm(otherDataDir, { recursive: true, force: true });
    }
  });
});
