import { defineConfig } from 'vitest/config';

// Real VM boots under TCG take minutes; one file at a time, no parallelism.
export default defineConfig({
  test: {
    include: ['test/e2e/**/*.test.ts'],
    fileParallelism: false,
    testTimeout: 40 * 60_000,
    hookTimeout: 40 * 60_000,
  },
});
