import { cp, mkdir, rm } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { releaseTarballName, type EtcdMirror } from './etcd-mirror.js';
import { runProgram, type RunResult } from './run.js';

// The image bake of packer/etcd.pkr.hcl, for a root filesystem on this machine instead of a droplet:
// the same three files (install script, rendered unit, bake script) and the same bake command.
const REPO = fileURLToPath(new URL('../../', import.meta.url));
export const BAKE_SOURCES = {
  installScript: join(REPO, 'cloud-init/install-etcd.sh'),
  unit: join(REPO, 'packer/files/etcd.service'),
  bakeScript: join(REPO, 'packer/bake-etcd.sh'),
} as const;

/** Where uploads go inside the guest, as in the Packer template; removed after the bake. */
export const GUEST_UPLOAD_DIR = '/tmp/etcd-cloudinit-bake';

export interface BakeOptions {
  /** Pin the tarball's SHA-256 (as the template's etcd_sha256); default: trust the mirror's SHA256SUMS. */
  readonly sha256?: string;
}

/**
 * Host files to place in the guest, by guest path. The mirror goes in too, so the bake reads the
 * release through a file:// URL with the real download-and-verify code and needs no network.
 */
export function bakeFiles(mirror: EtcdMirror): Record<string, string> {
  const mirrorDir = `${GUEST_UPLOAD_DIR}/mirror/${mirror.version}`;
  return {
    [`${GUEST_UPLOAD_DIR}/install-etcd.sh`]: BAKE_SOURCES.installScript,
    [`${GUEST_UPLOAD_DIR}/etcd.service`]: BAKE_SOURCES.unit,
    [`${GUEST_UPLOAD_DIR}/bake-etcd.sh`]: BAKE_SOURCES.bakeScript,
    [`${mirrorDir}/${releaseTarballName(mirror.version)}`]: mirror.tarball,
    [`${mirrorDir}/SHA256SUMS`]: join(dirname(mirror.tarball), 'SHA256SUMS'),
  };
}

/** The bake command inside the guest: the Packer template's bake provisioner, with the mirror as release URL. */
export function bakeCommand(mirror: EtcdMirror, options: BakeOptions = {}): string[] {
  return [
    'sh',
    `${GUEST_UPLOAD_DIR}/bake-etcd.sh`,
    '--version',
    mirror.version,
    '--release-url',
    `file://${GUEST_UPLOAD_DIR}/mirror`,
    ...(options.sha256 ? ['--sha256', options.sha256] : []),
    '--install-script',
    `${GUEST_UPLOAD_DIR}/install-etcd.sh`,
    '--unit',
    `${GUEST_UPLOAD_DIR}/etcd.service`,
  ];
}

/**
 * The e2e guest-image seam (test/e2e/guest-image.ts `BakeStep`: files copied into the rootfs, then
 * `script` run there by `/bin/sh -eu` in a chroot). Keep `mirror` at a stable path: the e2e image
 * cache is keyed on this object.
 */
export function etcdBakeStep(mirror: EtcdMirror, options: BakeOptions = {}): { name: string; script: string; files: Record<string, string> } {
  return {
    name: `etcd-${mirror.version}`,
    script: `${bakeCommand(mirror, options).join(' ')}\nrm -rf ${GUEST_UPLOAD_DIR}\n`,
    files: bakeFiles(mirror),
  };
}

/** Bakes etcd into `rootfs` (as root, by chroot) and returns the bake's output; uploads are removed either way. */
export async function bakeRootfs(rootfs: string, mirror: EtcdMirror, options: BakeOptions & { timeoutMs?: number } = {}): Promise<RunResult> {
  for (const [guestPath, hostPath] of Object.entries(bakeFiles(mirror))) {
    const target = join(rootfs, guestPath);
    await mkdir(dirname(target), { recursive: true });
    await cp(hostPath, target);
  }
  try {
    return await runProgram('chroot', [rootfs, ...bakeCommand(mirror, options)], {
      timeoutMs: options.timeoutMs ?? 10 * 60_000,
      env: { PATH: '/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin', LC_ALL: 'C' },
    });
  } finally {
    await rm(join(rootfs, GUEST_UPLOAD_DIR), { recursive: true, force: true });
  }
}
