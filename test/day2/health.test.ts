import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { LoopbackCluster } from '../support/loopback-cluster.js';

const MEMBERS = ['etcd1', 'etcd2', 'etcd3'];
const escape = (text: string) => text.replace(/[.*+?^${}()|[\]\\/]/g, '\\$&');

describe('health against a real 3-member cluster', () => {
  let cluster: LoopbackCluster;

  beforeAll(async () => {
    cluster = await LoopbackCluster.create('ip');
    await cluster.startAll(MEMBERS);
  });

  afterAll(async () => {
    await cluster?.cleanup();
  });

  it('reports 3 healthy members, one leader, versions and certificate expiry; exit 0', async () => {
    const result = await cluster.cli(['health', '--json']);
    expect(result.stderr).toBe('');
    expect(result.code).toBe(0);
    const report = JSON.parse(result.stdout) as {
      healthy: boolean;
      members: { name: string; healthy: boolean; leader: boolean; version: string; dbSizeBytes: number; raftIndex: number; certExpiresInDays: number }[];
    };
    expect(report.healthy).toBe(true);
    expect(report.members.map((member) => [member.name, member.healthy])).toEqual(MEMBERS.map((name) => [name, true]));
    expect(report.members.filter((member) => member.leader)).toHaveLength(1);
    for (const member of report.members) {
      expect(member.version).toBe('3.4.23');
      expect(member.dbSizeBytes).toBeGreaterThan(0);
      expect(member.raftIndex).toBeGreaterThan(0);
      // gen-userdata's default is 825 days.
      expect(member.certExpiresInDays).toBeGreaterThanOrEqual(823);
    }

    const table = await cluster.cli(['health']);
    expect(table.code).toBe(0);
    expect(table.stdout).toMatch(/^MEMBER\s+ENDPOINT\s+HEALTHY\s+LEADER\s+VERSION\s+DB SIZE\s+IN USE\s+QUOTA\s+RAFT INDEX\s+CERT EXPIRES\s+CERT SERIAL\s+ALARMS$/m);
    expect(table.stdout).toMatch(new RegExp(`^etcd2\\s+${escape(cluster.endpoint(2))}\\s+yes\\s+`, 'm'));
    expect(table.stdout).toContain('Cluster etcd: 3 member(s) healthy.');
  });

  it('exits 1 when a certificate expires within --warn-days', async () => {
    const result = await cluster.cli(['health', '--warn-days', '900']);
    expect(result.code).toBe(1);
    expect(result.stdout).toMatch(/member etcd1 serves a certificate that expires in \d+ day\(s\) \(< --warn-days 900\); run renew-certs/);
    expect(result.stdout).toMatch(/pki\/admin\.crt expires in \d+ day\(s\) \(< --warn-days 900\)/);
  });

  it('exits 1 and names the member when one is stopped', async () => {
    await cluster.stop('etcd3');
    const result = await cluster.cli(['health', '--timeout', '2']);
    expect(result.code).toBe(1);
    expect(result.stdout).toMatch(new RegExp(`^etcd3\\s+${escape(cluster.endpoint(3))}\\s+NO\\s`, 'm'));
    expect(result.stdout).toContain(`member etcd3 (${cluster.endpoint(3)}) did not answer: ECONNREFUSED`);
    expect(result.stdout).toContain("On its console, 'cloud-init status --long' and 'systemctl --failed' name a boot step that failed:\n  etcd3: the console of etcd3's machine (your cloud's or hypervisor's)\n");
    expect(result.stdout).toMatch(/^etcd1\s+\S+\s+yes\s/m);
  });
});
