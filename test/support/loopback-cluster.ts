/**
 * Real etcd clusters on one loopback /24, made the three ways a user makes them: members by IP
 * (gen-userdata --ips), members by DNS name (gen-userdata --domain), and droplets made by
 * create-droplets against the fake DigitalOcean API, booted from the user-data the API received.
 * Members by name can be provisioned now and started later (add-member), stopped, and started
 * again on the files now on their root (after an install script changed them).
 * Every member, etcdctl and the CLI run in a mount namespace whose /etc/hosts is this workspace's
 * hosts file, so member names resolve to loopback addresses and the machine's own file is untouched.
 */
import type { ChildProcess } from 'node:child_process';
import { createServer, type Server } from 'node:http';
import { request as httpsRequest } from 'node:https';
import type { AddressInfo } from 'node:net';
import { mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import type { TLSSocket } from 'node:tls';
import { parse as parseYaml } from 'yaml';
import { NODE_PATHS } from '../../src/plan.js';
import { startFakeDigitalOcean, type FakeDigitalOcean, type FakeDroplet } from '../digitalocean/fake-api.js';
import { CLI, tempDir, type CliRun } from './cli.js';
import { startWriter, type RunningWriter } from './writer.js';
import {
  adminTls,
  ETCD_BIN,
  ETCDCTL_BIN,
  LOCAL_ETCD_VERSION,
  loopbackBlock,
  readMemberUserData,
  relocateNodePaths,
  rewriteNodePaths,
  runProcess,
  spawnLogged,
  stopMember,
  tailOf,
  type AdminTls,
  type LocalMember,
} from './local-cluster.js';

export type ClusterKind = 'ip' | 'dns' | 'do';

/** The zone of the DNS-member and droplet clusters. */
export const LOOP_DOMAIN = 'loop.test';

/** What a node uses as "this member" on its own loopback; here all members share one loopback. */
const NODE_LOCAL_CLIENT_URL = 'https://127.0.0.1:2379';

const KEYS = ['--etcd-version', LOCAL_ETCD_VERSION, '--key-size', '2048'];

/** Short polls: the fake's droplets turn active within a second. */
export const DO_POLL_ARGS = ['--poll-interval', '0.05', '--wait-timeout', '20'];

interface Member {
  readonly name: string;
  readonly ip: string;
  /** Set when the member is addressed by DNS name. */
  readonly hostname: string | undefined;
  readonly clientUrl: string;
  readonly root: string;
  readonly configFile: string;
  /** DNS-member mode: the unit drop-in's ExecStartPre, with the stand-in metadata service's URL. */
  readonly listenAddressCommand: readonly string[] | undefined;
  running: LocalMember | undefined;
}

export class LoopbackCluster {
  readonly clusterName = 'etcd';
  private readonly members = new Map<string, Member>();
  /** hostname -> IPv4, as written to the hosts file. */
  private hosts = new Map<string, string>();
  /** More hosts-file lines for a name that has several addresses ('do': the stable client name's A records). */
  private extraHosts: string[] = [];
  private readonly metadataServers: Server[] = [];

  private constructor(
    readonly kind: ClusterKind,
    readonly workDir: string,
    /** `127.a.b`: address n of the block is `${prefix}.${n}`. */
    readonly prefix: string,
    /** The fake DigitalOcean API ('do' only). */
    readonly fake: FakeDigitalOcean | undefined,
    /** Environment every CLI run gets (a bucket key pair, say). */
    readonly cliEnv: Record<string, string>,
  ) {}

  /**
   * A workspace with the cluster's folder made as a user would (gen-userdata or create-droplets, with `extraArgs`); no member runs yet.
   * `size`: how many members 'ip' gives --ips (dns and do take --names or --count in `extraArgs`).
   */
  static async create(kind: ClusterKind, extraArgs: readonly string[] = [], options: { size?: number; cliEnv?: Record<string, string> } = {}): Promise<LoopbackCluster> {
    if (options.size !== undefined && kind !== 'ip') throw new Error(`size is for 'ip' clusters; give a ${kind} cluster --names or --count`);
    const size = options.size ?? 3;
    const prefix = loopbackBlock(1)[0]!.replace(/\.\d+$/, '');
    const fake = kind === 'do' ? await startFakeDigitalOcean({ domains: [LOOP_DOMAIN] }) : undefined;
    const cluster = new LoopbackCluster(kind, tempDir(`loopback-${kind}`), prefix, fake, options.cliEnv ?? {});
    try {
      cluster.writeHosts();
      const args = {
        ip: ['gen-userdata', '--ips', Array.from({ length: size }, (_unused, index) => cluster.ip(index + 1)).join(','), ...KEYS],
        dns: ['gen-userdata', '--domain', LOOP_DOMAIN, ...KEYS],
        do: ['create-droplets', '--domain', LOOP_DOMAIN, '--region', 'nyc3', '--vpc-range', `${prefix}.0/24`, ...KEYS, ...DO_POLL_ARGS],
      }[kind];
      const result = await cluster.cli([...args, ...extraArgs]);
      if (result.code !== 0) throw new Error(`${args[0]} failed (${result.code}): ${result.stderr}`);
    } catch (error) {
      await cluster.cleanup();
      throw error;
    }
    return cluster;
  }

  get outDir(): string {
    return join(this.workDir, 'out', this.clusterName);
  }

  get hostsFile(): string {
    return join(this.workDir, 'hosts');
  }

  ip(index: number): string {
    return `${this.prefix}.${index}`;
  }

  /** The client URL of address n of the block (an 'ip' member's). */
  endpoint(index: number): string {
    return `https://${this.ip(index)}:2379`;
  }

  pkiFile(file: string): string {
    return join(this.outDir, 'pki', file);
  }

  /** The admin's certificate, key and the CA, as files in out/. */
  tls(): AdminTls {
    return adminTls(join(this.outDir, 'pki'));
  }

  /** One POST to etcd's JSON gateway on member n (default 1) with the admin certificate: the status and the body as text (etcd's error message, if any). */
  gateway(path: string, body: unknown, n = 1): Promise<{ status: number; text: string }> {
    const tls = this.tls();
    return new Promise((resolve, reject) => {
      const req = httpsRequest(new URL(path, this.endpoint(n)), { method: 'POST', ca: readFileSync(tls.cacert), cert: readFileSync(tls.cert), key: readFileSync(tls.key), agent: false, timeout: 10_000 }, (res) => {
        let text = '';
        res.on('data', (chunk: Buffer) => (text += chunk.toString()));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, text }));
      });
      req.on('timeout', () => req.destroy(new Error('timeout')));
      req.on('error', reject);
      req.end(JSON.stringify(body));
    });
  }

  userDataPath(name: string): string {
    return join(this.outDir, 'user-data', `${name}.yaml`);
  }

  /** The droplet the fake API holds for a member ('do' only). */
  droplet(name: string): FakeDroplet | undefined {
    return [...(this.fake?.droplets.values() ?? [])].find((droplet) => droplet.name === `${this.clusterName}-${name}`);
  }

  private member(name: string): Member {
    const member = this.members.get(name);
    if (!member) throw new Error(`member ${name} was not provisioned`);
    return member;
  }

  /** The loopback address member `name` listens on. */
  memberIp(name: string): string {
    return this.member(name).ip;
  }

  clientUrl(name: string): string {
    return this.member(name).clientUrl;
  }

  /** Where the member's node paths are (its files, data dir, backups). */
  root(name: string): string {
    return this.member(name).root;
  }

  /** argv run with the hosts file as /etc/hosts. */
  private inNamespace(argv: readonly string[]): [string, ...string[]] {
    return ['unshare', '-m', 'sh', '-c', 'mount --bind "$0" /etc/hosts && exec "$@"', this.hostsFile, ...argv];
  }

  private run(argv: readonly string[], timeoutMs?: number, onChild?: (child: ChildProcess) => void): Promise<CliRun> {
    const [command, ...args] = this.inNamespace(argv);
    return runProcess(command, args, timeoutMs, onChild);
  }

  /** The built CLI (`node bin/etcd-cloudinit.js`), run in the workspace as a user would, with `cliEnv` and `env`; the fake API's token and URL for 'do'. */
  cli(args: readonly string[], env: Record<string, string> = {}, onChild?: (child: ChildProcess) => void, timeoutMs = 120_000): Promise<CliRun> {
    const api = this.fake ? { DIGITALOCEAN_TOKEN: this.fake.token, DIGITALOCEAN_API_URL: this.fake.url } : {};
    const assignments = Object.entries({ ...api, ...this.cliEnv, ...env }).map(([key, value]) => `${key}=${value}`);
    // unshare and sh exec into env and node: the child's PID is the CLI's own.
    return this.run(['env', '-C', this.workDir, ...assignments, process.execPath, CLI, ...args], timeoutMs, onChild);
  }

  /** Rewritten in place (same inode), so namespaces that already bound it see the change. */
  private writeHosts(): void {
    writeFileSync(this.hostsFile, ['127.0.0.1 localhost', ...[...this.hosts].map(([hostname, ip]) => `${ip} ${hostname}`), ...this.extraHosts, ''].join('\n'));
  }

  /** 'do': the names resolve as the A records the API holds say (a name with several, such as the stable client name, to all of them). */
  private hostsFromApi(): void {
    const records = (this.fake?.domains.get(LOOP_DOMAIN) ?? []).filter((record) => record.type === 'A');
    const nameOf = (record: { name: string }) => (record.name === '@' ? LOOP_DOMAIN : `${record.name}.${LOOP_DOMAIN}`);
    this.hosts = new Map(records.map((record) => [nameOf(record), record.data]));
    // glibc returns every line of /etc/hosts that names a host: the first of each name is in `hosts`, the rest here.
    this.extraHosts = records.filter((record) => this.hosts.get(nameOf(record)) !== record.data).map((record) => `${record.data} ${nameOf(record)}`);
    this.writeHosts();
  }

  /** What the member's machine was given: the user-data the API received for its droplet, or the file in out/. */
  userData(name: string): string {
    if (this.kind !== 'do') return readFileSync(this.userDataPath(name), 'utf8');
    const userData = this.droplet(name)?.userData;
    if (userData === undefined) throw new Error(`the fake API has no droplet ${this.clusterName}-${name} with user-data`);
    return userData;
  }

  /** The member's private IPv4: the droplet's; in DNS-member mode the next free one of the block, in the hosts file; else its advertised host. */
  private addressOf(name: string, hostname: string | undefined, host: string): string {
    if (this.kind === 'do') {
      this.hostsFromApi();
      return this.droplet(name)!.privateIpv4;
    }
    if (!hostname) return host;
    if (!this.hosts.has(hostname)) {
      this.hosts.set(hostname, this.ip(this.hosts.size + 1));
      this.writeHosts();
    }
    return this.hosts.get(hostname)!;
  }

  /** Lays out the member's user-data under a fresh root as cloud-init would on a new machine (node paths moved under the root); etcd does not start yet. */
  async provision(name: string): Promise<void> {
    const root = join(this.workDir, 'nodes', name);
    rmSync(root, { recursive: true, force: true });
    mkdirSync(root, { recursive: true });
    const userDataCopy = join(root, `${name}.yaml`);
    writeFileSync(userDataCopy, this.userData(name));
    const files = readMemberUserData(userDataCopy);
    const config = files.files.get(NODE_PATHS.configFile) ?? files.files.get(NODE_PATHS.configTemplate);
    const advertised = /^advertise-client-urls: "(https:\/\/([^:"]+):2379)"$/m.exec(config?.content ?? '');
    if (!advertised) throw new Error(`${name}: no advertise-client-urls in its etcd config`);
    const [, clientUrl, host] = advertised as unknown as [string, string, string];
    const hostname = /^\d+\.\d+\.\d+\.\d+$/.test(host) ? undefined : host;
    const ip = this.addressOf(name, hostname, host);

    for (const file of files.files.values()) {
      const target = join(root, file.path);
      mkdirSync(dirname(target), { recursive: true });
      const content = file.path.includes('.yaml') ? relocateNodePaths(file.content, root) : file.content;
      // Members share this machine's loopback: none binds 127.0.0.1:2379, and each uses its own client URL as the local one.
      writeFileSync(target, content.replaceAll(`,${NODE_LOCAL_CLIENT_URL}`, '').replaceAll(NODE_LOCAL_CLIENT_URL, clientUrl), {
        mode: Number.parseInt(file.permissions ?? '0644', 8),
      });
    }
    const configFile = join(root, files.execStart[files.execStart.indexOf('--config-file') + 1] ?? NODE_PATHS.configFile);
    const listenAddressCommand = await this.listenAddressCommand(root, ip);
    this.members.set(name, { name, ip, hostname, clientUrl, root, configFile, listenAddressCommand, running: undefined });
  }

  /** DNS-member mode: the drop-in's ExecStartPre (paths under root), asking a stand-in metadata service that answers `ip`. */
  private async listenAddressCommand(root: string, ip: string): Promise<string[] | undefined> {
    let dropIn: string;
    try {
      dropIn = readFileSync(join(root, NODE_PATHS.listenAddressDropIn), 'utf8');
    } catch {
      return undefined;
    }
    const line = /^ExecStartPre=\+(.+)$/m.exec(dropIn)?.[1];
    if (!line) throw new Error(`${NODE_PATHS.listenAddressDropIn} has no ExecStartPre=+`);
    const [script, template, config, , placeholder] = rewriteNodePaths(line, root).split(' ');
    const server = createServer((_req, res) => res.end(ip));
    this.metadataServers.push(server);
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/metadata/v1/interfaces/private/0/ipv4/address`;
    return ['sh', script!, template!, config!, url, placeholder!];
  }

  /** A new machine for the member, booted from its user-data: etcd starts; does not wait. */
  async boot(name: string): Promise<void> {
    await this.provision(name);
    await this.start(name);
  }

  /** Boots the members, every name resolving before any starts, and waits until each is healthy. */
  async startAll(names: readonly string[]): Promise<void> {
    for (const name of names) await this.provision(name);
    for (const name of names) await this.start(name);
    await this.waitHealthy(names);
  }

  /** Starts etcd on the files now under the member's root, as etcd.service would (ExecStartPre, then ExecStart); does not wait. */
  async start(name: string): Promise<void> {
    const member = this.member(name);
    if (member.running?.process) throw new Error(`${name} is already running`);
    if (member.listenAddressCommand) {
      const filled = await this.run(member.listenAddressCommand, 60_000);
      if (filled.code !== 0) throw new Error(`listen-address.sh for ${name} failed (${filled.code}): ${filled.stderr}`);
    }
    // systemd's StateDirectory=etcd with mode 0700 would create this.
    const config = parseYaml(readFileSync(member.configFile, 'utf8')) as { 'data-dir': string };
    mkdirSync(config['data-dir'], { recursive: true, mode: 0o700 });
    const logFile = join(member.root, 'etcd.log');
    const child = spawnLogged(this.inNamespace([ETCD_BIN, '--config-file', member.configFile]), logFile);
    member.running = { name, root: member.root, configFile: member.configFile, logFile, process: child };
  }

  async stop(name: string): Promise<void> {
    const member = this.member(name);
    if (member.running) await stopMember(member.running);
    member.running = undefined;
  }

  /** One HTTPS GET (or POST of `body`) to the member's own address with the admin certificate, checking its name as a client would. */
  private get(name: string, path: string, timeoutMs = 3000, body?: unknown): Promise<{ status: number; body: string; servedSerial: string }> {
    const member = this.member(name);
    const tls = this.tls();
    const payload = body === undefined ? undefined : JSON.stringify(body);
    return new Promise((resolve, reject) => {
      const req = httpsRequest(
        {
          host: member.ip,
          port: 2379,
          path,
          method: payload === undefined ? 'GET' : 'POST',
          ...(member.hostname ? { servername: member.hostname } : {}),
          ca: readFileSync(tls.cacert),
          cert: readFileSync(tls.cert),
          key: readFileSync(tls.key),
          agent: false,
          timeout: timeoutMs,
        },
        (res) => {
          const servedSerial = (res.socket as TLSSocket).getPeerCertificate().serialNumber;
          let body = '';
          res.on('data', (chunk: Buffer) => (body += chunk.toString()));
          res.on('end', () => resolve({ status: res.statusCode ?? 0, body, servedSerial }));
        },
      );
      req.on('timeout', () => req.destroy(new Error('timeout')));
      req.on('error', reject);
      req.end(payload);
    });
  }

  /** Every key under `prefix` with its value, read from this member (linearizable: it has caught up with the leader). */
  async range(name: string, prefix: string): Promise<Map<string, string>> {
    const end = Buffer.from(prefix);
    end[end.length - 1]! += 1;
    const answer = await this.get(name, '/v3/kv/range', 10_000, { key: Buffer.from(prefix).toString('base64'), range_end: end.toString('base64') });
    if (answer.status !== 200) throw new Error(`range on ${name}: HTTP ${answer.status} ${answer.body.slice(0, 200)}`);
    const kvs = (JSON.parse(answer.body) as { kvs?: { key: string; value?: string }[] }).kvs ?? [];
    return new Map(kvs.map((kv) => [Buffer.from(kv.key, 'base64').toString(), Buffer.from(kv.value ?? '', 'base64').toString()]));
  }

  /** The continuous writer (test/support/writer.mjs) in the namespace, so member names resolve as the hosts file says. */
  startWriter(prefix: string, endpoints: readonly string[]): RunningWriter {
    return startWriter((argv) => this.inNamespace(argv), join(this.workDir, `writer-${prefix.replace(/\W/g, '')}.json`), this.tls(), prefix, endpoints);
  }

  /** Names of the members booted here whose etcd runs now. */
  runningMembers(): string[] {
    return [...this.members.values()].filter((member) => member.running).map((member) => member.name);
  }

  isBooted(name: string): boolean {
    return this.members.has(name);
  }

  /** Waits until each member answers /health with true; fails with the tail of its log. */
  async waitHealthy(names: readonly string[], timeoutMs = 60_000): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    for (const name of names) {
      const member = this.member(name);
      let last = '';
      for (;;) {
        const child = member.running?.process;
        if (!child || child.exitCode !== null) throw new Error(`${name} is not running:\n${tailOf(join(member.root, 'etcd.log'), 30)}`);
        try {
          const answer = await this.get(name, '/health', 2000);
          if (answer.status === 200 && (JSON.parse(answer.body) as { health?: string }).health === 'true') break;
          last = answer.body;
        } catch (error) {
          last = (error as Error).message;
        }
        if (Date.now() > deadline) throw new Error(`${name} not healthy after ${timeoutMs} ms (${last}):\n${tailOf(join(member.root, 'etcd.log'), 30)}`);
        await new Promise((resolve) => setTimeout(resolve, 250));
      }
    }
  }

  /** The serial of the certificate the member presents in a TLS handshake now. */
  async servedSerial(name: string): Promise<string> {
    return (await this.get(name, '/health')).servedSerial;
  }

  /** Client URLs of the members running now. */
  endpoints(): string[] {
    return [...this.members.values()].filter((member) => member.running).map((member) => member.clientUrl);
  }

  /** The real etcdctl (API v3) as admin (or with `tls`: leave out cert and key for an anonymous client), in the namespace; never throws for a non-zero exit. */
  /**
   * The running cluster's members (hex ID, name, peer URL, learner) from etcdctl's simple table: its
   * JSON prints the 64-bit IDs as numbers that lose digits. Undefined when no member answered.
   */
  async memberList(): Promise<{ id: string; name: string; peer: string; learner: boolean }[] | undefined> {
    const list = await this.etcdctl(['member', 'list', '-w', 'simple', '--hex']);
    if (list.code !== 0) return undefined;
    return list.stdout
      .trim()
      .split('\n')
      .map((line) => line.split(', '))
      .map(([id, , name, peer, , learner]) => ({ id: id!, name: name ?? '', peer: peer ?? '', learner: learner === 'true' }));
  }

  etcdctl(args: readonly string[], endpoints: readonly string[] = this.endpoints(), tls: Partial<AdminTls> = this.tls()): Promise<CliRun> {
    // AdminTls's fields are named as etcdctl's flags.
    const tlsArgs = Object.entries(tls).flatMap(([flag, file]) => (file === undefined ? [] : [`--${flag}=${file}`]));
    return this.run([ETCDCTL_BIN, `--endpoints=${endpoints.join(',')}`, '--dial-timeout=3s', '--command-timeout=5s', ...tlsArgs, ...args], 20_000);
  }

  /** Runs the member's etcd-promote.service ExecStart as the node would (paths under its root, 1 s between tries); must exit 0. */
  async promote(name: string): Promise<string> {
    const member = this.member(name);
    const unit = readFileSync(join(member.root, NODE_PATHS.promoteService), 'utf8');
    const execStart = /^ExecStart=(.+)$/m.exec(unit)?.[1];
    if (!execStart) throw new Error(`${name}: ${NODE_PATHS.promoteService} has no ExecStart`);
    const command = rewriteNodePaths(execStart, member.root).replace(/--attempts \d+ --interval \d+/, '--attempts 60 --interval 1');
    const result = await this.run(['sh', ...command.split(' ')], 120_000);
    if (result.code !== 0) throw new Error(`etcd-promote on ${name} exited ${result.code}: ${result.stderr}${result.stdout}`);
    return result.stdout;
  }

  /** Runs out/<cluster>/renew/<name>.sh on the member's root, as root would on its machine; must exit 0. */
  async installRenewal(name: string): Promise<string> {
    const member = this.member(name);
    const script = join(member.root, 'install-certs.sh');
    writeFileSync(script, rewriteNodePaths(readFileSync(join(this.outDir, 'renew', `${name}.sh`), 'utf8'), member.root));
    const result = await this.run(['/bin/sh', script]);
    if (result.code !== 0) throw new Error(`renew/${name}.sh on ${name} exited ${result.code}: ${result.stderr}`);
    return result.stdout;
  }

  /** Stops every member and stand-in this workspace started, closes the fake API, deletes the workspace; safe after a failed setup. */
  async cleanup(): Promise<void> {
    await Promise.all([...this.members.keys()].map((name) => this.stop(name)));
    for (const server of this.metadataServers) server.close();
    await this.fake?.close();
    rmSync(this.workDir, { recursive: true, force: true });
  }
}
