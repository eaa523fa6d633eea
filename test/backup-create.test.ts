/**
 * create-backup on loopback with real parts: real etcd 3.4 members, the built CLI streaming a
 * snapshot over the JSON gateway, and s3rver behind a front that checks signature v4. The object
 * it uploads is named and tagged as the nodes' uploads are, `backups --json` lists it with its
 * checksum, retention keeps the cluster's newest N, and `restore` makes new members from it. The
 * checker refuses a real snapshot cut short or with its bytes altered.
 */
import { createHash } from 'node:crypto';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { GetObjectCommand, HeadObjectCommand, S3Client } from '@aws-sdk/client-s3';
import { parse as parseYaml } from 'yaml';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { checkSnapshotBytes } from '../src/backup/snapshot.js';
import { NODE_PATHS } from '../src/plan.js';
import { ETCD_BIN, ETCDCTL_BIN, rewriteNodePaths, runProcess } from './support/local-cluster.js';
import { LoopbackCluster } from './support/loopback-cluster.js';
import { outputSchemaErrors } from './support/output-schemas.js';
import { startCheckedS3, type CheckedS3 } from './support/s3-sigv4.js';

const canRun = existsSync(ETCD_BIN) && existsSync(ETCDCTL_BIN) && process.getuid?.() === 0;
const BUCKET = 'backups';
const PREFIX = 'etcd/';
const MEMBERS = ['etcd1', 'etcd2', 'etcd3'];
const KEYS = 30;
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

interface Created {
  dryRun: boolean;
  member: { name: string; endpoint: string };
  snapshot: { revision: number; time: string; size: number; sha256: string } | null;
  bucket: { url: string; endpoint: string; key: string | null; pruned: string[] } | null;
  file: string | null;
}

