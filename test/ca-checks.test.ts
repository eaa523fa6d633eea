import { X509Certificate, createPrivateKey } from 'node:crypto';
import { cpSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { resolveClusterInput } from '../src/input.js';
import { issue, randomSerial } from '../src/pki/mint.js';
import { certRequests } from '../src/pki/profiles.js';
import { planCluster } from '../src/plan.js';
import { runCli, tempDirsRemovedAfterAll, folderSnapshot } from './support/cli.js';

const IPS = '10.10.0.11,10.10.0.12,10.10.0.13';
const GEN = ['gen-userdata', '--ips', IPS, '--key-size', '2048'];
const DAY_MS = 86_400_000;
const workDir = tempDirsRemovedAfterAll('ca-checks');


const shownDate = (validity: string) => new Date(validity).toISOString().replace('.000Z', 'Z');

/** The folder's CA certificate signed again with its own key, as if issued at `issuedAt` (valid 10 years from then). */
function reissueCa(pki: string, issuedAt: Date): X509Certificate {
  const { input } = resolveClusterInput({ ips: IPS.split(','), 'key-size': 2048 }, {});
  const [caRequest] = certRequests(planCluster(input, '/nonexistent'));
  const keyPem = readFileSync(join(pki, 'ca.key'), 'utf8');
  const certPem = issue(caRequest!, keyPem, { certPem: undefined, key: createPrivateKey(keyPem) }, issuedAt, randomSerial());
  writeFileSync(join(pki, 'ca.crt'), certPem);
  return new X509Certificate(certPem);
}

interface Damage {
  /** Changes the folder's pki/; returns the message expected after `etcd-cloudinit <command>: `. */
  (pki: string, dir: string): string;
}

const DAMAGES: [string, Damage][] = [
  [
    'an expired CA',
    (pki) => {
      const ca = reissueCa(pki, new Date(Date.now() - 3651 * DAY_MS));
      return (
        `[mint] pki/ca.crt: the CA expired on ${shownDate(ca.validTo)} (valid from ${shownDate(ca.validFrom)}); what it signs would not verify. ` +
        'It is never replaced automatically: a new CA means a new cluster folder and new user-data for every member'
      );
    },
  ],
  [
    'a CA with 10 days left, asked for 825-day certificates',
    (pki) => {
      const ca = reissueCa(pki, new Date(Date.now() - 3640 * DAY_MS));
      return `[mint] pki/ca.crt: the CA expires on ${shownDate(ca.validTo)}, in 9 day(s): a certificate issued now for 825 days would outlive it. Pass --cert-days 9 or less, or start a new CA (a new cluster folder and new user-data for every member)`;
    },
  ],
  [
    'a member certificate and key placed as the CA',
    (pki) => {
      cpSync(join(pki, 'etcd1.crt'), join(pki, 'ca.crt'));
      cpSync(join(pki, 'etcd1.key'), join(pki, 'ca.key'));
      return '[mint] pki/ca.crt: is not a CA certificate (basicConstraints CA:TRUE is missing); restore the CA certificate from a backup of the folder';
    },
  ],
  [
    "another key as the CA's",
    (pki, dir) => {
      cpSync(join(pki, 'admin.key'), join(pki, 'ca.key'));
      return `[mint] pki/ca.key does not belong to pki/ca.crt in ${dir}; restore the matching pair (the CA is never replaced automatically)`;
    },
  ],
  [
    'a truncated ca.crt',
    (pki) => {
      const pem = readFileSync(join(pki, 'ca.crt'));
      writeFileSync(join(pki, 'ca.crt'), pem.subarray(0, pem.length / 2));
      return '[mint] pki/ca.crt: is not a PEM certificate (damaged or truncated?); restore it from a backup of the folder';
    },
  ],
  [
    'a garbage ca.key',
    (pki) => {
      writeFileSync(join(pki, 'ca.key'), '\u0000\u00ffnot a key at all\n');
      return '[mint] pki/ca.key: is not an unencrypted PEM private key (damaged or truncated?); restore it from a backup of the folder';
    },
  ],
];

describe('the CA is checked before it signs anything: exit 1, the message, nothing written', () => {
  let baseline: string;

  beforeAll(async () => {
    baseline = workDir();
    const run = await runCli(GEN, baseline);
    expect(run.code, run.stderr).toBe(0);
  });

  /** A copy of the generated folder with `damage` done to it; then `args` must fail and change nothing. */
  async function expectRefused(args: readonly string[], damage: Damage): Promise<void> {
    const cwd = workDir();
    cpSync(join(baseline, 'out'), join(cwd, 'out'), { recursive: true });
    const dir = join(cwd, 'out', 'etcd');
    const message = damage(join(dir, 'pki'), dir);
    const before = folderSnapshot(join(cwd, 'out'));
    const run = await runCli(args, cwd);
    expect(run.stderr).toBe(`etcd-cloudinit ${args[0]}: ${message}\n`);
    expect(run.code).toBe(1);
    expect(run.stdout).toBe('');
    expect(folderSnapshot(join(cwd, 'out'))).toEqual(before);
  }

  it.each(DAMAGES)('gen-userdata with %s', (_label, damage) => expectRefused([...GEN, '--cert-days', '825'], damage));
  it.each(DAMAGES)('renew-certs with %s', (_label, damage) => expectRefused(['renew-certs', '--via-ssh-script', '--cert-days', '825'], damage));

  it.each([
    ['certificate', 'etcd2.crt', 'a PEM certificate'],
    ['key', 'etcd2.key', 'an unencrypted PEM private key'],
  ])("renew-certs with a truncated member %s names the file", (_label, file, what) =>
    expectRefused(['renew-certs'], (pki) => {
      const pem = readFileSync(join(pki, file));
      writeFileSync(join(pki, file), pem.subarray(0, pem.length / 3));
      return `[mint] pki/${file}: is not ${what} (damaged or truncated?); restore it from a backup of the folder`;
    }),
  );

  it('a CA that outlives the certificates still signs them: --cert-days within its time left', async () => {
    const cwd = workDir();
    cpSync(join(baseline, 'out'), join(cwd, 'out'), { recursive: true });
    const ca = reissueCa(join(cwd, 'out', 'etcd', 'pki'), new Date(Date.now() - 3640 * DAY_MS));
    const run = await runCli(['renew-certs', '--via-ssh-script', '--cert-days', '9'], cwd);
    expect(run.code, run.stderr).toBe(0);
    const renewed = new X509Certificate(readFileSync(join(cwd, 'out', 'etcd', 'pki', 'etcd1.crt')));
    expect(renewed.verify(ca.publicKey)).toBe(true);
    expect(Date.parse(renewed.validTo)).toBeLessThanOrEqual(Date.parse(ca.validTo));
  });
});
