import { appendFileSync, mkdirSync } from 'node:fs';
import { mkdtemp } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

/** Environment variable naming the run's temporary root; the suite's global setup sets it. */
export const TEST_RUN_DIR_ENV = 'TOKENWISE_TEST_RUN_DIR';
/** Largest part of one response or log kept for the closing secret scan, in bytes. */
const MAX_COLLECTED_BYTES = 256 * 1024;

/** Return the run's temporary root, or null outside the full suite (a test file run on its own without the global setup). */
export function testRunDir(): string | null {
  return process.env[TEST_RUN_DIR_ENV] || null;
}

/**
 * Create a temporary directory for a server's data, logs or home. Under the run's root it is kept until
 * the closing secret scan, which deletes the root. With `keep` true the caller must not delete it.
 */
export async function makeTestDir(prefix: string): Promise<{ dir: string; keep: boolean }> {
  const root = testRunDir();
  if (root === null) return { dir: await mkdtemp(join(tmpdir(), prefix)), keep: false };
  return { dir: await mkdtemp(join(root, prefix)), keep: true };
}

/**
 * Keep a copy of text a server sent (an API response, an error body, a log) for the closing secret scan.
 * At most MAX_COLLECTED_BYTES of each are kept. Does nothing outside the full suite.
 */
export function collectForSecretScan(kind: string, content: string | Uint8Array): void {
  const root = testRunDir();
  if (root === null) return;
  const dir = join(root, 'collected');
  mkdirSync(dir, { recursive: true });
  const bytes = typeof content === 'string' ? Buffer.from(content, 'utf8') : Buffer.from(content);
  const safeKind = kind.replace(/[^A-Za-z0-9_-]/g, '_');
  appendFileSync(join(dir, `${process.pid}-${safeKind}.txt`), Buffer.concat([bytes.subarray(0, MAX_COLLECTED_BYTES), Buffer.from('\n')]));
}
