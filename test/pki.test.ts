import { execFile } from 'node:child_process';
import { X509Certificate, createPrivateKey } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { resolveClusterInput } from '../src/input.js';
import { mintPki, serialFromBytes, type ClusterPki } from '../src/pki/mint.js';
import { CERT_PROFILES, certRequests } from '../src/pki/profiles.js';
import { planCluster, type ClusterPlan } from '../src/plan.js';
import { FIXED_NOW, fixtureKeySource } from './support/golden.js';

const execFileAsync = promisify(execFile);

function plan3(): ClusterPlan {
  const { input } = resolveClusterInput({ ips: ['10.10.0.11', '10.10.0.12', '10.10.0.13'], 'key-size': 2048 }, {});
  return planCluster(input, '/nonexistent');
}

describe('certificate profiles (the table itself)', () => {
  it('puts the CA first and every issuer before the certificates it signs', () => {
    expect(CERT_PROFILES[0]?.id).toBe('ca');
    expect(CERT_PROFILES[0]?.issuer).toBeNull();
    CERT_PROFILES.forEach((profile, index) => {
      if (profile.issuer === null) return;
      const issuerIndex = CERT_PROFILES.findIndex((candidate) => candidate.id === profile.issuer);
      expect(issuerIndex, `${profile.id} is issued by ${profile.issuer}`).toBeGreaterThanOrEqual(0);
      expect(issuerIndex).toBeLessThan(index);
      expect(CERT_PROFILES[issuerIndex]?.isCa).toBe(true);
    });
  });

  it('gives only CA profiles keyCertSign, and leaves at least one extended usage', () => {
    for (const profile of CERT_PROFILES) {
      expect(profile.keyUsage.includes('keyCertSign'), profile.id).toBe(profile.isCa);
      if (!profile.isCa) expect(profile.extKeyUsage.length, profile.id).toBeGreaterThan(0);
    }
  });

  it('makes member certificates usable for serving and for peering as a client (etcd 3.4+)', () => {
    const member = CERT_PROFILES.find((profile) => profile.id === 'member');
    expect(member?.extKeyUsage).toEqual(['serverAuth', 'clientAuth']);
  });

  it('gives every certificate of a plan a distinct file name', () => {
    const bases = certRequests(plan3()).map((request) => request.fileBase);
    expect(new Set(bases).size).toBe(bases.length);
    expect(bases).toEqual(['ca', 'etcd1', 'etcd2', 'etcd3', 'admin']);
  });
});

describe('serial numbers', () => {
  it('are positive DER INTEGERs in their shortest form, whatever the random bytes (a leading 0x00 made OpenSSL 3 refuse 1 certificate in 256)', async () => {
    const plan = plan3();
    // The bytes that used to give an unreadable certificate: 0x00 then a byte below 0x80.
    for (const first of [0x00, 0x80, 0x01, 0x7f, 0xff]) {
      const bytes = Buffer.alloc(16, 0x11);
      bytes[0] = first;
      const serial = serialFromBytes(bytes);
      expect(serial).toMatch(/^[4-7][0-9a-f]{31}$/);
      const pki = await mintPki(plan, { now: new Date(), keySource: fixtureKeySource, serialSource: () => serial });
      // OpenSSL (through node) reads every certificate back, and the serial is the one given.
      for (const cert of pki.all) expect(new X509Certificate(cert.certPem).serialNumber.toLowerCase()).toBe(serial);
    }
  });
});

