import { X509Certificate, createHash } from 'node:crypto';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { memberHealth } from '../../src/etcd/client.js';
import { NODE_PATHS } from '../../src/plan.js';
import { rewriteNodePaths, runProcess, writeFilesOf } from '../support/local-cluster.js';
import { LoopbackCluster } from '../support/loopback-cluster.js';

const MEMBERS = ['etcd1', 'etcd2', 'etcd3'];

function sha256(path: string): string {
  return createHash('sha256').update(readFileSync(path)).digest('hex');
}

describe('renew-certs against a real running cluster', () => {
  let cluster: LoopbackCluster;
  const before = new Map<string, string>();

  beforeAll(async () => {
    // Certificates that are about to expire: health must complain until they are renewed.
    cluster = await LoopbackCluster.create('ip', ['--cert-days', '20']);
    await cluster.startAll(MEMBERS);
    for (const file of ['ca.crt', 'ca.key', 'etcd1.crt', 'etcd1.key', 'etcd2.key', 'admin.crt', 'admin.key']) before.set(file, sha256(cluster.pkiFile(file)));
    const put = await cluster.etcdctl(['put', '/day2/renew', 'survives'], [cluster.endpoint(1)]);
    expect(put.code, put.stderr).toBe(0);
  });

  afterAll(async () => {
    await cluster?.cleanup();
  });

  /** Runs a member's install script on its root, as root would on the machine. */
  const install = async (script: string, root: string, args: string[] = []) => {
    const path = join(root, 'install-certs.sh');
    writeFileSync(path, rewriteNodePaths(readFileSync(join(cluster.outDir, 'renew', script), 'utf8'), root));
    return runProcess('/bin/sh', [path, ...args]);
  };

  const servedSerial = async (name: string) => {
    const tls = {
      caPem: readFileSync(cluster.pkiFile('ca.crt'), 'utf8'),
      certPem: readFileSync(cluster.pkiFile('admin.crt'), 'utf8'),
      keyPem: readFileSync(cluster.pkiFile('admin.key'), 'utf8'),
    };
    return (await memberHealth(cluster.clientUrl(name), { tls, timeoutMs: 3000 })).servedCertificate?.serialNumber;
  };

  it('health fails while the certificates expire within --warn-days', async () => {
    const result = await cluster.cli(['health']);
    expect(result.code).toBe(1);
    expect(result.stdout).toMatch(/member etcd1 serves a certificate that expires in 19 day\(s\) \(< --warn-days 30\)/);
  });

  it('re-issues every member and the admin certificate with the same CA, usages and names, keeping the keys', async () => {
    const oldCert = new X509Certificate(readFileSync(cluster.pkiFile('etcd1.crt')));
    const result = await cluster.cli(['renew-certs', '--via-ssh-script', '--cert-days', '400']);
    expect(result.stderr).toBe('');
    expect(result.code).toBe(0);
    expect(result.stdout).toContain('Renewed 3 member certificate(s) and the admin certificate of cluster etcd with the existing CA (keys kept):');
    expect(result.stdout).toContain(`ssh root@${cluster.ip(2)} sh -s < out/etcd/renew/etcd2.sh`);

    for (const file of ['ca.crt', 'ca.key', 'etcd1.key', 'etcd2.key', 'admin.key']) expect(sha256(cluster.pkiFile(file)), file).toBe(before.get(file));
    for (const file of ['etcd1.crt', 'admin.crt']) expect(sha256(cluster.pkiFile(file)), file).not.toBe(before.get(file));

    const renewed = new X509Certificate(readFileSync(cluster.pkiFile('etcd1.crt')));
    expect(renewed.subject).toBe(oldCert.subject);
    expect(renewed.subjectAltName).toBe(oldCert.subjectAltName);
    expect(renewed.keyUsage).toEqual(oldCert.keyUsage);
    expect(renewed.serialNumber).not.toBe(oldCert.serialNumber);
    expect((new Date(renewed.validTo).getTime() - Date.now()) / 86_400_000).toBeGreaterThan(399);

    const ca = cluster.pkiFile('ca.crt');
    for (const [file, purpose] of [
      ['etcd1.crt', 'sslserver'],
      ['etcd1.crt', 'sslclient'],
      ['etcd3.crt', 'sslserver'],
      ['etcd3.crt', 'sslclient'],
      ['admin.crt', 'sslclient'],
    ] as const) {
      const verify = await runProcess('openssl', ['verify', '-CAfile', ca, '-purpose', purpose, cluster.pkiFile(file)]);
      expect(verify.stdout.trim(), `${file} ${purpose}: ${verify.stderr}`).toBe(`${cluster.pkiFile(file)}: OK`);
    }
    // The member's user-data carries the new certificate, so a rebuilt machine starts with it.
    const userDataCert = writeFilesOf(cluster.userData('etcd1')).get(NODE_PATHS.memberCert)!.content;
    expect(userDataCert).toBe(readFileSync(cluster.pkiFile('etcd1.crt'), 'utf8'));
    // Kept keys: the install script carries no private key.
    expect(readFileSync(join(cluster.outDir, 'renew', 'etcd1.sh'), 'utf8')).not.toContain('PRIVATE KEY');
  });

  it('the install script swaps the certificate in place; etcd serves it on the next connection, and a restarted member rejoins', async () => {
    const newSerial = new X509Certificate(readFileSync(cluster.pkiFile('etcd1.crt'))).serialNumber;
    const root = cluster.root('etcd1');
    const installed = await install('etcd1.sh', root);
    expect(installed.stderr).toBe('');
    expect(installed.code).toBe(0);
    expect(installed.stdout).toContain(`etcd-cloudinit: installed the certificate of etcd1 (serial ${newSerial}`);
    expect(readFileSync(`${root}${NODE_PATHS.memberCert}`, 'utf8')).toBe(readFileSync(cluster.pkiFile('etcd1.crt'), 'utf8'));

    // No restart yet: etcd reads the files on each new TLS connection.
    expect(await servedSerial('etcd1')).toBe(newSerial);

    await cluster.stop('etcd1');
    await cluster.start('etcd1');
    await cluster.waitHealthy(['etcd1']);
    expect(await servedSerial('etcd1')).toBe(newSerial);
    const get = await cluster.etcdctl(['get', '/day2/renew', '--print-value-only'], [cluster.endpoint(1)]);
    expect(get.stdout.trim()).toBe('survives');
  });

  it("refuses to install one member's certificate on another member", async () => {
    const result = await install('etcd1.sh', cluster.root('etcd2'));
    expect(result.code).toBe(1);
    expect(result.stderr).toContain('is not the configuration of member etcd1');
  });

  it('health is green once every member serves its renewed certificate', async () => {
    for (const name of ['etcd2', 'etcd3']) {
      const installed = await install(`${name}.sh`, cluster.root(name));
      expect(installed.code, installed.stderr).toBe(0);
    }
    const result = await cluster.cli(['health', '--json']);
    expect(result.code, result.stdout).toBe(0);
    const report = JSON.parse(result.stdout) as { members: { certExpiresInDays: number }[] };
    for (const member of report.members) expect(member.certExpiresInDays).toBeGreaterThanOrEqual(399);
  });

  it('--member --rotate-keys renews one member with a new key; after install and restart it rejoins', async () => {
    const result = await cluster.cli(['renew-certs', '--via-ssh-script', '--member', 'etcd2', '--rotate-keys']);
    expect(result.code, result.stderr).toBe(0);
    expect(result.stdout).toContain('Renewed 1 member certificate(s) of cluster etcd with the existing CA (new keys):');
    expect(sha256(cluster.pkiFile('etcd2.key'))).not.toBe(before.get('etcd2.key'));
    expect(sha256(cluster.pkiFile('ca.key'))).toBe(before.get('ca.key'));
    // Only this run's scripts remain.
    expect(result.stdout).not.toContain('renew/etcd1.sh');
    const verify = await runProcess('openssl', ['verify', '-CAfile', cluster.pkiFile('ca.crt'), cluster.pkiFile('etcd2.crt')]);
    expect(verify.stdout).toContain(': OK');

    const root = cluster.root('etcd2');
    const installed = await install('etcd2.sh', root);
    expect(installed.code, installed.stderr).toBe(0);
    expect(readFileSync(`${root}${NODE_PATHS.memberKey}`, 'utf8')).toBe(readFileSync(cluster.pkiFile('etcd2.key'), 'utf8'));
    await cluster.stop('etcd2');
    await cluster.start('etcd2');
    await cluster.waitHealthy(['etcd2']);
    const health = await cluster.cli(['health']);
    expect(health.code, health.stdout).toBe(0);
    const get = await cluster.etcdctl(['get', '/day2/renew', '--print-value-only'], [cluster.endpoint(2)]);
    expect(get.stdout.trim()).toBe('survives');
  });
});
