/**
 * Vitest global setup of the whole suite. It creates the run's temporary root before any test file runs.
 * After the last one it searches everything the tests left there (server data directories, spool files,
 * logs, collected API responses and error bodies) for every fake credential. A find fails the run and
 * keeps the root for inspection, and a clean run deletes it.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { scanForFakeCredentials, TEST_RUN_DIR_ENV } from '@tokenwise/testkit';

export default async function setup(): Promise<() => Promise<void>> {
  const root = await mkdtemp(join(tmpdir(), 'tokenwise-test-run-'));
  process.env[TEST_RUN_DIR_ENV] = root;

  return async function teardown() {
    const findings = await scanForFakeCredentials(root);
    if (findings.length === 0) {
      await rm(root, { recursive: true, force: true });
      return;
    }
    const lines = findings.map((finding) => `  ${finding.credential} in ${finding.file} (${finding.where})`);
    console.error(`fake credentials found in what the tests left under ${root}:\n${lines.join('\n')}`);
    // Vitest only logs an error thrown here, so the exit code carries the failure.
    process.exitCode = 1;
  };
}
