import { execFileSync } from 'node:child_process';
import { existsSync, readFileSync, statSync } from 'node:fs';
import { cp, mkdtemp, readdir, rm, writeFile } from 'node:fs/promises';
import { createServer as createHttpsServer, type Server as HttpsServer } from 'node:https';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DEBIAN_ETCD, buildEtcdMirror, releaseTarballName, serveMirror, type EtcdMirror, type MirrorServer } from '../support/etcd-mirror.js';
import { runProgram } from '../support/run.js';

// The one install script that both download-mode user-data and the image bake run.
const INSTALL_SCRIPT = fileURLToPath(new URL('../../cloud-init/install-etcd.sh', import.meta.url));

let scratch: string;
let mirror: EtcdMirror;
let server: MirrorServer;
/** Same layout, but the tarball's bytes changed after SHA256SUMS was written. */
let corruptServer: MirrorServer;
/** A correctly summed tarball named v3.6.14 that holds another release's binaries. */
let mislabelledServer: MirrorServer;

beforeAll(async () => {
  scratch = await mkdtemp(join(tmpdir(), 'install-etcd-test-'));
  mirror = await buildEtcdMirror(join(scratch, 'mirror'));
  server = await serveMirror(mirror.root);
  const corruptRoot = join(scratch, 'corrupt-mirror');
  await cp(mirror.root, corruptRoot, { recursive: true });
  await writeFile(join(corruptRoot, mirror.version, releaseTarballName(mirror.version)), 'not the tarball SHA256SUMS describes\n', { flag: 'a' });
  corruptServer = await serveMirror(corruptRoot);
  const mislabelled = await buildEtcdMirror(join(scratch, 'mislabelled-mirror'), { version: 'v3.6.14', etcd: DEBIAN_ETCD.etcd, etcdctl: DEBIAN_ETCD.etcdctl });
  mislabelledServer = await serveMirror(mislabelled.root);
});

afterAll(async () => {
  await server?.close();
  await corruptServer?.close();
  await mislabelledServer?.close();
  if (scratch) await rm(scratch, { recursive: true, force: true });
});

const installScript = (...args: string[]) => runProgram('sh', [INSTALL_SCRIPT, ...args], { timeoutMs: 120_000 });

async function freshBinDir(): Promise<string> {
  return mkdtemp(join(scratch, 'bin-'));
}

describe('install-etcd.sh install, from a local mirror in the official release layout', () => {
  it('downloads, verifies against SHA256SUMS, installs etcd and etcdctl, and then check passes', async () => {
    const binDir = await freshBinDir();
    const install = await installScript('install', '--version', 'v3.4.23', '--release-url', server.url, '--bin-dir', binDir);
    expect(install.stderr).toBe('');
    expect(install.code).toBe(0);
    expect(install.stdout).toContain(`etcd-cloudinit: installed etcd v3.4.23 into ${binDir} (sha256 ${mirror.sha256})`);
    expect(server.requests).toEqual(expect.arrayContaining([`/v3.4.23/${releaseTarballName('v3.4.23')}`, '/v3.4.23/SHA256SUMS']));
    expect((await readdir(binDir)).sort()).toEqual(['etcd', 'etcdctl']);
    for (const binary of ['etcd', 'etcdctl']) expect(statSync(join(binDir, binary)).mode & 0o777).toBe(0o755);

    const check = await installScript('check', '--version', 'v3.4.23', '--bin-dir', binDir);
    expect(check).toEqual({ code: 0, stdout: `etcd-cloudinit: etcd v3.4.23 is installed in ${binDir}\n`, stderr: '' });
  });

  it('accepts a pinned --sha256 without fetching SHA256SUMS, and a release URL with a trailing slash', async () => {
    const binDir = await freshBinDir();
    const before = server.requests.length;
    const install = await installScript('install', '--version', 'v3.4.23', '--release-url', `${server.url}/`, '--sha256', mirror.sha256, '--bin-dir', binDir);
    expect(install.code).toBe(0);
    expect(server.requests.slice(before)).toEqual([`/v3.4.23/${releaseTarballName('v3.4.23')}`]);
    expect(existsSync(join(binDir, 'etcd'))).toBe(true);
  });

  it('refuses a wrong --sha256 with "checksum mismatch" and installs nothing', async () => {
    const binDir = await freshBinDir();
    const wrong = '0'.repeat(64);
    const install = await installScript('install', '--version', 'v3.4.23', '--release-url', server.url, '--sha256', wrong, '--bin-dir', binDir);
    expect(install.code).toBe(1);
    expect(install.stderr).toBe(
      `etcd-cloudinit: install-etcd: checksum mismatch for ${releaseTarballName('v3.4.23')}: expected ${wrong}, got ${mirror.sha256}; not installing\n`,
    );
    expect(await readdir(binDir)).toEqual([]);
  });

  it('refuses a corrupted tarball (SHA256SUMS no longer matches) and installs nothing', async () => {
    const binDir = await freshBinDir();
    const install = await installScript('install', '--version', 'v3.4.23', '--release-url', corruptServer.url, '--bin-dir', binDir);
    expect(install.code).toBe(1);
    expect(install.stderr).toMatch(new RegExp(`^etcd-cloudinit: install-etcd: checksum mismatch for ${releaseTarballName('v3.4.23').replace(/\./g, '\\.')}: expected ${mirror.sha256}, got [0-9a-f]{64}; not installing\n$`));
    expect(await readdir(binDir)).toEqual([]);
  });

  it('refuses a tarball whose etcd is another release, and leaves the installed etcd alone', async () => {
    const binDir = await freshBinDir();
    expect((await installScript('install', '--version', 'v3.4.23', '--release-url', server.url, '--bin-dir', binDir)).code).toBe(0);
    const installed = (binary: string) => {
      const stat = statSync(join(binDir, binary));
      return `${stat.ino}:${stat.mtimeMs}`;
    };
    const before = ['etcd', 'etcdctl'].map(installed);
    const install = await installScript('install', '--version', 'v3.6.14', '--release-url', mislabelledServer.url, '--bin-dir', binDir);
    expect(install).toEqual({
      code: 1,
      stdout: '',
      stderr: `etcd-cloudinit: install-etcd: ${releaseTarballName('v3.6.14')} holds etcd v3.4.23, expected v3.6.14; not installing\n`,
    });
    // Not replaced: `install` would have written new files.
    expect(['etcd', 'etcdctl'].map(installed)).toEqual(before);
  });

  it('fails with the URL when the release is not on the mirror', async () => {
    const binDir = await freshBinDir();
    const install = await installScript('install', '--version', 'v3.4.99', '--release-url', server.url, '--bin-dir', binDir);
    expect(install.code).toBe(1);
    expect(install.stderr).toContain(`etcd-cloudinit: install-etcd: download failed: ${server.url}/v3.4.99/${releaseTarballName('v3.4.99')}`);
    expect(await readdir(binDir)).toEqual([]);
  });
});

