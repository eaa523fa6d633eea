/**
 * Issue 30's VM step, the parts that are not the journey itself: a guest image without nft and
 * iptables, and a package repository the test serves, from which the DNS-member node's
 * metadata-lockdown.sh installs nftables at boot (apt-get update, apt-get install nftables).
 *
 * How to use them (the DigitalOcean journey wires them; nothing here starts a server or a VM):
 *
 *   // 1. On the host: a flat repository with the host's nftables .debs (host and guest are bookworm).
 *   const repo = await buildFlatAptRepo({ dir: join(cacheDirOf(repoRoot), 'apt-repo'), log });
 *   // 2. Serve repo.root over HTTP where the guests reach it, e.g. test/e2e/mirror.ts:
 *   //    serveMirror(network, repo.root, PORT, logFile)  ->  http://HOST:PORT/debian/Packages
 *   // 3. The guest image without nftables, whose apt reads only that repository:
 *   const image = await buildGuestImage({ ..., bake: withoutNftablesBakeStep(aptSourcesLine(`http://${HOST}:${PORT}`)) });
 *   // Proof the install path ran: the server's log shows GET /debian/nftables_<version>_amd64.deb,
 *   // and the node's journal 'installing nftables with apt-get'.
 *   // For the failing case, serve an empty folder (or none): the node stops with the clear line.
 *
 * The bake step's script holds the sources line, so keep HOST:PORT stable: the image cache is keyed
 * on the step.
 */
