import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { etcdBakeStep } from '../support/bake.js';
import { buildEtcdMirror } from '../support/etcd-mirror.js';
import { startTestCluster } from './cluster.js';
import { waitFor } from './exec.js';
import { readCloudInitVerdict } from './guest-console.js';
import { expectCloudInitDone, useTestCluster } from './suite.js';

const repoRoot = fileURLToPath(new URL('../..', import.meta.url));
const debianMirror = process.env['E2E_DEBIAN_MIRROR'] ?? 'http://deb.debian.org/debian';
const log = (line: string): void => console.log(`[e2e-baked ${new Date().toISOString().slice(11, 19)}] ${line}`);

const HEALTHY_WITHIN_MS = 20 * 60_000;
const VERSION = 'v3.4.23';

/**
 * The guest image is baked as Packer bakes the DigitalOcean snapshot (same install script, unit,
 * bake-etcd.sh and command; test/packer/packer-template.test.ts holds them equal), from the local
 * mirror by file:// inside the chroot. The mirror sits at a stable path: the image cache is keyed
 * on the bake step, paths included.
 */
async function bakedImageStep() {
  const mirror = await buildEtcdMirror(join(repoRoot, '.e2e-cache', 'bake-mirror'));
  return etcdBakeStep(mirror);
}

describe('gen-userdata --install baked boots 3 VMs from a baked image into a healthy cluster', () => {
  const suite = useTestCluster(async () => ({ repoRoot, debianMirror, log, bake: await bakedImageStep(), extraGenUserDataArgs: ['--install', 'baked'] }));
  const { skipUnlessHealthy } = suite;

  it('reports healthy on every member within a bounded wait', async () => {
    const seconds = await suite.waitHealthy(HEALTHY_WITHIN_MS);
    log(`seconds from VM start to healthy cluster (baked): ${seconds}`);
  });

  it('checked the baked version at boot, and cloud-init finished with no failed module', async () => {
    for (const member of suite.cluster.members) {
      await expectCloudInitDone(member);
      expect(member.vm.console(), member.name).toContain(`etcd-cloudinit: etcd ${VERSION} is installed in /usr/local/bin`);
      expect(member.vm.console(), member.name).not.toContain('etcd-cloudinit: installed etcd');
    }
  });

  it('downloaded nothing: the release mirror saw no request from a guest', async () => {
    const requests = (await readFile(suite.cluster.mirror.logFile, 'utf8')).split('\n').filter((line) => / (GET|HEAD) \//.test(line));
    // The harness's own readiness probe asks for "/" from the bridge address; guests never asked for a release.
    expect(requests.filter((line) => line.includes(`/${VERSION}/`))).toEqual([]);
  });

  it('reads through member 3 what was written through member 1', async (context) => {
    skipUnlessHealthy(context);
    await suite.expectReplicated('e2e/baked', 'from a baked image');
  });
});

// Opt-in (another cluster boot): user-data that expects another version than the image has must stop the boot loudly.
describe.runIf(process.env['E2E_NEGATIVE'] === '1')('baked user-data on an image with another etcd version', () => {
  it('fails the runcmd with the version mismatch and never starts etcd on that member', async () => {
    const cluster = await startTestCluster({
      repoRoot,
      debianMirror,
      log,
      bake: await bakedImageStep(),
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