describe.runIf(canRun)('create-backup: a snapshot now, from the workstation, into the bucket', () => {
  let server: CheckedS3;
  let cluster: LoopbackCluster;
  let s3: S3Client;
  let first: Created;
  let snapshotBytes: Buffer;

  const create = async (): Promise<Created> => {
    const run = await cluster.cli(['create-backup', '--json']);
    expect(run.code, run.stderr).toBe(0);
    const document = JSON.parse(run.stdout) as Created;
    expect(outputSchemaErrors('create-backup', document)).toEqual([]);
    return document;
  };

  const objectBytes = async (key: string): Promise<Buffer> => {
    const got = await s3.send(new GetObjectCommand({ Bucket: BUCKET, Key: key }));
    return Buffer.from(await got.Body!.transformToByteArray());
  };

  beforeAll(async () => {
    server = await startCheckedS3(join(process.env.TMPDIR ?? '/tmp', `s3rver-create-${process.pid}-${Date.now()}`), [BUCKET]);
    const env = { SPACES_ACCESS_KEY_ID: server.accessKeyId, SPACES_SECRET_ACCESS_KEY: server.secretAccessKey };
    s3 = new S3Client({ endpoint: server.url, region: 'us-east-1', forcePathStyle: true, credentials: { accessKeyId: server.accessKeyId, secretAccessKey: server.secretAccessKey } });
    cluster = await LoopbackCluster.create('ip', ['--backup-url', `s3://${BUCKET}/${PREFIX}`, '--backup-endpoint', server.url, '--backup-retain', '2'], { cliEnv: env });
    await cluster.startAll(MEMBERS);
    for (let index = 0; index < KEYS; index++) {
      const put = await cluster.etcdctl(['put', `/app/key-${index}`, `value-${index}`], [cluster.endpoint(1 + (index % 3))]);
      expect(put.code, put.stderr).toBe(0);
    }
  }, 180_000);

  afterAll(async () => {
    s3?.destroy();
    await cluster?.cleanup();
    await server?.close();
  });

  it('a bad --timeout is a usage error naming the flag and value; nothing is taken or written', async () => {
    for (const value of ['0', 'soon', '3601']) {
      const run = await cluster.cli(['create-backup', '--timeout', value]);
      expect(run.code).toBe(2);
      expect(run.stderr).toContain(`timeout: "${value}" is not a number of seconds above 0 and at most 3600`);
    }
    expect(existsSync(join(cluster.outDir, 'backups'))).toBe(false);
  });

  it('--dry-run names the member and the bucket, and uploads nothing', async () => {
    const run = await cluster.cli(['create-backup', '--dry-run']);
    expect(run.code, run.stderr).toBe(0);
    expect(run.stdout).toMatch(new RegExp(`would stream a snapshot from etcd\\d .* store it in s3://${BUCKET}/${PREFIX} at ${server.url} \\(keeps the newest 2\\)`));
    const listed = await cluster.cli(['backups', '--json']);
    expect((JSON.parse(listed.stdout) as { snapshots: unknown[] }).snapshots).toEqual([]);
  });

  it('uploads a checked snapshot named and tagged as the nodes do; backups --json lists it with its checksum', async () => {
    first = await create();
    expect(first.dryRun).toBe(false);
    expect(first.file).toBeNull();
    const key = first.bucket!.key!;
    expect(key).toMatch(new RegExp(`^${PREFIX}\\d{8}T\\d{6}Z-${first.member.name}-rev${first.snapshot!.revision}\\.db$`));
    expect(first.snapshot!.revision).toBeGreaterThanOrEqual(KEYS);
    snapshotBytes = await objectBytes(key);
    expect(snapshotBytes.length).toBe(first.snapshot!.size);
    expect(createHash('sha256').update(snapshotBytes).digest('hex')).toBe(first.snapshot!.sha256);
    // etcd's own trailer is in the file, as etcdctl snapshot save keeps it: the last 32 bytes are the SHA-256 of the rest.
    expect(snapshotBytes.subarray(-32).toString('hex')).toBe(createHash('sha256').update(snapshotBytes.subarray(0, -32)).digest('hex'));
    const head = await s3.send(new HeadObjectCommand({ Bucket: BUCKET, Key: key }));
    expect(head.Metadata).toEqual({ sha256: first.snapshot!.sha256, member: first.member.name, revision: String(first.snapshot!.revision) });

    const listed = await cluster.cli(['backups', '--json']);
    expect(listed.code, listed.stderr).toBe(0);
    const report = JSON.parse(listed.stdout) as { snapshots: { key: string; member: string; revision: number; sha256?: string }[]; skipped: number };
    expect(report.skipped).toBe(0);
    expect(report.snapshots).toEqual([expect.objectContaining({ key, member: first.member.name, revision: first.snapshot!.revision, sha256: first.snapshot!.sha256 })]);
    // Nothing of the stream is left in the folder: with a bucket the file is only staged there.
    const left = (await runProcess('sh', ['-c', `ls -A ${join(cluster.outDir, 'backups')} 2>/dev/null || true`])).stdout.trim();
    expect(left).toBe('');
  });

  it("etcdctl reads it back: real etcdctl's snapshot status gives the revision the name carries, or later", async () => {
    const file = join(cluster.workDir, 'downloaded.db');
    writeFileSync(file, snapshotBytes, { mode: 0o600 });
    const status = await runProcess(ETCDCTL_BIN, ['snapshot', 'status', file, '-w', 'json'], 30_000);
    expect(status.code, status.stderr).toBe(0);
    expect((JSON.parse(status.stdout) as { revision: number }).revision).toBeGreaterThanOrEqual(first.snapshot!.revision);
  });

  it('the checker refuses a real snapshot cut short or with bytes altered, and accepts it whole', () => {
    expect(checkSnapshotBytes(snapshotBytes)).toMatchObject({ ok: true, size: snapshotBytes.length });
    // Cut at a 512-byte boundary plus 32: the size still looks like a snapshot, the hash does not match.
    const cut = snapshotBytes.subarray(0, snapshotBytes.length - 512);
    expect(checkSnapshotBytes(cut)).toMatchObject({ ok: false, problem: expect.stringContaining('damaged') });
    // Cut anywhere else: no whole snapshot.
    expect(checkSnapshotBytes(snapshotBytes.subarray(0, 4096 * 2))).toMatchObject({ ok: false, problem: expect.stringContaining('no whole snapshot') });
    const lastAltered = Buffer.from(snapshotBytes);
    lastAltered[lastAltered.length - 1]! ^= 0xff;
    expect(checkSnapshotBytes(lastAltered)).toMatchObject({ ok: false, problem: expect.stringContaining('damaged') });
    const pageAltered = Buffer.from(snapshotBytes);
    pageAltered[5000]! ^= 0x01;
    expect(checkSnapshotBytes(pageAltered)).toMatchObject({ ok: false });
  });

  it("retention: the cluster's --backup-retain 2 keeps the two newest; the oldest is pruned", async () => {
    await sleep(1100); // names stamp the second
    const second = await create();
    await sleep(1100);
    const third = await create();
    expect(second.bucket!.pruned).toEqual([]);
    expect(third.bucket!.pruned).toEqual([first.bucket!.key]);
    const listed = JSON.parse((await cluster.cli(['backups', '--json'])).stdout) as { snapshots: { key: string }[] };
    expect(listed.snapshots.map((snapshot) => snapshot.key)).toEqual([third.bucket!.key, second.bucket!.key]);
    first = third;
  }, 60_000);

  it('restore --snapshot <local file>: a kept snapshot is checked, uploaded with its checksum, and chosen; a damaged one is refused and not uploaded', async () => {
    const name = '20200101T000000Z-etcd1-rev5.db';
    const damagedName = '20200101T000001Z-etcd1-rev5.db';
    writeFileSync(join(cluster.workDir, name), snapshotBytes, { mode: 0o600 });
    const damaged = Buffer.from(snapshotBytes);
    damaged[damaged.length - 40]! ^= 0x01;
    writeFileSync(join(cluster.workDir, damagedName), damaged, { mode: 0o600 });
    const restoreArgs = (file: string, cluster_: string) => ['restore', '--cluster-name', cluster_, '--snapshot', file, '--backup-url', `s3://${BUCKET}/${PREFIX}`, '--backup-endpoint', server.url, '--ips', '127.0.0.1', '--etcd-version', 'v3.4.23', '--key-size', '2048'];

    const refused = await cluster.cli(restoreArgs(damagedName, 'damaged'));
    expect(refused.code).toBe(1);
    expect(refused.stderr).toContain(`[check] snapshot: ${join(cluster.workDir, damagedName)} is refused`);
    expect(existsSync(join(cluster.workDir, 'out', 'damaged'))).toBe(false);

    const restored = await cluster.cli(restoreArgs(name, 'fromfile'));
    expect(restored.code, restored.stderr).toBe(0);
    expect(restored.stderr).toContain(`restore: uploaded ${PREFIX}${name} (checked) from ${name}`);
    expect(restored.stderr).toContain(`restore: snapshot ${PREFIX}${name} (member etcd1, revision 5`);
    const head = await s3.send(new HeadObjectCommand({ Bucket: BUCKET, Key: `${PREFIX}${name}` }));
    expect(head.Metadata?.sha256).toBe(createHash('sha256').update(snapshotBytes).digest('hex'));
    const keys = (JSON.parse((await cluster.cli(['backups', '--json'])).stdout) as { snapshots: { key: string }[] }).snapshots.map((snapshot) => snapshot.key);
    expect(keys).not.toContain(`${PREFIX}${damagedName}`);
    const record = JSON.parse(readFileSync(join(cluster.workDir, 'out', 'fromfile', 'cluster.json'), 'utf8')) as { restoredFrom: { source: string; sha256: string } };
    expect(record.restoredFrom).toMatchObject({ source: `s3://${BUCKET}/${PREFIX}${name}`, sha256: head.Metadata!.sha256 });
  });

  it('restore takes it: new members restore the snapshot create-backup uploaded and hold every key', async () => {
    for (const name of MEMBERS) await cluster.stop(name);
    // With no member up there is nothing to stream: exit 1 naming why, and the bucket is as it was.
    const before = (JSON.parse((await cluster.cli(['backups', '--json'])).stdout) as { snapshots: unknown[] }).snapshots;
    const refused = await cluster.cli(['create-backup']);
    expect(refused.code).toBe(1);
    expect(refused.stderr).toContain('[preflight] no healthy member to take a snapshot from');
    expect((JSON.parse((await cluster.cli(['backups', '--json'])).stdout) as { snapshots: unknown[] }).snapshots).toEqual(before);
    const ips = MEMBERS.map((_, index) => cluster.ip(index + 1)).join(',');
    const restored = await cluster.cli(['restore', '--backup-url', `s3://${BUCKET}/${PREFIX}`, '--backup-endpoint', server.url, '--ips', ips, '--etcd-version', 'v3.4.23', '--key-size', '2048']);
    expect(restored.code, restored.stderr).toBe(0);
    expect(restored.stderr).toContain(`restore: snapshot ${first.bucket!.key} (member ${first.member.name}, revision ${first.snapshot!.revision}`);
    for (const name of MEMBERS) {
      await cluster.provision(name);
      const document = parseYaml(cluster.userData(name)) as { runcmd: [string, string, string][] };
      const line = document.runcmd[0]![2].split('\n').find((candidate) => candidate.startsWith(NODE_PATHS.restoreScript))!.replace(`--user ${NODE_PATHS.user}`, '--user root');
      const result = await runProcess('sh', ['-c', rewriteNodePaths(line, cluster.root(name))], 120_000);
      expect(result.code, result.stderr).toBe(0);
      expect(result.stdout).toContain(`restored member ${name} into`);
    }
    for (const name of MEMBERS) await cluster.start(name);
    await cluster.waitHealthy(MEMBERS);
    const got = await cluster.etcdctl(['get', '/app/', '--prefix', '--keys-only'], [cluster.endpoint(1)]);
    expect(got.code, got.stderr).toBe(0);
    expect(got.stdout.split('\n').filter((key) => key.startsWith('/app/'))).toHaveLength(KEYS);
  }, 180_000);
});
