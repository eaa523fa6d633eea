import { X509Certificate } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { parse as parseYaml } from 'yaml';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { AdminTls } from './support/local-cluster.js';
import { LoopbackCluster } from './support/loopback-cluster.js';

/**
 * The Kubernetes kit against real etcd: three members on loopback, and etcdctl given only what
 * kubernetes/ holds (kube-apiserver's pair and ca.crt), as kube-apiserver would be.
 */
describe('kube-apiserver-etcd-client from kubernetes/ talks to a real cluster', () => {
  let cluster: LoopbackCluster;
  const kit = (file: string) => join(cluster.outDir, 'kubernetes', file);
  const kubeTls = (): AdminTls => ({ cacert: kit('ca.crt'), cert: kit('apiserver-etcd-client.crt'), key: kit('apiserver-etcd-client.key') });
  const kubeadmEndpoints = () => (parseYaml(readFileSync(kit('kubeadm-etcd.yaml'), 'utf8')) as { etcd: { external: { endpoints: string[] } } }).etcd.external.endpoints;
  const flagValue = (file: string, flag: string) => readFileSync(kit(file), 'utf8').split('\n').find((line) => line.startsWith(`${flag}=`))?.slice(flag.length + 1);

  beforeAll(async () => {
    cluster = await LoopbackCluster.create('ip', ['--kubernetes', '--client', 'app']);
    await cluster.startAll(['etcd1', 'etcd2', 'etcd3']);
  });

  afterAll(async () => {
    await cluster?.cleanup();
  });

  it('puts and gets with only the kit, whose certificate is not the admin one', async () => {
    const tls = kubeTls();
    expect(readFileSync(tls.cert!, 'utf8')).not.toBe(readFileSync(cluster.pkiFile('admin.crt'), 'utf8'));
    expect(new X509Certificate(readFileSync(tls.cert!)).subject).toBe('CN=kube-apiserver-etcd-client');
    const endpoints = kubeadmEndpoints();
    expect(endpoints).toEqual([1, 2, 3].map((index) => cluster.endpoint(index)));
    const put = await cluster.etcdctl(['put', '/registry/k8s-kit', 'from-kube-apiserver'], [endpoints[0]!], tls);
    expect(put.code, put.stderr).toBe(0);
    const get = await cluster.etcdctl(['get', '/registry/k8s-kit', '--print-value-only'], [endpoints[2]!], tls);
    expect(get.code, get.stderr).toBe(0);
    expect(get.stdout.trim()).toBe('from-kube-apiserver');
    // Without a certificate the same request is refused: the kit's pair is what got it in.
    const anonymous = await cluster.etcdctl(['get', '/registry/k8s-kit'], [endpoints[0]!], { cacert: tls.cacert });
    expect(anonymous.code).not.toBe(0);
  });

  it('the flag files name the same endpoints as the kubeadm snippet', () => {
    const endpoints = kubeadmEndpoints().join(',');
    expect(flagValue('kube-apiserver-flags.txt', '--etcd-servers')).toBe(endpoints);
    expect(flagValue('k3s-flags.txt', '--datastore-endpoint')).toBe(endpoints);
  });

  it('a named --client certificate is served too', async () => {
    const tls = { cacert: cluster.pkiFile('ca.crt'), cert: cluster.pkiFile('clients/app.crt'), key: cluster.pkiFile('clients/app.key') };
    const get = await cluster.etcdctl(['get', '/registry/k8s-kit', '--print-value-only'], [cluster.endpoint(2)], tls);
    expect(get.code, get.stderr).toBe(0);
    expect(get.stdout.trim()).toBe('from-kube-apiserver');
  });

  it('health watches the client certificates expire too', async () => {
    const health = await cluster.cli(['health', '--json']);
    expect(health.code, health.stderr).toBe(0);
    const report = JSON.parse(health.stdout) as { certificates: { file: string; expiresInDays: number }[] };
    expect(report.certificates.map((certificate) => certificate.file)).toEqual(['pki/admin.crt', 'pki/ca.crt', 'pki/clients/app.crt', 'pki/clients/kube-apiserver-etcd-client.crt']);
    // Within --warn-days of expiry it fails, naming the certificate.
    const warned = await cluster.cli(['health', '--warn-days', '3000']);
    expect(warned.code).toBe(1);
    expect(warned.stdout + warned.stderr).toContain('pki/clients/kube-apiserver-etcd-client.crt');
  });

  it('renew-certs renews the kit (new serial, same CN) and the renewed pair is served', async () => {
    const before = new X509Certificate(readFileSync(kit('apiserver-etcd-client.crt')));
    const renewed = await cluster.cli(['renew-certs', '--client', 'kube-apiserver-etcd-client']);
    expect(renewed.code, renewed.stderr).toBe(0);
    const after = new X509Certificate(readFileSync(kit('apiserver-etcd-client.crt')));
    expect(after.serialNumber).not.toBe(before.serialNumber);
    expect(after.subject).toBe(before.subject);
    const get = await cluster.etcdctl(['get', '/registry/k8s-kit', '--print-value-only'], [cluster.endpoint(1)], kubeTls());
    expect(get.code, get.stderr).toBe(0);
    expect(get.stdout.trim()).toBe('from-kube-apiserver');
  });

  it('remove-member and add-member rewrite the kit with the new endpoint list', async () => {
    const removed = await cluster.cli(['remove-member', '--name', 'etcd3', '--yes']);
    expect(removed.code, removed.stderr).toBe(0);
    await cluster.stop('etcd3');
    expect(kubeadmEndpoints()).toEqual([cluster.endpoint(1), cluster.endpoint(2)]);
    expect(flagValue('kube-apiserver-flags.txt', '--etcd-servers')).toBe(`${cluster.endpoint(1)},${cluster.endpoint(2)}`);
    expect(flagValue('k3s-flags.txt', '--datastore-endpoint')).toBe(`${cluster.endpoint(1)},${cluster.endpoint(2)}`);

    // A learner that never starts: add-member writes the folder as soon as the cluster lists it.
    await cluster.waitHealthy(['etcd1', 'etcd2']);
    const added = await cluster.cli(['add-member', '--ip', cluster.ip(4)]);
    expect(added.code, added.stderr).toBe(0);
    const endpoints = [cluster.endpoint(1), cluster.endpoint(2), cluster.endpoint(4)];
    expect(kubeadmEndpoints()).toEqual(endpoints);
    expect(flagValue('k3s-flags.txt', '--datastore-endpoint')).toBe(endpoints.join(','));
    // The kit still gets in.
    const get = await cluster.etcdctl(['get', '/registry/k8s-kit', '--print-value-only'], [cluster.endpoint(2)], kubeTls());
    expect(get.stdout.trim(), get.stderr).toBe('from-kube-apiserver');
  });
});
