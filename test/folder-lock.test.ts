import { spawn, spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, readdirSync, writeFileSync } from 'node:fs';
import { hostname } from 'node:os';
import { basename, dirname, join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { describe, expect, it } from 'vitest';
import { ClusterFolder, type LockHolder } from '../src/cluster-folder.js';
import { REPO_ROOT, runCli, tempDirsRemovedAfterAll } from './support/cli.js';

const IPS = '10.10.0.11,10.10.0.12,10.10.0.13';
const NOW = new Date('2026-11-22T05:00:00Z');
const workDir = tempDirsRemovedAfterAll('lock');

const folderAt = (outDir: string) => new ClusterFolder(dirname(outDir), basename(outDir), '/');
const folderLockPath = (outDir: string) => folderAt(outDir).lockPath;
const withFolderLock = <T>(outDir: string, command: string, now: Date, change: () => Promise<T>) => folderAt(outDir).withLock(command, now, change);

/** The PID of a process that has exited: a lock it held is stale. */
function deadPid(): number {
  const child = spawnSync('sh', ['-c', 'echo $$']);
  return Number(child.stdout.toString().trim());
}

function writeLock(outDir: string, holder: Partial<LockHolder>): void {
  mkdirSync(join(outDir, '..'), { recursive: true });
  writeFileSync(folderLockPath(outDir), JSON.stringify({ command: 'add-member', pid: process.pid, hostname: hostname(), startedAt: '2026-11-22T04:59:00.000Z', ...holder }));
}

describe('withFolderLock', () => {
  it('refuses a second command while the first holds the lock, and frees it afterwards', async () => {
    const outDir = join(workDir(), 'out', 'etcd');
    let inside: Promise<unknown> | undefined;
    await withFolderLock(outDir, 'renew-certs', NOW, async () => {
      expect(JSON.parse(readFileSync(folderLockPath(outDir), 'utf8'))).toEqual({ command: 'renew-certs', pid: process.pid, hostname: hostname(), startedAt: NOW.toISOString() });
      inside = withFolderLock(outDir, 'add-member', NOW, async () => 'ran');
      await expect(inside).rejects.toThrow(
        `[preflight] ${outDir} is being changed by renew-certs (pid ${process.pid} on ${hostname()}, since ${NOW.toISOString()}); wait for it to finish, or if that process is gone, delete ${folderLockPath(outDir)}`,
      );
    });
    expect(inside).toBeDefined();
    expect(existsSync(folderLockPath(outDir))).toBe(false);
    expect(await withFolderLock(outDir, 'add-member', NOW, async () => 'ran')).toBe('ran');
  });

  it('frees the lock when the command fails', async () => {
    const cwd = workDir();
    const outDir = join(cwd, 'out', 'etcd');
    mkdirSync(outDir, { recursive: true });
    await expect(withFolderLock(outDir, 'gen-userdata', NOW, async () => Promise.reject(new Error('mint failed')))).rejects.toThrow('mint failed');
    expect(readdirSync(join(cwd, 'out'))).toEqual(['etcd']);
  });

  it('takes over a lock whose process on this host has exited', async () => {
    const outDir = join(workDir(), 'out', 'etcd');
    writeLock(outDir, { pid: deadPid() });
    expect(await withFolderLock(outDir, 'gen-userdata', NOW, async () => readFileSync(folderLockPath(outDir), 'utf8'))).toContain('"command":"gen-userdata"');
  });

  it('never takes over a lock of another host, whose processes it cannot see', async () => {
    const outDir = join(workDir(), 'out', 'etcd');
    writeLock(outDir, { pid: deadPid(), hostname: 'ci-runner-7' });
    await expect(withFolderLock(outDir, 'gen-userdata', NOW, async () => 'ran')).rejects.toThrow(/is being changed by add-member \(pid \d+ on ci-runner-7, since 2026-11-22T04:59:00\.000Z\)/);
    expect(existsSync(folderLockPath(outDir))).toBe(true);
  });

  it('treats an unreadable lock file as held', async () => {
    const outDir = join(workDir(), 'out', 'etcd');
    mkdirSync(join(outDir, '..'), { recursive: true });
    writeFileSync(folderLockPath(outDir), '{"comm');
    await expect(withFolderLock(outDir, 'gen-userdata', NOW, async () => 'ran')).rejects.toThrow(`[preflight] ${outDir} is being changed by another etcd-cloudinit command`);
  });

  it('removes the folders it created for the lock when nothing was written', async () => {
    const cwd = workDir();
    await expect(withFolderLock(join(cwd, 'a', 'b', 'etcd'), 'gen-userdata', NOW, async () => Promise.reject(new Error('no')))).rejects.toThrow('no');
    expect(readdirSync(cwd)).toEqual([]);
  });
});

describe('a held lock stops every command that changes the folder, and nothing is written', () => {
  it('gen-userdata', async () => {
    const cwd = workDir();
    const outDir = join(cwd, 'out', 'etcd');
    writeLock(outDir, {});
    const run = await runCli(['gen-userdata', '--ips', IPS, '--key-size', '2048'], cwd);
    expect(run.code).toBe(1);
    expect(run.stderr).toContain(`[preflight] ${outDir} is being changed by add-member (pid ${process.pid} on ${hostname()}, since 2026-11-22T04:59:00.000Z)`);
    expect(readdirSync(join(cwd, 'out'))).toEqual(['.etcd.lock']);
  });

  it('add-member, remove-member and renew-certs', async () => {
    const cwd = workDir();
    // Loopback addresses: should the lock fail to stop them, the day-2 commands only knock on 127.0.93.x.
    const first = await runCli(['gen-userdata', '--ips', '127.0.93.1,127.0.93.2,127.0.93.3', '--key-size', '2048'], cwd);
    expect(first.code, first.stderr).toBe(0);
    const outDir = join(cwd, 'out', 'etcd');
    const before = readFileSync(join(outDir, 'cluster.json'), 'utf8');
    writeLock(outDir, { command: 'gen-userdata' });
    for (const args of [['add-member', '--ip', '127.0.93.4', '--timeout', '1'], ['remove-member', '--name', 'etcd3', '--yes', '--timeout', '1'], ['renew-certs']]) {
      const run = await runCli(args, cwd);
      expect(run.code, args[0]).toBe(1);
      expect(run.stderr, args[0]).toContain(`[preflight] ${outDir} is being changed by gen-userdata (pid ${process.pid}`);
    }
    expect(readFileSync(join(outDir, 'cluster.json'), 'utf8')).toBe(before);
    expect(readdirSync(join(outDir, 'pki')).sort()).toEqual(['admin.crt', 'admin.key', 'ca.crt', 'ca.key', 'etcd1.crt', 'etcd1.key', 'etcd2.crt', 'etcd2.key', 'etcd3.crt', 'etcd3.key']);
  });
});

/**
 * One racer: waits for the common start time, then takes the lock through the built code and
 * holds it for 200 ms, logging when it enters and leaves. Exit 3: refused (held by another).
 */
const RACER = `
import { appendFileSync } from 'node:fs';
import { basename, dirname } from 'node:path';
const [moduleUrl, outDir, log, startAt] = process.argv.slice(2);
const { ClusterFolder } = await import(moduleUrl);
while (Date.now() < Number(startAt)) Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, 1);
try {
  await new ClusterFolder(dirname(outDir), basename(outDir), '/').withLock('racer', new Date(), async () => {
    appendFileSync(log, \`enter \${process.pid}\\n\`);
    await new Promise((resolve) => setTimeout(resolve, 200));
    appendFileSync(log, \`leave \${process.pid}\\n\`);
  });
} catch (error) {
  if (error.phase !== 'preflight') throw error;
  process.exitCode = 3;
}
`;

function runRacer(script: string, args: readonly string[]): Promise<{ code: number | null; stderr: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [script, ...args], { stdio: ['ignore', 'ignore', 'pipe'], timeout: 60_000 });
    let stderr = '';
    child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
    child.on('error', reject);
    child.on('close', (code) => resolve({ code, stderr }));
  });
}

