/**
 * Every command's --json (or -o json) through the built CLI, checked against its schema in
 * schema/output/: stdout is exactly one JSON document, and it is what the schema says. Real etcd
 * members for the day-2 commands, the fake DigitalOcean API for the droplet commands, a checked S3
 * for backups and restore.
 */
import { createHash, randomBytes } from 'node:crypto';
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { PutObjectCommand, S3Client } from '@aws-sdk/client-s3';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { COMMANDS } from '../src/cli.js';
import { folderSnapshot, REPO_ROOT, runCli, tempDirsRemovedAfterAll, type CliRun } from './support/cli.js';
import { OUTPUT_SCHEMA_DIR as SCHEMA_DIR, outputSchema as schemaOf, outputSchemaErrors } from './support/output-schemas.js';
import { LoopbackCluster } from './support/loopback-cluster.js';
import { startFakeDigitalOcean, type FakeDigitalOcean } from './digitalocean/fake-api.js';
import { startCheckedS3, type CheckedS3 } from './support/s3-sigv4.js';

const newDir = tempDirsRemovedAfterAll('json-output');
const KEYS = ['--key-size', '2048'];


/** Every command that was checked against its schema, to prove below that none was left out. */
const checked = new Set<string>();

/** The run's stdout as one JSON document, valid against the command's schema. */
function documentOf(command: string, run: CliRun, code = 0): Record<string, unknown> {
  expect(run.code, run.stderr).toBe(code);
  const document = JSON.parse(run.stdout) as Record<string, unknown>; // the whole of stdout: nothing else may be there
  expect(outputSchemaErrors(command, document), `${command} --json against its schema:\n${run.stdout}`).toEqual([]);
  checked.add(command);
  return document;
}

