import { spawn, execFile, type ChildProcess } from 'node:child_process';
import { createWriteStream, mkdirSync, openSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { parse as parseYaml } from 'yaml';
import { NODE_PATHS } from '../../src/plan.js';
import type { RunResult } from './run.js';

const execFileAsync = promisify(execFile);

/** Debian's etcd-server and etcd-client packages. */
export const ETCD_BIN = process.env.ETCD_BIN ?? '/usr/bin/etcd';
export const ETCDCTL_BIN = process.env.ETCDCTL_BIN ?? '/usr/bin/etcdctl';

/** The etcd release of Debian's binaries: generated configs must match it. */
export const LOCAL_ETCD_VERSION = 'v3.4.23';

interface WriteFile {
  path: string;
  content: string;
  permissions?: string;
}

/** The write_files of a cloud-config, by node path. */
export function writeFilesOf(userData: string): Map<string, WriteFile> {
  const document = parseYaml(userData) as { write_files: WriteFile[] };
  return new Map(document.write_files.map((file) => [file.path, file]));
}

/** The parts of a generated user-data a local run needs. */
export interface MemberFiles {
  readonly name: string;
  /** Node path -> content, straight from write_files. */
  readonly files: ReadonlyMap<string, WriteFile>;
  /** The unit's ExecStart, split into words. */
  readonly execStart: readonly string[];
}

export function readMemberUserData(userDataPath: string): MemberFiles {
  const files = writeFilesOf(readFileSync(userDataPath, 'utf8'));
  const unit = files.get('/etc/systemd/system/etcd.service');
  const execLine = unit?.content.split('\n').find((line) => line.startsWith('ExecStart='));
  if (!execLine) throw new Error(`${userDataPath}: no etcd unit with ExecStart in write_files`);
  const name = /^([a-z0-9-]+)\.yaml$/.exec(userDataPath.split('/').pop() ?? '')?.[1] ?? 'member';
  return { name, files, execStart: execLine.slice('ExecStart='.length).trim().split(/\s+/) };
}

export interface LocalMember {
  readonly name: string;
  readonly root: string;
  readonly configFile: string;
  readonly logFile: string;
  process: ChildProcess | undefined;
}

/** Node paths (/etc/..., /var/...) in a YAML file as they are under `root`. */
export function relocateNodePaths(text: string, root: string): string {
  return text.replace(/(["\s:=])(\/(?:etc|var)\/[^\s",]+)/g, (_all, lead: string, path: string) => `${lead}${root}${path}`);
}

/**
 * Node paths in a script or unit as they are under a member's root (relocateNodePaths moves them
 * only in YAML files); etcdctl is Debian's.
 */
export function rewriteNodePaths(text: string, root: string): string {
  return text
    .replaceAll(`${NODE_PATHS.binDir}/`, '/usr/bin/')
    .replaceAll('/usr/local/lib/etcd-cloudinit/', `${root}/usr/local/lib/etcd-cloudinit/`)
    .replaceAll('/etc/systemd/system/', `${root}/etc/systemd/system/`)
    .replaceAll('/etc/etcd/', `${root}/etc/etcd/`)
    .replaceAll('/etc/etcd-cloudinit/', `${root}/etc/etcd-cloudinit/`)
    .replaceAll(NODE_PATHS.dataDir, `${root}${NODE_PATHS.dataDir}`)
    .replaceAll(NODE_PATHS.backupDir, `${root}${NODE_PATHS.backupDir}`);
}

/**
 * Lays out one member's files under `root` exactly as write_files would on a node, changing only
 * file paths (node path -> root + node path, the etcd binary -> Debian's), and returns how to run it.
 */
export function materializeMember(member: MemberFiles, root: string): { configFile: string; command: string[] } {
  for (const file of member.files.values()) {
    const target = join(root, file.path);
    mkdirSync(join(target, '..'), { recursive: true });
    const content = file.path.endsWith('.yaml') ? relocateNodePaths(file.content, root) : file.content;
    writeFileSync(target, content, { mode: Number.parseInt(file.permissions ?? '0644', 8) });
  }
  const configNodePath = member.execStart[member.execStart.indexOf('--config-file') + 1];
  if (!configNodePath) throw new Error('ExecStart has no --config-file');
  // systemd's StateDirectory=etcd with mode 0700 would create this.
  const config = parseYaml(readFileSync(join(root, configNodePath), 'utf8')) as { 'data-dir': string };
  mkdirSync(config['data-dir'], { recursive: true, mode: 0o700 });
  const command = member.execStart.map((word, index) => {
    if (index === 0) return ETCD_BIN;
    return word.startsWith('/') ? join(root, word) : word;
  });
  return { configFile: join(root, configNodePath), command };
}

/** Runs an etcd command line with its output appended to `logFile`, which exists once this returns. */
export function spawnLogged(command: readonly string[], logFile: string): ChildProcess {
  // Opened here, not by the stream later, so a test can read the log straight away.
  const log = createWriteStream(logFile, { fd: openSync(logFile, 'a') });
  const [binary, ...args] = command as [string, ...string[]];
  const child = spawn(binary, args, { stdio: ['ignore', 'pipe', 'pipe'] });
  child.stdout?.pipe(log);
  child.stderr?.pipe(log);
  return child;
}

/**
 * Runs a program to completion (SIGKILL after `timeoutMs`), collecting its output; never throws for an exit code.
 * `onChild`: given the process as soon as it runs (a test that kills a command mid-way).
 */
export function runProcess(command: string, args: readonly string[], timeoutMs = 60_000, onChild?: (child: ChildProcess) => void): Promise<RunResult> {
  return new Promise((resolve, reject) => {
    const child = spawn(command, [...args], { stdio: ['ignore', 'pipe', 'pipe'], env: { PATH: '/usr/sbin:/usr/bin:/sbin:/bin', ETCDCTL_API: '3' } });
    onChild?.(child);
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (chunk: Buffer) => (stdout += chunk.toString()));
    child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
    const timer = setTimeout(() => child.kill('SIGKILL'), timeoutMs);
    child.on('error', (error) => {
      clearTimeout(timer);
      reject(error);
    });
    child.on('close', (code, signal) => {
      clearTimeout(timer);
      resolve({ code: code ?? (signal ? 128 : 1), stdout, stderr });
    });
  });
}

