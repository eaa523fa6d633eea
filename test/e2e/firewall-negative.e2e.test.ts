import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { waitFor } from './exec.js';
import { BOX_DOMAIN, BOX_REGION, startDigitalOceanBox } from './do-box.js';

const repoRoot = fileURLToPath(new URL('../..', import.meta.url));
const debianMirror = process.env['E2E_DEBIAN_MIRROR'] ?? 'http://deb.debian.org/debian';
const log = (line: string): void => console.log(`[e2e-firewall-negative ${new Date().toISOString().slice(11, 19)}] ${line}`);

// Opt-in (a second box): with the firewall's VPC and tag sources gone, the members cannot reach each other.
describe.runIf(process.env['E2E_NEGATIVE'] === '1')('a cloud firewall without the VPC and tag sources', () => {
  it('keeps the cluster from forming', async () => {
    const box = await startDigitalOceanBox({ repoRoot, debianMirror, log, firewallWithoutSources: true });
    try {
      const created = await box.cli(['create-droplets', '--domain', BOX_DOMAIN, '--region', BOX_REGION, '--etcd-version', box.releases.new.version, '--release-url', box.releaseUrl, '--key-size', '2048', '--poll-interval', '2']);
      expect(created.code, created.stderr).toBe(0);
      // Long enough for a healthy run to form (about 4.5 min here). A member that joined a quorum logs
      // "set initial cluster version" (the leader) or "cluster version is updated" (every member).
      const formed = await waitFor(
        'a member that joined a quorum',
        async () => (box.machines().some((machine) => /cluster version is updated|set initial cluster version/.test(machine.vm.console())) ? true : undefined),
        { timeoutMs: 12 * 60_000, intervalMs: 15_000 },
      ).catch(() => false);
      expect(formed).toBe(false);
      // etcd did run on every member: it is the peers that cannot reach each other.
      for (const machine of box.machines()) expect(machine.vm.console(), machine.droplet.name).toMatch(/etcd\[\d+\]: .*"msg":"starting an etcd server"/);
      for (const machine of box.machines()) expect(machine.vm.console(), machine.droplet.name).toMatch(/etcd-cloudinit: listen-address: etcd listens on/);
      log(`no cluster formed; a member's last etcd lines:\n${box.machines()[0]!.vm.console().split('\n').filter((line) => line.includes('etcd[')).slice(-3).join('\n')}`);
    } finally {
      await box.teardown('failed');
    }
  });
});