describe('minted certificates', () => {
  const plan = plan3();
  let pki: ClusterPki;
  let dir: string;

  beforeAll(async () => {
    pki = await mintPki(plan, { now: new Date() });
    dir = mkdtempSync(join(tmpdir(), 'etcd-cloudinit-pki-'));
    for (const cert of pki.all) writeFileSync(join(dir, `${cert.fileBase}.crt`), cert.certPem);
  });
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  it('chain to the CA and name the member address, loopback and name', () => {
    const ca = new X509Certificate(pki.ca.certPem);
    expect(ca.ca).toBe(true);
    expect(ca.verify(ca.publicKey)).toBe(true);
    for (const member of plan.members) {
      const cert = new X509Certificate(pki.members.get(member.name)!.certPem);
      expect(cert.verify(ca.publicKey), member.name).toBe(true);
      expect(cert.checkIssued(ca)).toBe(true);
      expect(cert.ca).toBe(false);
      expect(cert.checkIP(member.ip!)).toBe(member.ip);
      expect(cert.checkIP('127.0.0.1')).toBe('127.0.0.1');
      expect(cert.checkHost(member.name)).toBe(member.name);
      expect(cert.checkHost('localhost')).toBe('localhost');
      // Another member's address is not in this certificate.
      const other = plan.members.find((candidate) => candidate.name !== member.name)!;
      expect(cert.checkIP(other.ip!)).toBeUndefined();
      expect(cert.keyUsage?.sort()).toEqual(['1.3.6.1.5.5.7.3.1', '1.3.6.1.5.5.7.3.2']);
      expect(cert.checkPrivateKey(createPrivateKey(pki.members.get(member.name)!.keyPem))).toBe(true);
    }
    const admin = new X509Certificate(pki.admin.certPem);
    expect(admin.verify(ca.publicKey)).toBe(true);
    expect(admin.keyUsage).toEqual(['1.3.6.1.5.5.7.3.2']);
    expect(admin.subject).toContain('CN=root');
  });

  it('have the planned validity: members and admin cert-days, the CA ten years', () => {
    const days = (cert: X509Certificate) => Math.round((Date.parse(cert.validTo) - Date.parse(cert.validFrom)) / 86_400_000);
    expect(days(new X509Certificate(pki.ca.certPem))).toBe(3650);
    expect(days(new X509Certificate(pki.admin.certPem))).toBe(825);
  });

  it.each(['etcd1', 'etcd2', 'etcd3'])('openssl verifies member %s for sslserver and sslclient', async (name) => {
    for (const purpose of ['sslserver', 'sslclient']) {
      const { stdout } = await execFileAsync('openssl', ['verify', '-CAfile', join(dir, 'ca.crt'), '-purpose', purpose, join(dir, `${name}.crt`)]);
      expect(stdout.trim()).toBe(`${join(dir, `${name}.crt`)}: OK`);
    }
  });

  it('openssl verifies admin for sslclient and rejects it for sslserver', async () => {
    const verify = (purpose: string) =>
      execFileAsync('openssl', ['verify', '-CAfile', join(dir, 'ca.crt'), '-purpose', purpose, join(dir, 'admin.crt')]).then(
        ({ stdout }) => stdout.trim(),
        (error: { stdout?: string; stderr?: string }) => `failed: ${error.stdout ?? ""}${error.stderr ?? ""}`,
      );
    expect(await verify('sslclient')).toBe(`${join(dir, 'admin.crt')}: OK`);
    expect(await verify('sslserver')).toMatch(/^failed: .*unsuitable certificate purpose/s);
  });
});

describe('re-minting', () => {
  const plan = plan3();

  async function firstRun() {
    return mintPki(plan, { now: FIXED_NOW, keySource: fixtureKeySource });
  }
  function onDisk(pki: ClusterPki) {
    return new Map(pki.all.map((cert) => [cert.fileBase, { certPem: cert.certPem, keyPem: cert.keyPem }]));
  }

  it('keeps the CA and every still-matching certificate', async () => {
    const first = await firstRun();
    const second = await mintPki(plan, { now: FIXED_NOW, existing: onDisk(first), keySource: () => Promise.reject(new Error('no key should be generated')) });
    expect(second.all.map((cert) => cert.reused)).toEqual([true, true, true, true, true]);
    expect(second.all.map((cert) => cert.certPem)).toEqual(first.all.map((cert) => cert.certPem));
  });

  it('re-mints a member whose address changed, and with --force every leaf, but never the CA', async () => {
    const first = await firstRun();
    const { input } = resolveClusterInput({ ips: ['10.10.0.11', '10.10.0.99', '10.10.0.13'], 'key-size': 2048 }, {});
    const moved = await mintPki(planCluster(input, '/nonexistent'), { now: FIXED_NOW, existing: onDisk(first), keySource: fixtureKeySource });
    expect(moved.all.map((cert) => [cert.fileBase, cert.reused])).toEqual([['ca', true], ['etcd1', true], ['etcd2', false], ['etcd3', true], ['admin', true]]);
    const forced = await mintPki(plan, { now: FIXED_NOW, existing: onDisk(first), force: true, keySource: fixtureKeySource });
    expect(forced.all.map((cert) => cert.reused)).toEqual([true, false, false, false, false]);
    expect(forced.ca.keyPem).toBe(first.ca.keyPem);
  });

  it('re-mints a certificate that expires within 30 days', async () => {
    const first = await firstRun();
    const later = new Date(FIXED_NOW.getTime() + 800 * 86_400_000);
    const renewed = await mintPki(plan, { now: later, existing: onDisk(first), keySource: fixtureKeySource });
    expect(renewed.all.map((cert) => cert.reused)).toEqual([true, false, false, false, false]);
  });

  it('refuses a CA key that does not belong to the CA certificate', async () => {
    const first = await firstRun();
    const existing = onDisk(first);
    existing.set('ca', { certPem: first.ca.certPem, keyPem: first.admin.keyPem });
    await expect(mintPki(plan, { now: FIXED_NOW, existing })).rejects.toThrow(/pki\/ca.key does not belong to pki\/ca.crt/);
  });
});
