import { chmodSync, existsSync, mkdirSync, readFileSync, readdirSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { basename, join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parse as parseYaml } from 'yaml';
import { NODE_PATHS } from '../../src/plan.js';
import { runCli } from '../support/cli.js';
import { rewriteNodePaths, runProcess, writeFilesOf } from '../support/local-cluster.js';
import { LoopbackCluster } from '../support/loopback-cluster.js';

const EXEC_START = /^ExecStart=(.+)$/m;

describe('snapshot timer in gen-userdata', () => {
  let cluster: LoopbackCluster;

  beforeAll(async () => {
    cluster = await LoopbackCluster.create('ip', ['--snapshot-retain', '2', '--snapshot-schedule', '*-*-* 00/6:00:00'], { size: 1 });
    await cluster.startAll(['etcd1']);
  });

  afterAll(async () => {
    await cluster?.cleanup();
  });

  it('writes the script, service and timer, and enables the timer on first boot', () => {
    const userData = cluster.userData('etcd1');
    const files = writeFilesOf(userData);
    expect(files.get(NODE_PATHS.snapshotScript)?.permissions).toBe('0755');
    expect(files.get(NODE_PATHS.snapshotTimer)?.content).toContain('OnCalendar=*-*-* 00/6:00:00\n');
    expect(files.get(NODE_PATHS.snapshotService)?.content).toContain(
      `ExecStart=/usr/local/lib/etcd-cloudinit/etcd-snapshot.sh --etcdctl /usr/local/bin/etcdctl --endpoint ${cluster.endpoint(1)} --cacert /etc/etcd/pki/ca.crt --cert /etc/etcd/pki/member.crt --key /etc/etcd/pki/member.key --dir /var/backups/etcd --member etcd1 --retain 2\n`,
    );
    const runcmd = (parseYaml(userData) as { runcmd: string[][] }).runcmd[0]!.at(-1)!;
    expect(runcmd.split('\n').slice(-2)).toEqual([`systemd-tmpfiles --create ${NODE_PATHS.snapshotTmpfiles}`, 'systemctl enable --no-reload --now etcd-snapshot.timer']);
    // systemd sets up the sandbox before any ExecStartPre= could make the folder: it must already exist.
    expect(files.get(NODE_PATHS.snapshotService)?.content).not.toContain('ExecStartPre');
  });

  it("tmpfiles.d makes the backup folder, 0700 and the etcd user's, before the service's sandbox needs it", async () => {
    const content = writeFilesOf(cluster.userData('etcd1')).get(NODE_PATHS.snapshotTmpfiles)!.content;
    expect(content).toMatch(/^d \/var\/backups\/etcd 0700 etcd etcd -$/m);
    // The real systemd-tmpfiles on a temporary root whose passwd has the etcd user (cloud-init's users module makes it).
    const root = join(cluster.root('etcd1'), 'tmpfiles-root');
    mkdirSync(join(root, 'etc'), { recursive: true });
    writeFileSync(join(root, 'etc', 'passwd'), 'root:x:0:0:root:/root:/bin/sh\netcd:x:998:998::/var/lib/etcd:/usr/sbin/nologin\n');
    writeFileSync(join(root, 'etc', 'group'), 'root:x:0:\netcd:x:998:\n');
    writeFileSync(join(root, 'etcd-snapshot.conf'), content);
    const created = await runProcess('systemd-tmpfiles', ['--create', `--root=${root}`, join(root, 'etcd-snapshot.conf')]);
    expect(created.stderr).toBe('');
    expect(created.code).toBe(0);
    const folder = statSync(join(root, NODE_PATHS.backupDir));
    expect([folder.isDirectory(), folder.mode & 0o777, folder.uid, folder.gid]).toEqual([true, 0o700, 998, 998]);
  });

  it('the service and timer pass systemd-analyze verify (script path moved to a temp root)', async () => {
    const root = cluster.root('etcd1');
    // The units as written, with node paths moved under the member's root (where the script is) and Debian's etcd.
    const files = writeFilesOf(cluster.userData('etcd1'));
    const unitDir = join(root, 'verify');
    mkdirSync(unitDir, { recursive: true });
    const units = [NODE_PATHS.snapshotService, NODE_PATHS.snapshotTimer, NODE_PATHS.unitFile].map((path) => {
      const target = join(unitDir, basename(path));
      writeFileSync(target, rewriteNodePaths(files.get(path)!.content, root));
      return target;
    });
    expect(readFileSync(units[0]!, 'utf8')).toContain(`ExecStart=${root}/usr/local/lib/etcd-cloudinit/etcd-snapshot.sh `);
    const result = await runProcess('systemd-analyze', ['verify', ...units]);
    expect(result.stderr).toBe('');
    expect(result.code).toBe(0);
    // The check has teeth: a bad calendar expression fails it.
    const broken = join(root, 'broken');
    mkdirSync(broken, { recursive: true });
    writeFileSync(join(broken, 'etcd-snapshot.timer'), '[Timer]\nOnCalendar=every-hour\n');
    const failing = await runProcess('systemd-analyze', ['verify', join(broken, 'etcd-snapshot.timer')]);
    expect(failing.code).not.toBe(0);
  });

  it("the service's command saves a snapshot, keeps the newest --snapshot-retain, and the snapshot restores", async () => {
    const root = cluster.root('etcd1');
    const clientUrl = cluster.clientUrl('etcd1');
    const put = await cluster.etcdctl(['put', '/day2/snapshot', 'before-snapshot'], [clientUrl]);
    expect(put.stderr).toBe('');

    const backupDir = `${root}${NODE_PATHS.backupDir}`;
    mkdirSync(backupDir, { recursive: true, mode: 0o700 });
    // Two older snapshots: with --retain 2 the oldest must go, the other stays.
    writeFileSync(join(backupDir, 'etcd-etcd1-20200101T000000Z.db'), 'old');
    writeFileSync(join(backupDir, 'etcd-etcd1-20200102T000000Z.db'), 'newer');
    writeFileSync(join(backupDir, 'unrelated.txt'), 'kept');

    const service = writeFilesOf(cluster.userData('etcd1')).get(NODE_PATHS.snapshotService)!.content;
    const [program, ...args] = rewriteNodePaths(EXEC_START.exec(service)![1]!, root).split(' ');
    const saved = await runProcess(program!, args);
    expect(saved.stderr).not.toMatch(/error/i);
    expect(saved.code).toBe(0);
    const snapshots = readdirSync(backupDir).sort();
    expect(snapshots).toHaveLength(3);
    expect(snapshots).toContain('etcd-etcd1-20200102T000000Z.db');
    expect(snapshots).toContain('unrelated.txt');
    const snapshot = snapshots.find((file) => /^etcd-etcd1-\d{8}T\d{6}Z\.db$/.test(file) && !file.startsWith('etcd-etcd1-2020'))!;
    expect(snapshot).toBeDefined();

    // Written after the snapshot: must not be in the restored member.
    await cluster.etcdctl(['put', '/day2/snapshot', 'after-snapshot'], [clientUrl]);
    await cluster.stop('etcd1');

    // Restore as docs/day2.md says, into the member's data dir, then start the member on it.
    const dataDir = `${root}${NODE_PATHS.dataDir}`;
    rmSync(dataDir, { recursive: true, force: true });
    const plan = JSON.parse(readFileSync(join(cluster.outDir, 'cluster.json'), 'utf8')) as { initialCluster: string; initialClusterToken: string };
    const restored = await runProcess('/usr/bin/etcdctl', [
      'snapshot',
      'restore',
      join(backupDir, snapshot),
      '--name',
      'etcd1',
      `--initial-cluster=${plan.initialCluster}`,
      `--initial-cluster-token=${plan.initialClusterToken}`,
      `--initial-advertise-peer-urls=https://${cluster.ip(1)}:2380`,
      `--data-dir=${dataDir}`,
    ]);
    expect(restored.code, restored.stderr).toBe(0);
    chmodSync(dataDir, 0o700);
    await cluster.start('etcd1');
    await cluster.waitHealthy(['etcd1']);
    const get = await cluster.etcdctl(['get', '/day2/snapshot', '--print-value-only'], [clientUrl]);
    expect(get.stdout.trim()).toBe('before-snapshot');
  });
});

describe('snapshot options of gen-userdata', () => {
  it('--no-snapshots leaves the timer out and says so in cluster.json', async () => {
    const cluster = await LoopbackCluster.create('ip', ['--no-snapshots'], { size: 1 });
    try {
      const userData = cluster.userData('etcd1');
      expect(userData).not.toContain('etcd-snapshot');
      expect(JSON.parse(readFileSync(join(cluster.outDir, 'cluster.json'), 'utf8')).snapshots).toBe(false);
      expect(existsSync(cluster.outDir)).toBe(true);
    } finally {
      await cluster.cleanup();
    }
  });

  it.each([
    [['--snapshot-retain', '0'], '[validate] snapshot-retain: 0 is not a whole number of snapshots from 1 to 1000'],
    [['--snapshot-retain', 'many'], '[validate] snapshot-retain: "many" is not a whole number of snapshots from 1 to 1000'],
    [['--snapshot-schedule', 'hourly; rm -rf /'], '[validate] snapshot-schedule: "hourly; rm -rf /" is not a systemd calendar expression'],
    [['--snapshot-schedule', ''], '[validate] snapshot-schedule: "" is not a systemd calendar expression'],
  ])('gen-userdata %j is a usage error: %s', async (args, message) => {
    const result = await runCli(['gen-userdata', '--ips', '10.0.0.1', '--out', '/nonexistent/never-written', ...args], '/');
    expect(result.code).toBe(2);
    expect(result.stderr).toContain(`etcd-cloudinit gen-userdata: ${message}`);
  });
});
