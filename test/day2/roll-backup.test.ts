/**
 * roll's pre-roll backup on real etcd members on loopback. To stay cheap no replacement ever
 * boots: each roll adds its learner, waits a short --catch-up-timeout, rolls it back and exits,
 * leaving the roll in roll.json to resume. That is enough to see the order (the snapshot is in
 * the bucket when the learner appears), that a resumed roll takes no second one, that a cluster
 * without a bucket keeps it in the folder and says where, and that --no-backup skips it.
 */
import { existsSync, readFileSync, readdirSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { ListObjectsV2Command, S3Client } from '@aws-sdk/client-s3';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ETCD_BIN, ETCDCTL_BIN } from '../support/local-cluster.js';
import { LoopbackCluster } from '../support/loopback-cluster.js';
import { startCheckedS3, type CheckedS3 } from '../support/s3-sigv4.js';

const canRun = process.getuid?.() === 0 && existsSync(ETCD_BIN) && existsSync(ETCDCTL_BIN);
const MEMBERS = ['etcd1', 'etcd2', 'etcd3'];
const BUCKET = 'backups';
const PREFIX = 'etcd/';
const FAST_FAIL = ['--catch-up-timeout', '2', '--poll-interval', '0.2'];
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

interface RollJson {
  current?: { backup?: { takenAt: string; location: string } | { skipped: true } };
}
const rollJson = (cluster: LoopbackCluster) => JSON.parse(readFileSync(join(cluster.outDir, 'roll.json'), 'utf8')) as RollJson;

