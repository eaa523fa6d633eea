import { readFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { NODE_PATHS } from '../src/plan.js';
import { remintWithoutClientAuth } from './e2e/certificates.js';
import { runCli, tempDir } from './support/cli.js';
import { adminTls, etcdctl, loopbackBlock, readMemberUserData, startMember, stopMember, waitFor, type LocalMember, type MemberFiles } from './support/local-cluster.js';

/**
 * Why member certificates carry clientAuth: the old tutorial's member certificates (serverAuth
 * only) on the real etcd. Peers present their member certificate as a client certificate on 2380,
 * and etcd 3.4+ checks its extended key usage, so the members never form a cluster. The same files
 * with our certificates are healthy in etcd-cluster.test.ts; here only the member certificates differ.
 */
describe('member certificates without clientAuth (the tutorial\'s) on the real etcd', () => {
  const workDir = tempDir('tutorial-certs');
  const ips = loopbackBlock(3);
  const endpoints = ips.map((ip) => `https://${ip}:2379`);
  const clusterDir = join(workDir, 'out', 'etcd');
  const names = ['etcd1', 'etcd2', 'etcd3'];
  const members: LocalMember[] = [];

  /** The member's generated files, with its certificate re-signed by the same CA for the same key and names, serverAuth only. */
  async function withTutorialCert(name: string): Promise<MemberFiles> {
    const generated = readMemberUserData(join(clusterDir, 'user-data', `${name}.yaml`));
    const cert = await remintWithoutClientAuth(join(clusterDir, 'pki'), name, join(workDir, 'tutorial-pki'));
    const files = new Map(generated.files);
    files.set(NODE_PATHS.memberCert, { ...files.get(NODE_PATHS.memberCert)!, content: readFileSync(cert, 'utf8') });
    return { ...generated, files };
  }

  beforeAll(async () => {
    const generated = await runCli(['gen-userdata', '--ips', ips.join(','), '--key-size', '2048', '--etcd-version', 'v3.4.23'], workDir);
    expect(generated.code, generated.stderr).toBe(0);
    for (const name of names) members.push(startMember(await withTutorialCert(name), join(workDir, 'nodes', name)));
  });

  afterAll(async () => {
    await Promise.all(members.map((member) => stopMember(member)));
    rmSync(workDir, { recursive: true, force: true });
  });

  it('peers reject each other with "incompatible key usage"', async () => {
    const rejections = await waitFor(
      'a member logging a rejected peer certificate',
      async () => {
        const found = members.filter((member) => readFileSync(member.logFile, 'utf8').includes('certificate specifies an incompatible key usage'));
        return { ok: found.length > 0, value: found.map((member) => member.name) };
      },
      30_000,
    );
    expect(rejections.length).toBeGreaterThan(0);
  });

  it('and the cluster never becomes healthy', async () => {
    const health = await etcdctl(endpoints, adminTls(join(clusterDir, 'pki')), ['endpoint', 'health']);
    expect(health.code).not.toBe(0);
    expect(health.stdout + health.stderr).not.toMatch(/is healthy/);
  });
});
