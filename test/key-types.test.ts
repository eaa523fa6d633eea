import { execFile } from 'node:child_process';
import { X509Certificate, createHash, createPrivateKey, type KeyObject } from 'node:crypto';
import { readFileSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { describe, expect, it } from 'vitest';
import type { ClusterRecord } from '../src/cluster-folder.js';
import { resolveClusterInput } from '../src/input.js';
import { KEY_TYPES, keySpecOf, keySpecOfKey, type KeyType } from '../src/pki/key-types.js';
import { mintPki, type ClusterPki, type KeyPairPem } from '../src/pki/mint.js';
import { planCluster, type ClusterPlan } from '../src/plan.js';
import { inputFromRecord } from '../src/record-codec.js';
import { runCli, tempDirsRemovedAfterAll } from './support/cli.js';

const execFileAsync = promisify(execFile);
const IPS = ['10.10.0.11', '10.10.0.12', '10.10.0.13'];

function plan(keyType: KeyType): ClusterPlan {
  const { input } = resolveClusterInput({ ips: IPS, 'key-type': keyType, ...(keyType === 'rsa' ? { 'key-size': 2048 } : {}) }, {});
  return planCluster(input, '/nonexistent');
}

/** What openssl prints for each key type: the signature algorithm of a certificate its own type of CA signed, and the key. */
const OPENSSL_TEXT: Record<KeyType, { signature: string; key: RegExp }> = {
  rsa: { signature: 'sha256WithRSAEncryption', key: /Public Key Algorithm: rsaEncryption\s+Public-Key: \(2048 bit\)/ },
  'ecdsa-p256': { signature: 'ecdsa-with-SHA256', key: /Public Key Algorithm: id-ecPublicKey\s+Public-Key: \(256 bit\)[\s\S]*ASN1 OID: prime256v1\s+NIST CURVE: P-256/ },
  'ecdsa-p384': { signature: 'ecdsa-with-SHA384', key: /Public Key Algorithm: id-ecPublicKey\s+Public-Key: \(384 bit\)[\s\S]*ASN1 OID: secp384r1\s+NIST CURVE: P-384/ },
};

/** RFC 5280 method 1 computed independently of the code under test: SHA-1 of the raw public key. */
function expectedKeyId(key: KeyObject): string {
  const raw =
    key.asymmetricKeyType === 'rsa'
      ? key.export({ type: 'pkcs1', format: 'der' })
      : (() => {
          const jwk = key.export({ format: 'jwk' });
          return Buffer.concat([Buffer.from([4]), Buffer.from(jwk.x!, 'base64url'), Buffer.from(jwk.y!, 'base64url')]);
        })();
  return createHash('sha1').update(raw).digest('hex').toUpperCase().match(/../g)!.join(':');
}

async function opensslText(certPem: string): Promise<string> {
  const child = execFileAsync('openssl', ['x509', '-noout', '-text']);
  child.child.stdin!.end(certPem);
  return (await child).stdout;
}

const onDisk = (pki: ClusterPki): Map<string, KeyPairPem> => new Map(pki.all.map((cert) => [cert.fileBase, { certPem: cert.certPem, keyPem: cert.keyPem }]));

describe.each(KEY_TYPES)('%s keys', (keyType) => {
  const workDir = tempDirsRemovedAfterAll(`key-type-${keyType}`);

  it('chain to the CA (Node and openssl verify), with the right algorithms and key identifiers', async () => {
    const pki = await mintPki(plan(keyType), { now: new Date() });
    const dir = workDir();
    const ca = new X509Certificate(pki.ca.certPem);
    writeFileSync(join(dir, 'ca.crt'), pki.ca.certPem);
    expect(ca.verify(ca.publicKey)).toBe(true);
    for (const cert of pki.all) {
      const x509 = new X509Certificate(cert.certPem);
      expect(x509.verify(ca.publicKey), cert.fileBase).toBe(true);
      expect(x509.checkPrivateKey(createPrivateKey(cert.keyPem)), cert.fileBase).toBe(true);
      writeFileSync(join(dir, `${cert.fileBase}.crt`), cert.certPem);
      const purpose = cert.profileId === 'admin' ? 'sslclient' : cert.profileId === 'member' ? 'sslserver' : 'any';
      const verified = await execFileAsync('openssl', ['verify', '-CAfile', join(dir, 'ca.crt'), '-purpose', purpose, join(dir, `${cert.fileBase}.crt`)]);
      expect(verified.stdout.trim(), cert.fileBase).toBe(`${join(dir, `${cert.fileBase}.crt`)}: OK`);
      const text = await opensslText(cert.certPem);
      // Both places the algorithm appears (the TBS and the outer Certificate) name the CA key's one.
      expect(text.match(/Signature Algorithm: (\S+)/g), cert.fileBase).toEqual([`Signature Algorithm: ${OPENSSL_TEXT[keyType].signature}`, `Signature Algorithm: ${OPENSSL_TEXT[keyType].signature}`]);
      expect(text, cert.fileBase).toMatch(OPENSSL_TEXT[keyType].key);
      const keyIds = text.match(/Subject Key Identifier:\s+(\S+)[\s\S]*Authority Key Identifier:\s+(?:keyid:)?(\S+)/);
      expect(keyIds?.[1], cert.fileBase).toBe(expectedKeyId(x509.publicKey));
      expect(keyIds?.[2], cert.fileBase).toBe(expectedKeyId(ca.publicKey));
    }
    expect(new X509Certificate(pki.members.get('etcd2')!.certPem).checkIP('10.10.0.12')).toBe('10.10.0.12');
  });

  it('gen-userdata writes the keys 0600 and records the key type in cluster.json; renew-certs mints that type', async () => {
    const dir = workDir();
    const run = await runCli(['gen-userdata', '--ips', IPS.join(','), '--key-type', keyType, ...(keyType === 'rsa' ? ['--key-size', '2048'] : [])], dir);
    expect(run.code, run.stderr).toBe(0);
    const clusterDir = join(dir, 'out', 'etcd');
    for (const base of ['ca', 'etcd1', 'etcd2', 'etcd3', 'admin']) {
      const keyFile = join(clusterDir, 'pki', `${base}.key`);
      expect(statSync(keyFile).mode & 0o777, base).toBe(0o600);
      expect(readFileSync(keyFile, 'utf8'), base).toMatch(/^-----BEGIN PRIVATE KEY-----\n/);
    }
    expect(JSON.parse(readFileSync(join(clusterDir, 'cluster.json'), 'utf8'))).toMatchObject({ keyType });
    // A re-run keeps every certificate: they match the recorded key type.
    const before = readFileSync(join(clusterDir, 'pki', 'etcd1.crt'), 'utf8');
    const beforeKey = readFileSync(join(clusterDir, 'pki', 'etcd1.key'), 'utf8');
    const again = await runCli(['gen-userdata', '--ips', IPS.join(','), '--key-type', keyType, ...(keyType === 'rsa' ? ['--key-size', '2048'] : [])], dir);
    expect(again.code, again.stderr).toBe(0);
    expect(readFileSync(join(clusterDir, 'pki', 'etcd1.crt'), 'utf8')).toBe(before);
    // renew-certs --rotate-keys mints with the type cluster.json records (no --key-type given).
    const renewed = await runCli(['renew-certs', '--via-ssh-script', '--rotate-keys'], dir);
    expect(renewed.code, renewed.stderr).toBe(0);
    const rotated = readFileSync(join(clusterDir, 'pki', 'etcd1.key'), 'utf8');
    expect(rotated).not.toBe(beforeKey);
    const x509 = new X509Certificate(readFileSync(join(clusterDir, 'pki', 'etcd1.crt')));
    expect(keySpecOfKey(x509.publicKey)).toEqual(keySpecOf({ keyType, keySize: 2048 }));
    expect(x509.checkPrivateKey(createPrivateKey(rotated))).toBe(true);
    expect(statSync(join(clusterDir, 'pki', 'etcd1.key')).mode & 0o777).toBe(0o600);
  });
});

describe('changing the key type of a cluster', () => {
  it.each([
    ['rsa', 'ecdsa-p256'],
    ['ecdsa-p384', 'rsa'],
    ['ecdsa-p256', 'ecdsa-p384'],
  ] as const)('a %s CA keeps signing when the leaves become %s', async (from, to) => {
    const first = await mintPki(plan(from), { now: new Date() });
    const second = await mintPki(plan(to), { now: new Date(), existing: onDisk(first) });
    expect(second.ca.certPem).toBe(first.ca.certPem);
    const ca = new X509Certificate(first.ca.certPem);
    for (const cert of second.all.slice(1)) {
      expect(cert.reused, cert.fileBase).toBe(false);
      const x509 = new X509Certificate(cert.certPem);
      expect(x509.verify(ca.publicKey), cert.fileBase).toBe(true);
      expect(x509.publicKey.asymmetricKeyType).toBe(to === 'rsa' ? 'rsa' : 'ec');
      expect((await opensslText(cert.certPem)).match(/Signature Algorithm: (\S+)/)?.[1]).toBe(OPENSSL_TEXT[from].signature);
    }
  });
});

describe('the key type in cluster.json', () => {
  const record = (extra: Partial<ClusterRecord>): ClusterRecord => ({
    formatVersion: 1,
    clusterName: 'etcd',
    etcdVersion: 'v3.6.14',
    install: { mode: 'download', releaseUrl: 'https://github.com/etcd-io/etcd/releases/download' },
    initialClusterToken: 'token',
    keySize: 3072,
    certDays: 825,
    members: IPS.map((ip, index) => ({ name: `etcd${index + 1}`, ip, peerUrl: `https://${ip}:2380`, clientUrl: `https://${ip}:2379` })) as unknown as ClusterRecord['members'],
    ...extra,
  });

  it('reads as rsa with the recorded size when a folder written before --key-type has none', () => {
    expect(inputFromRecord(record({}), 'out')).toMatchObject({ keyType: 'rsa', keySize: 3072 });
  });

  it('gives day-2 commands the ECDSA type, without the key size that only RSA has', () => {
    // The recorded 3072 is no choice for ECDSA: the input carries the default, as gen-userdata's would.
    expect(inputFromRecord(record({ keyType: 'ecdsa-p384' }), 'out')).toMatchObject({ keyType: 'ecdsa-p384', keySize: 4096 });
  });
});

describe('a CA made elsewhere', () => {
  const workDir = tempDirsRemovedAfterAll('key-type-openssl-ca');

  async function opensslCa(newKey: string[], keyUsage: string | undefined): Promise<Map<string, KeyPairPem>> {
    const dir = workDir();
    await execFileAsync('openssl', [
      'req', '-x509', ...newKey, '-nodes', '-keyout', join(dir, 'ca.key'), '-out', join(dir, 'ca.crt'), '-subj', '/O=Example/CN=other-ca', '-days', '3650',
      '-addext', 'basicConstraints=critical,CA:TRUE', ...(keyUsage ? ['-addext', `keyUsage=critical,${keyUsage}`] : []),
    ]);
    return new Map([['ca', { certPem: readFileSync(join(dir, 'ca.crt'), 'utf8'), keyPem: readFileSync(join(dir, 'ca.key'), 'utf8') }]]);
  }

  it('an ECDSA P-384 CA from openssl signs P-256 leaves that openssl verifies', async () => {
    const existing = await opensslCa(['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-384'], 'keyCertSign,cRLSign');
    const pki = await mintPki(plan('ecdsa-p256'), { now: new Date(), existing });
    const dir = workDir();
    writeFileSync(join(dir, 'ca.crt'), pki.ca.certPem);
    writeFileSync(join(dir, 'etcd1.crt'), pki.members.get('etcd1')!.certPem);
    const verified = await execFileAsync('openssl', ['verify', '-CAfile', join(dir, 'ca.crt'), '-purpose', 'sslserver', join(dir, 'etcd1.crt')]);
    expect(verified.stdout.trim()).toBe(`${join(dir, 'etcd1.crt')}: OK`);
    expect(new X509Certificate(pki.members.get('etcd1')!.certPem).issuer).toBe('O=Example\nCN=other-ca');
  });

  // With a keyUsage that lacks keyCertSign, OpenSSL (X509Certificate.ca) already says it is no CA.
  it('a CA:TRUE certificate without keyUsage keyCertSign is refused', async () => {
    const existing = await opensslCa(['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256'], undefined);
    expect(existing.get('ca')!.certPem).toBeTruthy();
    expect(new X509Certificate(existing.get('ca')!.certPem).ca).toBe(true);
    await expect(mintPki(plan('ecdsa-p256'), { now: new Date(), existing })).rejects.toThrow('[mint] pki/ca.crt: may not sign certificates (its keyUsage lacks keyCertSign)');
  });
});

describe('a CA etcd-cloudinit cannot sign with', () => {
  const workDir = tempDirsRemovedAfterAll('key-type-ed25519');

  it('an Ed25519 CA (made by openssl) is refused, naming its key type', async () => {
    const dir = workDir();
    await execFileAsync('openssl', [
      'req', '-x509', '-newkey', 'ed25519', '-nodes', '-keyout', join(dir, 'ca.key'), '-out', join(dir, 'ca.crt'), '-subj', '/CN=other-ca', '-days', '3650',
      '-addext', 'basicConstraints=critical,CA:TRUE', '-addext', 'keyUsage=critical,keyCertSign,cRLSign',
    ]);
    const existing = new Map([['ca', { certPem: readFileSync(join(dir, 'ca.crt'), 'utf8'), keyPem: readFileSync(join(dir, 'ca.key'), 'utf8') }]]);
    await expect(mintPki(plan('ecdsa-p256'), { now: new Date(), existing })).rejects.toThrow(
      '[mint] pki/ca.crt: its key is ed25519; etcd-cloudinit signs with RSA (2048, 3072, 4096) and ECDSA P-256/P-384 CAs only',
    );
  });
});
