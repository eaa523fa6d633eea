/**
 * cloud-init/etcd-backup-upload.sh run for real: real etcd members on loopback, real etcdctl and
 * curl (--aws-sigv4), and a real S3-compatible server (s3rver) on 127.0.0.1 behind a front that
 * checks every request's v4 signature (s3rver checks only v2 ones).
 */
import { createHash } from 'node:crypto';
import { chmodSync, existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { REPO_ROOT } from './support/cli.js';
import { ETCD_BIN, ETCDCTL_BIN, runProcess } from './support/local-cluster.js';
import { LoopbackCluster } from './support/loopback-cluster.js';
import { startCheckedS3, type CheckedS3 } from './support/s3-sigv4.js';

const canRun = existsSync(ETCD_BIN) && existsSync(ETCDCTL_BIN) && process.getuid?.() === 0;
const SCRIPT = join(REPO_ROOT, 'cloud-init', 'etcd-backup-upload.sh');
const BUCKET = 'backups';
const PREFIX = 'etcd/';

describe.runIf(canRun)('backup upload to an S3-compatible bucket', () => {
  let cluster: LoopbackCluster;
  let server: CheckedS3;
  let ACCESS_KEY: string;
  let SECRET: string;
  let bucketUrl: string;
  let workDir: string;
  let leader: { name: string; endpoint: string };
  let follower: { name: string; endpoint: string };

  beforeAll(async () => {
    cluster = await LoopbackCluster.create('ip');
    await cluster.startAll(['etcd1', 'etcd2', 'etcd3']);
    workDir = join(cluster.workDir, 'backup-test');
    mkdirSync(workDir, { recursive: true });
    server = await startCheckedS3(join(workDir, 's3rver'), [BUCKET]);
    ({ accessKeyId: ACCESS_KEY, secretAccessKey: SECRET } = server);
    bucketUrl = `${server.url}/${BUCKET}`;
    const members = [1, 2, 3].map((index) => ({ name: `etcd${index}`, endpoint: cluster.endpoint(index) }));
    const status = await cluster.etcdctl(['endpoint', 'status', '-w', 'json'], members.map((member) => member.endpoint));
    const statuses = JSON.parse(status.stdout) as { Endpoint: string; Status: { leader: number; header: { member_id: number } } }[];
    const leaderEndpoint = statuses.find((entry) => String(entry.Status.leader) === String(entry.Status.header.member_id))!.Endpoint;
    leader = members.find((member) => member.endpoint === leaderEndpoint)!;
    follower = members.find((member) => member !== leader)!;
  });

  afterAll(async () => {
    await server?.close();
    await cluster?.cleanup();
  });

  /** A snapshot of `member` saved as the snapshot job names it, in the member's own folder. */
  const saveSnapshot = async (member: { name: string; endpoint: string }, stamp: string): Promise<string> => {
    const dir = join(workDir, member.name);
    mkdirSync(dir, { recursive: true });
    const file = join(dir, `etcd-${member.name}-${stamp}.db`);
    const saved = await cluster.etcdctl(['snapshot', 'save', file], [member.endpoint]);
    expect(saved.code, saved.stderr).toBe(0);
    return file;
  };

  /** Runs the upload script with a curl shim on PATH that records every argv it is started with. */
  const upload = async (member: { name: string; endpoint: string }, options: { secret?: string; retain?: number } = {}) => {
    const credentials = join(workDir, `credentials-${options.secret ?? SECRET}`);
    writeFileSync(credentials, `access_key_id=${ACCESS_KEY}\nsecret_access_key=${options.secret ?? SECRET}\n`, { mode: 0o600 });
    const shimDir = join(workDir, 'shim');
    mkdirSync(shimDir, { recursive: true });
    const argvLog = join(workDir, 'curl-argv.log');
    writeFileSync(join(shimDir, 'curl'), `#!/bin/sh\nprintf '%s\\n' "$*" >> ${argvLog}\nexec /usr/bin/curl "$@"\n`);
    chmodSync(join(shimDir, 'curl'), 0o755);
    const tls = cluster.tls();
    const result = await runProcess('env', [
      `PATH=${shimDir}:/usr/sbin:/usr/bin:/sbin:/bin`,
      'sh', SCRIPT,
      '--etcdctl', ETCDCTL_BIN, '--etcdutl', 'none', '--endpoint', member.endpoint,
      '--cacert', tls.cacert, '--cert', tls.cert, '--key', tls.key,
      '--dir', join(workDir, member.name), '--member', member.name,
      '--bucket-url', bucketUrl, '--prefix', PREFIX, '--region', 'nyc3',
      '--credentials', credentials, '--retain', String(options.retain ?? 24),
    ]);
    return { ...result, curlArgv: existsSync(argvLog) ? readFileSync(argvLog, 'utf8') : '' };
  };

  /** A signed request with real curl, as a second client of the bucket. */
  const s3 = async (args: readonly string[]) => {
    const result = await runProcess('sh', ['-c', `printf 'user = "%s:%s"\\n' ${ACCESS_KEY} ${SECRET} | curl -q -sS --config - --aws-sigv4 aws:amz:nyc3:s3 -H 'x-amz-content-sha256: e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855' "$@"`, 'sh', ...args]);
    expect(result.code, result.stderr).toBe(0);
    return result.stdout;
  };
  const bucketKeys = async () => [...(await s3([`${bucketUrl}?list-type=2&prefix=etcd%2F`])).matchAll(/<Key>([^<]+)<\/Key>/g)].map((match) => match[1]!).sort();

  it('the leader uploads its newest snapshot with its SHA-256 and revision; the secret is never on a command line', async () => {
    const put = await cluster.etcdctl(['put', '/backup/key', 'value'], [leader.endpoint]);
    expect(put.code, put.stderr).toBe(0);
    const file = await saveSnapshot(leader, '20261203T010000Z');
    const result = await upload(leader);
    expect(result.stderr).toBe('');
    expect(result.code).toBe(0);
    const sha256 = createHash('sha256').update(readFileSync(file)).digest('hex');
    expect(result.stdout).toMatch(new RegExp(`uploaded etcd-${leader.name}-20261203T010000Z\\.db \\(revision \\d+, sha256 ${sha256}\\)`));
    const keys = await bucketKeys();
    expect(keys).toHaveLength(1);
    expect(keys[0]).toMatch(new RegExp(`^etcd/20261203T010000Z-${leader.name}-rev\\d+\\.db$`));
    // The object is the snapshot byte for byte, and carries its checksum.
    const headers = await s3(['-D', '-', '-o', join(workDir, 'downloaded.db'), `${bucketUrl}/${keys[0]}`]);
    expect(createHash('sha256').update(readFileSync(join(workDir, 'downloaded.db'))).digest('hex')).toBe(sha256);
    expect(headers.toLowerCase()).toContain(`x-amz-meta-sha256: ${sha256}`);
    expect(result.curlArgv).not.toBe('');
    expect(result.curlArgv).not.toContain(`${ACCESS_KEY}:${SECRET}`);
    // Run again: the snapshot is already there.
    const again = await upload(leader);
    expect(again.stdout).toContain('is already in the bucket');
    expect(await bucketKeys()).toHaveLength(1);
  });

  it('a follower does not upload: one snapshot per interval', async () => {
    await saveSnapshot(follower, '20261203T010000Z');
    const result = await upload(follower);
    expect(result.code, result.stderr).toBe(0);
    expect(result.stdout).toContain(`member ${follower.name} is not the leader now; the leader uploads`);
    expect((await bucketKeys()).filter((key) => key.includes(follower.name))).toEqual([]);
  });

  it('a wrong secret is refused and reported; the local snapshot stays and the next run retries it', async () => {
    const file = await saveSnapshot(leader, '20261203T020000Z');
    const refused = await upload(leader, { secret: 'not-the-secret' });
    expect(refused.code).toBe(1);
    expect(refused.stderr).toMatch(/etcd-backup: FAILED: upload of etcd-etcd\d-20261203T020000Z\.db to .* HTTP 403 .*SignatureDoesNotMatch.*the next run tries again/);
    expect(refused.curlArgv).not.toContain('not-the-secret');
    expect(server.refused).toEqual([expect.stringMatching(/^SignatureDoesNotMatch PUT \/backups\/etcd\/20261203T020000Z-etcd\d-rev\d+\.db$/)]);
    expect(existsSync(file)).toBe(true);
    expect(await bucketKeys()).toHaveLength(1);
    const retried = await upload(leader);
    expect(retried.code, retried.stderr).toBe(0);
    expect(await bucketKeys()).toHaveLength(2);
  });

  it('keeps the newest --retain snapshots in the bucket', async () => {
    await saveSnapshot(leader, '20261203T030000Z');
    const result = await upload(leader, { retain: 2 });
    expect(result.code, result.stderr).toBe(0);
    expect(result.stdout).toMatch(/pruned etcd\/20261203T010000Z-etcd\d-rev\d+\.db from the bucket/);
    expect((await bucketKeys()).map((key) => key.slice(5, 21))).toEqual(['20261203T020000Z', '20261203T030000Z']);
  });

  it('a file that is not a snapshot is not uploaded', async () => {
    writeFileSync(join(workDir, leader.name, `etcd-${leader.name}-20261203T040000Z.db`), 'not a snapshot');
    const result = await upload(leader);
    expect(result.code).toBe(1);
    expect(result.stderr).toContain(`etcd-backup: FAILED: etcd-${leader.name}-20261203T040000Z.db does not read back as a snapshot`);
    expect(await bucketKeys()).toHaveLength(2);
  });
});
