import { defineConfig } from 'vitest/config';
import SummaryReporter from './test/support/summary-reporter.js';

// Real VM boots under TCG take minutes; one file at a time, no parallelism.
export default defineConfig({
  test: {
    include: ['test/e2e/**/*.test.ts'],
    fileParallelism: false,
    testTimeout: 40 * 60_000,
    hookTimeout: 40 * 60_000,
    reporters: ['default', new SummaryReporter('e2e', true)],
  },
});
