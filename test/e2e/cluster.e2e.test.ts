import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { mintForeignClient, type ClientIdentity } from './certificates.js';
import { attemptTls, CURL_NO_SERVER, etcdctlOutput, etcdctlSucceeded, startedMembers, untilSucceeds } from './etcd-client.js';
import { runAllowingFailure, waitFor } from './exec.js';
import { NODE_PATHS } from '../../src/plan.js';
import { DEBIAN_ETCD_RELEASE } from './mirror.js';
import { E2E_BUCKET } from './cluster.js';
import { bakedImage } from './images.js';
import { readSavedSnapshot } from './guest-console.js';
import { expectCloudInitDone, useTestCluster } from './suite.js';

const repoRoot = fileURLToPath(new URL('../..', import.meta.url));
const debianMirror = process.env['E2E_DEBIAN_MIRROR'] ?? 'http://deb.debian.org/debian';
const log = (line: string): void => console.log(`[e2e ${new Date().toISOString().slice(11, 19)}] ${line}`);

const HEALTHY_WITHIN_MS = 20 * 60_000;
const REJOIN_WITHIN_MS = 12 * 60_000;
// Every 2 minutes plus the timer's RandomizedDelaySec (30 s), and a miss while etcd was still joining.
const SNAPSHOT_SCHEDULE = '*:0/2';
const SNAPSHOT_WITHIN_MS = 12 * 60_000;
// Off-site copies go to the test's S3 server on the bridge.
const BACKUP_ARGS = ['--backup-url', `s3://${E2E_BUCKET.name}/e2e/`, '--backup-endpoint', E2E_BUCKET.endpoint];
// The next snapshot after a write: the 2-minute schedule plus up to 30 s of RandomizedDelaySec.
const UPLOADED_WITHIN_MS = 12 * 60_000;
// The defragmentation timer (issue 24) every 2 minutes too, at its default threshold (50% free).
const DEFRAG_ARGS = ['--defrag-schedule', '*:0/2'];
const DEFRAG_WITHIN_MS = 12 * 60_000;
// Bulk data written and deleted, then compacted: the members' files keep the space until defragmented.
// Each value is one etcdctl argument, and Linux caps one argument at 128 KiB (MAX_ARG_STRLEN).
const BULK_VALUES = 36;
const BULK_VALUE_BYTES = 120 * 1024;

interface Listed {
  snapshots: { key: string; member: string; revision: number; sha256?: string }[];
}

