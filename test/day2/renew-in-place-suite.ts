import { execFileSync } from 'node:child_process';
import { X509Certificate, createHash, createPublicKey } from 'node:crypto';
import { existsSync, mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { NODE_PATHS } from '../../src/plan.js';
import { LoopbackCluster, type ClusterKind } from '../support/loopback-cluster.js';
import { renewAgentOnce, startRenewAgents } from '../support/renew-agents.js';

/**
 * renew-certs renews member certificates in place: each member's agent (cloud-init/etcd-renew-agent.sh,
 * run here as its etcd-renew-agent.service would run it, paths under the member's root) makes a new key,
 * answers with a CSR signed by its current key, and installs what the workstation signed, with no restart.
 */
const MEMBERS = ['etcd1', 'etcd2', 'etcd3'];
const KIND_ARGS: Record<ClusterKind, string[]> = { ip: [], dns: [], do: ['--count', '3'] };

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));
const fingerprint = (path: string) => createHash('sha256').update(readFileSync(path)).digest('hex');
const publicKeyOf = (certPem: string) => new X509Certificate(certPem).publicKey.export({ type: 'spki', format: 'der' }).toString('hex');

/** The members' names resolve only in the cluster's namespace: the agent runs there, as the CLI does. */
const inNamespace = (cluster: LoopbackCluster) => (argv: string[]) => ['unshare', '-m', 'sh', '-c', 'mount --bind "$0" /etc/hosts && exec "$@"', cluster.hostsFile, ...argv];
const agentOnce = (cluster: LoopbackCluster, name: string) => renewAgentOnce(cluster.root(name), inNamespace(cluster));
const startAgents = (cluster: LoopbackCluster, names: readonly string[]) => startRenewAgents(names.map((name) => cluster.root(name)), inNamespace(cluster));

/** Keys and values under the reserved prefix, read with the admin certificate. */
async function renewKeys(cluster: LoopbackCluster): Promise<Map<string, string>> {
  return cluster.range(cluster.runningMembers()[0]!, '/etcd-cloudinit/renew/');
}