describe.runIf(canRun)("roll's backup before its first replacement", () => {
  let server: CheckedS3;
  let s3: S3Client;
  /** Made side by side: the setup is most of this file's time. */
  let withBucket: LoopbackCluster;
  let withoutBucket: LoopbackCluster;

  beforeAll(async () => {
    server = await startCheckedS3(join(process.env.TMPDIR ?? '/tmp', `s3rver-roll-${process.pid}-${Date.now()}`), [BUCKET]);
    s3 = new S3Client({ endpoint: server.url, region: 'us-east-1', forcePathStyle: true, credentials: { accessKeyId: server.accessKeyId, secretAccessKey: server.secretAccessKey } });
    const env = { SPACES_ACCESS_KEY_ID: server.accessKeyId, SPACES_SECRET_ACCESS_KEY: server.secretAccessKey };
    const made = await Promise.allSettled([
      LoopbackCluster.create('ip', ['--backup-url', `s3://${BUCKET}/${PREFIX}`, '--backup-endpoint', server.url], { cliEnv: env }),
      LoopbackCluster.create('ip'),
    ]);
    [withBucket, withoutBucket] = made.map((result) => (result.status === 'fulfilled' ? result.value : undefined)) as [LoopbackCluster, LoopbackCluster];
    const failed = made.find((result) => result.status === 'rejected');
    if (failed) throw (failed as PromiseRejectedResult).reason;
    await Promise.all([withBucket.startAll(MEMBERS), withoutBucket.startAll(MEMBERS)]);
  }, 180_000);

  afterAll(async () => {
    s3?.destroy();
    await withBucket?.cleanup();
    await withoutBucket?.cleanup();
    await server?.close();
  });

  describe('a cluster with a bucket', () => {
    let cluster: LoopbackCluster;
    const objects = async () => ((await s3.send(new ListObjectsV2Command({ Bucket: BUCKET, Prefix: PREFIX }))).Contents ?? []).map((object) => object.Key!).sort();

    beforeAll(() => {
      cluster = withBucket;
    });

    it('the snapshot is in the bucket when the first learner appears; a resumed roll takes no second one', async () => {
      expect(await objects()).toEqual([]);
      const rolling = cluster.cli(['roll', '--member', 'etcd1', '--ips', cluster.ip(11), ...FAST_FAIL]);
      let seenAtLearner: string[] | undefined;
      let done = false;
      void rolling.finally(() => (done = true));
      const deadline = Date.now() + 60_000;
      while (!done && seenAtLearner === undefined && Date.now() < deadline) {
        const list = await cluster.memberList();
        // Read the bucket right after the list that first shows the learner: the upload must already be there.
        if (list?.some((member) => member.learner)) seenAtLearner = await objects();
        else await sleep(20);
      }
      const first = await rolling;
      expect(first.code, first.stderr).not.toBe(0); // no replacement boots: the roll rolls its learner back
      expect(seenAtLearner, first.stderr).toBeDefined();
      expect(seenAtLearner).toHaveLength(1);
      const [key] = seenAtLearner!;
      expect(key).toMatch(new RegExp(`^${PREFIX}\\d{8}T\\d{6}Z-etcd\\d-rev\\d+\\.db$`));
      expect(first.stderr).toContain(`pre-roll backup: snapshot of`);
      expect(first.stderr).toContain(`saved to s3://${BUCKET}/${key}`);
      // The log says it before it says the learner was added.
      expect(first.stderr.indexOf('pre-roll backup:')).toBeLessThan(first.stderr.indexOf('as a learner'));
      expect(rollJson(cluster).current?.backup).toEqual({ takenAt: expect.any(String), location: `s3://${BUCKET}/${key}` });

      const resumed = await cluster.cli(['roll', ...FAST_FAIL]);
      expect(resumed.stderr).toContain('resuming the roll');
      expect(resumed.stderr).toContain(`pre-roll backup: taken already at`);
      expect(resumed.stderr).not.toContain('streaming a snapshot');
      expect(await objects()).toEqual([key]);
      const aborted = await cluster.cli(['roll', '--abort']);
      expect(aborted.code, aborted.stderr).toBe(0);
    }, 120_000);
  });

  describe('a cluster without a bucket', () => {
    let cluster: LoopbackCluster;
    const backupsDir = () => join(cluster.outDir, 'backups');

    beforeAll(() => {
      cluster = withoutBucket;
    });

    it('--no-backup skips it, and roll.json says so', async () => {
      const skipped = await cluster.cli(['roll', '--member', 'etcd1', '--ips', cluster.ip(11), '--no-backup', ...FAST_FAIL]);
      expect(skipped.stderr).toContain('pre-roll backup: skipped (--no-backup)');
      expect(skipped.stderr).not.toContain('streaming a snapshot');
      expect(rollJson(cluster).current?.backup).toEqual({ skipped: true });
      expect(existsSync(backupsDir())).toBe(false);
      // Resumed without the flag: still skipped, as recorded.
      const resumed = await cluster.cli(['roll', ...FAST_FAIL]);
      expect(resumed.stderr).not.toContain('streaming a snapshot');
      expect(existsSync(backupsDir())).toBe(false);
      expect((await cluster.cli(['roll', '--abort'])).code).toBe(0);
    }, 60_000);

    it('keeps the snapshot in the folder (0600) and names it', async () => {
      const rolled = await cluster.cli(['roll', '--member', 'etcd1', '--ips', cluster.ip(12), ...FAST_FAIL]);
      const files = readdirSync(backupsDir());
      expect(files).toHaveLength(1);
      const file = join(backupsDir(), files[0]!);
      expect(files[0]).toMatch(/^\d{8}T\d{6}Z-etcd\d-rev\d+\.db$/);
      expect(statSync(file).mode & 0o777).toBe(0o600);
      expect(rolled.stderr).toContain(`saved to out/etcd/backups/${files[0]} (0600: a snapshot holds every key)`);
      expect(rollJson(cluster).current?.backup).toEqual({ takenAt: expect.any(String), location: `out/etcd/backups/${files[0]}` });
      // A real snapshot: etcd's SHA-256 trailer matches.
      const bytes = readFileSync(file);
      const { createHash } = await import('node:crypto');
      expect(bytes.subarray(-32).toString('hex')).toBe(createHash('sha256').update(bytes.subarray(0, -32)).digest('hex'));
      expect((await cluster.cli(['roll', '--abort'])).code).toBe(0);
    }, 60_000);
  });
});