describe('taking over a stale lock', () => {
  it('gives the lock to one process at a time when 8 race for it (15 trials)', async () => {
    const cwd = workDir();
    const script = join(cwd, 'racer.mjs');
    writeFileSync(script, RACER);
    const moduleUrl = pathToFileURL(join(REPO_ROOT, 'dist', 'cluster-folder.js')).href;
    for (let trial = 1; trial <= 15; trial++) {
      const outDir = join(cwd, `trial${trial}`, 'out', 'etcd');
      writeLock(outDir, { pid: deadPid() });
      const log = join(cwd, `trial${trial}.log`);
      writeFileSync(log, '');
      const startAt = String(Date.now() + 1000);
      const racers = await Promise.all(Array.from({ length: 8 }, () => runRacer(script, [moduleUrl, outDir, log, startAt])));
      for (const racer of racers) expect([0, 3], racer.stderr).toContain(racer.code);
      const events = readFileSync(log, 'utf8').trim().split('\n');
      // Held by one at a time: every entry is followed by the same process leaving, before anyone else enters.
      expect(events.length, `trial ${trial}`).toBeGreaterThanOrEqual(2);
      for (let index = 0; index < events.length; index += 2) {
        const pid = events[index]!.replace(/^enter /, '');
        expect([events[index], events[index + 1]], `trial ${trial}: ${events.join(', ')}`).toEqual([`enter ${pid}`, `leave ${pid}`]);
      }
      expect(racers.filter((racer) => racer.code === 0).length, `trial ${trial}`).toBe(events.length / 2);
      expect(readdirSync(dirname(outDir)), `trial ${trial}: no lock nor claim left`).toEqual([]);
    }
  }, 120_000);
});