/** The suite for one cluster kind; renew-in-place.test.ts (IP, with the forgeries) and renew-in-place-kinds.test.ts (DNS, droplets) run it, as two files so they run in parallel. */
export function renewInPlaceSuite(kind: ClusterKind): void {
  describe(`renew-certs in place (${kind} cluster)`, () => {
    let cluster: LoopbackCluster;

    beforeAll(async () => {
      cluster = await LoopbackCluster.create(kind, KIND_ARGS[kind]);
      await cluster.startAll(MEMBERS);
    }, 60_000);

    afterAll(async () => {
      await cluster?.cleanup();
    });

    it('refuses members without a renewal agent (older user-data) and points to roll --member; nothing is written', async () => {
      const before = readdirSync(join(cluster.outDir, 'pki')).map((file) => `${file}:${fingerprint(join(cluster.outDir, 'pki', file))}`);
      const result = await cluster.cli(['renew-certs', '--timeout', '5']);
      expect(result.code).toBe(1);
      expect(result.stderr).toContain('member(s) etcd1, etcd2, etcd3 have no renewal agent');
      expect(result.stderr).toContain('etcd-cloudinit roll --member etcd1; etcd-cloudinit roll --member etcd2; etcd-cloudinit roll --member etcd3');
      expect(result.stderr).toContain('renew-certs --via-ssh-script');
      expect(readdirSync(join(cluster.outDir, 'pki')).map((file) => `${file}:${fingerprint(join(cluster.outDir, 'pki', file))}`)).toEqual(before);
    });

    it('renews every member in place while a client writes: new serial and new key served, no write lost, no member key in the folder or in etcd', async () => {
      // The agents register themselves under the prefix on their first pass.
      for (const name of MEMBERS) {
        const pass = await agentOnce(cluster, name);
        expect(pass.code, pass.stderr).toBe(0);
        expect(pass.stdout).toContain(`registered the renewal agent of ${name}`);
      }
      const oldSerials = new Map<string, string>();
      const oldKeys = new Map<string, string>();
      for (const name of MEMBERS) {
        oldSerials.set(name, await cluster.servedSerial(name));
        oldKeys.set(name, publicKeyOf(readFileSync(cluster.pkiFile(`${name}.crt`), 'utf8')));
      }
      const writer = cluster.startWriter('/renew-in-place/', cluster.endpoints());
      const agents = startAgents(cluster, MEMBERS);
      let result;
      try {
        await sleep(500);
        result = await cluster.cli(['renew-certs', '--timeout', '60', '--json']);
        await sleep(500);
      } finally {
        await agents.stop();
      }
      const summary = await writer.stop();
      expect(result.stderr).not.toMatch(/refused/);
      expect(result.code, result.stderr).toBe(0);
      expect(agents.failures).toEqual([]);
      const document = JSON.parse(result.stdout) as { method: string; members: { name: string; serial: string; notAfter: string }[]; failed: unknown[] };
      expect(document.method).toBe('in-place');
      expect(document.failed).toEqual([]);
      expect(document.members.map((member) => member.name)).toEqual(MEMBERS);

      const record = JSON.parse(readFileSync(join(cluster.outDir, 'cluster.json'), 'utf8')) as { members: { name: string; certificate: { serial: string; sha256Fingerprint: string; notAfter: string } }[] };
      for (const { name, serial, notAfter } of document.members) {
        // What the member serves now is the certificate on its disk: new serial, new public key; the folder has it too.
        const served = await cluster.servedSerial(name);
        expect(served, name).toBe(serial);
        expect(served, name).not.toBe(oldSerials.get(name));
        const onNode = readFileSync(join(cluster.root(name), NODE_PATHS.memberCert), 'utf8');
        expect(new X509Certificate(onNode).serialNumber, name).toBe(serial);
        expect(publicKeyOf(onNode), name).not.toBe(oldKeys.get(name));
        const inFolder = readFileSync(cluster.pkiFile(`${name}.crt`), 'utf8');
        expect(new X509Certificate(inFolder).serialNumber).toBe(serial);
        // The key on the node is the one the new certificate certifies.
        const nodeKey = createPublicKey(readFileSync(join(cluster.root(name), NODE_PATHS.memberKey), 'utf8')).export({ type: 'spki', format: 'der' }).toString('hex');
        expect(nodeKey).toBe(publicKeyOf(onNode));
        expect(existsSync(cluster.pkiFile(`${name}.key`)), `pki/${name}.key`).toBe(false);
        expect(readFileSync(cluster.userDataPath(name), 'utf8')).not.toContain('PRIVATE KEY');
        const recorded = record.members.find((member) => member.name === name)?.certificate;
        expect(recorded, `cluster.json records ${name}'s new certificate`).toEqual({ file: `pki/${name}.crt`, sha256Fingerprint: new X509Certificate(inFolder).fingerprint256, serial, notAfter });
      }
      expect(readdirSync(join(cluster.outDir, 'pki')).filter((file) => file.endsWith('.key')).sort()).toEqual(['admin.key', 'ca.key']);
      // Nothing but the agents' registrations stays under the prefix, and no value there is a private key.
      const left = await renewKeys(cluster);
      expect([...left.keys()].sort()).toEqual(MEMBERS.map((name) => `/etcd-cloudinit/renew/${name}/agent`));
      expect([...left.values()].join('')).not.toContain('PRIVATE KEY');

      console.log(`[renew-in-place ${kind}] ${summary.acknowledged.length} of ${summary.attempts} writes acknowledged; longest gap ${summary.longestGapMs} ms`);
      expect(summary.acknowledged.length).toBeGreaterThan(5);
      for (const name of MEMBERS) {
        const stored = await cluster.range(name, '/renew-in-place/');
        expect(summary.acknowledged.filter((key) => !stored.has(key)), `acknowledged writes missing on ${name}`).toEqual([]);
      }

      // health names the serial each member serves.
      const health = await cluster.cli(['health', '--json']);
      const report = JSON.parse(health.stdout) as { members: { name: string; certSerial?: string }[] };
      for (const { name, serial } of document.members) expect(report.members.find((member) => member.name === name)?.certSerial, name).toBe(serial);
    }, 90_000);

    it.runIf(kind === 'ip')('refuses a request signed with another member\'s key, or naming another member; signs nothing', async () => {
      const scratch = mkdtempSync(join(tmpdir(), 'renew-forged-'));
      try {
        const openssl = (...args: string[]) => execFileSync('openssl', args, { cwd: scratch, stdio: ['ignore', 'pipe', 'pipe'] });
        const forge = async (signingKey: string, cn: string, san: string, keyType: string[] = ['RSA', '-pkeyopt', 'rsa_keygen_bits:2048']) => {
          const served = await cluster.servedSerial('etcd1');
          const run = cluster.cli(['renew-certs', '--member', 'etcd1', '--timeout', '20']);
          // The request renew-certs wrote for etcd1; answered here instead of by etcd1's agent.
          let request: string | undefined;
          for (let tries = 0; tries < 100 && request === undefined; tries += 1) {
            request = (await renewKeys(cluster)).get('/etcd-cloudinit/renew/etcd1/request');
            if (request === undefined) await sleep(100);
          }
          expect(request).toBeDefined();
          const nonce = /^nonce=(.+)$/m.exec(request!)![1]!;
          openssl('genpkey', '-algorithm', ...keyType, '-out', 'new.key');
          openssl('req', '-new', '-key', 'new.key', '-subj', `/CN=${cn}`, '-addext', `subjectAltName=${san}`, '-out', 'new.csr');
          const csr = readFileSync(join(scratch, 'new.csr'), 'utf8');
          writeFileSync(join(scratch, 'signed'), `${nonce}\n${csr}`);
          openssl('dgst', '-sha256', '-sign', signingKey, '-out', 'signature', 'signed');
          const response = `nonce=${nonce}\nsignature=${readFileSync(join(scratch, 'signature')).toString('base64')}\n${csr}`;
          const written = await cluster.etcdctl(['put', '/etcd-cloudinit/renew/etcd1/response', response]);
          expect(written.code, written.stderr).toBe(0);
          const result = await run;
          // Nothing was signed: no certificate key, the member serves what it served.
          expect((await renewKeys(cluster)).has('/etcd-cloudinit/renew/etcd1/certificate')).toBe(false);
          expect(await cluster.servedSerial('etcd1')).toBe(served);
          return result;
        };

        const etcd1Ip = cluster.ip(1);
        const otherKey = await forge(join(cluster.root('etcd2'), NODE_PATHS.memberKey), 'etcd1', `IP:${etcd1Ip}`);
        expect(otherKey.code).toBe(1);
        expect(otherKey.stderr).toContain("etcd1: refused its answer, signed nothing: its signature is not made with the key of etcd1's current certificate");

        const otherName = await forge(join(cluster.root('etcd1'), NODE_PATHS.memberKey), 'etcd2', `IP:${cluster.ip(2)}`);
        expect(otherName.code).toBe(1);
        expect(otherName.stderr).toContain('etcd1: refused its answer, signed nothing: its CSR names CN=etcd2, not etcd1');

        const otherAddress = await forge(join(cluster.root('etcd1'), NODE_PATHS.memberKey), 'etcd1', `IP:${cluster.ip(2)}`);
        expect(otherAddress.code).toBe(1);
        expect(otherAddress.stderr).toContain(`etcd1: refused its answer, signed nothing: its CSR names IP:${cluster.ip(2)}, not etcd1's`);

        const otherProfile = await forge(join(cluster.root('etcd1'), NODE_PATHS.memberKey), 'etcd1', `IP:${etcd1Ip}`, ['EC', '-pkeyopt', 'ec_paramgen_curve:P-256']);
        expect(otherProfile.code).toBe(1);
        expect(otherProfile.stderr).toContain("etcd1: refused its answer, signed nothing: its key is ECDSA P-256, the cluster's profile says RSA-2048");
      } finally {
        rmSync(scratch, { recursive: true, force: true });
      }
    }, 60_000);

    it.runIf(kind === 'ip')('after an in-place renewal, the --via-ssh-script fallback gives the member a new key (the folder has none) and its script installs both', async () => {
      const result = await cluster.cli(['renew-certs', '--via-ssh-script', '--member', 'etcd1']);
      expect(result.code, result.stderr).toBe(0);
      expect(existsSync(cluster.pkiFile('etcd1.key'))).toBe(true);
      expect(readFileSync(join(cluster.outDir, 'renew', 'etcd1.sh'), 'utf8')).toContain('PRIVATE KEY');
      expect(readFileSync(cluster.userDataPath('etcd1'), 'utf8')).toContain('PRIVATE KEY');
      await cluster.installRenewal('etcd1');
      expect(await cluster.servedSerial('etcd1')).toBe(new X509Certificate(readFileSync(cluster.pkiFile('etcd1.crt'), 'utf8')).serialNumber);
    });
  });
}