describe('install-etcd.sh check: the boot-time guard of baked images', () => {
  it('fails naming both versions when the installed etcd is another release', async () => {
    const binDir = await freshBinDir();
    expect((await installScript('install', '--version', 'v3.4.23', '--release-url', server.url, '--bin-dir', binDir)).code).toBe(0);
    const check = await installScript('check', '--version', 'v3.6.14', '--bin-dir', binDir);
    expect(check).toEqual({ code: 1, stdout: '', stderr: `etcd-cloudinit: install-etcd: expected etcd v3.6.14 in ${binDir}, found v3.4.23\n` });
  });

  it('fails with "found nothing" when no etcd is installed', async () => {
    const binDir = await freshBinDir();
    const check = await installScript('check', '--version', 'v3.4.23', '--bin-dir', binDir);
    expect(check).toEqual({ code: 1, stdout: '', stderr: `etcd-cloudinit: install-etcd: expected etcd v3.4.23 in ${binDir}, found nothing\n` });
  });
});

/**
 * An https server with a self-signed certificate (curl trusts it through CURL_CA_BUNDLE):
 * /to-http/<path> redirects to the plain-http mirror, /to-https/<path> to its own /files/<path>,
 * which serves the mirror's files itself.
 */
async function serveHttpsRedirects(dir: string, httpMirrorUrl: string, mirrorRoot: string) {
  const key = join(dir, 'tls.key');
  const cert = join(dir, 'tls.crt');
  execFileSync('openssl', ['req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-keyout', key, '-out', cert, '-days', '1', '-subj', '/CN=127.0.0.1', '-addext', 'subjectAltName=IP:127.0.0.1'], {
    stdio: 'ignore',
    timeout: 60_000,
  });
  let origin = '';
  const server: HttpsServer = createHttpsServer({ key: readFileSync(key), cert: readFileSync(cert) }, (request, response) => {
    const path = new URL(request.url ?? '/', 'https://mirror').pathname;
    const [, route, rest] = /^\/([^/]+)(\/.*)$/.exec(path) ?? [];
    if (route === 'to-http') response.writeHead(302, { location: `${httpMirrorUrl}${rest}` }).end();
    else if (route === 'to-https') response.writeHead(302, { location: `${origin}/files${rest}` }).end();
    else if (route === 'files' && rest !== undefined && !rest.includes('..') && existsSync(join(mirrorRoot, rest))) response.writeHead(200).end(readFileSync(join(mirrorRoot, rest)));
    else response.writeHead(404).end();
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  origin = `https://127.0.0.1:${(server.address() as AddressInfo).port}`;
  return {
    origin,
    caBundle: cert,
    close: () => new Promise<void>((resolve) => server.close(() => resolve())),
  };
}

describe('install-etcd.sh with an https release URL: https stays https', () => {
  let https: Awaited<ReturnType<typeof serveHttpsRedirects>>;
  beforeAll(async () => {
    https = await serveHttpsRedirects(await mkdtemp(join(scratch, 'tls-')), server.url, mirror.root);
  });
  afterAll(async () => https?.close());

  const installOverHttps = (releaseUrl: string, binDir: string) =>
    runProgram('sh', [INSTALL_SCRIPT, 'install', '--version', 'v3.4.23', '--release-url', releaseUrl, '--bin-dir', binDir], {
      timeoutMs: 120_000,
      env: { ...process.env, CURL_CA_BUNDLE: https.caBundle },
    });

  it('refuses a redirect to http with a clear message, fetches nothing over http and installs nothing', async () => {
    const binDir = await freshBinDir();
    const before = server.requests.length;
    const install = await installOverHttps(`${https.origin}/to-http`, binDir);
    expect(install.code).toBe(1);
    expect(install.stderr).toContain(
      `etcd-cloudinit: install-etcd: download failed: ${https.origin}/to-http/v3.4.23/${releaseTarballName('v3.4.23')} redirects to a URL that is not https; not installing\n`,
    );
    expect(server.requests.slice(before)).toEqual([]);
    expect(await readdir(binDir)).toEqual([]);
  });

  it('still follows a redirect from https to https', async () => {
    const binDir = await freshBinDir();
    const install = await installOverHttps(`${https.origin}/to-https`, binDir);
    expect(install.stderr).toBe('');
    expect(install.code).toBe(0);
    expect((await readdir(binDir)).sort()).toEqual(['etcd', 'etcdctl']);
  });
});
