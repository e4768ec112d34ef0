import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { FAKE_ANSWER_TEXT, type ProcessResult, type Sandbox, type SandboxFakeProvider, startSandbox } from '@tokenwise/testkit';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { CLIENTS, describeWithClients } from './support/environment.js';
import { runTokenwise, startTokenwise } from './support/tokenwise.js';

const ANTHROPIC_KEY = 'sk-ant-api03-FAKE-e2e-connect-key-000000000000000000000000000000';
const OPENAI_KEY = 'sk-proj-FAKE-e2e-connect-openai-key-0000000000000000000000000000';
const GEMINI_KEY = 'AIzaSyFAKE-e2e-connect-gemini-key-0000000';
/** A client run after disconnect goes to the real provider, which the sandbox refuses; it may retry until killed. */
const UNREACHABLE_RUN_MS = 20_000;

/** The files connect edits, each with content the person had before. */
const ORIGINALS: Record<string, string> = {
  '.claude/settings.json': '{\n  "includeCoAuthoredBy": false\n}\n',
  '.codex/config.toml': '# my Codex settings\n\n[tui]\nnotifications = false\n',
  '.gemini/settings.json': '{\n  // usage statistics off\n  "privacy": { "usageStatisticsEnabled": false }\n}\n',
  '.bashrc': '# ~/.bashrc\nalias ll="ls -l"\n',
};

describeWithClients('tokenwise connect with the real clients', ['claude', 'codex', 'gemini'], () => {
  let sandbox: Sandbox;
  let fake: SandboxFakeProvider;

  beforeAll(async () => {
    sandbox = await startSandbox();
    fake = await sandbox.startFakeProvider();
  });
  afterAll(async () => {
    await sandbox?.close();
  });

  function writeOriginals(): void {
    for (const [file, content] of Object.entries(ORIGINALS)) {
      mkdirSync(join(sandbox.home, file, '..'), { recursive: true });
      writeFileSync(join(sandbox.home, file), content);
    }
  }

  function readOriginals(): Record<string, string> {
    return Object.fromEntries(Object.keys(ORIGINALS).map((file) => [file, readFileSync(join(sandbox.home, file), 'utf8')]));
  }

  /** Run the three clients as a person would in a new terminal: the profile is sourced for Gemini CLI's variables. */
  function runClients(timeoutMs: number): Promise<ProcessResult[]> {
    const env = { ANTHROPIC_API_KEY: ANTHROPIC_KEY, OPENAI_API_KEY: OPENAI_KEY, GEMINI_API_KEY: GEMINI_KEY };
    return Promise.all([
      sandbox.run(CLIENTS.claude.command, ['-p', 'Say hi.'], { env, timeoutMs }),
      sandbox.run(CLIENTS.codex.command, ['exec', '--skip-git-repo-check', 'Say hi.'], { env, timeoutMs }),
      sandbox.run('bash', ['-c', `source "$HOME/.bashrc" && exec "${CLIENTS.gemini.command}" -p 'Say hi.'`], { env, timeoutMs }),
    ]);
  }

  it('records every client after connect and none after disconnect', async () => {
    const dataDir = join(sandbox.scratchDir, 'data-connect');
    const server = await startTokenwise(sandbox, fake, dataDir);
    try {
      writeOriginals();
      const connected = await runTokenwise(sandbox, ['connect', '--yes', '--only', 'claude-code,codex,gemini-cli', '--data-dir', dataDir]);
      expect(connected.exitCode, `${connected.stdout}\n${connected.stderr}`).toBe(0);
      expect(connected.stdout).toContain('Connected: Claude Code, Codex CLI, Gemini CLI.');

      await fake.clear();
      const results = await runClients(60_000);
      for (const [index, result] of results.entries()) {
        expect(result.exitCode, `client ${index} stderr:\n${result.stderr.slice(-3000)}`).toBe(0);
        expect(result.stdout).toContain(FAKE_ANSWER_TEXT);
      }

      // Codex keeps its built-in provider, whose Responses WebSocket the proxy relays.
      const upstream = await fake.requests();
      expect(upstream.some((request) => request.transport === 'websocket-upgrade' && request.answer.status === 101)).toBe(true);
      const expected = upstream.filter((request) => request.transport !== 'websocket-upgrade').length;
      const records = await server.waitForCalls(expected);
      expect(new Set(records.map((record) => record.tool))).toEqual(new Set(['claude-code', 'codex', 'gemini-cli']));
      expect(records.every((record) => record.status === 'success')).toBe(true);

      const disconnected = await runTokenwise(sandbox, ['disconnect', '--yes', '--data-dir', dataDir]);
      expect(disconnected.exitCode, `${disconnected.stdout}\n${disconnected.stderr}`).toBe(0);
      expect(readOriginals()).toEqual(ORIGINALS);

      await fake.clear();
      const attemptsBefore = (await sandbox.proxyAttempts()).length;
      const after = await runClients(UNREACHABLE_RUN_MS);
      for (const result of after) expect(result.stdout).not.toContain(FAKE_ANSWER_TEXT);
      expect(await fake.requests(), 'nothing reaches the proxy after disconnect').toEqual([]);
      expect(await server.calls()).toHaveLength(records.length);
      const attempts = (await sandbox.proxyAttempts()).slice(attemptsBefore).map((attempt) => attempt.target);
      expect(attempts).toContain('api.anthropic.com:443');
      expect(attempts).toContain('api.openai.com:443');
      expect(attempts).toContain('generativelanguage.googleapis.com:443');
    } finally {
      await server.stop();
    }
  });
});
