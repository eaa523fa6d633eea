import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { startTestCluster } from './cluster.js';
import { waitFor } from './exec.js';
import { readCloudInitVerdict } from './guest-console.js';
import { bakedImageStep } from './images.js';

const repoRoot = fileURLToPath(new URL('../..', import.meta.url));
const debianMirror = process.env['E2E_DEBIAN_MIRROR'] ?? 'http://deb.debian.org/debian';
const log = (line: string): void => console.log(`[e2e-baked ${new Date().toISOString().slice(11, 19)}] ${line}`);

const VERSION = 'v3.4.23';

// The baked image boots for real in cluster.e2e.test.ts (the restore); this file keeps its opt-in negative case.
// Opt-in (another cluster boot): user-data that expects another version than the image has must stop the boot loudly.
describe.runIf(process.env['E2E_NEGATIVE'] === '1')('baked user-data on an image with another etcd version', () => {
  it('fails the runcmd with the version mismatch and never starts etcd on that member', async () => {
    const cluster = await startTestCluster({
      repoRoot,
      debianMirror,
      log,
      bake: await bakedImageStep(repoRoot),
      extraGenUserDataArgs: ['--install', 'baked'],
      // As if etcd1's user-data had been generated with --etcd-version v3.6.14 for this v3.4.23 image.
      alterGenerated: async (generated) => {
        const { writeFile } = await import('node:fs/promises');
        const file = join(generated.userDataDir, 'etcd1.yaml');
        const text = await readFile(file, 'utf8');
        const altered = text.replace(`check --version ${VERSION} `, 'check --version v3.6.14 ');
        if (altered === text) throw new Error('no version check found in etcd1.yaml');
        await writeFile(file, altered);
      },
    });
    try {
      const etcd1 = cluster.members[0]!;
      const verdict = await waitFor("cloud-init's verdict on etcd1's console", async () => readCloudInitVerdict(etcd1.vm.console()), {
        timeoutMs: 20 * 60_000,
        intervalMs: 5_000,
      });
      expect(etcd1.vm.console()).toContain(`etcd-cloudinit: install-etcd: expected etcd v3.6.14 in /usr/local/bin, found ${VERSION}`);
      expect(verdict?.failedModules).toContain('scripts-user');
      expect(etcd1.vm.console()).not.toMatch(/Started etcd\.service/);
    } finally {
      await cluster.teardown('failed');
    }
  });
});
