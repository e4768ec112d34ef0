import { existsSync, readFileSync } from 'node:fs';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { describe, it } from 'vitest';
import { bundleWorker } from '../../scripts/bundle.mjs';

/**
 * Runs the bundled Worker in workerd through Miniflare. Both live in e2e/node_modules (`cd e2e && npm ci`)
 * because they weigh about 160 MB. Without them the Worker suites skip with a message, and with
 * `TOKENWISE_E2E=required` (as `.ci/run` sets it) they fail instead.
 */

const REPO_ROOT = fileURLToPath(new URL('../../../../', import.meta.url));
const E2E_MANIFEST = join(REPO_ROOT, 'e2e', 'package.json');
const WRANGLER_TOML = fileURLToPath(new URL('../../wrangler.toml', import.meta.url));
const COMPILED_ENTRY = fileURLToPath(new URL('../../dist/index.js', import.meta.url));

interface MiniflareInstance {
  ready: Promise<URL>;
  dispose(): Promise<void>;
}
type MiniflareClass = new (options: Record<string, unknown>) => MiniflareInstance;

function missingPiece(): string | null {
  if (!existsSync(join(REPO_ROOT, 'e2e', 'node_modules', 'miniflare', 'package.json'))) {
    return 'miniflare is not installed in e2e/node_modules: run `cd e2e && npm ci`';
  }
  if (!existsSync(COMPILED_ENTRY)) return 'the Worker is not built: run `npx tsc -b` in the repository root';
  return null;
}

/** Declare a `describe` group that needs workerd; it skips (or fails when required) without Miniflare. */
export function describeWithWorkerd(name: string, body: () => void): void {
  const missing = missingPiece();
  if (!missing) {
    describe(name, body);
    return;
  }
  if (process.env.TOKENWISE_E2E === 'required') {
    describe(name, () => {
      it('has workerd available', () => {
        throw new Error(`${missing} (TOKENWISE_E2E=required)`);
      });
    });
    return;
  }
  console.warn(`skipping "${name}": ${missing}`);
  describe.skip(name, body);
}

/** The compatibility date of wrangler.toml, so the tests run the Worker under the deployed settings. */
function compatibilityDate(): string {
  const match = /^compatibility_date\s*=\s*"([^"]+)"/m.exec(readFileSync(WRANGLER_TOML, 'utf8'));
  if (!match) throw new Error(`no compatibility_date in ${WRANGLER_TOML}`);
  return match[1]!;
}

let bundled: Promise<string> | null = null;

/** Bundle the compiled Worker once per test file, the same way `npm run bundle` does for deployment. */
function bundledScript(): Promise<string> {
  bundled ??= (async () => {
    const dir = await mkdtemp(join(tmpdir(), 'tokenwise-worker-'));
    try {
      return await readFile(await bundleWorker(join(dir, 'worker.js')), 'utf8');
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  })();
  return bundled;
}

export interface RunningWorker {
  /** Origin, e.g. `http://127.0.0.1:41234`. */
  url: string;
  port: number;
  dispose(): Promise<void>;
}

/** Start the Worker in workerd on 127.0.0.1 with these bindings (`TOKENWISE_SERVER_URL`, the secret, overrides). */
export async function startWorker(bindings: Record<string, string>): Promise<RunningWorker> {
  const require = createRequire(E2E_MANIFEST);
  const { Miniflare } = (await import(pathToFileURL(require.resolve('miniflare')).href)) as { Miniflare: MiniflareClass };
  const miniflare = new Miniflare({
    modules: true,
    script: await bundledScript(),
    compatibilityDate: compatibilityDate(),
    bindings,
    host: '127.0.0.1',
    port: 0,
  });
  const url = await miniflare.ready;
  return { url: url.origin, port: Number(url.port), dispose: () => miniflare.dispose() };
}
