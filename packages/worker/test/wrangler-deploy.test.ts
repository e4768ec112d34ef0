import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { existsSync } from 'node:fs';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { stripVTControlCharacters } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { bundleWorker } from '../scripts/bundle.mjs';

/**
 * `wrangler deploy --dry-run` with the pinned wrangler (4.86.0, the last to support Node 20, from
 * e2e/node_modules): it reads wrangler.toml and prepares the upload as a deploy would, without an account
 * or network. Without wrangler the suite skips, and with `TOKENWISE_E2E=required` it fails instead.
 */
const PACKAGE_DIR = fileURLToPath(new URL('..', import.meta.url));
const WRANGLER = fileURLToPath(new URL('../../../e2e/node_modules/wrangler/bin/wrangler.js', import.meta.url));

function describeWithWrangler(name: string, body: () => void): void {
  if (existsSync(WRANGLER)) {
    describe(name, body);
  } else if (process.env.TOKENWISE_E2E === 'required') {
    describe(name, () => {
      it('has wrangler installed', () => {
        throw new Error('wrangler is not installed in e2e/node_modules: run `cd e2e && npm ci` (TOKENWISE_E2E=required)');
      });
    });
  } else {
    console.warn(`skipping "${name}": wrangler is not installed in e2e/node_modules: run \`cd e2e && npm ci\``);
    describe.skip(name, body);
  }
}

describeWithWrangler('wrangler deploy --dry-run', () => {
  let scratch: string;
  let result: { code: number | null; output: string };

  beforeAll(async () => {
    scratch = await mkdtemp(join(tmpdir(), 'tokenwise-wrangler-'));
    // wrangler.toml deploys dist/worker.js as it is (no_bundle), so it must be the current bundle.
    await bundleWorker();
    const child = spawn(process.execPath, [WRANGLER, 'deploy', '--dry-run', '--outdir', join(scratch, 'out')], {
      cwd: PACKAGE_DIR,
      // No account, no telemetry, and wrangler's logs in the scratch directory instead of the home directory.
      env: { PATH: process.env.PATH, HOME: scratch, XDG_CONFIG_HOME: scratch, WRANGLER_SEND_METRICS: 'false', CI: 'true', NO_COLOR: '1' },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let output = '';
    child.stdout.setEncoding('utf8').on('data', (text: string) => (output += text));
    child.stderr.setEncoding('utf8').on('data', (text: string) => (output += text));
    const [code] = (await once(child, 'exit')) as [number | null];
    // wrangler colours its output even with NO_COLOR set.
    result = { code, output: stripVTControlCharacters(output) };
  });

  afterAll(async () => {
    await rm(scratch, { recursive: true, force: true });
  });

  it('accepts wrangler.toml without warnings', () => {
    expect(result.code, result.output).toBe(0);
    expect(result.output).toContain('--dry-run: exiting now.');
    expect(result.output).not.toMatch(/\[WARNING\]|\[ERROR\]/);
  });

  it('uploads the tested bundle unchanged', async () => {
    const uploaded = await readFile(join(scratch, 'out', 'worker.js'));

    expect(uploaded.equals(await readFile(join(PACKAGE_DIR, 'dist', 'worker.js')))).toBe(true);
  });

  it('binds the documented variables', () => {
    for (const name of ['TOKENWISE_SERVER_URL', 'TOKENWISE_TOKEN_CACHE_SECONDS', 'TOKENWISE_BODY_CAP_BYTES']) {
      expect(result.output).toContain(`env.${name}`);
    }
  });
});
