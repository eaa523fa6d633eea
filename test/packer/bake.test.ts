import { existsSync, statSync } from 'node:fs';
import { chmod, chown, mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parse as parseYaml } from 'yaml';
import { main } from '../../src/cli.js';
import { NODE_PATHS } from '../../src/plan.js';
import { renderUnit, type CloudConfig } from '../../src/render.js';
import { BAKE_SOURCES, bakeRootfs, etcdBakeStep, GUEST_UPLOAD_DIR } from '../support/bake.js';
import { buildEtcdMirror, type EtcdMirror } from '../support/etcd-mirror.js';
import { buildHostToolsRootfs } from '../support/host-rootfs.js';
import { runProgram } from '../support/run.js';

// packer/bake-etcd.sh run for real (as root, in a chroot) on a small root filesystem of this machine's
// programs, with Debian's etcd 3.4.23 from a local mirror. The e2e test does the same to a Debian guest.
const CHROOT_ENV = { PATH: '/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin', LC_ALL: 'C' };

let scratch: string;
let mirror: EtcdMirror;
let rootfs: string;
let bake: Awaited<ReturnType<typeof bakeRootfs>>;

beforeAll(async () => {
  scratch = await mkdtemp(join(tmpdir(), 'bake-test-'));
  mirror = await buildEtcdMirror(join(scratch, 'mirror'));
  rootfs = join(scratch, 'rootfs');
  buildHostToolsRootfs(rootfs);
  bake = await bakeRootfs(rootfs, mirror);
});

afterAll(async () => {
  if (scratch) await rm(scratch, { recursive: true, force: true });
});

const inRoot = (path: string) => join(rootfs, path);

describe('bake-etcd.sh in a root filesystem', () => {
  it('installs the verified release and ends with the check the nodes run', () => {
    expect(bake.stderr).toBe('');
    expect(bake.code).toBe(0);
    expect(bake.stdout.split('\n')).toEqual([
      `etcd-cloudinit: installed etcd v3.4.23 into /usr/local/bin (sha256 ${mirror.sha256})`,
      'etcd-cloudinit: etcd v3.4.23 is installed in /usr/local/bin',
      'etcd-cloudinit: baked etcd v3.4.23, user etcd, /etc/systemd/system/etcd.service',
      '',
    ]);
    for (const binary of ['etcd', 'etcdctl']) expect(statSync(inRoot(`${NODE_PATHS.binDir}/${binary}`)).mode & 0o777).toBe(0o755);
  });

  it('keeps the install script where user-data puts it, byte for byte', async () => {
    expect(await readFile(inRoot(NODE_PATHS.installScript), 'utf8')).toBe(await readFile(BAKE_SOURCES.installScript, 'utf8'));
    expect(statSync(inRoot(NODE_PATHS.installScript)).mode & 0o777).toBe(0o755);
  });

  it('creates the etcd user as cloud-init would: system, no login, home the data dir, no password', async () => {
    const passwd = (await readFile(inRoot('etc/passwd'), 'utf8')).split('\n').find((line) => line.startsWith(`${NODE_PATHS.user}:`));
    const [, , uid, , , home, shell] = passwd!.split(':');
    expect(Number(uid)).toBeLessThan(1000);
    expect([home, shell]).toEqual([NODE_PATHS.dataDir, '/usr/sbin/nologin']);
    expect(await readFile(inRoot('etc/group'), 'utf8')).toMatch(new RegExp(`^${NODE_PATHS.user}:x:${uid}:$`, 'm'));
    const shadow = (await readFile(inRoot('etc/shadow'), 'utf8')).split('\n').find((line) => line.startsWith(`${NODE_PATHS.user}:`));
    expect(shadow!.split(':')[1]).toMatch(/^[!*]/);
  });

  it('installs the unit every member gets, disabled, with no data dir and no uploads left', async () => {
    expect(await readFile(inRoot(NODE_PATHS.unitFile), 'utf8')).toBe(renderUnit(NODE_PATHS));
    expect(statSync(inRoot(NODE_PATHS.pkiDir)).mode & 0o7777).toBe(0o755);
    expect(existsSync(inRoot('etc/systemd/system/multi-user.target.wants/etcd.service'))).toBe(false);
    expect(existsSync(inRoot(NODE_PATHS.dataDir))).toBe(false);
    expect(existsSync(inRoot(GUEST_UPLOAD_DIR))).toBe(false);
  });

  it('can run again (a rebuilt image, a retried provisioner)', async () => {
    const again = await bakeRootfs(rootfs, mirror, { sha256: mirror.sha256 });
    expect(again.code).toBe(0);
    const passwd = await readFile(inRoot('etc/passwd'), 'utf8');
    expect(passwd.match(/^etcd:/gm)).toHaveLength(1);
  });

  it('bakes nothing when the tarball does not match the pinned checksum', async () => {
    const otherRoot = join(scratch, 'rootfs-bad-pin');
    buildHostToolsRootfs(otherRoot);
    const failed = await bakeRootfs(otherRoot, mirror, { sha256: 'f'.repeat(64) });
    expect(failed.code).toBe(1);
    expect(failed.stderr).toContain('etcd-cloudinit: install-etcd: checksum mismatch for etcd-v3.4.23-linux-amd64.tar.gz');
    for (const path of [`${NODE_PATHS.binDir}/etcd`, NODE_PATHS.installScript, NODE_PATHS.unitFile]) expect(existsSync(join(otherRoot, path))).toBe(false);
    expect(await readFile(join(otherRoot, 'etc/passwd'), 'utf8')).not.toContain('etcd:');
  });

  it('offers the e2e guest-image seam the same files and command', () => {
    const step = etcdBakeStep(mirror);
    expect(step.name).toBe('etcd-v3.4.23');
    expect(Object.values(step.files)).toEqual(expect.arrayContaining([BAKE_SOURCES.installScript, BAKE_SOURCES.unit, BAKE_SOURCES.bakeScript, mirror.tarball]));
    expect(step.script).toBe(
      `sh ${GUEST_UPLOAD_DIR}/bake-etcd.sh --version v3.4.23 --release-url file://${GUEST_UPLOAD_DIR}/mirror --install-script ${GUEST_UPLOAD_DIR}/install-etcd.sh --unit ${GUEST_UPLOAD_DIR}/etcd.service\nrm -rf ${GUEST_UPLOAD_DIR}\n`,
    );
  });
});

