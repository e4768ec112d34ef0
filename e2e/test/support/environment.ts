/**
 * Where the real clients live and whether this machine can run them. `cd e2e && npm ci` installs them,
 * outside the workspaces because they weigh ~750 MB. On a plain clone without them the suite skips with a
 * message, and with `TOKENWISE_E2E=required` (set by `.ci/run`) it fails.
 */
import { spawnSync } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { checkSandboxSupport } from '@tokenwise/testkit';
import { describe, it } from 'vitest';

export const REPO_ROOT = fileURLToPath(new URL('../../../', import.meta.url));
export const E2E_ROOT = join(REPO_ROOT, 'e2e');
export const TOKENWISE_BIN = join(REPO_ROOT, 'packages', 'cli', 'bin', 'tokenwise.js');

const BIN = join(E2E_ROOT, 'node_modules', '.bin');

/**
 * Time a client run may take before it is killed. Each run takes a few seconds here, and the bound stays
 * below vitest's 60 s test timeout so that a hung client fails with its own output.
 */
export const CLIENT_TIMEOUT_MS = 30_000;

export type ClientName = 'claude' | 'codex' | 'gemini' | 'anthropic-sdk' | 'openai-sdk';

interface ClientInstall {
  /** Executable to run (the SDKs run as plain Node scripts). */
  command: string;
  /** npm package whose installed version the recorded `tool_version` must equal. */
  packageName: string;
  /** Arguments that print the version, proving the install works (the Claude Code binary needs its postinstall). */
  versionArgs?: string[];
}

export const CLIENTS: Record<ClientName, ClientInstall> = {
  claude: { command: join(BIN, 'claude'), packageName: '@anthropic-ai/claude-code', versionArgs: ['--version'] },
  codex: { command: join(BIN, 'codex'), packageName: '@openai/codex', versionArgs: ['--version'] },
  gemini: { command: join(BIN, 'gemini'), packageName: '@google/gemini-cli', versionArgs: ['--version'] },
  'anthropic-sdk': { command: process.execPath, packageName: '@anthropic-ai/sdk' },
  'openai-sdk': { command: process.execPath, packageName: 'openai' },
};

/** Version of an npm package installed in e2e/node_modules. */
export function installedVersion(client: ClientName): string {
  const manifest = join(E2E_ROOT, 'node_modules', CLIENTS[client].packageName, 'package.json');
  return (JSON.parse(readFileSync(manifest, 'utf8')) as { version: string }).version;
}

const INSTALL_HINT = 'install the real clients with `cd e2e && npm ci` (about 750 MB)';
const required = process.env.TOKENWISE_E2E === 'required';

/** Why the given clients cannot run here, or null when they can. */
export function findMissingPiece(clients: ClientName[]): string | null {
  if (!existsSync(join(E2E_ROOT, 'node_modules'))) return `e2e/node_modules is missing: ${INSTALL_HINT}`;

  for (const client of clients) {
    const install = CLIENTS[client];
    if (!existsSync(join(E2E_ROOT, 'node_modules', install.packageName, 'package.json'))) {
      return `${install.packageName} is not installed in e2e/node_modules: ${INSTALL_HINT}`;
    }
    if (install.versionArgs) {
      const probe = spawnSync(install.command, install.versionArgs, { encoding: 'utf8', timeout: 30_000 });
      if (probe.status !== 0) {
        const output = `${probe.stderr ?? ''}${probe.stdout ?? ''}`.trim().slice(0, 300) || probe.error?.message;
        return `${install.command} ${install.versionArgs.join(' ')} failed (${output}): reinstall with \`cd e2e && npm ci\``;
      }
    }
  }

  if (!existsSync(join(REPO_ROOT, 'packages', 'cli', 'dist', 'main.js'))) {
    return 'the tokenwise command is not built: run `npx tsc -b` in the repository root';
  }
  const sandbox = checkSandboxSupport();
  if (!sandbox.ok) return `cannot create a loopback-only network namespace: ${sandbox.reason}`;
  return null;
}

/**
 * Declare a `describe` group that runs real clients. When a client or the network namespace is missing,
 * the group is skipped with a message saying how to install it, or fails with `TOKENWISE_E2E=required`.
 */
export function describeWithClients(name: string, clients: ClientName[], body: () => void): void {
  const missing = findMissingPiece(clients);
  if (missing === null) {
    describe(name, body);
    return;
  }
  if (required) {
    describe(name, () => {
      it('has its real clients and a network namespace (TOKENWISE_E2E=required)', () => {
        throw new Error(missing);
      });
    });
    return;
  }
  console.warn(`skipping "${name}": ${missing}`);
  describe.skip(name, body);
}
