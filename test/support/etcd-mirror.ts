import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { chmod, copyFile, mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join, normalize, sep } from 'node:path';

/** Debian's etcd 3.4.23 (packages etcd-server, etcd-client), repackaged as an official release. */
export const DEBIAN_ETCD = { version: 'v3.4.23', etcd: '/usr/bin/etcd', etcdctl: '/usr/bin/etcdctl' } as const;

export interface EtcdMirror {
  /** The folder to serve: `<root>/<version>/{etcd-<version>-linux-amd64.tar.gz,SHA256SUMS}`. */
  readonly root: string;
  readonly version: string;
  readonly tarball: string;
  readonly sha256: string;
}

export function releaseTarballName(version: string): string {
  return `etcd-${version}-linux-amd64.tar.gz`;
}

/**
 * Builds a release mirror in the official layout from local binaries, so the real
 * download-and-verify path of cloud-init/install-etcd.sh runs without the internet.
 */
export async function buildEtcdMirror(root: string, release: { version: string; etcd: string; etcdctl: string; etcdutl?: string } = DEBIAN_ETCD): Promise<EtcdMirror> {
  const topDir = `etcd-${release.version}-linux-amd64`;
  const staging = await mkdtemp(join(tmpdir(), 'etcd-mirror-staging-'));
  try {
    await mkdir(join(staging, topDir), { recursive: true });
    // etcdutl ships from 3.5 on.
    const binaries = [[release.etcd, 'etcd'], [release.etcdctl, 'etcdctl'], ...(release.etcdutl ? [[release.etcdutl, 'etcdutl']] : [])] as const;
    for (const [source, name] of binaries) {
      await copyFile(source, join(staging, topDir, name));
      await chmod(join(staging, topDir, name), 0o755);
    }
    await mkdir(join(root, release.version), { recursive: true });
    const tarball = join(root, release.version, releaseTarballName(release.version));
    // Byte-for-byte the same tarball every time (no mtimes, no gzip time stamp): the e2e image cache
    // is keyed on the baked files' contents, so a new mirror must not mean a new baked image.
    execFileSync('tar', ['-C', staging, '--owner=0', '--group=0', '--mtime=@0', '--sort=name', '-I', 'gzip -n', '-cf', tarball, topDir], { timeout: 120_000 });
    const sha256 = createHash('sha256').update(await readFile(tarball)).digest('hex');
    // The official SHA256SUMS line format: sha256sum's text mode, two spaces.
    await writeFile(join(root, release.version, 'SHA256SUMS'), `${sha256}  ${releaseTarballName(release.version)}\n`);
    return { root, version: release.version, tarball, sha256 };
  } finally {
    await rm(staging, { recursive: true, force: true });
  }
}

export interface MirrorServer {
  /** `http://127.0.0.1:<port>`: the --release-url. */
  readonly url: string;
  /** Request paths served so far, in order. */
  readonly requests: readonly string[];
  close(): Promise<void>;
}

/** Serves `root` read-only on 127.0.0.1 and an ephemeral port. */
export async function serveMirror(root: string): Promise<MirrorServer> {
  const requests: string[] = [];
  const server: Server = createServer((request, response) => {
    const path = decodeURIComponent(new URL(request.url ?? '/', 'http://mirror').pathname);
    requests.push(path);
    const file = normalize(join(root, path));
    if (!file.startsWith(root + sep) || request.method !== 'GET') {
      response.writeHead(404).end();
      return;
    }
    const stream = createReadStream(file);
    stream.once('open', () => {
      response.writeHead(200, { 'content-type': 'application/octet-stream' });
      stream.pipe(response);
    });
    stream.once('error', () => response.writeHead(404).end());
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', resolve);
  });
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}`,
    requests,
    close: () =>
      new Promise<void>((resolve, reject) => {
        server.closeAllConnections();
        server.close((error) => (error ? reject(error) : resolve()));
      }),
  };
}
