import { createHash } from 'node:crypto';
import { chmod, cp, mkdir, readdir, readFile, rm, symlink, truncate, writeFile } from 'node:fs/promises';
import { existsSync, readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { join } from 'node:path';
import { run } from './exec.js';

// A bootable Debian 12 guest built from Debian's own packages: no loop mounts, no bootloader.
export interface GuestImage {
  kernel: string;
  initrd: string;
  // Raw ext4 root filesystem; VMs boot qcow2 overlays on it, never the file itself.
  disk: string;
}

// Issue 5's seam: a script run inside the rootfs chroot (e.g. the project's etcd install script).
export interface BakeStep {
  name: string;
  script: string;
  // Host files copied into the rootfs before the script runs, keyed by path inside the guest.
  files?: Record<string, string>;
}

export interface GuestImageOptions {
  cacheDir: string;
  debianMirror: string;
  bake?: BakeStep;
  log: (line: string) => void;
}

const SUITE = 'bookworm';

const PACKAGES = [
  'cloud-init',
  // debootstrap's resolver skips virtual packages: python3-cryptography needs this provider named.
  'python3-cffi-backend',
  'systemd',
  'systemd-sysv',
  'udev',
  // Debian's cloud-init renders network-config v2 to /etc/network/interfaces (ENI) when ifupdown is present.
  'ifupdown',
  'iproute2',
  // Cloud images ship a generated locale; without it cloud-init's locale module fails.
  'locales',
  'curl',
  'ca-certificates',
  // As on a droplet: renew-certs' install path is `ssh root@<member> sh -s < renew/<member>.sh`.
  'openssh-server',
  // As on a droplet: DNS-member mode's metadata lockdown uses nft.
  'nftables',
  'initramfs-tools',
  'linux-image-amd64',
];

// Only what a virtio guest needs to mount its root: a 6 MB initramfs instead of 36 MB.
const INITRAMFS_MODULES = ['virtio_pci', 'virtio_blk', 'virtio_net', 'ext4'];

const GUEST_FILES: Record<string, string> = {
  'etc/cloud/cloud.cfg.d/90-e2e.cfg': 'datasource_list: [ NoCloud, None ]\n',
  'etc/locale.gen': 'en_US.UTF-8 UTF-8\n',
  'etc/default/locale': 'LANG=en_US.UTF-8\n',
  // Guest errors (cloud-init, etcd) land in the serial console log that the test reads.
  'etc/systemd/journald.conf.d/90-e2e-console.conf': '[Journal]\nForwardToConsole=yes\nMaxLevelConsole=info\n',
  'etc/fstab': '/dev/vda / ext4 rw,errors=remount-ro 0 1\n',
  'etc/network/interfaces': 'auto lo\niface lo inet loopback\n\nsource /etc/network/interfaces.d/*\n',
  'etc/initramfs-tools/conf.d/90-e2e-modules': 'MODULES=list\n',
  'etc/initramfs-tools/modules': INITRAMFS_MODULES.join('\n') + '\n',
  // cloud-init says "finished" even when a module failed; this prints its real verdict on the console.
  'usr/local/sbin/e2e-report-cloud-init': [
    '#!/bin/sh',
    'cloud-init status --long 2>&1 | sed "s/^/E2E-CLOUD-INIT /"',
    'python3 -c \'import json; print("E2E-CLOUD-INIT-RESULT " + json.dumps(json.load(open("/run/cloud-init/result.json"))))\'',
    '',
  ].join('\n'),
  'etc/systemd/system/e2e-report-cloud-init.service': [
    '[Unit]',
    "Description=Print cloud-init's outcome on the serial console (e2e harness)",
    'After=cloud-final.service',
    '',
    '[Service]',
    'Type=oneshot',
    'ExecStart=/usr/local/sbin/e2e-report-cloud-init',
    'StandardOutput=journal+console',
    '',
    '[Install]',
    'WantedBy=cloud-init.target',
    '',
  ].join('\n'),
};

const DISK_HEADROOM_BYTES = 1024 * 1024 * 1024;

export async function buildGuestImage(options: GuestImageOptions): Promise<GuestImage> {
  const rootfs = await ensureBaseRootfs(options);
  const variant = options.bake === undefined ? 'download' : `baked-${(await bakeKey(options.bake)).slice(0, 12)}`;
  const imageDir = join(options.cacheDir, `image-${baseKey(options).slice(0, 12)}-${variant}`);
  const image: GuestImage = {
    kernel: join(imageDir, 'vmlinuz'),
    initrd: join(imageDir, 'initrd.img'),
    disk: join(imageDir, 'root.ext4'),
  };
  if (existsSync(join(imageDir, 'complete'))) {
    options.log(`guest image: reusing ${imageDir}`);
    return image;
  }
  await rm(imageDir, { recursive: true, force: true });
  await mkdir(imageDir, { recursive: true });
  const started = Date.now();
  let imageRootfs = rootfs;
  if (options.bake !== undefined) {
    imageRootfs = join(imageDir, 'rootfs');
    await run(['cp', '-a', rootfs, imageRootfs], { timeoutMs: 5 * 60_000 });
    await bakeInto(imageRootfs, options.bake, join(imageDir, 'bake.log'));
  }
  await cp(await bootFile(imageRootfs, 'vmlinuz-'), image.kernel);
  await cp(await bootFile(imageRootfs, 'initrd.img-'), image.initrd);
  const sizeBytes = (await directoryBytes(imageRootfs)) + DISK_HEADROOM_BYTES;
  await run(['mkfs.ext4', '-q', '-L', 'root', '-d', imageRootfs, image.disk, `${Math.ceil(sizeBytes / 1024 / 1024)}M`], {
    timeoutMs: 10 * 60_000,
  });
  if (options.bake !== undefined) await rm(imageRootfs, { recursive: true, force: true });
  await writeFile(join(imageDir, 'complete'), '');
  options.log(`guest image: ${imageDir} in ${Math.round((Date.now() - started) / 1000)}s`);
  return image;
}

function hash(text: string): string {
  return createHash('sha256').update(text).digest('hex');
}

// Any edit to this builder (packages, files, steps) makes a new image instead of reusing a stale one.
const BUILDER_SOURCE = readFileSync(fileURLToPath(import.meta.url), 'utf8');

function baseKey(options: GuestImageOptions): string {
  return hash(JSON.stringify({ BUILDER_SOURCE, mirror: options.debianMirror }));
}

// The files' contents count: a changed install script must bake a new image.
async function bakeKey(bake: BakeStep): Promise<string> {
  const files = await Promise.all(
    Object.entries(bake.files ?? {}).map(async ([guestPath, hostPath]) => [guestPath, hash((await readFile(hostPath)).toString('base64'))]),
  );
  return hash(JSON.stringify({ name: bake.name, script: bake.script, files }));
}

async function ensureBaseRootfs(options: GuestImageOptions): Promise<string> {
  const rootfs = join(options.cacheDir, `rootfs-${baseKey(options).slice(0, 12)}`);
  if (existsSync(`${rootfs}.complete`)) return rootfs;
  await mkdir(options.cacheDir, { recursive: true });
  await pruneStaleBuilds(options.cacheDir);
  const logFile = `${rootfs}.log`;
  options.log(`guest image: debootstrap ${SUITE} into ${rootfs} (a few minutes; log ${logFile})`);
  const started = Date.now();
  await run(
    ['debootstrap', '--variant=minbase', `--include=${PACKAGES.join(',')}`, SUITE, rootfs, options.debianMirror],
    { logFile, timeoutMs: 20 * 60_000 },
  );
  for (const [path, content] of Object.entries(GUEST_FILES)) {
    await mkdir(join(rootfs, path, '..'), { recursive: true });
    await writeFile(join(rootfs, path), content);
  }
  await chmod(join(rootfs, 'usr/local/sbin/e2e-report-cloud-init'), 0o755);
  await mkdir(join(rootfs, 'etc/systemd/system/cloud-init.target.wants'), { recursive: true });
  await symlink(
    '/etc/systemd/system/e2e-report-cloud-init.service',
    join(rootfs, 'etc/systemd/system/cloud-init.target.wants/e2e-report-cloud-init.service'),
  );
  await run(['chroot', rootfs, 'locale-gen'], { logFile, timeoutMs: 5 * 60_000 });
  // Without dbus/logind this starts gettys on tty2-6 that nobody uses.
  await symlink('/dev/null', join(rootfs, 'etc/systemd/system/getty-static.service'));
  await run(['chroot', rootfs, 'update-initramfs', '-u', '-k', 'all'], { logFile, timeoutMs: 5 * 60_000 });
  // Each VM's systemd makes its own machine-id at first boot.
  await truncate(join(rootfs, 'etc/machine-id'), 0);
  await rm(join(rootfs, 'var/lib/dbus/machine-id'), { force: true });
  await run(['chroot', rootfs, 'apt-get', 'clean'], { logFile });
  await writeFile(`${rootfs}.complete`, '');
  options.log(`guest image: rootfs ready in ${Math.round((Date.now() - started) / 1000)}s`);
  return rootfs;
}

// Earlier builders' rootfs and images are ~0.8 GB each; a changed builder never reuses them.
async function pruneStaleBuilds(cacheDir: string): Promise<void> {
  for (const name of await readdir(cacheDir)) {
    if (name.startsWith('rootfs-') || name.startsWith('image-')) await rm(join(cacheDir, name), { recursive: true, force: true });
  }
}

async function bakeInto(rootfs: string, bake: BakeStep, logFile: string): Promise<void> {
  for (const [guestPath, hostPath] of Object.entries(bake.files ?? {})) {
    const target = join(rootfs, guestPath);
    await mkdir(join(target, '..'), { recursive: true });
    await cp(hostPath, target);
  }
  const scriptPath = join(rootfs, 'tmp', `bake-${bake.name}.sh`);
  await writeFile(scriptPath, bake.script);
  await run(['chroot', rootfs, '/bin/sh', '-eu', `/tmp/bake-${bake.name}.sh`], { logFile, timeoutMs: 10 * 60_000 });
  await rm(scriptPath);
}

async function bootFile(rootfs: string, prefix: string): Promise<string> {
  const names = (await readdir(join(rootfs, 'boot'))).filter((name) => name.startsWith(prefix)).sort();
  const newest = names.at(-1);
  if (newest === undefined) throw new Error(`guest image: no /boot/${prefix}* in ${rootfs}`);
  return join(rootfs, 'boot', newest);
}

async function directoryBytes(dir: string): Promise<number> {
  const output = await run(['du', '-s', '--block-size=1', dir], { timeoutMs: 5 * 60_000 });
  return Number(output.split(/\s/)[0]);
}
