import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { main } from '../src/cli.js';
import { ClusterFolder, type ClusterRecord } from '../src/cluster-folder.js';
import type { CommandContext } from '../src/context.js';
import { planOf } from '../src/day2/open-cluster.js';
import { nativeKeySource, readClusterPki, type KeySource } from '../src/pki/mint.js';
import { clusterRecordOf, inputFromRecord } from '../src/record-codec.js';
import { startFakeDigitalOcean, type FakeDigitalOcean } from './digitalocean/fake-api.js';
import { tempDirsRemovedAfterAll } from './support/cli.js';

const workDir = tempDirsRemovedAfterAll('record-codec');

// Keys are made once per spec and file base: minting is not what these tests are about.
const keys = new Map<string, Promise<string>>();
const cachedKeySource: KeySource = (spec, fileBase) => {
  const key = `${JSON.stringify(spec)}/${fileBase}`;
  if (!keys.has(key)) keys.set(key, nativeKeySource(spec, fileBase));
  return keys.get(key)!;
};

interface Run {
  readonly code: number;
  readonly stdout: string;
  readonly stderr: string;
}

/** The CLI in-process, with an explicit env (process.env is never touched). */
async function run(args: string[], cwd: string, env: Record<string, string> = {}, overrides: Partial<CommandContext> = {}): Promise<Run> {
  let stdout = '';
  let stderr = '';
  const code = await main(
    args,
    { env, stdout: { write: (text: string) => (stdout += text) }, stderr: { write: (text: string) => (stderr += text) }, cwd },
    { keySource: cachedKeySource, ...overrides },
  );
  return { code, stdout, stderr };
}

const IPS = '127.0.0.21,127.0.0.22,127.0.0.23';
const BUCKET_KEYS = { SPACES_ACCESS_KEY_ID: 'DO00EXAMPLEKEY', SPACES_SECRET_ACCESS_KEY: 'example-secret-access-key' };

/** cluster.json -> input -> plan -> cluster.json: the same document, byte for byte as JSON. */
function roundTrip(cwd: string, clusterName = 'etcd'): { record: ClusterRecord; again: unknown } {
  const folder = new ClusterFolder('out', clusterName, cwd);
  const record = folder.readClusterRecord();
  const input = inputFromRecord(record, folder.out);
  const plan = planOf({ folder, record }, input);
  const again = clusterRecordOf(plan, readClusterPki(plan, folder.readPki()), new Date(record.generatedAt!));
  return { record, again: JSON.parse(JSON.stringify(again)) };
}

const recordOf = (cwd: string, clusterName = 'etcd') => JSON.parse(readFileSync(join(cwd, 'out', clusterName, 'cluster.json'), 'utf8')) as ClusterRecord;

describe('the record codec: cluster.json -> input -> cluster.json', () => {
  it.each([
    ['IP members, rsa 2048, defaults', ['--ips', IPS, '--key-size', '2048']],
    [
      'IP members with every setting: ecdsa, baked, no metrics, raft timing, quota, snapshots, backups, clients, kubernetes',
      [
        '--ips', IPS, '--names', 'alpha,beta,gamma', '--key-type', 'ecdsa-p256', '--install', 'baked', '--etcd-version', 'v3.5.21', '--no-metrics',
        '--heartbeat-interval', '150', '--election-timeout', '1500', '--quota-backend-bytes', '4294967296', '--snapshot-schedule', 'daily', '--snapshot-retain', '7', '--cert-days', '400',
        '--backup-url', 's3://bucket/etcd/', '--backup-region', 'nyc3', '--backup-retain', '48', '--client', 'app,reports', '--kubernetes', '--k8s-pki-dir', '/etc/k8s/etcd',
      ],
    ],
    ['IP members, a pinned download from a mirror', ['--ips', IPS, '--key-type', 'ecdsa-p384', '--release-url', 'https://mirror.example.net/etcd/', '--etcd-sha256', 'a'.repeat(64), '--no-snapshots']],
    ['DNS members by --hostnames, listen address from a range', ['--hostnames', 'etcd1.db.example.net,etcd2.db.example.net,etcd3.db.example.net', '--listen-cidr', '10.0.0.0/8', '--key-type', 'ecdsa-p256']],
    ['DNS members by --domain, from instance data', ['--domain', 'example.com', '--names', 'a,b,c', '--listen-from', 'instance-data', '--key-type', 'ecdsa-p256']],
  ])('%s', async (_what, args) => {
    const cwd = workDir();
    const result = await run(['gen-userdata', ...args], cwd, BUCKET_KEYS);
    expect(result.code, result.stderr).toBe(0);
    const { record, again } = roundTrip(cwd);
    expect(again).toEqual(record);
  });

  describe('a cluster create-droplets made', () => {
    let fake: FakeDigitalOcean;
    beforeAll(async () => {
      fake = await startFakeDigitalOcean({ domains: ['example.com'] });
    });
    afterAll(async () => {
      await fake.close();
    });

    it('round-trips too', async () => {
      const cwd = workDir();
      const env = { DIGITALOCEAN_TOKEN: fake.token, DIGITALOCEAN_API_URL: fake.url };
      const create = ['create-droplets', '--cluster-name', 'docodec', '--domain', 'example.com', '--region', 'nyc3', '--ssh-key', 'aa:bb:cc', '--ssh-from', '198.51.100.7/32'];
      const result = await run([...create, '--key-type', 'ecdsa-p256', '--poll-interval', '0.05', '--wait-timeout', '20'], cwd, env);
      expect(result.code, result.stderr).toBe(0);
      const { record, again } = roundTrip(cwd, 'docodec');
      expect(record.members.every((member) => member.hostname?.endsWith('.example.com'))).toBe(true);
      expect(again).toEqual(record);
    });
  });
});

