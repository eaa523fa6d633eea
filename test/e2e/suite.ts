// The lifecycle both VM suites share: boot before the first test, count failures, tear down after
// the last (keeping consoles and logs when a test failed), and skip cluster checks once the
// health test has failed and said why.
import { afterAll, afterEach, beforeAll, expect } from 'vitest';
import { startTestCluster, type Member, type TestCluster, type TestClusterOptions } from './cluster.js';
import { waitFor } from './exec.js';
import { diagnoseConsole, readCloudInitVerdict } from './guest-console.js';

export interface ClusterSuite {
  /** The booted cluster; only inside tests (after beforeAll). */
  readonly cluster: TestCluster;
  /** The first test: waits, bounded, for a healthy cluster and returns the seconds it took. */
  waitHealthy(timeoutMs: number): Promise<number>;
  /** For checks that need a cluster: skipped once the health test has failed. */
  skipUnlessHealthy(context: { skip: () => void }): void;
  /** Writes the key through the first member and expects to read it back through the third. */
  expectReplicated(key: string, value: string): Promise<void>;
}

/** Waits (bounded) for cloud-init's verdict on the member's console: done, no errors, no failed module, no schema warning. */
export async function expectCloudInitDone(member: Member): Promise<void> {
  const verdict = await waitFor(`cloud-init's verdict on ${member.name}'s console`, async () => readCloudInitVerdict(member.vm.console()), {
    timeoutMs: 5 * 60_000,
    intervalMs: 5_000,
  });
  expect(verdict, `${member.name}: ${JSON.stringify(diagnoseConsole(member.vm.console()))}`).toEqual({ status: 'done', errors: [], failedModules: [] });
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
    async expectReplicated(key, value) {
      const [first, , third] = this.cluster.members;
      const put = await this.cluster.etcdctl(['put', key, value], [first!.clientUrl]);
      expect(put.code, put.stderr).toBe(0);
      const get = await this.cluster.etcdctl(['get', key, '--print-value-only'], [third!.clientUrl]);
      expect(get.code, get.stderr).toBe(0);
      expect(get.stdout.trim()).toBe(value);
    },
  };
}
