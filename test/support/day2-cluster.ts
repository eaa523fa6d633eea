/**
 * A workspace for day-2 tests: a generated out/ folder and real etcd members on one loopback
 * /24, built on local-cluster.ts (materializeMember lays out write_files under a root, only
 * paths moved). What it adds: members by name that can be stopped, restarted on the files
 * now on their root (after an install script changed them), or provisioned later (add-member).
 */
import { readFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { memberHealth } from '../../src/etcd/client.js';
import { NODE_PATHS } from '../../src/plan.js';
import { runCli, tempDir, type CliRun } from './cli.js';
import { adminTls, etcdctl, LOCAL_ETCD_VERSION, loopbackBlock, materializeMember, readMemberUserData, spawnLogged, stopMember, tailOf, type EtcdctlResult, type LocalMember } from './local-cluster.js';

interface Day2Member {
  readonly name: string;
  readonly root: string;
  readonly clientUrl: string;
  readonly command: readonly string[];
  running: LocalMember | undefined;
}

export class Day2Cluster {
  readonly clusterName = 'etcd';
  private readonly members = new Map<string, Day2Member>();

  private constructor(
    readonly workDir: string,
    /** `127.a.b`: member n of the block is `${prefix}.${n}`. */
    readonly prefix: string,
    /** Environment every CLI run gets (a bucket key pair, say). */
    readonly cliEnv: Record<string, string> = {},
  ) {}

  get outDir(): string {
    return join(this.workDir, 'out', this.clusterName);
  }

  ip(index: number): string {
    return `${this.prefix}.${index}`;
  }

  endpoint(index: number): string {
    return `https://${this.ip(index)}:2379`;
  }

  /** gen-userdata for `size` members on a random loopback /24 (2048-bit keys: fast), in a new temp workspace. */
  static async generate(size: number, genArgs: readonly string[] = [], cliEnv: Record<string, string> = {}): Promise<Day2Cluster> {
    const ips = loopbackBlock(size);
    const cluster = new Day2Cluster(tempDir('day2'), ips[0]!.replace(/\.\d+$/, ''), cliEnv);
    const result = await cluster.cli(['gen-userdata', '--ips', ips.join(','), '--etcd-version', LOCAL_ETCD_VERSION, '--key-size', '2048', ...genArgs]);
    if (result.code !== 0) {
      await cluster.cleanup();
      throw new Error(`gen-userdata failed (${result.code}): ${result.stderr}`);
    }
    return cluster;
  }

  /** The built CLI, run in the workspace as a user would. */
  cli(args: readonly string[]): Promise<CliRun> {
    return runCli(args, this.workDir, this.cliEnv);
  }

  userData(name: string): string {
    return readFileSync(this.userDataPath(name), 'utf8');
  }

  userDataPath(name: string): string {
    return join(this.outDir, 'user-data', `${name}.yaml`);
  }

  pkiFile(file: string): string {
    return join(this.outDir, 'pki', file);
  }

  tls() {
    return adminTls(join(this.outDir, 'pki'));
  }

  /** Lays the member's current user-data out under a fresh root, as cloud-init would on a new machine. */
  provision(name: string): Day2Member {
    const files = readMemberUserData(this.userDataPath(name));
    const config = files.files.get(NODE_PATHS.configFile)?.content ?? '';
    const clientUrl = /^advertise-client-urls: "(https:\/\/[\d.]+:2379)"$/m.exec(config)?.[1];
    if (!clientUrl) throw new Error(`no advertise-client-urls in the config of ${name}`);
    const root = join(this.workDir, 'nodes', name);
    rmSync(root, { recursive: true, force: true });
    const { command } = materializeMember(files, root);
    const member: Day2Member = { name, root, clientUrl, command, running: undefined };
    this.members.set(name, member);
    return member;
  }

  member(name: string): Day2Member {
    const member = this.members.get(name);
    if (!member) throw new Error(`member ${name} was not provisioned`);
    return member;
  }

  /** Starts etcd on the files now under the member's root (the unit's ExecStart); does not wait. */
  start(name: string): void {
    const member = this.member(name);
    if (member.running?.process) throw new Error(`${name} is already running`);
    const logFile = join(member.root, 'etcd.log');
    const configFile = member.command[member.command.indexOf('--config-file') + 1] ?? '';
    member.running = { name, root: member.root, configFile, logFile, process: spawnLogged(member.command, logFile) };
  }

  async stop(name: string): Promise<void> {
    const member = this.member(name);
    if (member.running) await stopMember(member.running);
    member.running = undefined;
  }

  /** Waits until each member answers /health with true; fails with the tail of its log. */
  async waitHealthy(names: readonly string[], timeoutMs = 60_000): Promise<void> {
    const files = this.tls();
    const tls = { caPem: readFileSync(files.cacert, 'utf8'), certPem: readFileSync(files.cert, 'utf8'), keyPem: readFileSync(files.key, 'utf8') };
    const deadline = Date.now() + timeoutMs;
    for (const name of names) {
      const member = this.member(name);
      let last = '';
      for (;;) {
        const child = member.running?.process;
        if (!child || child.exitCode !== null) throw new Error(`${name} is not running:\n${tailOf(join(member.root, 'etcd.log'), 30)}`);
        try {
          const answer = await memberHealth(member.clientUrl, { tls, timeoutMs: 2000 });
          if (answer.healthy) break;
          last = answer.reason ?? '';
        } catch (error) {
          last = (error as Error).message;
        }
        if (Date.now() > deadline) throw new Error(`${name} not healthy after ${timeoutMs} ms (${last}):\n${tailOf(join(member.root, 'etcd.log'), 30)}`);
        await new Promise((resolve) => setTimeout(resolve, 250));
      }
    }
  }

  /** Provisions and starts the members, then waits until all are healthy. */
  async startAll(names: readonly string[]): Promise<void> {
    for (const name of names) this.provision(name);
    for (const name of names) this.start(name);
    await this.waitHealthy(names);
  }

  etcdctl(endpoints: readonly string[], args: readonly string[]): Promise<EtcdctlResult> {
    return etcdctl(endpoints, this.tls(), args);
  }

  /** Stops every member this workspace started and deletes it; safe after a failed setup. */
  async cleanup(): Promise<void> {
    await Promise.all([...this.members.keys()].map((name) => this.stop(name)));
    rmSync(this.workDir, { recursive: true, force: true });
  }
}