export function startMember(member: MemberFiles, root: string): LocalMember {
  const { configFile, command } = materializeMember(member, root);
  const logFile = join(root, 'etcd.log');
  return { name: member.name, root, configFile, logFile, process: spawnLogged(command, logFile) };
}

/** Restart a member on the same files and data dir. */
export function restartMember(member: LocalMember, files: MemberFiles): LocalMember {
  return startMember(files, member.root);
}

export async function stopMember(member: LocalMember, timeoutMs = 15_000): Promise<void> {
  const child = member.process;
  member.process = undefined;
  if (!child || child.exitCode !== null || child.signalCode !== null) return;
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  child.kill('SIGTERM');
  const timer = setTimeout(() => child.kill('SIGKILL'), timeoutMs);
  await exited;
  clearTimeout(timer);
}

export interface AdminTls {
  readonly cacert: string;
  readonly cert: string;
  readonly key: string;
}

export function adminTls(pkiDir: string): AdminTls {
  return { cacert: join(pkiDir, 'ca.crt'), cert: join(pkiDir, 'admin.crt'), key: join(pkiDir, 'admin.key') };
}

export interface EtcdctlResult {
  readonly code: number;
  readonly stdout: string;
  readonly stderr: string;
}

/** Runs the real etcdctl (API v3) against the given endpoints; never throws for a non-zero exit. */
export async function etcdctl(endpoints: readonly string[], tls: Partial<AdminTls>, args: readonly string[], timeoutMs = 20_000): Promise<EtcdctlResult> {
  const tlsArgs = [
    ...(tls.cacert ? [`--cacert=${tls.cacert}`] : []),
    ...(tls.cert ? [`--cert=${tls.cert}`] : []),
    ...(tls.key ? [`--key=${tls.key}`] : []),
  ];
  try {
    const { stdout, stderr } = await execFileAsync(ETCDCTL_BIN, [`--endpoints=${endpoints.join(',')}`, '--dial-timeout=3s', '--command-timeout=5s', ...tlsArgs, ...args], {
      env: { PATH: process.env.PATH ?? '/usr/bin:/bin', ETCDCTL_API: '3' },
      timeout: timeoutMs,
    });
    return { code: 0, stdout, stderr };
  } catch (error) {
    const failure = error as { code?: number; stdout?: string; stderr?: string };
    return { code: typeof failure.code === 'number' ? failure.code : 1, stdout: failure.stdout ?? '', stderr: failure.stderr ?? String(error) };
  }
}

