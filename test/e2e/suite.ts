// The lifecycle both VM suites share: boot before the first test, count failures, tear down after
// the last (keeping consoles and logs when a test failed), and skip cluster checks once the
// health test has failed and said why.
import { afterAll, afterEach, beforeAll, expect } from 'vitest';
import { startTestCluster, type TestCluster, type TestClusterOptions } from './cluster.js';

export interface ClusterSuite {
  /** The booted cluster; only inside tests (after beforeAll). */
  readonly cluster: TestCluster;
  /** The first test: waits, bounded, for a healthy cluster and returns the seconds it took. */
  waitHealthy(timeoutMs: number): Promise<number>;
  /** For checks that need a cluster: skipped once the health test has failed. */
  skipUnlessHealthy(context: { skip: () => void }): void;
}

export function useTestCluster(options: () => Promise<TestClusterOptions>): ClusterSuite {
  let cluster: TestCluster | undefined;
  let anyFailed = false;
  let healthy = false;

  beforeAll(async () => {
    cluster = await startTestCluster(await options());
  });

  afterEach((context) => {
    if (context.task.result?.state === 'fail') anyFailed = true;
  });

  afterAll(async () => {
    await cluster?.teardown(anyFailed ? 'failed' : 'passed');
  });

  return {
    get cluster(): TestCluster {
      expect(cluster, 'the test cluster did not start (see beforeAll)').toBeDefined();
      return cluster!;
    },
    async waitHealthy(timeoutMs) {
      const seconds = await this.cluster.waitHealthy(timeoutMs);
      healthy = true;
      return seconds;
    },
    skipUnlessHealthy(context) {
      if (!healthy) context.skip();
    },
  };
}
