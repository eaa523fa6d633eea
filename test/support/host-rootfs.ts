import { execFileSync } from 'node:child_process';
import { copyFileSync, existsSync, mkdirSync, readFileSync, realpathSync, symlinkSync, writeFileSync, chmodSync } from 'node:fs';
import { dirname, join } from 'node:path';

/**
 * What bake-etcd.sh and install-etcd.sh call, plus the etcd they install (Debian's is dynamically linked),
 * plus systemd-tmpfiles, which the user-data's runcmd calls to make the snapshot folder.
 */
const PROGRAMS = ['sh', 'cat', 'chmod', 'curl', 'cut', 'getent', 'gzip', 'install', 'ls', 'mkdir', 'mktemp', 'mawk', 'rm', 'sed', 'sha256sum', 'tar', 'uname', 'useradd', 'nologin', 'etcd', 'systemd-tmpfiles'];

/**
 * A small root filesystem made of this machine's own programs and libraries: enough to run the bake
 * for real in a chroot in seconds, offline. The e2e test bakes a full Debian guest image instead.
 * Laid out like a merged-/usr Debian (bin, sbin, lib, lib64 are links into /usr).
 */
export function buildHostToolsRootfs(root: string): void {
  for (const dir of ['usr/bin', 'usr/sbin', 'usr/lib', 'usr/lib64', 'etc', 'tmp', 'dev', 'var/lib', 'usr/local/bin', 'usr/local/sbin']) {
    mkdirSync(join(root, dir), { recursive: true });
  }
  // The scripts redirect to /dev/null; nothing else from /dev is needed.
  execFileSync('mknod', ['-m', '666', join(root, 'dev/null'), 'c', '1', '3']);
  chmodSync(join(root, 'tmp'), 0o1777);
  for (const link of ['bin', 'sbin', 'lib', 'lib64']) {
    if (!existsSync(join(root, link))) symlinkSync(`usr/${link}`, join(root, link));
  }
  const files = new Set<string>();
  for (const program of PROGRAMS) {
    const path = execFileSync('sh', ['-c', `command -v ${program}`], { encoding: 'utf8' }).trim();
    files.add(path);
    const libraries = execFileSync('ldd', [path], { encoding: 'utf8' });
    for (const [, library] of libraries.matchAll(/(\/\S+) \(0x/g)) files.add(library!);
  }
  for (const file of files) {
    // Copy to the real path (usr/...), dereferenced, so the merged-/usr links resolve it.
    const target = join(root, realpathSync(dirname(file)), file.split('/').pop()!);
    mkdirSync(dirname(target), { recursive: true });
    copyFileSync(realpathSync(file), target);
    chmodSync(target, 0o755);
  }
  symlinkSync('mawk', join(root, 'usr/bin/awk'));
  // Only root exists; useradd appends the etcd user here.
  writeFileSync(join(root, 'etc/passwd'), 'root:x:0:0:root:/root:/bin/sh\n');
  writeFileSync(join(root, 'etc/group'), 'root:x:0:\n');
  writeFileSync(join(root, 'etc/shadow'), 'root:*:20000:0:99999:7:::\n', { mode: 0o640 });
  writeFileSync(join(root, 'etc/gshadow'), 'root:*::\n', { mode: 0o640 });
  writeFileSync(join(root, 'etc/login.defs'), readFileSync('/etc/login.defs'));
}
