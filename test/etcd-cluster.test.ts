import { X509Certificate } from 'node:crypto';
import { readFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runCli, tempDir } from './support/cli.js';
import { adminTls, etcdctl, loopbackBlock, plainHttpGet, probeVersion, startLocalCluster, type LocalCluster } from './support/local-cluster.js';

/**
 * The generated files run the real etcd: three members on loopback addresses, started with the
 * unit's own ExecStart and the config, certificates and keys from write_files (only paths moved).
 * Once per --key-type: etcd is 3.4.23 here, and Go's crypto/tls (every etcd 3.x) reads PKCS#8
 * RSA and P-256/P-384 keys and verifies sha256WithRSA and ECDSA-SHA256/384 chains, so what 3.4
 * accepts every supported release does. RSA is 2048-bit to keep the test fast.
 */
describe.each([
  ['rsa', ['--key-size', '2048']],
  ['ecdsa-p256', ['--key-type', 'ecdsa-p256']],
  ['ecdsa-p384', ['--key-type', 'ecdsa-p384']],
])('a generated cluster with %s keys runs on the real etcd binaries', (keyType, keyFlags) => {
  const workDir = tempDir(`etcd-${keyType}`);
  const ips = loopbackBlock(3);
  const endpoints = ips.map((ip) => `https://${ip}:2379`);
  const clusterDir = join(workDir, 'out', 'etcd');
  const tls = adminTls(join(clusterDir, 'pki'));
  let cluster: LocalCluster | undefined;

  beforeAll(async () => {
    const generated = await runCli(['gen-userdata', '--ips', ips.join(','), ...keyFlags, '--etcd-version', 'v3.4.23', '--heartbeat-interval', '200', '--election-timeout', '2000'], workDir);
    expect(generated.code, generated.stderr).toBe(0);
    cluster = await startLocalCluster(clusterDir, join(workDir, 'nodes'), ['etcd1', 'etcd2', 'etcd3'], endpoints);
  });

  afterAll(async () => {
    await cluster?.stop();
    rmSync(workDir, { recursive: true, force: true });
  });

  it(`serves ${keyType} certificates`, async () => {
    const served = new X509Certificate(readFileSync(join(clusterDir, 'pki', 'etcd1.crt')));
    const expected = { rsa: { type: 'rsa', modulusLength: 2048 }, 'ecdsa-p256': { type: 'ec', namedCurve: 'prime256v1' }, 'ecdsa-p384': { type: 'ec', namedCurve: 'secp384r1' } }[keyType]!;
    expect({ type: served.publicKey.asymmetricKeyType, ...served.publicKey.asymmetricKeyDetails }).toMatchObject(expected);
  });

  it('reports every member healthy with the admin certificate', async () => {
    const health = await etcdctl(endpoints, tls, ['endpoint', 'health', '--cluster']);
    expect(health.code, health.stderr).toBe(0);
    expect((health.stdout + health.stderr).match(/is healthy/g)).toHaveLength(3);
    const members = await etcdctl(endpoints, tls, ['member', 'list', '-w', 'json']);
    const list = JSON.parse(members.stdout) as { members: { name: string; peerURLs: string[] }[] };
    expect(list.members.map((member) => member.name).sort()).toEqual(['etcd1', 'etcd2', 'etcd3']);
    expect(list.members.flatMap((member) => member.peerURLs).sort()).toEqual(ips.map((ip) => `https://${ip}:2380`).sort());
  });

  it('runs with the raft timing from the generated config (etcd ignores unknown keys, so check what it logs)', () => {
    for (const member of cluster!.members) {
      const log = readFileSync(member.logFile, 'utf8');
      expect(log, member.name).toContain('"heartbeat-interval":"200ms"');
      expect(log, member.name).toContain('"election-timeout":"2s"');
      expect(log, member.name).toContain('"pre-vote":true');
    }
  });

  it('replicates a write made through one member to another', async () => {
    const value = `written-${Date.now()}`;
    const put = await etcdctl([endpoints[0]!], tls, ['put', '/smoke/key', value]);
    expect(put.code, put.stderr).toBe(0);
    const get = await etcdctl([endpoints[2]!], tls, ['get', '/smoke/key', '--print-value-only']);
    expect(get.stdout.trim()).toBe(value);
  });

  it('refuses a client without a certificate on the client and the peer port', async () => {
    const anonymous = await etcdctl([endpoints[0]!], { cacert: tls.cacert }, ['get', '/smoke/key']);
    expect(anonymous.code).not.toBe(0);
    for (const port of [2379, 2380]) {
      // A TLS alert demanding a certificate, not a timeout or a closed port.
      expect(await probeVersion(ips[0]!, port, { cacert: tls.cacert }), `port ${port}`).toMatch(/ALERT_(BAD_CERTIFICATE|CERTIFICATE_REQUIRED|HANDSHAKE_FAILURE)/);
      // The same request with the admin certificate is served: the refusal is about the certificate.
      expect(await probeVersion(ips[0]!, port, tls), `port ${port}`).toBe('accepted');
    }
  });

  it('serves /metrics and /health over plain HTTP on each member\'s own address, port 2381', async () => {
    for (const ip of ips) {
      const metrics = await plainHttpGet(`http://${ip}:2381/metrics`);
      expect(metrics, ip).toMatchObject({ status: 200 });
      expect('body' in metrics && metrics.body, ip).toMatch(/^etcd_server_has_leader 1$/m);
      // What the alerts in docs/metrics.md read.
      expect('body' in metrics && metrics.body, ip).toMatch(/^etcd_server_leader_changes_seen_total \d+$/m);
      expect('body' in metrics && metrics.body, ip).toMatch(/^etcd_mvcc_db_total_size_in_bytes \d+$/m);
      expect('body' in metrics && metrics.body, ip).toMatch(/^etcd_server_quota_backend_bytes \d+(\.\d+)?(e\+\d+)?$/m);
      const health = await plainHttpGet(`http://${ip}:2381/health`);
      expect(health, ip).toMatchObject({ status: 200 });
      expect(JSON.parse('body' in health ? health.body : '{}'), ip).toMatchObject({ health: 'true' });
    }
  });

  it('keeps the client port closed to a client without a certificate, metrics included', async () => {
    // Plain HTTP to the client port gets no metrics (it speaks only TLS) ...
    const plain = await plainHttpGet(`http://${ips[0]}:2379/metrics`);
    expect('body' in plain ? plain.body : '').not.toMatch(/etcd_server_has_leader/);
    // ... and TLS without a client certificate is refused in the handshake.
    expect(await probeVersion(ips[0]!, 2379, { cacert: tls.cacert })).toMatch(/ALERT_(BAD_CERTIFICATE|CERTIFICATE_REQUIRED|HANDSHAKE_FAILURE)/);
    const anonymous = await etcdctl([endpoints[0]!], { cacert: tls.cacert }, ['get', '/smoke/key']);
    expect(anonymous.code).not.toBe(0);
  });
});
