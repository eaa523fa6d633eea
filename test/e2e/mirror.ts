import { createHash } from 'node:crypto';
import { copyFile, chmod, mkdir, readFile, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { ChildProcess } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { run, startLogged, waitFor, runAllowingFailure } from './exec.js';
import type { TestNetwork } from './netns.js';

// Debian's etcd 3.4.23 binaries repackaged in the official release layout, so the real download-and-verify path runs.
export interface EtcdRelease {
  version: string;
  etcdBinary: string;
  etcdctlBinary: string;
}

export const DEBIAN_ETCD_RELEASE: EtcdRelease = {
  version: 'v3.4.23',
  etcdBinary: '/usr/bin/etcd',
  etcdctlBinary: '/usr/bin/etcdctl',
};

export function releaseTarballName(version: string): string {
  return `etcd-${version}-linux-amd64.tar.gz`;
}

// Writes <root>/<version>/{etcd-<version>-linux-amd64.tar.gz,SHA256SUMS} and returns the tarball's path.
export async function buildEtcdMirror(root: string, release: EtcdRelease): Promise<string> {
  const topDir = `etcd-${release.version}-linux-amd64`;
  const staging = join(root, '.staging');
  await rm(staging, { recursive: true, force: true });
  await mkdir(join(staging, topDir), { recursive: true });
  await mkdir(join(root, release.version), { recursive: true });
  for (const [source, name] of [
    [release.etcdBinary, 'etcd'],
    [release.etcdctlBinary, 'etcdctl'],
  ] as const) {
    await copyFile(source, join(staging, topDir, name));
    await chmod(join(staging, topDir, name), 0o755);
  }
  const tarball = join(root, release.version, releaseTarballName(release.version));
  await run(['tar', '-C', staging, '--owner=0', '--group=0', '-czf', tarball, topDir], { timeoutMs: 5 * 60_000 });
  await rm(staging, { recursive: true, force: true });
  const sha256 = createHash('sha256').update(await readFile(tarball)).digest('hex');
  // Same line format as the official SHA256SUMS (two spaces: sha256sum's text mode).
  await writeFile(join(root, release.version, 'SHA256SUMS'), `${sha256}  ${releaseTarballName(release.version)}\n`);
  return tarball;
}

export interface MirrorServer {
  url: string;
  process: ChildProcess;
  logFile: string;
}

const SERVER_SCRIPT = fileURLToPath(new URL('./mirror-server.mjs', import.meta.url));

export async function serveMirror(network: TestNetwork, root: string, port: number, logFile: string): Promise<MirrorServer> {
  const url = `http://${network.bridgeAddress}:${port}`;
  const server = startLogged(network.inside(['node', SERVER_SCRIPT, root, network.bridgeAddress, String(port)]), logFile);
  await waitFor(
    `the mirror at ${url}`,
    async () => {
      if (server.exitCode !== null) throw new Error(`mirror server exited (${server.exitCode}); see ${logFile}`);
      const probe = await runAllowingFailure(network.inside(['curl', '-fsS', '-o', '/dev/null', `${url}/`]), { timeoutMs: 10_000 });
      // 404 for "/" means the server answers.
      return probe.code === 0 || probe.code === 22 ? true : undefined;
    },
    { timeoutMs: 30_000, intervalMs: 300 },
  );
  return { url, process: server, logFile };
}