import { createHash } from 'node:crypto';
import { existsSync } from 'node:fs';
import { mkdir, readFile, readdir, rm, stat, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { gzipSync } from 'node:zlib';
import { run, runAllowingFailure } from './exec.js';
import type { BakeStep } from './guest-image.js';

/** The packages a node needs to get nft back: the tool, and its library in case the image's is older. */
export const NFTABLES_PACKAGES: readonly string[] = ['nftables', 'libnftables1'];

export interface FlatAptRepo {
  /** The folder to serve: the repository is its `debian/` subfolder. */
  readonly root: string;
  /** `<root>/debian`: the .deb files, Packages, Packages.gz and Release. */
  readonly repoDir: string;
  /** The .deb file names in the repository. */
  readonly debs: readonly string[];
}

export interface FlatAptRepoOptions {
  /** The folder to build in (created; reused when complete for the same packages). */
  readonly dir: string;
  /** Package names for `apt-get download`; default NFTABLES_PACKAGES. */
  readonly packages?: readonly string[];
  readonly log?: (line: string) => void;
  readonly timeoutMs?: number;
}

/**
 * Builds a flat Debian repository (`deb [trusted=yes] <url>/debian ./`) in `dir`: `apt-get download`
 * with this machine's apt (its package lists must be current: `apt-get update`), then the index,
 * by `dpkg-scanpackages` (dpkg-dev), else `apt-ftparchive packages` (apt-utils), else written here
 * from `dpkg-deb -f` and the file's size and SHA-256. Also Packages.gz and an unsigned Release.
 */
export async function buildFlatAptRepo(options: FlatAptRepoOptions): Promise<FlatAptRepo> {
  const packages = options.packages ?? NFTABLES_PACKAGES;
  const root = options.dir;
  const repoDir = join(root, 'debian');
  const marker = join(root, '.complete');
  const wanted = `${packages.join(' ')}\n`;
  if (existsSync(marker) && (await readFile(marker, 'utf8')) === wanted) {
    return { root, repoDir, debs: await debsIn(repoDir) };
  }
  await rm(root, { recursive: true, force: true });
  await mkdir(repoDir, { recursive: true });
  const timeoutMs = options.timeoutMs ?? 5 * 60_000;
  options.log?.(`apt repository: apt-get download ${packages.join(' ')} into ${repoDir}`);
  await run(['apt-get', 'download', ...packages], { cwd: repoDir, timeoutMs });
  const debs = await debsIn(repoDir);
  if (debs.length !== packages.length) throw new Error(`apt repository: expected ${packages.length} .deb file(s) in ${repoDir}, found ${debs.join(', ') || 'none'}`);

  const index = await packagesIndex(repoDir, debs, timeoutMs);
  await writeFile(join(repoDir, 'Packages'), index);
  await writeFile(join(repoDir, 'Packages.gz'), gzipSync(index));
  await writeFile(join(repoDir, 'Release'), await releaseFile(repoDir, ['Packages', 'Packages.gz']));
  await writeFile(marker, wanted);
  return { root, repoDir, debs };
}

/** The sources.list line for a repository served at `baseUrl` (e.g. http://10.0.2.2:8080): its `debian/` folder, flat. */
export function aptSourcesLine(baseUrl: string): string {
  return `deb [trusted=yes] ${baseUrl.replace(/\/+$/, '')}/debian ./`;
}

/**
 * A guest-image bake step (guest-image.ts `BakeStep`): removes nftables from the rootfs with
 * `dpkg -r` (its libraries stay), checks that neither nft nor iptables is left, and makes
 * `sourcesLine` apt's only source (no package lists are kept: the node's `apt-get update` fetches
 * them from the served repository).
 */
export function withoutNftablesBakeStep(sourcesLine: string): BakeStep {
  if (!/^deb \[trusted=yes\] https?:\/\/[^\s'"\\$`]+ \.\/$/.test(sourcesLine)) throw new Error(`not a flat repository's sources line: ${sourcesLine}`);
  return {
    name: 'without-nftables',
    script: [
      'dpkg -r nftables',
      'if command -v nft >/dev/null 2>&1 || command -v iptables >/dev/null 2>&1; then echo "without-nftables: nft or iptables is still installed" >&2; exit 1; fi',
      'rm -f /etc/apt/sources.list.d/*.list /etc/apt/sources.list.d/*.sources',
      `echo '${sourcesLine}' > /etc/apt/sources.list`,
      'rm -rf /var/lib/apt/lists/*',
      'apt-get clean',
      '',
    ].join('\n'),
  };
}

async function debsIn(dir: string): Promise<string[]> {
  return (await readdir(dir)).filter((name) => name.endsWith('.deb')).sort();
}

/** The Packages index of the .debs in `repoDir`, with `Filename: ./<deb>`. */
async function packagesIndex(repoDir: string, debs: readonly string[], timeoutMs: number): Promise<string> {
  const scan = await runAllowingFailure(['dpkg-scanpackages', '--multiversion', '.', '/dev/null'], { cwd: repoDir, timeoutMs }).catch(() => undefined);
  if (scan?.code === 0 && scan.stdout.includes('Package: ')) return scan.stdout;
  const ftparchive = await runAllowingFailure(['apt-ftparchive', 'packages', '.'], { cwd: repoDir, timeoutMs }).catch(() => undefined);
  if (ftparchive?.code === 0 && ftparchive.stdout.includes('Package: ')) return ftparchive.stdout;
  const stanzas: string[] = [];
  for (const deb of debs) {
    const path = join(repoDir, deb);
    const control = (await run(['dpkg-deb', '-f', path], { timeoutMs })).trimEnd();
    const bytes = await readFile(path);
    const digest = (algorithm: string) => createHash(algorithm).update(bytes).digest('hex');
    stanzas.push(`${control}\nFilename: ./${deb}\nSize: ${bytes.length}\nMD5sum: ${digest('md5')}\nSHA256: ${digest('sha256')}\n`);
  }
  return stanzas.join('\n');
}

/** An unsigned Release naming the index files' sizes and SHA-256 ([trusted=yes] needs no signature). */
async function releaseFile(repoDir: string, files: readonly string[]): Promise<string> {
  const lines = [`Date: ${new Date().toUTCString()}`, 'SHA256:'];
  for (const file of files) {
    const bytes = await readFile(join(repoDir, file));
    lines.push(` ${createHash('sha256').update(bytes).digest('hex')} ${(await stat(join(repoDir, file))).size} ${file}`);
  }
  return `${lines.join('\n')}\n`;
}