describe('baked user-data on the baked root filesystem', () => {
  /** What cloud-init does with the user-data, minus users (the image has etcd) and systemctl (recorded by a stub). */
  async function firstBoot(etcdVersion: string) {
    const root = join(scratch, `boot-${etcdVersion}`);
    await rm(root, { recursive: true, force: true });
    await runProgram('cp', ['-a', rootfs, root]);
    const cwd = await mkdtemp(join(scratch, 'gen-'));
    const io = { write: () => true };
    const code = await main(['gen-userdata', '--ips', '10.0.0.11', '--install', 'baked', '--etcd-version', etcdVersion, '--key-size', '2048'], { env: {}, stdout: io, stderr: io, cwd });
    expect(code).toBe(0);
    const userData = parseYaml(await readFile(join(cwd, 'out/etcd/user-data/etcd1.yaml'), 'utf8')) as CloudConfig;
    const etcdIds = (await readFile(join(root, 'etc/passwd'), 'utf8')).match(/^etcd:x:(\d+):(\d+):/m)!;
    for (const file of userData.write_files) {
      const target = join(root, file.path);
      await mkdir(dirname(target), { recursive: true });
      await writeFile(target, file.content);
      await chmod(target, Number.parseInt(file.permissions, 8));
      if (file.owner === 'etcd:etcd') await chown(target, Number(etcdIds[1]), Number(etcdIds[2]));
    }
    await writeFile(join(root, 'usr/local/sbin/systemctl'), '#!/bin/sh\necho "systemctl $*" >>/tmp/systemctl.log\n', { mode: 0o755 });
    const [shell, flag, script] = userData.runcmd[0] as [string, string, string];
    // systemd-tmpfiles wants /proc: a private mount namespace gives the chroot one that goes away with it.
    await mkdir(join(root, 'proc'), { recursive: true });
    const inChroot = 'mount -t proc proc "$1/proc" && exec chroot "$@"';
    const runcmd = await runProgram('unshare', ['--mount', '--pid', '--fork', 'sh', '-c', inChroot, 'sh', root, shell, flag, script], { env: CHROOT_ENV });
    const systemctl = existsSync(join(root, 'tmp/systemctl.log')) ? await readFile(join(root, 'tmp/systemctl.log'), 'utf8') : '';
    return { runcmd, systemctl, root, etcdUid: Number(etcdIds[1]) };
  }

  it('passes the check and enables and starts etcd when the versions agree', async () => {
    const { runcmd, systemctl } = await firstBoot('v3.4.23');
    expect(runcmd).toEqual({ code: 0, stdout: 'etcd-cloudinit: etcd v3.4.23 is installed in /usr/local/bin\n', stderr: '' });
    expect(systemctl).toBe('systemctl daemon-reload\nsystemctl enable --no-reload etcd.service\nsystemctl start --no-block etcd.service\nsystemctl enable --no-reload --now etcd-defrag.timer\nsystemctl enable --no-reload --now etcd-renew-agent.timer\nsystemctl enable --no-reload --now etcd-snapshot.timer\n');
  });

  it('makes the snapshot folder from tmpfiles.d with the real systemd-tmpfiles: etcd owns it, 0700', async () => {
    const { root, etcdUid } = await firstBoot('v3.4.23');
    const folder = statSync(join(root, NODE_PATHS.backupDir));
    expect(folder.isDirectory()).toBe(true);
    expect([folder.uid, folder.mode & 0o7777]).toEqual([etcdUid, 0o700]);
  });

  it('fails the runcmd before touching systemd when the image has another version', async () => {
    const { runcmd, systemctl } = await firstBoot('v3.6.14');
    expect(runcmd).toEqual({ code: 1, stdout: '', stderr: 'etcd-cloudinit: install-etcd: expected etcd v3.6.14 in /usr/local/bin, found v3.4.23\n' });
    expect(systemctl).toBe('');
  });
});
