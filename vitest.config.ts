import { defineConfig } from 'vitest/config';

const reportFile = process.env.TOKENWISE_TEST_REPORT;

export default defineConfig({
  test: {
    include: ['packages/*/src/**/*.test.ts', 'packages/*/test/**/*.test.ts', 'e2e/test/**/*.test.ts', 'bench/test/**/*.test.ts'],
    // Integration tests start real servers and real AI clients; the bound is generous on purpose because
    // speed is measured in bench/, not here.
    testTimeout: 60_000,
    hookTimeout: 120_000,
    reporters: reportFile ? ['default', ['json', { outputFile: reportFile }]] : ['default'],
  },
});
