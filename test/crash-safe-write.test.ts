import { spawn } from 'node:child_process';
import { X509Certificate, createPrivateKey } from 'node:crypto';
import { cpSync, existsSync, mkdirSync, readFileSync, readdirSync, renameSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { recoverOutputFolder } from '../src/write.js';
import { CLI, runCli, tempDirsRemovedAfterAll, folderSnapshot } from './support/cli.js';

const GEN = ['gen-userdata', '--ips', '10.10.0.11,10.10.0.12,10.10.0.13', '--key-size', '2048'];
// The every-step tests write a one-member folder: the same kinds of steps, fewer of them.
const GEN_ONE = ['gen-userdata', '--ips', '10.10.0.11', '--key-size', '2048'];
const workDir = tempDirsRemovedAfterAll('crash');

interface Run {
  readonly code: number | null;
  readonly signal: NodeJS.Signals | null;
  readonly stderr: string;
}

/** The real CLI, which may be killed: runCli reports exit codes only. */
function runKillable(args: readonly string[], cwd: string, env: Record<string, string>): Promise<Run> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [CLI, ...args], { cwd, env: { PATH: process.env.PATH ?? '/usr/bin:/bin', ...env }, stdio: ['ignore', 'ignore', 'pipe'], timeout: 120_000 });
    let stderr = '';
    child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
    child.on('error', reject);
    child.on('close', (code, signal) => resolve({ code, signal, stderr }));
  });
}


const pemLines = (pem: string) => pem.split('\n').filter((line) => line !== '' && !line.startsWith('-----'));

/**
 * One generation of the folder, never a mix of two: cluster.json names the certificates in pki/,
 * each certificate matches its key and chains to the CA, each user-data and renewal script
 * carries its member's current pair.
 */
function expectConsistent(dir: string): void {
  const pem = (file: string) => readFileSync(join(dir, 'pki', file), 'utf8');
  const ca = new X509Certificate(pem('ca.crt'));
  const record = JSON.parse(readFileSync(join(dir, 'cluster.json'), 'utf8')) as {
    ca: { sha256Fingerprint: string };
    admin: { sha256Fingerprint: string };
    members: { name: string; certificate: { sha256Fingerprint: string } }[];
  };
  expect(record.ca.sha256Fingerprint).toBe(ca.fingerprint256);
  const members = record.members.map((member) => member.name);
  expect(readdirSync(join(dir, 'user-data')).sort()).toEqual(members.map((member) => `${member}.yaml`).sort());
  for (const base of [...members, 'admin']) {
    const cert = new X509Certificate(pem(`${base}.crt`));
    const recorded = base === 'admin' ? record.admin : record.members.find((member) => member.name === base)!.certificate;
    expect(recorded.sha256Fingerprint, `cluster.json names pki/${base}.crt`).toBe(cert.fingerprint256);
    expect(cert.checkPrivateKey(createPrivateKey(pem(`${base}.key`))), `pki/${base}.key matches`).toBe(true);
    expect(cert.verify(ca.publicKey), `pki/${base}.crt chains to the CA`).toBe(true);
  }
  for (const member of members) {
    const userData = readFileSync(join(dir, 'user-data', `${member}.yaml`), 'utf8');
    for (const line of [...pemLines(pem(`${member}.crt`)), ...pemLines(pem(`${member}.key`))]) expect(userData, `user-data/${member}.yaml has its pair`).toContain(line);
    const script = join(dir, 'renew', `${member}.sh`);
    if (existsSync(script)) for (const line of pemLines(pem(`${member}.crt`))) expect(readFileSync(script, 'utf8'), `renew/${member}.sh`).toContain(line);
  }
}

/** Nothing beside the folder but what belongs there: no staging folder (with keys) left behind. */
function expectNoLeftovers(cwd: string): void {
  expect(readdirSync(join(cwd, 'out'))).toEqual(['etcd']);
}

/**
 * Runs `attempt(k)` for k = 1, 2, ... two at a time (each on its own copy of the folder) until one
 * returns undefined: k was past the last step and the run completed. Returns the steps, in order.
 */