/** Polls until `check` passes or the deadline; returns the last result for the failure message. */
export async function waitFor<T>(what: string, check: () => Promise<{ ok: boolean; value: T }>, timeoutMs: number, intervalMs = 500): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  let last: { ok: boolean; value: T } | undefined;
  while (Date.now() < deadline) {
    last = await check();
    if (last.ok) return last.value;
    await new Promise((resolve) => setTimeout(resolve, intervalMs));
  }
  throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}; last result: ${JSON.stringify(last?.value)}`);
}

/** A random 127.x.y.0/24 block, so concurrent test files do not collide on ports 2379/2380. */
export function loopbackBlock(count: number): string[] {
  const second = 1 + Math.floor(Math.random() * 250);
  const third = 1 + Math.floor(Math.random() * 250);
  return Array.from({ length: count }, (_unused, index) => `127.${second}.${third}.${index + 1}`);
}

export interface LocalCluster {
  readonly members: LocalMember[];
  readonly files: MemberFiles[];
  readonly endpoints: string[];
  stop(): Promise<void>;
}

/** Starts every member of a generated cluster folder and waits until `endpoint health --cluster` passes. */
export async function startLocalCluster(clusterDir: string, runRoot: string, memberNames: readonly string[], endpoints: readonly string[], timeoutMs = 60_000): Promise<LocalCluster> {
  const files = memberNames.map((name) => readMemberUserData(join(clusterDir, 'user-data', `${name}.yaml`)));
  const members = files.map((member) => startMember(member, join(runRoot, member.name)));
  const cluster: LocalCluster = {
    members,
    files,
    endpoints: [...endpoints],
    stop: async () => {
      await Promise.all(members.map((member) => stopMember(member)));
    },
  };
  try {
    const tls = adminTls(join(clusterDir, 'pki'));
    await waitFor(
      'a healthy cluster',
      async () => {
        const result = await etcdctl(endpoints, tls, ['endpoint', 'health', '--cluster']);
        return { ok: result.code === 0, value: result.stderr || result.stdout };
      },
      timeoutMs,
    );
  } catch (error) {
    await cluster.stop();
    const logs = members.map((member) => `--- ${member.name}\n${tailOf(member.logFile)}`).join('\n');
    throw new Error(`${(error as Error).message}\n${logs}`);
  }
  return cluster;
}

export function tailOf(path: string, lines = 15): string {
  try {
    return readFileSync(path, 'utf8').trimEnd().split('\n').slice(-lines).join('\n');
  } catch {
    return '(no log)';
  }
}

/** GET https://host:port/version with the given TLS material: 'accepted' or the TLS/socket error code. */
export async function probeVersion(host: string, port: number, tls: Partial<AdminTls>, timeoutMs = 5_000): Promise<string> {
  const { request } = await import('node:https');
  return new Promise((resolve) => {
    const req = request(
      {
        host,
        port,
        path: '/version',
        ca: tls.cacert ? readFileSync(tls.cacert) : undefined,
        cert: tls.cert ? readFileSync(tls.cert) : undefined,
        key: tls.key ? readFileSync(tls.key) : undefined,
        timeout: timeoutMs,
      },
      (response) => {
        response.resume();
        resolve(response.statusCode === 200 ? 'accepted' : `HTTP ${response.statusCode}`);
      },
    );
    req.on('timeout', () => req.destroy(new Error('timeout')));
    req.on('error', (error: NodeJS.ErrnoException) => resolve(error.code ?? error.message));
    req.end();
  });
}

/** One plain-HTTP GET (no TLS, no certificate), as a Prometheus scraper inside the network sends it. */
export async function plainHttpGet(url: string, timeoutMs = 5_000): Promise<{ status: number; body: string } | { error: string }> {
  const { get } = await import('node:http');
  return new Promise((resolve) => {
    const req = get(url, { timeout: timeoutMs, agent: false }, (response) => {
      let body = '';
      response.on('data', (chunk: Buffer) => (body += chunk.toString()));
      response.on('end', () => resolve({ status: response.statusCode ?? 0, body }));
    });
    req.on('timeout', () => req.destroy(new Error('timeout')));
    req.on('error', (error: NodeJS.ErrnoException) => resolve({ error: error.code ?? error.message }));
  });
}
