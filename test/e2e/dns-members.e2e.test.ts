import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { expectCloudInitDone, useTestCluster } from './suite.js';

const repoRoot = fileURLToPath(new URL('../..', import.meta.url));
const debianMirror = process.env['E2E_DEBIAN_MIRROR'] ?? 'http://deb.debian.org/debian';
const log = (line: string): void => console.log(`[e2e-dns ${new Date().toISOString().slice(11, 19)}] ${line}`);

const HEALTHY_WITHIN_MS = 20 * 60_000;
const DOMAIN = 'e2e.test';

/**
 * DNS-member mode as create-droplets uses it: certificates and URLs carry the members' DNS names,
 * and each member learns the address to listen on from the metadata service at every start. The
 * harness plays DigitalOcean: A records for the names and a metadata service on 169.254.169.254.
 */
describe('gen-userdata --hostnames boots 3 VMs that find their address in the metadata service', () => {
  const suite = useTestCluster(async () => ({ repoRoot, debianMirror, log, dnsDomain: DOMAIN }));
  const { skipUnlessHealthy } = suite;

  it('reports healthy on every member within a bounded wait', async () => {
    const seconds = await suite.waitHealthy(HEALTHY_WITHIN_MS);
    log(`seconds from VM start to healthy cluster (DNS members): ${seconds}`);
  });

  it('each member asked the metadata service and listens on the private IPv4 it was told', async () => {
    const metadataLog = await readFile(join(suite.cluster.runDir, 'metadata.log'), 'utf8');
    for (const member of suite.cluster.members) {
      expect(member.vm.console(), member.name).toContain(`etcd-cloudinit: listen-address: etcd listens on ${member.ip}`);
      expect(metadataLog, member.name).toMatch(new RegExp(`GET /metadata/v1/interfaces/private/0/ipv4/address 200 ${member.ip.replaceAll('.', '\\.')}$`, 'm'));
    }
  });

  it('advertises the DNS names: member list shows name-based peer and client URLs', async (context) => {
    skipUnlessHealthy(context);
    const list = await suite.cluster.etcdctl(['member', 'list', '--write-out=json']);
    expect(list.code, list.stderr).toBe(0);
    const members = (JSON.parse(list.stdout) as { members: { name: string; peerURLs: string[]; clientURLs: string[] }[] }).members;
    expect(members.map((member) => [member.name, member.peerURLs, member.clientURLs]).sort()).toEqual(
      suite.cluster.members.map((member) => [member.name, [`https://${member.name}.${DOMAIN}:2380`], [`https://${member.name}.${DOMAIN}:2379`]]).sort(),
    );
  });

  it('reads through member 3 what was written through member 1, by name', async (context) => {
    skipUnlessHealthy(context);
    await suite.expectReplicated('e2e/dns', 'by name');
  });

  it('cloud-init finished with no failed module', async () => {
    for (const member of suite.cluster.members) await expectCloudInitDone(member);
  });
});