describe('--json output of every command, against schema/output/<command>.schema.json', () => {
  it('version, --version and completion', async () => {
    const dir = newDir();
    const version = documentOf('version', await runCli(['version', '--json'], dir));
    const pkg = JSON.parse(readFileSync(join(REPO_ROOT, 'package.json'), 'utf8')) as { version: string };
    expect(version).toEqual({ version: pkg.version, node: process.version, defaultEtcdVersion: expect.stringMatching(/^v3\./) });
    expect(documentOf('version', await runCli(['health', '--version', '-o', 'json'], dir))).toEqual(version);
    expect(documentOf('version', await runCli(['--version', '--json'], dir))).toEqual(version);
    expect(await runCli(['roll', '--version'], dir)).toEqual({ code: 0, stdout: `${pkg.version}\n`, stderr: '' });
    const completion = documentOf('completion', await runCli(['completion', 'fish', '--json'], dir));
    expect(completion.shell).toBe('fish');
  });

  it('gen-userdata, and the schema rejects a document that is not its shape', async () => {
    const dir = newDir();
    const run = await runCli(['gen-userdata', '--ips', '10.0.0.1,10.0.0.2,10.0.0.3', '--json', ...KEYS], dir);
    const document = documentOf('gen-userdata', run);
    expect(document).toMatchObject({ clusterName: 'etcd', folder: 'out/etcd', endpoints: ['https://10.0.0.1:2379', 'https://10.0.0.2:2379', 'https://10.0.0.3:2379'] });
    expect(run.stderr).not.toContain('Next:');
    // The schemas are strict: an extra or a missing field fails.
    expect(schemaOf('gen-userdata')!({ ...document, extra: 1 })).toBe(false);
    expect(schemaOf('gen-userdata')!({ ...document, members: undefined })).toBe(false);
    // -o json is the same; -o text/table the default text; anything else a usage error naming it.
    documentOf('gen-userdata', await runCli(['gen-userdata', '--ips', '10.0.0.1,10.0.0.2,10.0.0.3', '-o', 'json', ...KEYS], dir));
    const text = await runCli(['gen-userdata', '--ips', '10.0.0.1,10.0.0.2,10.0.0.3', '--output', 'table', ...KEYS], dir);
    expect(text.code, text.stderr).toBe(0);
    expect(text.stdout).toMatch(/^Cluster etcd: 3 member\(s\)/);
    const bad = await runCli(['gen-userdata', '--ips', '10.0.0.1', '-o', 'yaml'], dir);
    expect(bad.code).toBe(2);
    expect(bad.stderr).toContain('[parse] output: "yaml" is not an output format (json, text or table)');
    const print = await runCli(['gen-userdata', '--ips', '10.0.0.1,10.0.0.2,10.0.0.3', '--print', 'etcd1', '--json', ...KEYS], dir);
    expect(print.code).toBe(2);
    expect(print.stdout).toBe('');
  });

  describe('day-2 commands on a real running cluster', () => {
    let cluster: LoopbackCluster;

    beforeAll(async () => {
      cluster = await LoopbackCluster.create('ip');
      await cluster.startAll(['etcd1', 'etcd2', 'etcd3']);
    }, 120_000);
    afterAll(async () => cluster?.cleanup());

    it('health', async () => {
      const report = documentOf('health', await cluster.cli(['health', '--json']));
      expect(report.healthy).toBe(true);
      documentOf('health', await cluster.cli(['health', '-o', 'json']));
    });

    it('defrag, and its dry run', async () => {
      const dry = documentOf('defrag', await cluster.cli(['defrag', '--dry-run', '--json']));
      expect(dry).toMatchObject({ dryRun: true, disarmed: [], leftArmed: [] });
      const done = documentOf('defrag', await cluster.cli(['defrag', '--json']));
      expect(done).toMatchObject({ dryRun: false, compactedTo: expect.stringMatching(/^\d+$/) });
      expect((done.members as unknown[]).length).toBe(3);
    });

    it('create-backup (no bucket: a file in the folder), and its dry run', async () => {
      const dry = documentOf('create-backup', await cluster.cli(['create-backup', '--dry-run', '--json']));
      expect(dry).toMatchObject({ dryRun: true, snapshot: null, bucket: null, file: null });
      const done = documentOf('create-backup', await cluster.cli(['create-backup', '--json']));
      expect(done).toMatchObject({ dryRun: false, bucket: null, file: expect.stringMatching(/^out\/etcd\/backups\/\d{8}T\d{6}Z-etcd\d-rev\d+\.db$/) });
    });

    it('the --dry-run of add-member, remove-member, renew-certs and roll: a document, and nothing written', async () => {
      const before = folderSnapshot(cluster.outDir);
      const added = documentOf('add-member', await cluster.cli(['add-member', '--ip', cluster.ip(4), '--dry-run', '--json']));
      expect(added).toMatchObject({ dryRun: true, added: { name: 'etcd4', host: cluster.ip(4), learner: true } });
      const removed = documentOf('remove-member', await cluster.cli(['remove-member', '--name', 'etcd3', '--dry-run', '--json']));
      expect(removed).toMatchObject({ dryRun: true, removed: { name: 'etcd3' }, members: ['etcd1', 'etcd2'] });
      const renewed = documentOf('renew-certs', await cluster.cli(['renew-certs', '--dry-run', '--json']));
      expect(renewed).toMatchObject({ dryRun: true, keys: 'kept' });
      expect((renewed.members as unknown[]).length).toBe(3);
      const rolled = documentOf('roll', await cluster.cli(['roll', '--ips', [5, 6, 7].map((n) => cluster.ip(n)).join(','), '--dry-run', '--json']));
      expect(rolled).toMatchObject({ dryRun: true, operation: 'roll', renewCredentials: { done: false, certificates: [expect.stringMatching(/pki\/admin\.crt$/)], kubernetes: null } });
      // A roll of some members only keeps the admin and client certificates.
      const partial = documentOf('roll', await cluster.cli(['roll', '--member', 'etcd2', '--ips', cluster.ip(5), '--dry-run', '--json']));
      expect(partial).toMatchObject({ dryRun: true, renewCredentials: null });
      expect(folderSnapshot(cluster.outDir)).toEqual(before);
    });

    it('renew-certs, add-member and remove-member for real', async () => {
      const renewed = documentOf('renew-certs', await cluster.cli(['renew-certs', '--via-ssh-script', '--member', 'etcd2', '--json']));
      expect(renewed).toMatchObject({ dryRun: false, members: [{ name: 'etcd2' }], admin: null });
      // A learner that never starts: added, then removed again.
      const added = documentOf('add-member', await cluster.cli(['add-member', '--ip', cluster.ip(4), '--json']));
      expect(added).toMatchObject({ dryRun: false, added: { name: 'etcd4', learner: true }, members: ['etcd1', 'etcd2', 'etcd3', 'etcd4'] });
      const removed = documentOf('remove-member', await cluster.cli(['remove-member', '--name', 'etcd4', '--yes', '--json']));
      expect(removed).toMatchObject({ dryRun: false, removed: { name: 'etcd4', id: (added.added as { id: string }).id }, members: ['etcd1', 'etcd2', 'etcd3'] });
    });

    it('repair --dry-run of a dead member', async () => {
      await cluster.stop('etcd3');
      try {
        const repaired = documentOf('repair', await cluster.cli(['repair', '--name', 'etcd3', '--ip', cluster.ip(8), '--dry-run', '--json', '--timeout', '2']));
        expect(repaired).toMatchObject({ dryRun: true, operation: 'repair', steps: [{ old: 'etcd3', replacement: { host: cluster.ip(8) } }], renewCredentials: null });
      } finally {
        await cluster.start('etcd3');
        await cluster.waitHealthy(['etcd3']);
      }
    });
  });

  describe('create-droplets and destroy-droplets on the fake DigitalOcean API', () => {
    let fake: FakeDigitalOcean;
    beforeAll(async () => {
      fake = await startFakeDigitalOcean({ domains: ['example.com'] });
    });
    afterAll(async () => fake?.close());

    it('dry runs and real runs; DIGITALOCEAN_ACCESS_TOKEN is taken as doctl names it', async () => {
      const dir = newDir();
      const env = { DIGITALOCEAN_ACCESS_TOKEN: fake.token, DIGITALOCEAN_API_URL: fake.url };
      const args = ['create-droplets', '--domain', 'example.com', '--region', 'ams3', '--cluster-name', 'json', '--poll-interval', '0.05', ...KEYS];
      const planned = documentOf('create-droplets', await runCli([...args, '--dry-run', '--json'], dir, env));
      expect(planned.dryRun).toBe(true);
      expect((planned.plannedCalls as unknown[]).length).toBeGreaterThan(0);
      expect(fake.droplets.size).toBe(0);
      const created = documentOf('create-droplets', await runCli([...args, '-o', 'json'], dir, env));
      expect(created).toMatchObject({ dryRun: false, plannedCalls: [] });
      expect(fake.droplets.size).toBe(3);
      const opened = documentOf('firewall', await runCli(['firewall', '--cluster-name', 'json', '--trusted-source', '203.0.113.7/32', '--json'], dir, env));
      expect(opened).toMatchObject({ dryRun: false, clusterName: 'json', firewall: { outcome: 'updated', access: { trustedSources: ['203.0.113.7/32'], sshFrom: [] } } });
      const wouldDestroy = documentOf('destroy-droplets', await runCli(['destroy-droplets', '--cluster-name', 'json', '--dry-run', '--json'], dir, env));
      expect(wouldDestroy).toMatchObject({ dryRun: true, deleted: false });
      const destroyed = documentOf('destroy-droplets', await runCli(['destroy-droplets', '--cluster-name', 'json', '--yes', '--json', '--wait-timeout', '5'], dir, env));
      expect(destroyed).toMatchObject({ dryRun: false, deleted: true });
      expect((destroyed.droplets as unknown[]).length).toBe(3);
    });
  });

  describe('backups and restore on a checked S3', () => {
    let server: CheckedS3;
    let env: Record<string, string>;
    const BUCKET = 'acme-etcd';

    beforeAll(async () => {
      server = await startCheckedS3(join(newDir(), 's3rver'), [BUCKET]);
      env = { SPACES_ACCESS_KEY_ID: server.accessKeyId, SPACES_SECRET_ACCESS_KEY: server.secretAccessKey };
      const body = randomBytes(1024);
      const client = new S3Client({ endpoint: server.url, region: 'us-east-1', forcePathStyle: true, credentials: { accessKeyId: server.accessKeyId, secretAccessKey: server.secretAccessKey } });
      await client.send(
        new PutObjectCommand({ Bucket: BUCKET, Key: 'prod/20261203T080000Z-etcd2-rev4711.db', Body: body, Metadata: { sha256: createHash('sha256').update(body).digest('hex'), member: 'etcd2', revision: '4711' } }),
      );
      client.destroy();
    });
    afterAll(async () => server?.close());

    it('backups lists, restore makes the cluster', async () => {
      const dir = newDir();
      const target = ['--backup-url', `s3://${BUCKET}/prod`, '--backup-endpoint', server.url];
      const listed = documentOf('backups', await runCli(['backups', ...target, '--json'], dir, env));
      expect(listed).toMatchObject({ url: `s3://${BUCKET}/prod/`, snapshots: [{ member: 'etcd2', revision: 4711 }] });
      const restored = documentOf('restore', await runCli(['restore', ...target, '--ips', '10.0.0.1,10.0.0.2,10.0.0.3', '--json', ...KEYS], dir, env));
      expect(restored).toMatchObject({ restoredFrom: { source: `s3://${BUCKET}/prod/20261203T080000Z-etcd2-rev4711.db`, revision: 4711 } });
    });
  });

  afterAll(() => {
    // Every command of the table has a schema, and each was checked here.
    const commands = COMMANDS.map((command) => command.name).sort();
    expect(readdirSync(SCHEMA_DIR).map((file) => file.replace('.schema.json', '')).sort()).toEqual(commands);
    expect([...checked].sort()).toEqual(commands);
  });
});
