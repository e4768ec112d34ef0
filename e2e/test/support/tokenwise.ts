/**
 * Drives the `tokenwise` command inside the sandbox as a user would: `serve` with every route pointed at
 * the fake provider, `token create`, and `calls --json`.
 */
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import type { CallRecord } from '@tokenwise/core';
import type { ProcessResult, Sandbox, SandboxFakeProvider, SandboxProcess } from '@tokenwise/testkit';
import { REPO_ROOT, TOKENWISE_BIN } from './environment.js';

export interface TokenwiseServer {
  /** The server's URL from `server.json`. */
  readonly url: string;
  readonly dataDir: string;
  /** The route token from `tokenwise token create`. */
  readonly token: string;
  /** What `serve` printed so far: the banner (stderr), then the JSON log lines (stdout). */
  output(): Promise<string>;
  /** Every stored call, from `tokenwise calls --json`. */
  calls(): Promise<CallRecord[]>;
  /** Poll `calls --json` until at least `count` records are stored or `timeoutMs` passes; returns what is there. */
  waitForCalls(count: number, timeoutMs?: number): Promise<CallRecord[]>;
  stop(): Promise<ProcessResult>;
}

const SERVER_START_TIMEOUT_MS = 30_000;
/** Records go to the store in batches off the request path, so they can trail the client's exit. */
const RECORDS_TIMEOUT_MS = 10_000;
const POLL_INTERVAL_MS = 200;

/**
 * Start `tokenwise serve` on a fresh data directory with the anthropic, openai, chatgpt, gemini and
 * codeassist routes overridden to the fake provider, then create a route token.
 */
export async function startTokenwise(sandbox: Sandbox, fake: SandboxFakeProvider, dataDir: string): Promise<TokenwiseServer> {
  const upstreams = {
    anthropic: fake.url,
    openai: fake.url,
    // Codex with a ChatGPT login appends /responses to the chatgpt route, whose real base is …/backend-api/codex.
    chatgpt: `${fake.url}/backend-api/codex`,
    gemini: fake.url,
    codeassist: fake.url,
  };
  const args = [TOKENWISE_BIN, 'serve', '--host', '127.0.0.1', '--port', '0', '--data-dir', dataDir];
  for (const [route, url] of Object.entries(upstreams)) args.push('--upstream', `${route}=${url}`);

  const server = await sandbox.start(process.execPath, args, { cwd: REPO_ROOT });
  const url = await waitForServerUrl(server, dataDir);

  const created = await runTokenwise(sandbox, ['token', 'create', '--data-dir', dataDir]);
  const token = created.stdout.trim();
  if (created.exitCode !== 0 || !/^[A-Za-z0-9_-]{8,128}$/.test(token)) {
    await server.stop();
    throw new Error(
      `tokenwise token create failed (exit ${created.exitCode}): stdout ${JSON.stringify(created.stdout)}, stderr ${created.stderr}`,
    );
  }

  const calls = async (): Promise<CallRecord[]> => {
    const listed = await runTokenwise(sandbox, ['calls', '--json', '--data-dir', dataDir]);
    if (listed.exitCode !== 0) throw new Error(`tokenwise calls --json failed (exit ${listed.exitCode}): ${listed.stderr}`);
    return parseJsonLines(listed.stdout);
  };

  return {
    url,
    dataDir,
    token,
    output: async () => {
      const { stdout, stderr } = await server.output();
      return `${stderr}${stdout}`;
    },
    calls,
    waitForCalls: async (count, timeoutMs = RECORDS_TIMEOUT_MS) => {
      const deadline = Date.now() + timeoutMs;
      let records = await calls();
      while (records.length < count && Date.now() < deadline) {
        await delay(POLL_INTERVAL_MS);
        records = await calls();
      }
      return records;
    },
    stop: () => server.stop(),
  };
}

export function runTokenwise(sandbox: Sandbox, args: string[]): Promise<ProcessResult> {
  return sandbox.run(process.execPath, [TOKENWISE_BIN, ...args], { cwd: REPO_ROOT, timeoutMs: 30_000 });
}

/** Wait for `serve` to write `server.json`; fail early with its output if it exits first. */
async function waitForServerUrl(server: SandboxProcess, dataDir: string): Promise<string> {
  const infoFile = join(dataDir, 'server.json');
  const deadline = Date.now() + SERVER_START_TIMEOUT_MS;
  while (Date.now() < deadline) {
    if (existsSync(infoFile)) {
      try {
        const info = JSON.parse(readFileSync(infoFile, 'utf8')) as { url?: unknown };
        if (typeof info.url === 'string') return info.url.replace(/\/+$/, '');
      } catch {
        // Written atomically by the server, but retry on a partial read anyway.
      }
    }
    const { result, stdout, stderr } = await server.output();
    if (result) {
      throw new Error(`tokenwise serve exited (code ${result.exitCode}) before writing ${infoFile}:\n${stdout}\n${stderr}`);
    }
    await delay(POLL_INTERVAL_MS);
  }
  const { stdout, stderr } = await server.output();
  await server.stop();
  throw new Error(`tokenwise serve did not write ${infoFile} within ${SERVER_START_TIMEOUT_MS} ms:\n${stdout}\n${stderr}`);
}

function parseJsonLines(text: string): CallRecord[] {
  return text
    .split('\n')
    .filter((line) => line.trim() !== '')
    .map((line, index) => {
      try {
        return JSON.parse(line) as CallRecord;
      } catch {
        throw new Error(`tokenwise calls --json printed a line that is not JSON (line ${index + 1}): ${line.slice(0, 200)}`);
      }
    });
}

function delay(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}