describe('a gen-userdata re-run keeps what cluster.json recorded', () => {
  const BASE = ['gen-userdata', '--ips', IPS];

  it('key type, install mode and metrics stay without their flags; nothing is re-minted and nothing is said', async () => {
    const cwd = workDir();
    expect((await run([...BASE, '--key-type', 'ecdsa-p256', '--install', 'baked', '--no-metrics'], cwd)).code).toBe(0);
    const first = recordOf(cwd);
    const again = await run(BASE, cwd);
    expect(again.code, again.stderr).toBe(0);
    expect(again.stderr).not.toContain('note:');
    const second = recordOf(cwd);
    expect(second).toMatchObject({ keyType: 'ecdsa-p256', install: { mode: 'baked' }, metrics: false });
    // The same keys and certificates: an ECDSA folder is not re-minted as RSA.
    expect(second.members.map((member) => member.certificate)).toEqual(first.members.map((member) => member.certificate));
    expect(second.admin).toEqual(first.admin);
    expect(again.stdout).not.toMatch(/minted/);
  });

  it('an RSA key size stays, and goes with its key type', async () => {
    const cwd = workDir();
    expect((await run([...BASE, '--key-size', '2048'], cwd)).code).toBe(0);
    const again = await run(BASE, cwd);
    expect(again.code, again.stderr).toBe(0);
    expect(again.stderr).not.toContain('note:');
    expect(recordOf(cwd)).toMatchObject({ keyType: 'rsa', keySize: 2048 });
    const bigger = await run([...BASE, '--key-size', '3072'], cwd);
    expect(bigger.code, bigger.stderr).toBe(0);
    expect(bigger.stderr).toContain('note: key-size: 3072 replaces 2048, as out/etcd/cluster.json recorded\n');
    expect(recordOf(cwd)).toMatchObject({ keyType: 'rsa', keySize: 3072 });
  });

  it.each([
    ['key-type', ['--key-type', 'rsa', '--key-size', '2048'], 'key-type: rsa replaces ecdsa-p256', { keyType: 'rsa', keySize: 2048 }],
    ['install', ['--install', 'download'], 'install: download replaces baked', { install: { mode: 'download' } }],
    ['metrics by the config file', ['--config', 'cluster.yaml'], 'metrics: on replaces off', { metrics: true }],
  ])('a %s that changes says so on stderr', async (_what, flags, note, after) => {
    const cwd = workDir();
    writeFileSync(join(cwd, 'cluster.yaml'), 'metrics: true\n');
    expect((await run([...BASE, '--key-type', 'ecdsa-p256', '--install', 'baked', '--no-metrics'], cwd)).code).toBe(0);
    const changed = await run([...BASE, ...flags], cwd);
    expect(changed.code, changed.stderr).toBe(0);
    expect(changed.stderr).toContain(`note: ${note}, as out/etcd/cluster.json recorded\n`);
    expect(changed.stderr.match(/note:/g)).toHaveLength(1);
    expect(recordOf(cwd)).toMatchObject(after);
  });

  it('the quota stays without its flag, in cluster.json and every member\'s etcd config; a new one says so', async () => {
    const cwd = workDir();
    expect((await run([...BASE, '--key-type', 'ecdsa-p256', '--quota-backend-bytes', '4294967296'], cwd)).code).toBe(0);
    const again = await run(BASE, cwd);
    expect(again.code, again.stderr).toBe(0);
    expect(again.stderr).not.toContain('note:');
    expect(recordOf(cwd)).toMatchObject({ quotaBackendBytes: 4294967296 });
    expect(readFileSync(join(cwd, 'out', 'etcd', 'user-data', 'etcd2.yaml'), 'utf8')).toContain('quota-backend-bytes: 4294967296');
    const changed = await run([...BASE, '--quota-backend-bytes', '8589934592'], cwd);
    expect(changed.code, changed.stderr).toBe(0);
    expect(changed.stderr).toContain('note: quota-backend-bytes: 8589934592 replaces 4294967296, as out/etcd/cluster.json recorded\n');
    expect(recordOf(cwd)).toMatchObject({ quotaBackendBytes: 8589934592 });
  });

  it('--no-metrics on a folder with metrics says so', async () => {
    const cwd = workDir();
    expect((await run([...BASE, '--key-type', 'ecdsa-p256'], cwd)).code).toBe(0);
    const changed = await run([...BASE, '--no-metrics'], cwd);
    expect(changed.code, changed.stderr).toBe(0);
    expect(changed.stderr).toContain('note: metrics: off replaces on, as out/etcd/cluster.json recorded\n');
    expect(recordOf(cwd)).toMatchObject({ keyType: 'ecdsa-p256', metrics: false });
  });
});