async function everyStep(attempt: (k: number) => Promise<string | undefined>): Promise<string[]> {
  const steps: string[] = [];
  for (let k = 1; k < 100; k += 2) {
    const [first, second] = await Promise.all([attempt(k), attempt(k + 1)]);
    if (first === undefined) return steps;
    steps.push(first);
    if (second === undefined) return steps;
    steps.push(second);
  }
  throw new Error('the write has more than 100 steps');
}

/** The run killed just before its k-th step; undefined when it has fewer steps and completed. */
async function crashAt(k: number, args: readonly string[], cwd: string): Promise<string | undefined> {
  const crashed = await runKillable(args, cwd, { ETCD_CLOUDINIT_CRASH_AT: String(k) });
  if (crashed.code === 0) return undefined;
  expect(crashed.signal, crashed.stderr).toBe('SIGKILL');
  const step = new RegExp(`ETCD_CLOUDINIT_CRASH_AT=${k}: killed before (.*)`).exec(crashed.stderr)?.[1];
  expect(step, crashed.stderr).toBeDefined();
  return step;
}

/** What the next command finds after a crash: its recovery, run on a copy so that the real next run does its own. */
function expectRecoverable(cwd: string, step: string, check: (dir: string) => void): void {
  const copy = join(workDir(), 'out');
  cpSync(join(cwd, 'out'), copy, { recursive: true });
  recoverOutputFolder(join(copy, 'etcd'));
  expect(readdirSync(copy).filter((entry) => entry.startsWith('.etcd.staging-')), `no staging folder left after recovering from "${step}"`).toEqual([]);
  check(join(copy, 'etcd'));
}

describe('a write killed at any step (ETCD_CLOUDINIT_CRASH_AT) keeps the CA, and the next run finishes or drops it', () => {
  it.each([
    ['gen-userdata --force', [...GEN_ONE, '--force']],
    ['renew-certs', ['renew-certs', '--via-ssh-script']],
  ])('%s', async (_label, args) => {
    const baseline = workDir();
    expect((await runCli(GEN_ONE, baseline)).code).toBe(0);
    const ca = { key: readFileSync(join(baseline, 'out', 'etcd', 'pki', 'ca.key')), crt: readFileSync(join(baseline, 'out', 'etcd', 'pki', 'ca.crt')) };
    const expectCaKept = (dir: string, when: string) => {
      expect(readFileSync(join(dir, 'pki', 'ca.key')).equals(ca.key), `pki/ca.key ${when}`).toBe(true);
      expect(readFileSync(join(dir, 'pki', 'ca.crt')).equals(ca.crt), `pki/ca.crt ${when}`).toBe(true);
    };
    const steps = await everyStep(async (k) => {
      const cwd = workDir();
      cpSync(join(baseline, 'out'), join(cwd, 'out'), { recursive: true });
      const step = await crashAt(k, args, cwd);
      if (step === undefined) return undefined;
      const dir = join(cwd, 'out', 'etcd');
      expectCaKept(dir, `at its place when killed before "${step}"`);
      // One generation or the other, never a mix.
      expectRecoverable(cwd, step, (recovered) => {
        expectCaKept(recovered, `after recovering from "${step}"`);
        expectConsistent(recovered);
      });
      const normal = await runCli(args, cwd);
      expect(normal.code, `${step}: ${normal.stderr}`).toBe(0);
      expectCaKept(dir, `after a normal run following "${step}"`);
      expectNoLeftovers(cwd);
      expectConsistent(dir);
      return step;
    });
    // Every kind of step was hit: staging each file, the commit, placing each file, the clean-up; never the CA's files.
    expect(steps[0]).toBe('create the staging folder');
    expect(steps).toContain('commit (rename commit.json.tmp to commit.json)');
    const staged = steps.filter((step) => step.startsWith('stage ')).map((step) => step.slice('stage '.length));
    expect(staged.length).toBeGreaterThanOrEqual(4);
    expect(steps.filter((step) => step.startsWith('place ')).map((step) => step.slice('place '.length))).toEqual(staged);
    expect(staged.filter((file) => file.startsWith('pki/ca.'))).toEqual([]);
    expect(steps.at(-1)).toBe('remove the staging folder');
  }, 600_000);

  it('gen-userdata of a new folder: no staging folder with keys survives the next run', async () => {
    const steps = await everyStep(async (k) => {
      const cwd = workDir();
      const step = await crashAt(k, GEN_ONE, cwd);
      if (step === undefined) return undefined;
      // Before the commit there is no cluster yet (an empty folder); after it, the whole one.
      expectRecoverable(cwd, step, (recovered) => {
        if (existsSync(recovered) && readdirSync(recovered).length > 0) expectConsistent(recovered);
      });
      return step;
    });
    expect(steps.length).toBeGreaterThan(10);
  }, 600_000);
});

