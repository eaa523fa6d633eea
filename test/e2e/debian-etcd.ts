import { existsSync } from 'node:fs';
import { mkdir, readdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { run } from './exec.js';

/** An etcd release from local binaries, as the mirror builder takes it. */
export interface LocalEtcdRelease {
  version: string;
  etcd: string;
  etcdctl: string;
  etcdutl?: string;
}

/**
 * etcd from one of Debian's newer suites (sid has 3.5): `apt-get download` through a private source
 * list, lists folder and cache under `cacheDir`, so the host's apt configuration is never touched,
 * then `dpkg-deb -x`. The binaries link only libc and run on bookworm. The version is what the
 * binary says, since the suite moves on.
 */
export async function fetchDebianEtcd(cacheDir: string, suite: string, debianMirror: string): Promise<LocalEtcdRelease> {
  const dir = join(cacheDir, `debian-etcd-${suite}`);
  const root = join(dir, 'root');
  if (!existsSync(join(root, 'usr/bin/etcdutl'))) {
    await mkdir(join(dir, 'lists', 'partial'), { recursive: true });
    await mkdir(join(dir, 'cache', 'archives', 'partial'), { recursive: true });
    await writeFile(join(dir, 'sources.list'), `deb ${debianMirror} ${suite} main\n`);
    const apt = [
      '-o', `Dir::Etc::sourcelist=${join(dir, 'sources.list')}`,
      '-o', 'Dir::Etc::sourceparts=/dev/null',
      '-o', `Dir::State::Lists=${join(dir, 'lists')}`,
      '-o', `Dir::Cache=${join(dir, 'cache')}`,
      '-o', 'Debug::NoLocking=1',
    ];
    await run(['apt-get', ...apt, '-qq', 'update'], { timeoutMs: 5 * 60_000 });
    await run(['apt-get', ...apt, '-qq', 'download', 'etcd-server', 'etcd-client'], { cwd: dir, timeoutMs: 5 * 60_000 });
    for (const deb of (await readdir(dir)).filter((name) => name.endsWith('.deb'))) await run(['dpkg-deb', '-x', join(dir, deb), root]);
  }
  const etcd = join(root, 'usr/bin/etcd');
  const said = await run([etcd, '--version']);
  const version = /etcd Version: (\d+\.\d+\.\d+)/.exec(said)?.[1];
  if (!version) throw new Error(`cannot read the version of ${etcd}: ${said}`);
  return { version: `v${version}`, etcd, etcdctl: join(root, 'usr/bin/etcdctl'), etcdutl: join(root, 'usr/bin/etcdutl') };
}
