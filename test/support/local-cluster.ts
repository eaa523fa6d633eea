/**
 * Real etcd members on loopback addresses, started from the user-data etcd-cloudinit generates.
 *
 * A member whose IP is in 127/8 listens only on that address, so several members fit on one
 * host: give each test file its own 127.0.N.0/24. Each member gets a root folder; the
 * `write_files` of its user-data land under it with only the file paths rewritten
 * (`/etc/etcd/...` -> `<root>/etc/etcd/...`), and `etcd --config-file` runs on the result.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { chmodSync, closeSync, mkdirSync, mkdtempSync, openSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { parse as parseYaml } from 'yaml';
import { main } from '../../src/cli.js';
import { memberHealth } from '../../src/etcd/client.js';
import { NODE_PATHS } from '../../src/plan.js';

export const ETCD_BINARY = '/usr/bin/etcd';
export const ETCDCTL_BINARY = '/usr/bin/etcdctl';
/** The etcd release the Debian binaries are; generated configs must match it. */
export const LOCAL_ETCD_VERSION = 'v3.4.23';

export interface CliResult {
  readonly code: number;
  readonly stdout: string;
  readonly stderr: string;
}

/** Runs the CLI in-process, as `etcd-cloudinit <args>` would in `cwd`, with an empty environment. */
export async function runCli(args: readonly string[], cwd: string, env: Record<string, string> = {}): Promise<CliResult> {
  let stdout = '';
  let stderr = '';
  const code = await main(args, {
    env,
    cwd,
    stdout: { write: (text: string) => (stdout += text) },
    stderr: { write: (text: string) => (stderr += text) },
  });
  return { code, stdout, stderr };
}

interface WriteFile {
  path: string;
  content: string;
  permissions?: string;
}

/** Node paths as they are on a member's root folder; etcd binaries are Debian's, not /usr/local/bin's. */
export function rewriteNodePaths(text: string, root: string): string {
  return text
    .replaceAll(`${NODE_PATHS.binDir}/`, '/usr/bin/')
    .replaceAll('/usr/local/lib/etcd-cloudinit/', `${root}/usr/local/lib/etcd-cloudinit/`)
    .replaceAll('/etc/systemd/system/', `${root}/etc/systemd/system/`)
    .replaceAll('/etc/etcd/', `${root}/etc/etcd/`)
    .replaceAll(NODE_PATHS.dataDir, `${root}${NODE_PATHS.dataDir}`)
    .replaceAll(NODE_PATHS.backupDir, `${root}${NODE_PATHS.backupDir}`);
}

/** The write_files of a cloud-config, by node path. */
export function writeFilesOf(userData: string): Map<string, WriteFile> {
  const document = parseYaml(userData) as { write_files: WriteFile[] };
  return new Map(document.write_files.map((file) => [file.path, file]));
}

/** Lays the member's write_files out under `root`; keys and certificates are copied as they are. */
export function installNodeFiles(userData: string, root: string): void {
  for (const file of writeFilesOf(userData).values()) {
    const target = `${root}${file.path}`;
    mkdirSync(dirname(target), { recursive: true });
    const isPem = /\.(crt|key)$/.test(file.path);
    writeFileSync(target, isPem ? file.content : rewriteNodePaths(file.content, root));
    chmodSync(target, Number.parseInt(file.permissions ?? '0644', 8));
  }
  mkdirSync(`${root}${NODE_PATHS.dataDir}`, { recursive: true, mode: 0o700 });
}

export function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

export interface LocalMember {
  readonly name: string;
  readonly ip: string;
  readonly root: string;
  readonly clientUrl: string;
  process: ChildProcess | undefined;
}

export interface LocalClusterOptions {
  /** First three octets, e.g. `127.0.61`; member i gets `.i`. */
  readonly subnet: string;
  readonly size: number;
  /** More gen-userdata flags. */
  readonly genArgs?: readonly string[];
}

/** A temp workspace holding an `out/` folder and member roots; `cleanup()` stops what it started and deletes it. */
export class LocalCluster {
  readonly workDir: string;
  readonly members = new Map<string, LocalMember>();
  readonly clusterName = 'etcd';

  private constructor(workDir: string) {
    this.workDir = workDir;
  }

  get outDir(): string {
    return join(this.workDir, 'out', this.clusterName);
  }

  /** gen-userdata for `size` members on the subnet (2048-bit keys: fast), into a new temp workspace. */
  static async generate(options: LocalClusterOptions): Promise<LocalCluster> {
    const cluster = new LocalCluster(mkdtempSync(join(tmpdir(), 'etcd-cloudinit-day2-')));
    const ips = Array.from({ length: options.size }, (_, index) => `${options.subnet}.${index + 1}`);
    const result = await runCli(
      ['gen-userdata', '--ips', ips.join(','), '--etcd-version', LOCAL_ETCD_VERSION, '--key-size', '2048', '--out', 'out', ...(options.genArgs ?? [])],
      cluster.workDir,
    );
    if (result.code !== 0) {
      await cluster.cleanup();
      throw new Error(`gen-userdata failed (${result.code}): ${result.stderr}`);
    }
    return cluster;
  }

  /** The CLI, run in the workspace. */
  cli(args: readonly string[]): Promise<CliResult> {
    return runCli(args, this.workDir);
  }