describe('leftovers of a write cut short', () => {
  /** A generated folder and its CA key. */
  async function generated(): Promise<{ cwd: string; dir: string; caKey: Buffer }> {
    const cwd = workDir();
    expect((await runCli(GEN, cwd)).code).toBe(0);
    const dir = join(cwd, 'out', 'etcd');
    return { cwd, dir, caKey: readFileSync(join(dir, 'pki', 'ca.key')) };
  }

  // etcd-cloudinit 0.1.0 swapped folders by two renames: killed between them, the folder was only at `<staging>.previous`.
  it.each([
    ['gen-userdata', GEN],
    ['renew-certs', ['renew-certs', '--via-ssh-script']],
  ])('0.1.0 killed between its two renames: %s moves the folder back and keeps its CA', async (_label, args) => {
    const { cwd, dir, caKey } = await generated();
    const staging = join(cwd, 'out', '.etcd.staging-AbC123');
    cpSync(dir, staging, { recursive: true });
    renameSync(dir, `${staging}.previous`);
    const run = await runCli(args, cwd);
    expect(run.code, run.stderr).toBe(0);
    expect(readFileSync(join(dir, 'pki', 'ca.key')).equals(caKey)).toBe(true);
    expectNoLeftovers(cwd);
    expectConsistent(dir);
  });

  it('0.1.0 killed after its swap: the old folder beside it is removed', async () => {
    const { cwd, dir, caKey } = await generated();
    cpSync(dir, join(cwd, 'out', '.etcd.staging-AbC123.previous'), { recursive: true });
    const run = await runCli(['renew-certs', '--via-ssh-script'], cwd);
    expect(run.code, run.stderr).toBe(0);
    expect(readFileSync(join(dir, 'pki', 'ca.key')).equals(caKey)).toBe(true);
    expectNoLeftovers(cwd);
  });

  it('a staging folder of a write killed before its commit is removed, keys and all, and the folder kept as it was', async () => {
    const { cwd, dir } = await generated();
    const before = folderSnapshot(dir);
    const staging = join(cwd, 'out', '.etcd.staging-XyZ789');
    mkdirSync(join(staging, 'files', 'pki'), { recursive: true });
    writeFileSync(join(staging, 'files', 'pki', 'etcd1.key'), readFileSync(join(dir, 'pki', 'admin.key')), { mode: 0o600 });
    const run = await runCli(['renew-certs', '--member', 'nosuch'], cwd);
    expect(run.code).toBe(2);
    expectNoLeftovers(cwd);
    expect(folderSnapshot(dir)).toEqual(before);
  });

  it('a leftover holding another CA key than the folder is never deleted: the error says where it is, and nothing changes', async () => {
    const { cwd, dir } = await generated();
    const other = await generated();
    const leftover = join(cwd, 'out', '.etcd.staging-AbC123.previous');
    cpSync(other.dir, leftover, { recursive: true });
    const before = { folder: folderSnapshot(dir), leftover: folderSnapshot(leftover) };
    for (const args of [GEN, ['renew-certs', '--via-ssh-script']]) {
      const run = await runCli(args, cwd);
      expect(run.code, args[0]).toBe(1);
      expect(run.stderr.split('\n')[0]).toBe(
        `etcd-cloudinit ${args[0]}: [write] ${leftover}/pki/ca.key is a CA key that ${dir}/pki/ca.key is not (left by a write that was cut short): it may be this cluster's CA. ` +
          `Move that folder to ${dir} (if ${dir} has nothing to keep) or elsewhere, then run again`,
      );
      expect(folderSnapshot(dir)).toEqual(before.folder);
      expect(folderSnapshot(leftover)).toEqual(before.leftover);
      expect(readdirSync(join(cwd, 'out')).sort()).toEqual(['.etcd.staging-AbC123.previous', 'etcd']);
    }
  });
});
