/**
 * Off-site backup and restore, end to end on loopback with real parts: the built CLI, real etcd and
 * etcdctl, real curl, and s3rver behind a front that checks signature v4 (presigned URLs too).
 * A cluster made with --backup-url writes data; its units' own command lines (etcd-snapshot's ExecStart, then
 * etcd-backup-upload's with the credential systemd would hand it) save and upload a snapshot;
 * `backups --json` lists it; the cluster is destroyed; `restore` writes new user-data whose
 * first-boot line (runcmd) restores the snapshot on each new member; the new cluster is healthy,
 * has every key and a new cluster ID. A tampered snapshot and an existing data dir stop the restore.
 */
import { createHash } from 'node:crypto';
import { chmodSync, existsSync, mkdirSync, readFileSync, readdirSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { PutObjectCommand, S3Client } from '@aws-sdk/client-s3';
import { parse as parseYaml } from 'yaml';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { NODE_PATHS } from '../src/plan.js';
import { ETCD_BIN, ETCDCTL_BIN, rewriteNodePaths, runProcess, writeFilesOf } from './support/local-cluster.js';
import { LoopbackCluster } from './support/loopback-cluster.js';
import { startCheckedS3, type CheckedS3 } from './support/s3-sigv4.js';

const canRun = existsSync(ETCD_BIN) && existsSync(ETCDCTL_BIN) && process.getuid?.() === 0;
const BUCKET = 'backups';
const PREFIX = 'etcd/';
const MEMBERS = ['etcd1', 'etcd2', 'etcd3'];
const KEYS = 40;

interface Status {
  Endpoint: string;
  Status: { leader: number; header: { member_id: number; cluster_id: number } };
}

/** The runcmd shell script of a cloud-config, as its lines. */
function runcmdLines(userData: string): string[] {
  const document = parseYaml(userData) as { runcmd: [string, string, string][] };
  return document.runcmd[0]![2].split('\n');
}

/** A unit's `Key=` value. */
function unitValue(unit: string, key: string): string {
  const line = unit.split('\n').find((candidate) => candidate.startsWith(`${key}=`));
  if (!line) throw new Error(`no ${key}= in the unit`);
  return line.slice(key.length + 1);
}

describe.runIf(canRun)('off-site backup and restore through a real S3-compatible server', () => {
  let server: CheckedS3;
  let cluster: LoopbackCluster;
  let env: Record<string, string>;
  let leader: string;
  let oldClusterId: string;
  let uploadedSha: string;
  let argvLog: string;
  let shimDir: string;

  const endpoints = () => MEMBERS.map((_, index) => cluster.endpoint(index + 1));
  const statuses = async (): Promise<Status[]> => {
    const status = await cluster.etcdctl(['endpoint', 'status', '-w', 'json'], endpoints());
    expect(status.code, status.stderr).toBe(0);
    return JSON.parse(status.stdout) as Status[];
  };

  /**
   * Runs a command line of the member's units as systemd would, with node paths under its root,
   * Debian's etcdctl, `%d` (the credentials directory) holding the root-only key file, and a curl
   * on PATH that records every argv it gets.
   */
  const runUnitLine = async (name: string, line: string) => {
    const root = cluster.root(name);
    mkdirSync(join(root, NODE_PATHS.backupDir), { recursive: true, mode: 0o700 }); // tmpfiles.d's job on a node
    const credentialsDir = join(root, 'run-credentials');
    mkdirSync(credentialsDir, { recursive: true });
    writeFileSync(join(credentialsDir, 'backup'), readFileSync(join(root, NODE_PATHS.backupCredentials)), { mode: 0o400 });
    const words = rewriteNodePaths(line, root).replace('%d/', `${credentialsDir}/`).split(/\s+/);
    return runProcess('env', [`PATH=${shimDir}:/usr/sbin:/usr/bin:/sbin:/bin`, 'sh', ...words], 120_000);
  };

  beforeAll(async () => {
    server = await startCheckedS3(join(process.env.TMPDIR ?? '/tmp', `s3rver-${process.pid}-${Date.now()}`), [BUCKET]);
    env = { SPACES_ACCESS_KEY_ID: server.accessKeyId, SPACES_SECRET_ACCESS_KEY: server.secretAccessKey };
    cluster = await LoopbackCluster.create('ip', ['--backup-url', `s3://${BUCKET}/${PREFIX}`, '--backup-endpoint', server.url, '--backup-retain', '5'], { cliEnv: env });
    shimDir = join(cluster.workDir, 'shim');
    argvLog = join(cluster.workDir, 'curl-argv.log');
    mkdirSync(shimDir, { recursive: true });
    writeFileSync(join(shimDir, 'curl'), `#!/bin/sh\nprintf '%s\\n' "$*" >> ${argvLog}\nexec /usr/bin/curl "$@"\n`);
    chmodSync(join(shimDir, 'curl'), 0o755);
    await cluster.startAll(MEMBERS);
    for (let index = 0; index < KEYS; index++) {
      const put = await cluster.etcdctl(['put', `/app/key-${index}`, `value-${index}`], [cluster.endpoint(1 + (index % 3))]);
      expect(put.code, put.stderr).toBe(0);
    }
    const all = await statuses();
    const leading = all.find((entry) => String(entry.Status.leader) === String(entry.Status.header.member_id))!;
    leader = MEMBERS[endpoints().indexOf(leading.Endpoint)]!;
    oldClusterId = /"cluster_id":(\d+)/.exec((await cluster.etcdctl(['endpoint', 'status', '-w', 'json'], [leading.Endpoint])).stdout)![1]!;
  }, 180_000);

  afterAll(async () => {
    await cluster?.cleanup();
    await server?.close();
  });

  it('puts the key pair on each node only as a root-only file, and never in cluster.json or a command line', () => {
    for (const name of MEMBERS) {
      const files = writeFilesOf(cluster.userData(name));
      const credentials = files.get(NODE_PATHS.backupCredentials);
      expect(credentials?.permissions).toBe('0600');
      expect(credentials?.content).toBe(`access_key_id=${server.accessKeyId}\nsecret_access_key=${server.secretAccessKey}\n`);
      expect(unitValue(files.get(NODE_PATHS.snapshotService)!.content, 'OnSuccess')).toBe('etcd-backup-upload.service');
      const upload = files.get(NODE_PATHS.backupUploadService)!.content;
      expect(unitValue(upload, 'LoadCredential')).toBe(`backup:${NODE_PATHS.backupCredentials}`);
      expect(unitValue(upload, 'User')).toBe(NODE_PATHS.user);
      expect(unitValue(upload, 'ExecStart')).not.toContain(server.secretAccessKey);
    }
    const record = readFileSync(join(cluster.outDir, 'cluster.json'), 'utf8');
    expect(JSON.parse(record).backup).toEqual({ url: `s3://${BUCKET}/${PREFIX}`, endpoint: server.url, region: 'us-east-1', retain: 5 });
    expect(record).not.toContain(server.secretAccessKey);
    expect(statSync(join(cluster.outDir, 'backup-credentials')).mode & 0o777).toBe(0o600);
  });

  it("the units' own command lines save (etcd-snapshot) and upload (etcd-backup-upload) on the leader only; no curl argv holds the secret", async () => {
    for (const name of MEMBERS) {
      const files = writeFilesOf(cluster.userData(name));
      const saved = await runUnitLine(name, unitValue(files.get(NODE_PATHS.snapshotService)!.content, 'ExecStart'));
      expect(saved.code, saved.stderr).toBe(0);
      const uploaded = await runUnitLine(name, unitValue(files.get(NODE_PATHS.backupUploadService)!.content, 'ExecStart'));
      expect(uploaded.code, uploaded.stderr + uploaded.stdout).toBe(0);
      if (name === leader) {
        expect(uploaded.stdout).toMatch(new RegExp(`uploaded etcd-${name}-\\d{8}T\\d{6}Z\\.db \\(revision \\d+, sha256 [0-9a-f]{64}\\)`));
        uploadedSha = /sha256 ([0-9a-f]{64})/.exec(uploaded.stdout)![1]!;
        const local = readdirSync(join(cluster.root(name), NODE_PATHS.backupDir)).filter((file) => file.endsWith('.db'));
        expect(local).toHaveLength(1);
        const bytes = readFileSync(join(cluster.root(name), NODE_PATHS.backupDir, local[0]!));
        expect(createHash('sha256').update(bytes).digest('hex')).toBe(uploadedSha);
      } else {
        expect(uploaded.stdout).toContain(`member ${name} is not the leader now`);
      }
    }
    const argv = readFileSync(argvLog, 'utf8');
    expect(argv).toContain('--aws-sigv4');
    expect(argv).not.toContain(server.secretAccessKey);
    expect(server.refused).toEqual([]);
  }, 180_000);

  it('backups --json lists what the bucket holds: member, revision, size and the checksum', async () => {
    const listed = await cluster.cli(['backups', '--json']);
    expect(listed.code, listed.stderr).toBe(0);
    const report = JSON.parse(listed.stdout) as { url: string; snapshots: { key: string; member: string; revision: number; size: number; sha256: string }[] };
    expect(report.url).toBe(`s3://${BUCKET}/${PREFIX}`);
    expect(report.snapshots).toHaveLength(1);
    expect(report.snapshots[0]).toMatchObject({ member: leader, sha256: uploadedSha });
    expect(report.snapshots[0]!.key).toMatch(new RegExp(`^${PREFIX}\\d{8}T\\d{6}Z-${leader}-rev\\d+\\.db$`));
    expect(report.snapshots[0]!.revision).toBeGreaterThanOrEqual(KEYS);
    expect(listed.stdout + listed.stderr).not.toContain(server.secretAccessKey);
    const table = await cluster.cli(['backups']);
    expect(table.stdout).toContain(uploadedSha);
  });

  it('restore: after the cluster is destroyed, new members restore the snapshot and form a new cluster with the data', async () => {
    for (const name of MEMBERS) await cluster.stop(name);
    // The machines are gone: a restored member starts from a fresh disk.
    const restored = await cluster.cli(['restore', '--backup-url', `s3://${BUCKET}/${PREFIX}`, '--backup-endpoint', server.url, '--ips', endpoints().map((url) => new URL(url).hostname).join(','), '--etcd-version', 'v3.4.23', '--key-size', '2048']);
    expect(restored.code, restored.stderr).toBe(0);
    expect(restored.stderr).toMatch(/restore: snapshot etcd\/\d{8}T\d{6}Z-etcd\d-rev\d+\.db/);
    expect(restored.stdout + restored.stderr).not.toContain('X-Amz-Signature');
    const record = JSON.parse(readFileSync(join(cluster.outDir, 'cluster.json'), 'utf8')) as { restoredFrom: { sha256: string; source: string }; initialClusterToken: string };
    expect(record.restoredFrom.sha256).toBe(uploadedSha);
    expect(JSON.stringify(record)).not.toContain('X-Amz-Signature');

    for (const name of MEMBERS) {
      await cluster.provision(name);
      const userData = cluster.userData(name);
      const urlFile = writeFilesOf(userData).get(NODE_PATHS.restoreUrlFile);
      expect(urlFile?.permissions).toBe('0600');
      expect(urlFile?.content).toMatch(/X-Amz-Signature=[0-9a-f]{64}/);
      const lines = runcmdLines(userData);
      const restoreLine = lines.findIndex((line) => line.startsWith(NODE_PATHS.restoreScript));
      // Before etcd is enabled or started, under set -eu: a failed restore leaves etcd off.
      expect(lines[0]).toBe('set -eu');
      expect(restoreLine).toBeGreaterThan(0);
      expect(restoreLine).toBeLessThan(lines.indexOf('systemctl enable --no-reload etcd.service'));
      const line = lines[restoreLine]!.replace(`--user ${NODE_PATHS.user}`, '--user root');
      const result = await runProcess('sh', ['-c', rewriteNodePaths(line, cluster.root(name))], 120_000);
      expect(result.code, result.stderr).toBe(0);
      expect(result.stdout).toContain(`restored member ${name} into`);
    }
    for (const name of MEMBERS) await cluster.start(name);
    await cluster.waitHealthy(MEMBERS);
    for (const endpoint of endpoints()) {
      const got = await cluster.etcdctl(['get', '/app/', '--prefix', '--keys-only', '--consistency=s'], [endpoint]);
      expect(got.code, got.stderr).toBe(0);
      expect(got.stdout.split('\n').filter((key) => key.startsWith('/app/'))).toHaveLength(KEYS);
    }
    const status = await cluster.etcdctl(['endpoint', 'status', '-w', 'json'], endpoints());
    // As text: a uint64 does not fit a JSON number.
    const ids = new Set([...status.stdout.matchAll(/"cluster_id":(\d+)/g)].map((match) => match[1]!));
    expect(ids.size, status.stdout).toBe(1);
    expect([...ids][0]).not.toBe(oldClusterId);
    const list = await cluster.etcdctl(['member', 'list', '-w', 'json'], [cluster.endpoint(1)]);
    expect((JSON.parse(list.stdout) as { members: { name: string }[] }).members.map((member) => member.name).sort()).toEqual(MEMBERS);
  }, 240_000);

  it('never touches a data dir that holds a member: the restore stops, the data stays', async () => {
    const name = 'etcd2';
    await cluster.stop(name);
    const root = cluster.root(name);
    const walFiles = readdirSync(join(root, NODE_PATHS.dataDir, 'member', 'wal')).sort();
    const line = runcmdLines(cluster.userData(name)).find((candidate) => candidate.startsWith(NODE_PATHS.restoreScript))!.replace(`--user ${NODE_PATHS.user}`, '--user root');
    const result = await runProcess('sh', ['-c', rewriteNodePaths(line, root)], 60_000);
    expect(result.code).toBe(1);
    expect(result.stderr).toMatch(/etcd-restore: FAILED: .*\/member exists; a restore never touches an existing data dir.*; etcd is not started/);
    expect(readdirSync(join(root, NODE_PATHS.dataDir, 'member', 'wal')).sort()).toEqual(walFiles);
    await cluster.start(name);
    await cluster.waitHealthy([name]);
  }, 120_000);

  it('a tampered snapshot (checksum mismatch) stops the restore with a clear message and leaves no data dir', async () => {
    const client = new S3Client({ endpoint: server.url, region: 'us-east-1', forcePathStyle: true, credentials: { accessKeyId: server.accessKeyId, secretAccessKey: server.secretAccessKey } });
    const key = `${PREFIX}29991231T235959Z-etcd1-rev999.db`;
    // Bytes that are not what the recorded checksum says: flipped in storage, or replaced by someone.
    await client.send(new PutObjectCommand({ Bucket: BUCKET, Key: key, Body: Buffer.from('not the snapshot that was uploaded'), Metadata: { sha256: uploadedSha } }));
    client.destroy();
    const restored = await cluster.cli(['restore', '--cluster-name', 'tampered', '--backup-url', `s3://${BUCKET}/${PREFIX}`, '--backup-endpoint', server.url, '--ips', '127.0.0.1', '--etcd-version', 'v3.4.23', '--key-size', '2048']);
    expect(restored.code, restored.stderr).toBe(0);
    expect(restored.stderr).toContain('29991231T235959Z-etcd1-rev999.db'); // the newest is the default
    const userData = readFileSync(join(cluster.workDir, 'out', 'tampered', 'user-data', 'etcd1.yaml'), 'utf8');
    const root = join(cluster.workDir, 'nodes', 'tampered-etcd1');
    for (const [path, file] of writeFilesOf(userData)) {
      mkdirSync(join(root, path, '..'), { recursive: true });
      writeFileSync(join(root, path), file.content, { mode: Number.parseInt(file.permissions ?? '0644', 8) });
    }
    const line = runcmdLines(userData).find((candidate) => candidate.startsWith(NODE_PATHS.restoreScript))!.replace(`--user ${NODE_PATHS.user}`, '--user root');
    const result = await runProcess('sh', ['-c', rewriteNodePaths(line, root)], 60_000);
    expect(result.code).toBe(1);
    expect(result.stderr).toMatch(/etcd-restore: FAILED: checksum mismatch: the downloaded snapshot has sha256 [0-9a-f]{64}, the bucket recorded [0-9a-f]{64} at upload; .*; etcd is not started/);
    expect(existsSync(join(root, NODE_PATHS.dataDir, 'member'))).toBe(false);
    expect(readdirSync(join(root, NODE_PATHS.dataDir, '..')).filter((entry) => entry.startsWith('.etcd-restore'))).toEqual([]);
  }, 120_000);
});