  userData(name: string): string {
    return readFileSync(join(this.outDir, 'user-data', `${name}.yaml`), 'utf8');
  }

  pkiFile(file: string): string {
    return join(this.outDir, 'pki', file);
  }

  /** Installs the member's current user-data into a fresh root (any earlier root of that name is replaced). */
  provision(name: string): LocalMember {
    const userData = this.userData(name);
    const config = writeFilesOf(userData).get(NODE_PATHS.configFile)?.content ?? '';
    const ip = /^advertise-client-urls: "https:\/\/([\d.]+):2379"$/m.exec(config)?.[1];
    if (!ip) throw new Error(`no advertise-client-urls in the config of ${name}`);
    const root = join(this.workDir, 'nodes', name);
    rmSync(root, { recursive: true, force: true });
    installNodeFiles(userData, root);
    const member: LocalMember = { name, ip, root, clientUrl: `https://${ip}:2379`, process: undefined };
    this.members.set(name, member);
    return member;
  }

  member(name: string): LocalMember {
    const member = this.members.get(name);
    if (!member) throw new Error(`member ${name} was not provisioned`);
    return member;
  }

  /** Starts etcd on the member's root; logs go to <root>/etcd.log. Does not wait. */
  start(name: string): void {
    const member = this.member(name);
    if (member.process && member.process.exitCode === null) throw new Error(`${name} is already running`);
    const log = openSync(join(member.root, 'etcd.log'), 'a');
    try {
      member.process = spawn(ETCD_BINARY, ['--config-file', `${member.root}${NODE_PATHS.configFile}`], { stdio: ['ignore', log, log] });
    } finally {
      closeSync(log);
    }
  }

  /** SIGTERM, then SIGKILL after 10 s; resolves once the process has exited. */
  async stop(name: string): Promise<void> {
    const member = this.member(name);
    const child = member.process;
    member.process = undefined;
    if (!child || child.exitCode !== null || child.signalCode !== null) return;
    const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
    child.kill('SIGTERM');
    const timer = setTimeout(() => child.kill('SIGKILL'), 10_000);
    await exited;
    clearTimeout(timer);
  }

  log(name: string): string {
    try {
      return readFileSync(join(this.member(name).root, 'etcd.log'), 'utf8');
    } catch {
      return '';
    }
  }

  /** Waits until each named member answers /health with true; throws with the tail of its log otherwise. */
  async waitHealthy(names: readonly string[], timeoutMs = 60_000): Promise<void> {
    const tls = {
      caPem: readFileSync(this.pkiFile('ca.crt'), 'utf8'),
      certPem: readFileSync(this.pkiFile('admin.crt'), 'utf8'),
      keyPem: readFileSync(this.pkiFile('admin.key'), 'utf8'),
    };
    const deadline = Date.now() + timeoutMs;
    for (const name of names) {
      let last = '';
      for (;;) {
        const child = this.member(name).process;
        if (!child || child.exitCode !== null) throw new Error(`${name} is not running:\n${this.log(name).slice(-3000)}`);
        try {
          const answer = await memberHealth(this.member(name).clientUrl, { tls, timeoutMs: 2000 });
          if (answer.healthy) break;
          last = answer.reason ?? '';
        } catch (error) {
          last = (error as Error).message;
        }
        if (Date.now() > deadline) throw new Error(`${name} not healthy after ${timeoutMs} ms (${last}):\n${this.log(name).slice(-3000)}`);
        await sleep(250);
      }
    }
  }

  /** Provisions and starts every member of the generated cluster and waits for all to be healthy. */
  async startAll(names: readonly string[]): Promise<void> {
    for (const name of names) this.provision(name);
    for (const name of names) this.start(name);
    await this.waitHealthy(names);
  }

  /** etcdctl as the admin, against the given endpoints. */
  etcdctl(endpoints: readonly string[], args: readonly string[]): Promise<CliResult> {
    return runProcess(ETCDCTL_BINARY, [
      `--endpoints=${endpoints.join(',')}`,
      `--cacert=${this.pkiFile('ca.crt')}`,
      `--cert=${this.pkiFile('admin.crt')}`,
      `--key=${this.pkiFile('admin.key')}`,
      '--command-timeout=10s',
      ...args,
    ]);
  }

  /** Stops every member this cluster started and deletes the workspace. Safe to call twice. */
  async cleanup(): Promise<void> {
    await Promise.all([...this.members.keys()].map((name) => this.stop(name)));
    rmSync(this.workDir, { recursive: true, force: true });
  }
}

/** Runs a program to completion (killed after `timeoutMs`), collecting its output. */
export function runProcess(command: string, args: readonly string[], options: { timeoutMs?: number; env?: NodeJS.ProcessEnv } = {}): Promise<CliResult> {
  return new Promise((resolve, reject) => {
    const child = spawn(command, [...args], { stdio: ['ignore', 'pipe', 'pipe'], env: { ...(options.env ?? { PATH: '/usr/sbin:/usr/bin:/sbin:/bin' }), ETCDCTL_API: '3' } });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (chunk: Buffer) => (stdout += chunk.toString()));
    child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
    const timer = setTimeout(() => child.kill('SIGKILL'), options.timeoutMs ?? 60_000);
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
