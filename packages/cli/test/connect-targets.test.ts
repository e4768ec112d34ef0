import { chmod, lstat, mkdir, readFile, readlink, symlink, writeFile } from 'node:fs/promises';
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

/**
 * One row per tool file connect edits: where it is, a realistic file with comments or unrelated settings,
 * how the connected file must look, a value another gateway would have set, a malformed version, and an
 * edit a person might make while connected.
 */
interface TargetCase {
  tool: string;
  file: string;
  existing: string;
  /** Checks that the connected file points the tool at Tokenwise. */
  connected(text: string): void;
  /** Checks that connecting `existing` kept everything else in it. */
  preserved(text: string): void;
  conflicting: { text: string; value: string } | null;
  malformed: { text: string; location: RegExp } | null;
  personEdit(text: string): string;
  personEditKept: RegExp;
}

const CASES: TargetCase[] = [
  {
    tool: 'claude-code',
    file: '.claude/settings.json',
    existing: '{\n\t"model": "opus",\n\t"permissions": { "allow": ["Bash(ls:*)"] }\n}\n',
    connected(text) {
      const settings = JSON.parse(text);
      expect(settings.env.ANTHROPIC_BASE_URL).toBe(routeUrl('anthropic'));
    },
    preserved(text) {
      expect(JSON.parse(text).model).toBe('opus');
      expect(text).toContain('\t"permissions": { "allow": ["Bash(ls:*)"] },\n\t"env": {\n\t\t"ANTHROPIC_BASE_URL"');
    },
    conflicting: {
      text: '{"env": {"ANTHROPIC_BASE_URL": "http://gateway.example:4000/anthropic"}}\n',
      value: 'http://gateway.example:4000/anthropic',
    },
    malformed: {
      text: '{\n  // Claude Code ignores a file with a comment\n  "model": "opus"\n}\n',
      location: /settings\.json:2:3: comments are not allowed/,
    },
    personEdit: (text) => text.replace('"model": "opus"', '"model": "sonnet"'),
    personEditKept: /"model": "sonnet"/,
  },
  {
    tool: 'codex',
    file: '.codex/config.toml',
    existing:
      '# Codex settings\nmodel = "gpt-5.1-codex" # the default model\n\n[tui]\nnotifications = true\n\n[mcp_servers.docs]\ncommand = "npx"\n',
    connected(text) {
      expect(text).toContain(`openai_base_url = "${routeUrl('openai')}/v1"`);
      expect(text).not.toContain('[model_providers.openai]');
    },
    preserved(text) {
      expect(text.indexOf('openai_base_url')).toBeLessThan(text.indexOf('[tui]'));
      expect(text).toContain('model = "gpt-5.1-codex" # the default model');
      expect(text).toContain('[mcp_servers.docs]\ncommand = "npx"');
    },
    conflicting: { text: 'openai_base_url = "http://localhost:11434/v1"\n', value: 'http://localhost:11434/v1' },
    malformed: { text: 'model = "gpt-5"\nbroken = = 1\n', location: /config\.toml:2:10: invalid TOML/ },
    personEdit: (text) => text.replace('notifications = true', 'notifications = false'),
    personEditKept: /notifications = false/,
  },
  {
    tool: 'gemini-cli',
    file: '.gemini/settings.json',
    existing: '{\n  // Gemini CLI accepts comments here\n  "ui": { "theme": "GitHub" }\n}\n',
    connected(text) {
      expect(text).toMatch(/"selectedType": "gemini-api-key"/);
      expect(text).not.toMatch(/,\s*[}\]]/);
    },
    preserved(text) {
      expect(text).toContain('  // Gemini CLI accepts comments here\n  "ui": { "theme": "GitHub" },\n');
    },
    conflicting: null,
    malformed: { text: '{\n  "ui": { "theme": "GitHub" },\n}\n', location: /settings\.json:3:1: invalid JSON/ },
    personEdit: (text) => text.replace('"GitHub"', '"Dracula"'),
    personEditKept: /"Dracula"/,
  },
  {
    tool: 'claude-cli',
    file: '.bashrc',
    existing: '# ~/.bashrc\nalias ll="ls -l"\nexport EDITOR=vim\n',
    connected(text) {
      expect(text).toContain(`export ANTHROPIC_BASE_URL='${routeUrl('anthropic')}'`);
      expect(text.endsWith('# <<< tokenwise <<<\n')).toBe(true);
    },
    preserved(text) {
      expect(text.startsWith('# ~/.bashrc\nalias ll="ls -l"\nexport EDITOR=vim\n\n# >>> tokenwise >>>\n')).toBe(true);
    },
    conflicting: null,
    malformed: null,
    personEdit: (text) => `${text}alias gs="git status"\n`,
    personEditKept: /alias gs="git status"\n$/,
  },
];