describe('generated user-data boots 3 real VMs into a healthy mutual-TLS etcd cluster', () => {
  // A short snapshot schedule, so the systemd timer fires while the test runs.
  const suite = useTestCluster(async () => ({ repoRoot, debianMirror, log, s3Bucket: true, extraGenUserDataArgs: ['--snapshot-schedule', SNAPSHOT_SCHEDULE, ...DEFRAG_ARGS, ...BACKUP_ARGS] }));
  const { skipUnlessHealthy } = suite;
  let backedUpRevision = 0;
  let oldClusterId = '';
  let writtenAt = 0;
  let restoreBootedAt = 0;

  // The release mirror's request log: one line per GET or HEAD.
  const mirrorRequests = (): string[] => readFileSync(suite.cluster.mirror.logFile, 'utf8').split('\n').filter((line) => / (GET|HEAD) \//.test(line));
  let mirrorRequestsBeforeRestore = 0;
  /** Each member's database file size once the bulk data was deleted and compacted away. */
  let compactedDbSizes = new Map<string, number>();
  /** The object create-backup uploaded, which the restore then names. */
  let createdBackupKey = '';

  /** Each member's database file size (etcdctl endpoint status), by client URL. */
  const dbSizes = async (): Promise<Map<string, number>> => {
    const status = await suite.cluster.etcdctl(['endpoint', 'status', '--write-out=json'], suite.cluster.members.map((m) => m.clientUrl));
    expect(status.code, status.stderr).toBe(0);
    const entries = JSON.parse(status.stdout) as { Endpoint: string; Status: { dbSize: number } }[];
    return new Map(entries.map((entry) => [suite.cluster.members.find((m) => m.clientUrl === entry.Endpoint)!.name, entry.Status.dbSize]));
  };

  const clusterIds = async (): Promise<string[]> => {
    const status = await suite.cluster.etcdctl(['endpoint', 'status', '--write-out=json']);
    expect(status.code, status.stderr).toBe(0);
    // As text: a uint64 does not fit a JSON number.
    return [...status.stdout.matchAll(/"cluster_id":(\d+)/g)].map((match) => match[1]!);
  };
  const listBackups = async (): Promise<Listed> => {
    const listed = await suite.cluster.cli(['backups', '--json']);
    expect(listed.code, listed.stderr).toBe(0);
    return JSON.parse(listed.stdout) as Listed;
  };

  it('reports healthy on every member within a bounded wait', async () => {
    const seconds = await suite.waitHealthy(HEALTHY_WITHIN_MS);
    log(`seconds from VM start to healthy cluster: ${seconds}`);
  });

  it('lists 3 started members with the generated names', async (context) => {
    skipUnlessHealthy(context);
    const list = await untilSucceeds('member list', () => suite.cluster.etcdctl(['member', 'list', '--write-out=json']), etcdctlSucceeded, etcdctlOutput);
    const started = startedMembers(list.stdout).map((member) => member.name).sort();
    expect(started).toEqual(suite.cluster.members.map((member) => member.name));
  });

  it('reads through member 3 what was written through member 1', async (context) => {
    skipUnlessHealthy(context);
    const [first, , third] = suite.cluster.members;
    const put = () => suite.cluster.etcdctl(['put', 'e2e/greeting', 'hello from etcd1'], [first!.clientUrl]);
    await untilSucceeds(`put via ${first!.name}`, put, etcdctlSucceeded, etcdctlOutput);
    const get = () => suite.cluster.etcdctl(['get', 'e2e/greeting', '--print-value-only'], [third!.clientUrl]);
    const value = await untilSucceeds(`get via ${third!.name}`, get, etcdctlSucceeded, etcdctlOutput);
    expect(value.stdout.trim()).toBe('hello from etcd1');
  });

  it('writes a key for the off-site backup to hold (checked once the snapshot timer has fired)', async (context) => {
    skipUnlessHealthy(context);
    const put = await untilSucceeds('put e2e/backed-up', () => suite.cluster.etcdctl(['put', 'e2e/backed-up', 'in the bucket']), etcdctlSucceeded, etcdctlOutput);
    expect(put.code).toBe(0);
    backedUpRevision = Number(/"revision":(\d+)/.exec((await suite.cluster.etcdctl(['get', 'e2e/backed-up', '--write-out=json'])).stdout)?.[1] ?? 'NaN');
    expect(backedUpRevision).toBeGreaterThan(0);
    writtenAt = Date.now();
    oldClusterId = (await clusterIds())[0]!;
  });

  it('fills the database and frees it again: bulk values written, deleted and compacted away (for the defragmentation timer)', async (context) => {
    skipUnlessHealthy(context);
    const value = 'x'.repeat(BULK_VALUE_BYTES);
    for (let i = 0; i < BULK_VALUES; i++) {
      await untilSucceeds(`put e2e/bulk/${i}`, () => suite.cluster.etcdctl(['put', `e2e/bulk/${i}`, value]), etcdctlSucceeded, etcdctlOutput);
    }
    const deleted = await untilSucceeds('del e2e/bulk/', () => suite.cluster.etcdctl(['del', '--prefix', 'e2e/bulk/']), etcdctlSucceeded, etcdctlOutput);
    expect(deleted.stdout.trim()).toBe(String(BULK_VALUES));
    const revision = Number(/"revision":(\d+)/.exec((await suite.cluster.etcdctl(['get', 'e2e/greeting', '--write-out=json'])).stdout)?.[1] ?? 'NaN');
    const compacted = await suite.cluster.etcdctl(['compact', String(revision), '--physical']);
    expect(compacted.code, compacted.stderr).toBe(0);
    compactedDbSizes = await dbSizes();
    log(`database files after the bulk data was deleted and compacted: ${[...compactedDbSizes].map(([name, size]) => `${name} ${(size / 2 ** 20).toFixed(1)} MiB`).join(', ')}`);
    for (const [name, size] of compactedDbSizes) expect(size, name).toBeGreaterThan(BULK_VALUES * BULK_VALUE_BYTES);
  });

  it('refuses a client without a certificate and one from another CA, on client and peer ports', async (context) => {
    skipUnlessHealthy(context);
    const foreign = await mintForeignClient(join(suite.cluster.runDir, 'foreign'));
    const member = suite.cluster.members[0]!;
    // The cluster CA verifies the server in every attempt, so only the client side differs.
    const withoutCert: ClientIdentity = { cacert: suite.cluster.admin.cacert };
    const foreignCert: ClientIdentity = { cacert: suite.cluster.admin.cacert, ...foreign };
    // Control: the same request with the admin certificate gets through, so a refusal is about the certificate.
    await untilSucceeds(
      `the admin certificate accepted on ${member.clientUrl}`,
      () => attemptTls(suite.cluster.network, member.clientUrl, suite.cluster.admin),
      (attempt) => attempt.accepted,
      (attempt) => attempt.message,
    );
    for (const url of [member.clientUrl, member.peerUrl]) {
      for (const [label, identity] of [['no client certificate', withoutCert], ['a certificate from another CA', foreignCert]] as const) {
        // A timeout says nothing either way; retry until the server answers.
        const attempt = await untilSucceeds(
          `an answer from ${url} to ${label}`,
          () => attemptTls(suite.cluster.network, url, identity),
          (result) => result.accepted || !CURL_NO_SERVER.has(result.curlExitCode),
          (result) => result.message,
        );
        log(`${url} with ${label}: ${attempt.accepted ? 'ACCEPTED' : 'refused'} (${attempt.message})`);
        expect(attempt.accepted, `${url} accepted ${label}`).toBe(false);
      }
    }
    const etcdctlWithoutCert = await suite.cluster.etcdctl(['get', 'e2e/greeting'], [member.clientUrl], withoutCert);
    expect(etcdctlWithoutCert.code).not.toBe(0);
  });

  it('serves etcd_server_has_leader 1 on every member at http://<address>:2381/metrics, in plain HTTP', async (context) => {
    skipUnlessHealthy(context);
    for (const member of suite.cluster.members) {
      const metricsUrl = `${member.clientUrl.replace(/^https:/, 'http:').replace(/:2379$/, ':2381')}/metrics`;
      const scraped = await untilSucceeds(
        `etcd_server_has_leader 1 from ${metricsUrl}`,
        () => runAllowingFailure(suite.cluster.network.inside(['curl', '-sS', '--max-time', '15', metricsUrl]), { timeoutMs: 30_000 }),
        (result) => result.code === 0 && /^etcd_server_has_leader 1$/m.test(result.stdout),
        (result) => result.stderr.trim() || `no etcd_server_has_leader 1 in ${result.stdout.length} bytes`,
      );
      expect(scraped.stdout).toMatch(/^etcd_server_has_leader 1$/m);
    }
  });

  it('finished cloud-init with status done, no failed module and no schema warning in every guest', async () => {
    for (const member of suite.cluster.members) await expectCloudInitDone(member);
  });

  it('keeps accepting writes with one member down, and the member catches up after a restart', async (context) => {
    skipUnlessHealthy(context);
    const [first, victim, third] = suite.cluster.members;
    await victim!.vm.kill();
    log(`killed ${victim!.name}'s VM (qemu pid ${victim!.vm.pid})`);
    const survivors = [first!.clientUrl, third!.clientUrl];
    // The next leader may need an election first.
    const put = () => suite.cluster.etcdctl(['put', 'e2e/while-down', 'written by 2 of 3'], survivors);
    await untilSucceeds('a write with 2 of 3 members', put, etcdctlSucceeded, etcdctlOutput);
    const restartedAt = Date.now();
    suite.cluster.restart(victim!);
    // A serializable read answers from the member's own store: proof it caught up, not a forwarded read.
    await waitFor(
      `${victim!.name} to serve the write it missed`,
      async () => {
        const get = await suite.cluster.etcdctl(['get', 'e2e/while-down', '--print-value-only', '--consistency=s'], [victim!.clientUrl]);
        return get.code === 0 && get.stdout.trim() === 'written by 2 of 3' ? true : undefined;
      },
      { timeoutMs: REJOIN_WITHIN_MS, intervalMs: 10_000 },
    );
    log(`${victim!.name} rejoined with the missed write ${Math.round((Date.now() - restartedAt) / 1000)}s after its restart`);
    await untilSucceeds('endpoint health --cluster after the rejoin', () => suite.cluster.etcdctl(['endpoint', 'health', '--cluster']), etcdctlSucceeded, etcdctlOutput);
  });

  it('uploads a snapshot off-site: only the leader, after its timer fires; backups --json lists it with its checksum', async (context) => {
    skipUnlessHealthy(context);
    expect(backedUpRevision, 'the write test ran first').toBeGreaterThan(0);
    const listed = await waitFor(
      `a snapshot of revision ${backedUpRevision} or later in the bucket`,
      async () => {
        const found = await listBackups();
        return found.snapshots.some((snapshot) => snapshot.revision >= backedUpRevision) ? found : undefined;
      },
      { timeoutMs: UPLOADED_WITHIN_MS, intervalMs: 15_000 },
    );
    log(`uploaded ${Math.round((Date.now() - writtenAt) / 1000)}s after the write (other checks ran meanwhile): ${listed.snapshots.map((snapshot) => snapshot.key).join(', ')}`);
    const newest = listed.snapshots[0]!;
    expect(newest.sha256, JSON.stringify(newest)).toMatch(/^[0-9a-f]{64}$/);
    // The uploader's own line on that member's console (journald), with the same checksum.
    const uploader = suite.cluster.members.find((member) => member.name === newest.member)!;
    await waitFor(`the upload line on ${uploader.name}'s console`, async () => (uploader.vm.consoleHistory().includes(`sha256 ${newest.sha256}) to ${E2E_BUCKET.endpoint}/${E2E_BUCKET.name}/${newest.key}`) ? true : undefined), {
      timeoutMs: 60_000,
      intervalMs: 5_000,
    });
  });

  it('saves a scheduled snapshot on every member: the systemd timer fires and etcdctl snapshot save succeeds', async (context) => {
    skipUnlessHealthy(context);
    for (const member of suite.cluster.members) {
      const saved = await waitFor(`a scheduled snapshot on ${member.name}'s console`, async () => readSavedSnapshot(member.vm.consoleHistory(), member.name), {
        timeoutMs: SNAPSHOT_WITHIN_MS,
        intervalMs: 10_000,
      });
      expect(saved.startsWith(`${NODE_PATHS.backupDir}/etcd-${member.name}-`), saved).toBe(true);
    }
    // One upload per interval, not one per member: each snapshot started the upload unit, and a follower's stood down.
    await waitFor('a follower standing down', async () => (suite.cluster.members.some((member) => member.vm.consoleHistory().includes(`etcd-backup: member ${member.name} is not the leader now`)) ? true : undefined), {
      timeoutMs: 2 * 60_000,
      intervalMs: 5_000,
    });
  });

  it("defragments every member by its own node's timer: each logs the shrink and its database file is smaller", async (context) => {
    skipUnlessHealthy(context);
    expect(compactedDbSizes.size, 'the fill test ran first').toBe(3);
    for (const member of suite.cluster.members) {
      const line = await waitFor(`the defragmentation line on ${member.name}'s console`, async () => new RegExp(`etcd-cloudinit: etcd-defrag: ${member.name}: [0-9.]+ MiB -> [0-9.]+ MiB \\(\\d+% reclaimable >= 50%\\)`).exec(member.vm.consoleHistory())?.[0], {
        timeoutMs: DEFRAG_WITHIN_MS,
        intervalMs: 10_000,
      });
      log(line);
    }
    const after = await dbSizes();
    for (const [name, before] of compactedDbSizes) expect(after.get(name)!, `${name}: ${before} bytes before`).toBeLessThan(before / 2);
  });

  it('create-backup streams a snapshot from a member over its client port and uploads it; backups lists it with its checksum', async (context) => {
    skipUnlessHealthy(context);
    await untilSucceeds('put e2e/on-demand', () => suite.cluster.etcdctl(['put', 'e2e/on-demand', 'in the on-demand backup']), etcdctlSucceeded, etcdctlOutput);
    const created = await suite.cluster.cli(['create-backup', '--json']);
    expect(created.code, created.stderr).toBe(0);
    const document = JSON.parse(created.stdout) as { bucket: { key: string }; snapshot: { sha256: string } };
    createdBackupKey = document.bucket.key;
    expect(createdBackupKey).toMatch(/^e2e\/.*-rev\d+\.db$/);
    const listed = await listBackups();
    expect(listed.snapshots.find((snapshot) => snapshot.key === createdBackupKey)?.sha256).toBe(document.snapshot.sha256);
    log(`create-backup: ${createdBackupKey} (sha256 ${document.snapshot.sha256.slice(0, 12)}...)`);
  });

  // The restore boots the baked image (as Packer bakes a DigitalOcean snapshot) with --install baked:
  // one boot proves both the restore and the baked mode (test/e2e/README.md, "which suite proves what").
  it('restore onto a baked image: with every VM gone, new VMs restore the uploaded snapshot and form a new, healthy cluster with the data and a new cluster ID', async (context) => {
    skipUnlessHealthy(context);
    expect(backedUpRevision, 'the upload test ran first').toBeGreaterThan(0);
    const baked = await bakedImage({ repoRoot, debianMirror, log });
    await suite.cluster.destroyAllVms();
    // As an operator would after losing every machine: same addresses, new machines, the newest snapshot.
    expect(createdBackupKey, 'the create-backup test ran first').not.toBe('');
    const restored = await suite.cluster.cli([
      'restore', ...BACKUP_ARGS, '--snapshot', createdBackupKey,
      '--ips', suite.cluster.memberIps.join(','),
      '--etcd-version', DEBIAN_ETCD_RELEASE.version, '--install', 'baked',
      '--key-size', '2048', '--heartbeat-interval', '500', '--election-timeout', '5000', '--snapshot-schedule', SNAPSHOT_SCHEDULE,
    ]);
    expect(restored.code, restored.stderr).toBe(0);
    log(restored.stderr.trim().split('\n').find((line) => line.startsWith('restore: snapshot')) ?? restored.stderr);
    mirrorRequestsBeforeRestore = mirrorRequests().length;
    const members = await suite.cluster.bootNewVms('restored', baked);
    const seconds = await suite.cluster.waitHealthy(HEALTHY_WITHIN_MS);
    log(`restored cluster (baked image) healthy ${seconds}s after its VMs started`);
    for (const member of members) {
      expect(member.vm.console()).toContain(`etcd-cloudinit: etcd-restore: restored member ${member.name} into /var/lib/etcd`);
      // From each member's own store: the data came from the snapshot, not from a peer that has it.
      const get = await suite.cluster.etcdctl(['get', 'e2e/backed-up', '--print-value-only', '--consistency=s'], [member.clientUrl]);
      expect(get.stdout.trim(), `${member.name}: ${get.stderr}`).toBe('in the bucket');
    }
    const greeting = await suite.cluster.etcdctl(['get', 'e2e/greeting', '--print-value-only']);
    expect(greeting.stdout.trim()).toBe('hello from etcd1');
    // The key written just before create-backup: the restore used the object create-backup uploaded.
    const onDemand = await suite.cluster.etcdctl(['get', 'e2e/on-demand', '--print-value-only']);
    expect(onDemand.stdout.trim()).toBe('in the on-demand backup');
    const ids = new Set(await clusterIds());
    expect(ids.size).toBe(1);
    expect([...ids][0]).not.toBe(oldClusterId);
    log(`cluster ID ${oldClusterId} -> ${[...ids][0]}`);
    const list = await suite.cluster.etcdctl(['member', 'list', '--write-out=json']);
    expect(startedMembers(list.stdout).map((member) => member.name).sort()).toEqual(['etcd1', 'etcd2', 'etcd3']);
    for (const member of members) await expectCloudInitDone(member);
  });

  it('baked: each restored member checked the baked version at boot and downloaded nothing (the mirror saw no request)', async (context) => {
    skipUnlessHealthy(context);
    expect(mirrorRequestsBeforeRestore, 'the restore test ran first').toBeGreaterThan(0);
    for (const member of suite.cluster.members) {
      expect(member.vm.console(), member.name).toContain(`etcd-cloudinit: etcd ${DEBIAN_ETCD_RELEASE.version} is installed in /usr/local/bin`);
      expect(member.vm.console(), member.name).not.toContain('etcd-cloudinit: installed etcd');
    }
    // The first boot downloaded through the mirror (so its log is the right one to read); the baked boot asked for nothing.
    expect(mirrorRequests().slice(0, mirrorRequestsBeforeRestore).some((line) => line.includes(`/${DEBIAN_ETCD_RELEASE.version}/`))).toBe(true);
    expect(mirrorRequests().slice(mirrorRequestsBeforeRestore).filter((line) => line.includes(`/${DEBIAN_ETCD_RELEASE.version}/`))).toEqual([]);
  });
});
