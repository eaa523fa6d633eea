import { defineConfig } from 'vitest/config';
import SummaryReporter from './test/support/summary-reporter.js';

export default defineConfig({
  test: {
    include: ['test/**/*.test.ts'],
    exclude: ['test/e2e/**', 'node_modules/**'],
    // Most files wait on real etcd (raft ticks, fsync, polls) rather than compute: on a 2-core
    // machine four files at a time finish sooner than vitest's default of one (cores - 1): measured 2026-12-08, 936 tests in 610 s at 4 (file-seconds 2360, so 3.9 files run at once).
    maxWorkers: 4,
    testTimeout: 120_000,
    hookTimeout: 120_000,
    reporters: ['default', new SummaryReporter('unit')],
  },
});