describe.each(CASES)('connect $tool', (target) => {
  const connect = (extra: string[] = []) => home.tokenwise(['connect', '--only', target.tool, '--yes', ...extra]);
  const disconnect = () => home.tokenwise(['disconnect', '--yes']);

  it('configures a fresh install and removes everything again', async () => {
    const before = await home.tree();
    const connected = await connect();
    expect(connected.code, connected.stderr).toBe(0);
    target.connected(await home.read(target.file));

    const disconnected = await disconnect();
    expect(disconnected.code, disconnected.stderr).toBe(0);
    expect(await home.tree()).toEqual(before);
  });

  it('keeps comments and other settings, and restores the bytes', async () => {
    await home.write(target.file, target.existing);
    const before = await home.tree();

    expect((await connect()).code).toBe(0);
    const text = await home.read(target.file);
    target.connected(text);
    target.preserved(text);
    expect(await readFile(`${home.path(target.file)}.tokenwise.bak`, 'utf8')).toBe(target.existing);

    expect((await disconnect()).code).toBe(0);
    expect(await home.tree()).toEqual(before);
  });

  it('keeps CRLF line endings', async () => {
    const crlf = target.existing.replaceAll('\n', '\r\n');
    await home.write(target.file, crlf);

    expect((await connect()).code).toBe(0);
    const text = await home.read(target.file);
    expect(text.replaceAll('\r\n', '')).not.toContain('\n');
    target.connected(text.replaceAll('\r\n', '\n'));
    target.preserved(text.replaceAll('\r\n', '\n'));

    expect((await disconnect()).code).toBe(0);
    expect(await home.read(target.file)).toBe(crlf);
  });

  it('edits the target of a symlinked dotfile', async () => {
    const real = await home.write(`dotfiles/${target.file.replaceAll('/', '_')}`, target.existing);
    await mkdir(join(home.path(target.file), '..'), { recursive: true });
    await symlink(real, home.path(target.file));

    expect((await connect()).code).toBe(0);
    expect((await lstat(home.path(target.file))).isSymbolicLink()).toBe(true);
    expect(await readlink(home.path(target.file))).toBe(real);
    target.connected(await readFile(real, 'utf8'));

    expect((await disconnect()).code).toBe(0);
    expect((await lstat(home.path(target.file))).isSymbolicLink()).toBe(true);
    expect(await readFile(real, 'utf8')).toBe(target.existing);
  });

  it('leaves a read-only file alone and says so', async () => {
    const file = await home.write(target.file, target.existing);
    await chmod(file, 0o444);

    const result = await connect();
    expect(result.code).toBe(1);
    expect(result.stdout).toContain(`${file} is read-only`);
    expect(await home.read(target.file)).toBe(target.existing);
  });

  it('reports a malformed file with its line and column', async () => {
    if (!target.malformed) return;
    await home.write(target.file, target.malformed.text);

    const result = await connect();
    expect(result.code).toBe(1);
    expect(result.stdout).toMatch(target.malformed.location);
    expect(await home.read(target.file)).toBe(target.malformed.text);
  });

  it('asks before replacing another gateway and restores it', async () => {
    if (!target.conflicting) return;
    await home.write(target.file, target.conflicting.text);

    const result = await connect();
    expect(result.code).toBe(0);
    expect(result.stdout).toContain(`is "${target.conflicting.value}" now; connect replaces it`);
    expect(await home.read(target.file)).not.toContain(target.conflicting.value);

    expect((await disconnect()).code).toBe(0);
    expect(await home.read(target.file)).toBe(target.conflicting.text);
  });

  it('changes nothing when connected twice', async () => {
    await home.write(target.file, target.existing);
    expect((await connect()).code).toBe(0);
    const once = await home.tree();

    const again = await connect();
    expect(again.code).toBe(0);
    expect(again.stdout).toContain('Already connected');
    expect(await home.tree()).toEqual(once);

    expect((await disconnect()).code).toBe(0);
    expect(await home.read(target.file)).toBe(target.existing);
  });

  it("keeps the person's later edit on disconnect", async () => {
    await home.write(target.file, target.existing);
    expect((await connect()).code).toBe(0);
    await writeFile(home.path(target.file), target.personEdit(await home.read(target.file)));

    const result = await disconnect();
    expect(result.code, result.stderr).toBe(0);
    const text = await home.read(target.file);
    expect(text).toMatch(target.personEditKept);
    expect(text).not.toContain('/r/');
    expect(text).toBe(target.personEdit(target.existing));
  });

  it('writes nothing in a dry run', async () => {
    await home.write(target.file, target.existing);
    const before = await home.tree();

    const result = await connect(['--dry-run']);
    expect(result.code).toBe(0);
    expect(result.stdout).toContain('Dry run: nothing was written.');
    expect(result.stdout).toContain(`+++ ${home.path(target.file)}`);
    expect(await home.tree()).toEqual(before);
  });
});
