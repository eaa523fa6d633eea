// What the VM suites boot, in one place: the guest image, the same image with etcd baked in (as
// Packer bakes a DigitalOcean snapshot), and etcd 3.5 from Debian sid for the roll. Each is cached
// under .e2e-cache/, so `prepare.ts` can build them while the unit tests run and the suites reuse them.
import { join } from 'node:path';
import { etcdBakeStep } from '../support/bake.js';
import { buildEtcdMirror } from '../support/etcd-mirror.js';
import { aptSourcesLine, buildFlatAptRepo, withoutNftablesBakeStep, type FlatAptRepo } from './apt-repo.js';
import { fetchDebianEtcd, type LocalEtcdRelease } from './debian-etcd.js';
import { buildGuestImage, type BakeStep, type GuestImage } from './guest-image.js';

export interface ImageOptions {
  repoRoot: string;
  debianMirror: string;
  log: (line: string) => void;
}

export const cacheDirOf = (repoRoot: string): string => join(repoRoot, '.e2e-cache');

/** The image every download-mode VM boots. */
export function downloadImage(options: ImageOptions): Promise<GuestImage> {
  return buildGuestImage({ cacheDir: cacheDirOf(options.repoRoot), debianMirror: options.debianMirror, log: options.log });
}

/**
 * The bake step for Debian's etcd 3.4.23, read by file:// from a mirror inside the chroot. The mirror
 * sits at a stable path: the image cache is keyed on the bake step, paths included.
 */
export async function bakedImageStep(repoRoot: string): Promise<BakeStep> {
  const mirror = await buildEtcdMirror(join(cacheDirOf(repoRoot), 'bake-mirror'));
  return etcdBakeStep(mirror);
}

/** The download image with etcd baked in (same install script, unit and bake script as packer/etcd.pkr.hcl). */
export async function bakedImage(options: ImageOptions): Promise<GuestImage> {
  return buildGuestImage({ cacheDir: cacheDirOf(options.repoRoot), debianMirror: options.debianMirror, bake: await bakedImageStep(options.repoRoot), log: options.log });
}

/**
 * Where the DigitalOcean box serves its mirror (test/e2e/do-box.ts): etcd releases, and under
 * `debian/` the package repository of nftablesRepo(). Fixed, as the minimal image's apt source names it.
 */
export const BOX_MIRROR_URL = 'http://10.77.0.1:8080';

/**
 * A minimal image (issue 30): the download image without nft and iptables, whose apt reads only the
 * box's package repository. A DNS-member node booted on it must install nftables at boot.
 */
export function minimalImage(options: ImageOptions): Promise<GuestImage> {
  return buildGuestImage({ cacheDir: cacheDirOf(options.repoRoot), debianMirror: options.debianMirror, bake: withoutNftablesBakeStep(aptSourcesLine(BOX_MIRROR_URL)), log: options.log });
}

/** The flat repository with this host's nftables .debs (host and guest are bookworm), which the minimal image installs from. */
export function nftablesRepo(options: ImageOptions): Promise<FlatAptRepo> {
  return buildFlatAptRepo({ dir: join(cacheDirOf(options.repoRoot), 'apt-repo'), log: options.log });
}

/** etcd 3.5 from Debian sid: the release the DigitalOcean journey rolls to. */
export function nextMinorRelease(options: ImageOptions): Promise<LocalEtcdRelease> {
  return fetchDebianEtcd(cacheDirOf(options.repoRoot), 'sid', options.debianMirror);
}

export const defaultDebianMirror = (): string => process.env['E2E_DEBIAN_MIRROR'] ?? 'http://deb.debian.org/debian';
