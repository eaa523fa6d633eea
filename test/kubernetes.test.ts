import { execFileSync } from 'node:child_process';
import { X509Certificate } from 'node:crypto';
import { existsSync, readFileSync, readdirSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { parse as parseYaml } from 'yaml';
import { describe, expect, it } from 'vitest';
import { CliError, EXIT_USAGE } from '../src/errors.js';
import { resolveClusterInput } from '../src/input.js';
import { renderK3sFlags, renderKubeadmEtcdConfig, renderKubeApiserverFlags } from '../src/kubernetes.js';
import { mintPki, type KeySource } from '../src/pki/mint.js';
import { CERT_PROFILES, certRequests } from '../src/pki/profiles.js';
import { generateKeyPem } from '../src/pki/key-types.js';
import { planCluster } from '../src/plan.js';
import { renderUserData } from '../src/render.js';
import { runCli, tempDirsRemovedAfterAll } from './support/cli.js';
import { counterSerials, FIXED_NOW, fixtureKeySource } from './support/golden.js';

const THREE = ['10.0.0.1', '10.0.0.2', '10.0.0.3'];
const NOT_CLIENT_NAME = "is not a client name (a lowercase DNS label: a-z, 0-9 and '-', at most 63 characters, starting with a letter, not ending with '-')";

function errorOf(fileInput: Record<string, unknown>): string {
  try {
    resolveClusterInput(fileInput, {});
  } catch (error) {
    expect(error).toBeInstanceOf(CliError);
    expect((error as CliError).exitCode).toBe(EXIT_USAGE);
    return (error as Error).message;
  }
  throw new Error('expected a validation error');
}

const planOf = (raw: Record<string, unknown>) => planCluster(resolveClusterInput(raw, {}).input, '/nonexistent/etcd');

describe('--client, --kubernetes and --k8s-pki-dir validation', () => {
  it.each([
    [{ ips: THREE, client: ['App'] }, `[validate] client[0]: "App" ${NOT_CLIENT_NAME}`],
    [{ ips: THREE, client: ['app', 'x_y'] }, `[validate] client[1]: "x_y" ${NOT_CLIENT_NAME}`],
    [{ ips: THREE, client: ['app', ''] }, `[validate] client[1]: "" ${NOT_CLIENT_NAME}`],
    [{ ips: THREE, client: ['app', 'web', 'app'] }, '[validate] client[2]: "app" is already used by client[0]'],
    [{ ips: THREE, client: ['root'] }, `[validate] client[0]: "root" is reserved (CN root is etcd's root user: the admin certificate, pki/admin.crt); choose another client name`],
    [{ ips: THREE, client: ['kube-apiserver-etcd-client'], kubernetes: true }, '[validate] client[0]: "kube-apiserver-etcd-client" is minted by kubernetes already; drop it from client'],
    [{ ips: THREE, client: 'app' }, '[validate] client: "app" is not a list of client names (in --config: client: [name, ...])'],
    [{ ips: THREE, kubernetes: 'yes' }, '[validate] kubernetes: "yes" must be boolean'],
    [{ ips: THREE, 'k8s-pki-dir': '/etc/k8s' }, '[validate] k8s-pki-dir: "/etc/k8s" is only used with kubernetes (--kubernetes); add it or drop k8s-pki-dir'],
    [{ ips: THREE, kubernetes: true, 'k8s-pki-dir': 'etc/k8s' }, '[validate] k8s-pki-dir: "etc/k8s" is not an absolute folder path (/ followed by letters, digits and . _ / -; no spaces or quotes)'],
    [{ ips: THREE, kubernetes: true, 'k8s-pki-dir': '/etc/my pki' }, '[validate] k8s-pki-dir: "/etc/my pki" is not an absolute folder path (/ followed by letters, digits and . _ / -; no spaces or quotes)'],
  ])('%j', (raw, message) => {
    expect(errorOf(raw)).toBe(message);
  });

  it('reads names from the config list, repeated flags and comma-separated flags alike', async () => {
    const { flagsToRawInput } = await import('../src/input.js');
    expect(flagsToRawInput({ client: ['app', 'web,batch'] }).client).toEqual(['app', 'web', 'batch']);
    expect(resolveClusterInput({ ips: THREE, client: ['app'] }, { client: ['web'] }).input.clients).toEqual(['web']);
    expect(resolveClusterInput({ ips: THREE, kubernetes: true, 'k8s-pki-dir': '/srv/pki/' }, {}).input.k8sPkiDir).toBe('/srv/pki');
  });
});

describe('client certificate profiles', () => {
  it('one client profile, signed by the CA, clientAuth only; a request per client after the admin', () => {
    const client = CERT_PROFILES.find((profile) => profile.scope === 'client');
    expect(client).toMatchObject({ id: 'client', issuer: 'ca', isCa: false, extKeyUsage: ['clientAuth'] });
    const plan = planOf({ ips: THREE, client: ['app', 'web'], kubernetes: true });
    const requests = certRequests(plan);
    expect(requests.map((request) => request.fileBase)).toEqual(['ca', 'etcd1', 'etcd2', 'etcd3', 'admin', 'clients/app', 'clients/web', 'clients/kube-apiserver-etcd-client']);
    expect(requests.slice(-3).map((request) => [request.commonName, request.organization])).toEqual([
      ['app', 'etcd-cloudinit'],
      ['web', 'etcd-cloudinit'],
      // kubeadm's current subject: no O (system:masters was dropped in Kubernetes 1.29).
      ['kube-apiserver-etcd-client', undefined],
    ]);
  });

  it('mints client certificates the CA verifies, with the subject and usage asked for (openssl agrees)', async () => {
    const plan = planOf({ ips: THREE, 'key-size': 2048, client: ['app'], kubernetes: true });
    const pki = await mintPki(plan, { now: new Date() });
    const ca = new X509Certificate(pki.ca.certPem);
    const clients = pki.all.filter((cert) => cert.client !== undefined);
    expect(clients.map((cert) => [cert.client, cert.fileBase])).toEqual([
      ['app', 'clients/app'],
      ['kube-apiserver-etcd-client', 'clients/kube-apiserver-etcd-client'],
    ]);
    const [app, kube] = clients.map((cert) => new X509Certificate(cert.certPem));
    expect(app!.subject).toBe('CN=app\nO=etcd-cloudinit');
    expect(kube!.subject).toBe('CN=kube-apiserver-etcd-client');
    for (const cert of [app!, kube!]) {
      expect(cert.verify(ca.publicKey)).toBe(true);
      expect(cert.keyUsage).toEqual(['1.3.6.1.5.5.7.3.2']);
      expect(cert.ca).toBe(false);
    }
    const dir = tempDir();
    writeFileSync(join(dir, 'ca.crt'), pki.ca.certPem);
    writeFileSync(join(dir, 'kube.crt'), clients[1]!.certPem);
    const verified = execFileSync('openssl', ['verify', '-purpose', 'sslclient', '-CAfile', join(dir, 'ca.crt'), join(dir, 'kube.crt')], { encoding: 'utf8' });
    expect(verified.trim()).toBe(`${join(dir, 'kube.crt')}: OK`);
  });

  it('leaves every member user-data exactly as without clients (same keys, serials, clock)', async () => {
    const generated = new Map<string, string>();
    // Fixture keys for the cluster's own certificates; clients need keys the fixtures lack.
    const keySource: KeySource = async (key, fileBase) => (fileBase.startsWith('clients/') ? (generated.get(fileBase) ?? (await generateKeyPem(key))) : fixtureKeySource(key, fileBase));
    const render = async (raw: Record<string, unknown>) => {
      const plan = planOf({ ips: THREE, 'key-size': 2048, ...raw });
      const pki = await mintPki(plan, { now: FIXED_NOW, keySource, serialSource: counterSerials() });
      return { userData: plan.members.map((member) => renderUserData(plan, pki, member.name)), pki };
    };
    const without = await render({});
    const withClients = await render({ client: ['app'], kubernetes: true });
    expect(withClients.userData).toEqual(without.userData);
    for (const cert of withClients.pki.all.filter((candidate) => candidate.client !== undefined)) {
      for (const text of withClients.userData) {
        expect(text).not.toContain(cert.keyPem.split('\n')[1]);
        expect(text).not.toContain(cert.certPem.split('\n')[1]);
      }
    }
  });
});

const EXTERNAL_ETCD_FIELDS = ['caFile', 'certFile', 'endpoints', 'keyFile'];

describe('the Kubernetes kit renders from the plan', () => {
  it('kubeadm-etcd.yaml: a v1beta4 ClusterConfiguration with exactly the fields of etcd.external', () => {
    const plan = planOf({ ips: THREE, kubernetes: true });
    const document = parseYaml(renderKubeadmEtcdConfig(plan)) as Record<string, Record<string, Record<string, unknown>>>;
    expect(Object.keys(document).sort()).toEqual(['apiVersion', 'etcd', 'kind']);
    expect(document.apiVersion).toBe('kubeadm.k8s.io/v1beta4');
    expect(document.kind).toBe('ClusterConfiguration');
    expect(Object.keys(document.etcd!)).toEqual(['external']);
    expect(Object.keys(document.etcd!.external!).sort()).toEqual(EXTERNAL_ETCD_FIELDS);
    expect(document.etcd!.external).toEqual({
      endpoints: ['https://10.0.0.1:2379', 'https://10.0.0.2:2379', 'https://10.0.0.3:2379'],
      caFile: '/etc/kubernetes/pki/etcd/ca.crt',
      certFile: '/etc/kubernetes/pki/etcd/apiserver-etcd-client.crt',
      keyFile: '/etc/kubernetes/pki/etcd/apiserver-etcd-client.key',
    });
  });

  it('kube-apiserver and k3s flags name every member and the files in --k8s-pki-dir; DNS members by name', () => {
    const plan = planOf({ domain: 'example.com', kubernetes: true, 'k8s-pki-dir': '/var/lib/rancher/etcd' });
    const endpoints = 'https://etcd-etcd1.example.com:2379,https://etcd-etcd2.example.com:2379,https://etcd-etcd3.example.com:2379';
    expect(renderKubeApiserverFlags(plan)).toBe(
      [
        `--etcd-servers=${endpoints}`,
        '--etcd-cafile=/var/lib/rancher/etcd/ca.crt',
        '--etcd-certfile=/var/lib/rancher/etcd/apiserver-etcd-client.crt',
        '--etcd-keyfile=/var/lib/rancher/etcd/apiserver-etcd-client.key',
        '',
      ].join('\n'),
    );
    expect(renderK3sFlags(plan)).toBe(
      [
        `--datastore-endpoint=${endpoints}`,
        '--datastore-cafile=/var/lib/rancher/etcd/ca.crt',
        '--datastore-certfile=/var/lib/rancher/etcd/apiserver-etcd-client.crt',
        '--datastore-keyfile=/var/lib/rancher/etcd/apiserver-etcd-client.key',
        '',
      ].join('\n'),
    );
  });
});

const tempDir = tempDirsRemovedAfterAll('k8s');

describe('gen-userdata --client --kubernetes (the built CLI)', () => {
  it('writes pki/clients/ and kubernetes/ (keys 0600), records them in cluster.json, and sends no client key to a node', async () => {
    const workDir = tempDir();
    const result = await runCli(['gen-userdata', '--ips', THREE.join(','), '--key-size', '2048', '--client', 'app', '--client', 'web,batch', '--kubernetes'], workDir);
    expect(result.code, result.stderr).toBe(0);
    expect(result.stdout).toContain('client  minted pki/clients/kube-apiserver-etcd-client.crt (CN=kube-apiserver-etcd-client');
    const dir = join(workDir, 'out', 'etcd');
    const mode = (file: string) => (statSync(join(dir, file)).mode & 0o777).toString(8);
    expect(readdirSync(join(dir, 'pki', 'clients')).sort()).toEqual(
      ['app', 'batch', 'kube-apiserver-etcd-client', 'web'].flatMap((name) => [`${name}.crt`, `${name}.key`]),
    );
    for (const name of ['app', 'batch', 'kube-apiserver-etcd-client', 'web']) {
      expect(mode(`pki/clients/${name}.key`), name).toBe('600');
      expect(mode(`pki/clients/${name}.crt`), name).toBe('644');
    }
    expect(readdirSync(join(dir, 'kubernetes')).sort()).toEqual([
      'README.txt',
      'apiserver-etcd-client.crt',
      'apiserver-etcd-client.key',
      'ca.crt',
      'k3s-flags.txt',
      'kube-apiserver-flags.txt',
      'kubeadm-etcd.yaml',
    ]);
    expect(mode('kubernetes/apiserver-etcd-client.key')).toBe('600');
    expect(readFileSync(join(dir, 'kubernetes', 'apiserver-etcd-client.key'), 'utf8')).toBe(readFileSync(join(dir, 'pki', 'clients', 'kube-apiserver-etcd-client.key'), 'utf8'));
    expect(readFileSync(join(dir, 'kubernetes', 'ca.crt'), 'utf8')).toBe(readFileSync(join(dir, 'pki', 'ca.crt'), 'utf8'));

    const record = JSON.parse(readFileSync(join(dir, 'cluster.json'), 'utf8')) as { clients: { name: string; certificate: { file: string } }[]; kubernetes: unknown };
    expect(record.clients.map((client) => [client.name, client.certificate.file])).toEqual([
      ['app', 'pki/clients/app.crt'],
      ['web', 'pki/clients/web.crt'],
      ['batch', 'pki/clients/batch.crt'],
      ['kube-apiserver-etcd-client', 'pki/clients/kube-apiserver-etcd-client.crt'],
    ]);
    expect(record.kubernetes).toEqual({ pkiDir: '/etc/kubernetes/pki/etcd', client: 'kube-apiserver-etcd-client' });

    const keyLines = readdirSync(join(dir, 'pki', 'clients'))
      .filter((file) => file.endsWith('.key'))
      .map((file) => readFileSync(join(dir, 'pki', 'clients', file), 'utf8').split('\n')[1]!);
    for (const member of ['etcd1', 'etcd2', 'etcd3']) {
      const userData = readFileSync(join(dir, 'user-data', `${member}.yaml`), 'utf8');
      for (const line of keyLines) expect(userData).not.toContain(line);
    }

    // A re-run keeps every client certificate.
    const again = await runCli(['gen-userdata', '--ips', THREE.join(','), '--key-size', '2048', '--client', 'app,web,batch', '--kubernetes'], workDir);
    expect(again.code, again.stderr).toBe(0);
    expect(again.stdout.match(/client {2}kept/g)).toHaveLength(4);

    // Without them, the certificates and the kit go: nothing is left naming a certificate that is gone.
    const without = await runCli(['gen-userdata', '--ips', THREE.join(','), '--key-size', '2048', '--client', 'app'], workDir);
    expect(without.code, without.stderr).toBe(0);
    expect(readdirSync(join(dir, 'pki', 'clients')).sort()).toEqual(['app.crt', 'app.key']);
    expect(existsSync(join(dir, 'kubernetes')) ? readdirSync(join(dir, 'kubernetes')) : []).toEqual([]);
    expect((JSON.parse(readFileSync(join(dir, 'cluster.json'), 'utf8')) as { kubernetes?: unknown }).kubernetes).toBeUndefined();
  });

  it('renew-certs --client renews that client (new serial, same CN) and rewrites kubernetes/ only when its pair changed', async () => {
    const workDir = tempDir();
    const generated = await runCli(['gen-userdata', '--ips', THREE.join(','), '--key-size', '2048', '--client', 'app', '--kubernetes'], workDir);
    expect(generated.code, generated.stderr).toBe(0);
    const dir = join(workDir, 'out', 'etcd');
    const read = (file: string) => readFileSync(join(dir, file), 'utf8');
    const before = { app: read('pki/clients/app.crt'), kube: read('kubernetes/apiserver-etcd-client.crt'), admin: read('pki/admin.crt') };

    const appOnly = await runCli(['renew-certs', '--client', 'app'], workDir);
    expect(appOnly.code, appOnly.stderr).toBe(0);
    const renewedApp = new X509Certificate(read('pki/clients/app.crt'));
    expect(renewedApp.serialNumber).not.toBe(new X509Certificate(before.app).serialNumber);
    expect(renewedApp.subject).toBe(new X509Certificate(before.app).subject);
    expect(read('kubernetes/apiserver-etcd-client.crt')).toBe(before.kube);
    expect(read('pki/admin.crt')).toBe(before.admin);
    expect(existsSync(join(dir, 'renew'))).toBe(false);

    const kube = await runCli(['renew-certs', '--client', 'kube-apiserver-etcd-client'], workDir);
    expect(kube.code, kube.stderr).toBe(0);
    expect(kube.stdout).toContain('out/etcd/kubernetes/ has the renewed kube-apiserver pair');
    const renewedKube = new X509Certificate(read('kubernetes/apiserver-etcd-client.crt'));
    expect(renewedKube.serialNumber).not.toBe(new X509Certificate(before.kube).serialNumber);
    expect(renewedKube.subject).toBe('CN=kube-apiserver-etcd-client');
    expect(read('kubernetes/apiserver-etcd-client.crt')).toBe(read('pki/clients/kube-apiserver-etcd-client.crt'));
    const record = JSON.parse(read('cluster.json')) as { clients: { name: string; certificate: { sha256Fingerprint: string } }[] };
    expect(record.clients.find((client) => client.name === 'kube-apiserver-etcd-client')!.certificate.sha256Fingerprint).toBe(renewedKube.fingerprint256);

    const unknown = await runCli(['renew-certs', '--client', 'nope'], workDir);
    expect(unknown.code).toBe(2);
    expect(unknown.stderr).toContain('[validate] client: "nope" is not a client certificate of this cluster (clients: app, kube-apiserver-etcd-client)');
  });

  it('a folder written before client certificates existed reads as having none', async () => {
    const workDir = tempDir();
    const generated = await runCli(['gen-userdata', '--ips', THREE.join(','), '--key-size', '2048'], workDir);
    expect(generated.code, generated.stderr).toBe(0);
    const record = JSON.parse(readFileSync(join(workDir, 'out', 'etcd', 'cluster.json'), 'utf8')) as Record<string, unknown>;
    expect(record.clients).toBeUndefined();
    expect(record.kubernetes).toBeUndefined();
    const renewed = await runCli(['renew-certs', '--via-ssh-script'], workDir);
    expect(renewed.code, renewed.stderr).toBe(0);
    expect(renewed.stdout).toContain('Renewed 3 member certificate(s) and the admin certificate of cluster etcd');
  });
});
