import { defineConfig } from 'vitest/config';

const reportFile = process.env.TOKENWISE_TEST_REPORT;

export default defineConfig({
  test: {
    include: ['packages/*/src/**/*.test.ts', 'packages/*/test/**/*.test.ts', 'e2e/test/**/*.test.ts', 'bench/test/**/*.test.ts'],
    // Integration tests start real servers and real AI clients; the bound is generous on purpose because
    // speed is measured in bench/, not here.
    testTimeout: 60_000,
    hookTimeout: 120_000,
    // Creates the run's temporary root and, after the last test, scans it for fake credentials.
    globalSetup: ['packages/testkit/test/global-secret-scan.ts'],
    reporters: reportFile ? ['default', ['json', { outputFile: reportFile }]] : ['default'],
  },
});
