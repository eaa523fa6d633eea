import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { basename, join } from 'node:path';
import { parse as parseYaml } from 'yaml';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { NODE_PATHS } from '../../src/plan.js';
import { LOCAL_ETCD_VERSION, rewriteNodePaths, runProcess, writeFilesOf } from '../support/local-cluster.js';
import { LoopbackCluster } from '../support/loopback-cluster.js';


const escape = (text: string) => text.replace(/[.*+?^${}()|[\]\\/]/g, '\\$&');

function sha256(path: string): string {
  return createHash('sha256').update(readFileSync(path)).digest('hex');
}

describe('add-member and remove-member against a real running cluster', () => {
  let cluster: LoopbackCluster;
  let caFingerprint: string;

  beforeAll(async () => {
    cluster = await LoopbackCluster.create('ip');
    await cluster.startAll(['etcd1', 'etcd2', 'etcd3']);
    caFingerprint = sha256(cluster.pkiFile('ca.key')) + sha256(cluster.pkiFile('ca.crt'));
    const put = await cluster.etcdctl(['put', '/day2/before', 'kept'], [cluster.endpoint(1)]);
    expect(put.code, put.stderr).toBe(0);
  });

  afterAll(async () => {
    await cluster?.cleanup();
  });

  const learners = async () => {
    const list = await cluster.etcdctl(['member', 'list', '-w', 'json'], [cluster.endpoint(1)]);
    expect(list.code, list.stderr).toBe(0);
    return (JSON.parse(list.stdout) as { members: { name?: string; isLearner?: boolean }[] }).members.filter((member) => member.isLearner).map((member) => member.name ?? '');
  };

  const memberNames = async () => {
    const list = await cluster.etcdctl(['member', 'list', '-w', 'json'], [cluster.endpoint(1)]);
    expect(list.code, list.stderr).toBe(0);
    return (JSON.parse(list.stdout) as { members: { name?: string }[] }).members.map((member) => member.name ?? '').sort();
  };

  it('refuses to add a member while one is down, and changes nothing', async () => {
    await cluster.stop('etcd3');
    try {
      const before = readFileSync(join(cluster.outDir, 'cluster.json'), 'utf8');
      const result = await cluster.cli(['add-member', '--ip', cluster.ip(4), '--timeout', '2']);
      expect(result.code).toBe(1);
      expect(result.stderr).toMatch(/^etcd-cloudinit add-member: \[preflight\] refusing to add a member to an unhealthy cluster: etcd3 \(ECONNREFUSED/);
      expect(readFileSync(join(cluster.outDir, 'cluster.json'), 'utf8')).toBe(before);
      expect(existsSync(cluster.pkiFile('etcd4.crt'))).toBe(false);
      expect(await memberNames()).toEqual(['etcd1', 'etcd2', 'etcd3']);
    } finally {
      await cluster.start('etcd3');
      await cluster.waitHealthy(['etcd3']);
    }
  });

  it('add-member grows the cluster to 4 with a learner that starts from its user-data, promotes itself and has the data', async () => {
    const result = await cluster.cli(['add-member', '--ip', cluster.ip(4)]);
    expect(result.stderr).toBe('');
    expect(result.code).toBe(0);
    const added = new RegExp(`^Added member etcd4 \\(${escape(cluster.ip(4))}, ID ([0-9a-f]+)\\) as a learner to cluster etcd: now 4 members\\.`).exec(result.stdout);
    expect(added, result.stdout).not.toBeNull();
    const learnerId = added![1]!;
    expect(result.stdout).toContain('As a learner it gets the data but no vote,\nso quorum stays 2 of 3 meanwhile; once it has caught up, the node promotes itself (etcd-promote.service).');
    expect(result.stdout).toContain('Note: 4 members tolerate no more failures than 3');

    // Written: its certificate and key (0600), its user-data joining the existing cluster, cluster.json; the CA untouched.
    expect(sha256(cluster.pkiFile('ca.key')) + sha256(cluster.pkiFile('ca.crt'))).toBe(caFingerprint);
    expect(statSync(cluster.pkiFile('etcd4.key')).mode & 0o777).toBe(0o600);
    expect(statSync(cluster.pkiFile('etcd1.key')).mode & 0o777).toBe(0o600);
    expect(statSync(join(cluster.outDir, 'user-data', 'etcd4.yaml')).mode & 0o777).toBe(0o600);
    const files = writeFilesOf(cluster.userData('etcd4'));
    const config = files.get(NODE_PATHS.configFile)!.content;
    expect(config).toContain('initial-cluster-state: "existing"');
    expect(config).toContain(
      `initial-cluster: "etcd1=https://${cluster.prefix}.1:2380,etcd2=https://${cluster.prefix}.2:2380,etcd3=https://${cluster.prefix}.3:2380,etcd4=https://${cluster.prefix}.4:2380"`,
    );
    // The node asks the three voting members to promote it, by the ID member add gave it.
    const promoteUnit = files.get(NODE_PATHS.promoteService)!.content;
    expect(promoteUnit).toContain(
      `ExecStart=/usr/local/lib/etcd-cloudinit/etcd-promote.sh --etcdctl /usr/local/bin/etcdctl --local-url ${cluster.endpoint(4)} --endpoints ${cluster.endpoint(1)},${cluster.endpoint(2)},${cluster.endpoint(3)} --cacert /etc/etcd/pki/ca.crt --cert /etc/etcd/pki/member.crt --key /etc/etcd/pki/member.key --member etcd4 --member-id ${learnerId} --attempts 360 --interval 10\n`,
    );
    expect(files.get(NODE_PATHS.promoteScript)?.permissions).toBe('0755');
    const runcmd = (parseYaml(cluster.userData('etcd4')) as { runcmd: string[][] }).runcmd[0]!.at(-1)!;
    expect(runcmd.split('\n').slice(-2)).toEqual(['systemctl enable --no-reload etcd-promote.service', 'systemctl start --no-block etcd-promote.service']);
    const record = JSON.parse(readFileSync(join(cluster.outDir, 'cluster.json'), 'utf8')) as { members: { name: string }[]; endpoints: string[] };
    expect(record.members.map((member) => member.name)).toEqual(['etcd1', 'etcd2', 'etcd3', 'etcd4']);
    expect(readFileSync(join(cluster.outDir, 'etcdctl.env'), 'utf8')).toContain(cluster.endpoint(4));
    // Unstarted until the machine boots: etcd lists it without a name, as a learner.
    expect(await memberNames()).toEqual(['', 'etcd1', 'etcd2', 'etcd3']);
    expect(await learners()).toEqual(['']);

    await cluster.boot('etcd4');
    await cluster.waitHealthy(['etcd4']);
    expect(await memberNames()).toEqual(['etcd1', 'etcd2', 'etcd3', 'etcd4']);
    expect(await learners()).toEqual(['etcd4']);
    const asLearner = await cluster.cli(['health', '--json']);
    expect(asLearner.code, asLearner.stdout).toBe(0);
    expect((JSON.parse(asLearner.stdout) as { members: { name: string; learner: boolean }[] }).members.map((member) => member.learner)).toEqual([false, false, false, true]);

    // One learner at a time: the next add-member waits for this one's promotion.
    const second = await cluster.cli(['add-member', '--ip', cluster.ip(6)]);
    expect(second.code).toBe(1);
    expect(second.stderr).toContain(`[preflight] etcd4 (ID ${learnerId}) is still a learner; wait until it has promoted itself`);

    // etcd-promote.service's command as the node runs it (paths under the member's root, Debian's etcdctl, 1 s between tries).
    const promoteCommand = (memberId: string) =>
      rewriteNodePaths(/^ExecStart=(.+)$/m.exec(promoteUnit)![1]!, cluster.root('etcd4'))
        .replace(`--member-id ${learnerId}`, `--member-id ${memberId}`)
        .replace('--attempts 360 --interval 10', '--attempts 60 --interval 1')
        .split(' ');
    const [shell, ...wrongId] = ['sh', ...promoteCommand('123abc')];
    const notFound = await runProcess(shell!, wrongId);
    expect(notFound.code).toBe(1);
    expect(notFound.stderr).toBe('etcd-cloudinit: etcd-promote: member 123abc is not in the cluster (removed?); not promoting\n');
    expect(await learners()).toEqual(['etcd4']);

    const promoted = await runProcess('sh', promoteCommand(learnerId), 120_000);
    expect(promoted.code, promoted.stderr).toBe(0);
    expect(promoted.stdout).toMatch(new RegExp(`etcd-cloudinit: etcd-promote: promoted member etcd4 \\(${learnerId}\\) from learner to voting member\\n$`));
    expect(await learners()).toEqual([]);
    // Every later boot runs it again: a voting member exits at once.
    const again = await runProcess('sh', promoteCommand(learnerId));
    expect(again).toEqual({ code: 0, stdout: `etcd-cloudinit: etcd-promote: member etcd4 (${learnerId}) is a voting member\n`, stderr: '' });

    const health = await cluster.cli(['health', '--json']);
    expect(health.code, health.stdout).toBe(0);
    const members = (JSON.parse(health.stdout) as { members: { name: string; healthy: boolean; learner: boolean }[] }).members;
    expect(members.map((member) => [member.healthy, member.learner])).toEqual([[true, false], [true, false], [true, false], [true, false]]);

    const fromNew = await cluster.etcdctl(['get', '/day2/before', '--print-value-only'], [cluster.endpoint(4)]);
    expect(fromNew.stdout.trim()).toBe('kept');
    const put = await cluster.etcdctl(['put', '/day2/while-four', 'written-via-etcd4'], [cluster.endpoint(4)]);
    expect(put.code, put.stderr).toBe(0);
  });

  it('the promote service passes systemd-analyze verify (paths moved to the member root)', async () => {
    const root = cluster.root('etcd4');
    const files = writeFilesOf(cluster.userData('etcd4'));
    const unitDir = join(root, 'verify');
    mkdirSync(unitDir, { recursive: true });
    const units = [NODE_PATHS.promoteService, NODE_PATHS.unitFile].map((path) => {
      const target = join(unitDir, basename(path));
      writeFileSync(target, rewriteNodePaths(files.get(path)!.content, root));
      return target;
    });
    const result = await runProcess('systemd-analyze', ['verify', ...units]);
    expect(result.stderr).toBe('');
    expect(result.code).toBe(0);
  });

  it('gen-userdata refuses to rewrite the folder add-member changed, and changes nothing', async () => {
    const before = new Map(['cluster.json', 'pki/etcd4.key', 'pki/etcd4.crt', 'user-data/etcd4.yaml', 'user-data/etcd1.yaml'].map((file) => [file, sha256(join(cluster.outDir, file))]));
    const ips = [1, 2, 3].map((index) => cluster.ip(index)).join(',');
    const result = await cluster.cli(['gen-userdata', '--ips', ips, '--etcd-version', LOCAL_ETCD_VERSION, '--key-size', '2048']);
    expect(result.code).toBe(1);
    expect(result.stdout).toBe('');
    expect(result.stderr).toContain(
      `[plan] ${cluster.outDir} was changed by add-member/remove-member since the cluster was bootstrapped (members now: etcd1 (${cluster.ip(1)}), etcd2 (${cluster.ip(2)}), etcd3 (${cluster.ip(3)}), etcd4 (${cluster.ip(4)})).`,
    );
    expect(result.stderr).toContain('or pass --force to start its files over (the CA is kept)');
    for (const [file, digest] of before) expect(sha256(join(cluster.outDir, file)), file).toBe(digest);
  });

  it('remove-member shrinks it back to 3 with the data intact', async () => {
    const result = await cluster.cli(['remove-member', '--name', 'etcd4', '--yes']);
    expect(result.stderr).toBe('');
    expect(result.code).toBe(0);
    expect(result.stdout).toMatch(new RegExp(`^Removed member etcd4 \\(${escape(cluster.ip(4))}, ID [0-9a-f]+\\) from cluster etcd: now 3 members\\.`));
    await cluster.stop('etcd4');

    expect(await memberNames()).toEqual(['etcd1', 'etcd2', 'etcd3']);
    const record = JSON.parse(readFileSync(join(cluster.outDir, 'cluster.json'), 'utf8')) as { members: { name: string }[] };
    expect(record.members.map((member) => member.name)).toEqual(['etcd1', 'etcd2', 'etcd3']);
    expect(existsSync(cluster.pkiFile('etcd4.key'))).toBe(false);
    expect(existsSync(join(cluster.outDir, 'user-data', 'etcd4.yaml'))).toBe(false);
    expect(sha256(cluster.pkiFile('ca.key')) + sha256(cluster.pkiFile('ca.crt'))).toBe(caFingerprint);

    const health = await cluster.cli(['health']);
    expect(health.code, health.stdout).toBe(0);
    for (const [key, value] of [
      ['/day2/before', 'kept'],
      ['/day2/while-four', 'written-via-etcd4'],
    ]) {
      const get = await cluster.etcdctl(['get', key!, '--print-value-only'], [cluster.endpoint(2)]);
      expect(get.stdout.trim()).toBe(value);
    }

    // Back to the bootstrap members: gen-userdata may re-run, and keeps every certificate.
    const ips = [1, 2, 3].map((index) => cluster.ip(index)).join(',');
    const rerun = await cluster.cli(['gen-userdata', '--ips', ips, '--etcd-version', LOCAL_ETCD_VERSION, '--key-size', '2048']);
    expect(rerun.code, rerun.stderr).toBe(0);
    expect(rerun.stdout).toMatch(/^ {2}etcd1 {3}kept {3}pki\/etcd1\.crt/m);
    expect(sha256(cluster.pkiFile('ca.key')) + sha256(cluster.pkiFile('ca.crt'))).toBe(caFingerprint);
  });

  it('remove-member of a member the cluster no longer has only updates the folder', async () => {
    // A member removed out of band (etcdctl member remove) leaves cluster.json stale.
    // --voter: the way without a learner step. It adds no promote unit.
    const added = await cluster.cli(['add-member', '--ip', cluster.ip(5), '--name', 'epsilon', '--voter']);
    expect(added.code, added.stderr).toBe(0);
    expect(added.stdout).toContain(`to cluster etcd: now 4 members.`);
    expect(added.stdout).not.toContain('learner');
    expect(added.stdout).toContain('the cluster counts it towards quorum\n(3 of 4) from this moment');
    expect(writeFilesOf(cluster.userData('epsilon')).has(NODE_PATHS.promoteService)).toBe(false);
    expect(await learners()).toEqual([]);
    // The table form prints IDs in hex (etcdctl's JSON gives decimals beyond 2^53).
    const table = await cluster.etcdctl(['member', 'list'], [cluster.endpoint(1)]);
    const id = table.stdout.split('\n').find((line) => line.includes(`${cluster.ip(5)}:2380`))!.split(',')[0]!.trim();
    expect(id).toMatch(/^[0-9a-f]+$/);
    const removed = await cluster.etcdctl(['member', 'remove', id], [cluster.endpoint(1)]);
    expect(removed.code, removed.stderr).toBe(0);

    const health = await cluster.cli(['health', '--timeout', '2']);
    expect(health.code).toBe(1);
    expect(health.stdout).toContain(`membership: epsilon (https://${cluster.ip(5)}:2380) is in cluster.json but not in the cluster`);

    const result = await cluster.cli(['remove-member', '--name', 'epsilon', '--yes']);
    expect(result.code, result.stderr).toBe(0);
    expect(result.stdout).toContain(`Member epsilon (${cluster.ip(5)}) was no longer in cluster etcd; removed it from the folder: now 3 members.`);
    expect(await memberNames()).toEqual(['etcd1', 'etcd2', 'etcd3']);
  });
});
