// DigitalOcean in a box: the fake API (test/digitalocean/fake-api.ts, every request body checked
// against DigitalOcean's OpenAPI description) with a machine behind each droplet. Inside the test's
// network namespace: one qemu VM per droplet, booted with the droplet's user_data unchanged and an
// address from its VPC's range; a metadata service on 169.254.169.254 that answers each droplet
// about itself; dnsmasq serving the zone's A records; the cloud firewalls as nftables rules on the
// bridge. The product's CLI runs inside the namespace and reaches the API through
// DIGITALOCEAN_API_URL, as a user's CLI reaches DigitalOcean.
import type { ChildProcess } from 'node:child_process';
import { spawn } from 'node:child_process';
import { cp, mkdir, readFile, rename, writeFile } from 'node:fs/promises';
import { createServer, type Server } from 'node:http';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { stringify as toYaml } from 'yaml';
import { startFakeDigitalOcean, type DropletBackend, type FakeDigitalOcean, type FakeDroplet } from '../digitalocean/fake-api.js';
import { EmergencyCleanup, keepRunEvidence, netnsEtcDir, removeNetnsEtcDir } from './cluster.js';
import type { LocalEtcdRelease } from './debian-etcd.js';
import { run, runAllowingFailure, startLogged, waitFor, type RunResult } from './exec.js';
import { BOX_MIRROR_URL, downloadImage, minimalImage, nextMinorRelease, nftablesRepo } from './images.js';
import { buildEtcdMirror, DEBIAN_ETCD_RELEASE, serveMirror, type MirrorServer } from './mirror.js';
import { createTestNetwork, destroyTestNetwork, type TestNetwork } from './netns.js';
import { writeSeedIso } from './seed.js';
import { probeAccelerator, Vm, type Accelerator } from './vm.js';

export const BOX_DOMAIN = 'e2e.test';
export const BOX_REGION = 'nyc3';
const BRIDGE_ADDRESS = '10.77.0.1';
/** Where new VPCs get their range: the bridge's /24 (the bridge itself is .1, droplets .2 on). */
const VPC_RANGE = '10.77.0.0/24';
/** The guests' prefix: wider than the VPC, so the outside host reaches them on-link. */
const GUEST_PREFIX = 16;
/** A host on the same wire but outside the VPC range: the firewall must refuse it. */
export const OUTSIDE_ADDRESS = '10.77.200.5';
const API_PORT = 8081;
const MIRROR_PORT = 8080;
/**
 * A custom image of the account (its id, as DigitalOcean numbers user images): the minimal image,
 * without nft and iptables (images.ts minimalImage). Every other image boots the download image.
 */
export const BOX_MINIMAL_IMAGE_ID = 170_000_030;
const METADATA_ADDRESS = '169.254.169.254';
const MACHINE_SLOTS = 6;
const GATEWAY_SCRIPT = fileURLToPath(new URL('./box-gateway.mjs', import.meta.url));
const linkLocalOf = (ip: string) => `169.254.77.${ip.split('.')[3]}`;

export interface BoxMachine {
  droplet: FakeDroplet;
  vm: Vm;
}

export interface DigitalOceanBox {
  runDir: string;
  /** The user's working directory: the CLI runs here and writes out/. */
  workDir: string;
  network: TestNetwork;
  fake: FakeDigitalOcean;
  accelerator: Accelerator;
  /** The releases the mirror serves: Debian's bookworm etcd and the one from sid. */
  releases: { old: LocalEtcdRelease; new: LocalEtcdRelease };
  releaseUrl: string;
  /**
   * The package repository the minimal image's apt reads (`<mirror>/debian`, with nftables): served
   * until withdrawn, so that a node's install fails as on a mirror that is down.
   */
  packageRepo: { withdraw(): Promise<void>; restore(): Promise<void> };
  /** The mirror's request log so far (`<address> <method> <path> <status> [size]` a line). */
  mirrorLog(): Promise<string>;
  /** An SSH key of the account: droplets created with its fingerprint let root in with it, as on DigitalOcean. */
  ssh: { fingerprint: string; identityFile: string };
  /** The product's CLI in the namespace, with the token and DIGITALOCEAN_API_URL a user would set. */
  cli(args: readonly string[], timeoutMs?: number): Promise<RunResult>;
  /** The same, as a process the test may kill. */
  startCli(args: readonly string[], logFile: string): ChildProcess;
  /** Running machines by droplet name. */
  machine(name: string): BoxMachine | undefined;
  machines(): BoxMachine[];
  /** argv run in the namespace, or on the outside host. */
  inside(argv: readonly string[]): string[];
  outside(argv: readonly string[]): string[];
  /** Failures of the machine backend (a VM that could not start), for the tests to assert empty. */
  errors: string[];
  teardown(outcome: 'passed' | 'failed'): Promise<void>;
}

export interface BoxOptions {
  repoRoot: string;
  debianMirror: string;
  log: (line: string) => void;
  memoryMiB?: number;
  /**
   * The negative check: enforce the firewalls as if their inbound rules had no sources (as if
   * create-droplets had left out the VPC range and the cluster tag), to show the cluster forms
   * only through them.
   */
  firewallWithoutSources?: boolean;
}

export async function startDigitalOceanBox(options: BoxOptions): Promise<DigitalOceanBox> {
  const cacheDir = join(options.repoRoot, '.e2e-cache');
  const runDir = join(cacheDir, 'runs', `${new Date().toISOString().replace(/[:.]/g, '-')}-box`);
  const workDir = join(runDir, 'work');
  await mkdir(workDir, { recursive: true });
  options.log(`run dir: ${runDir}`);

  const image = await downloadImage(options);
  const images = new Map([[String(BOX_MINIMAL_IMAGE_ID), await minimalImage(options)]]);
  const newRelease = await nextMinorRelease(options);
  const releases = { old: DEBIAN_ETCD_RELEASE, new: newRelease };
  const mirrorRoot = join(runDir, 'mirror');
  for (const release of Object.values(releases)) await buildEtcdMirror(mirrorRoot, release);
  const packageRepoDir = join(mirrorRoot, 'debian');
  await cp((await nftablesRepo(options)).repoDir, packageRepoDir, { recursive: true });
  options.log(`mirror: etcd ${releases.old.version} and ${releases.new.version}, and nftables under debian/`);

  const namespace = `e2e-do-${process.pid}`;
  const outsideNamespace = `e2e-out-${process.pid}`;
  const cleanup = new EmergencyCleanup(namespace, outsideNamespace);
  const network = await createTestNetwork({ namespace, bridgeAddress: BRIDGE_ADDRESS, prefixLength: GUEST_PREFIX, tapCount: MACHINE_SLOTS });
  const inside = network.inside;
  const outside = (argv: readonly string[]) => ['ip', 'netns', 'exec', outsideNamespace, ...argv];
  const processes: ChildProcess[] = [];
  const servers: Server[] = [];
  const machines = new Map<number, BoxMachine>();
  const freeTaps = [...network.taps];
  const errors: string[] = [];
  let fake: FakeDigitalOcean | undefined;
  let dns: ChildProcess | undefined;

  const teardown = async (outcome: 'passed' | 'failed'): Promise<void> => {
    for (const machine of machines.values()) await machine.vm.kill();
    dns?.kill('SIGKILL');
    for (const child of processes) child.kill('SIGKILL');
    await fake?.close();
    for (const server of servers) server.close();
    await destroyTestNetwork(namespace);
    await runAllowingFailure(['ip', 'netns', 'del', outsideNamespace]);
    removeNetnsEtcDir(namespace);
    cleanup.disarm();
    await keepRunEvidence(runDir, outcome, options.log);
  };

  try {
    // The namespace's own resolver and hosts, for the CLI and etcdctl run inside it (`ip netns exec` binds them).
    await mkdir(netnsEtcDir(namespace), { recursive: true });
    await writeFile(join(netnsEtcDir(namespace), 'resolv.conf'), `nameserver ${BRIDGE_ADDRESS}\n`);
    await writeFile(join(netnsEtcDir(namespace), 'hosts'), '127.0.0.1 localhost\n');
    await run(inside(['ip', 'addr', 'add', `${METADATA_ADDRESS}/16`, 'dev', network.bridge]));

    // The outside host: its own namespace, wired to the bridge, addressed outside the VPC range.
    await run(['ip', 'netns', 'add', outsideNamespace]);
    await run(['ip', '-n', outsideNamespace, 'link', 'add', 'veth-out', 'type', 'veth', 'peer', 'name', 'veth-box', 'netns', namespace]);
    await run(inside(['ip', 'link', 'set', 'veth-box', 'master', network.bridge, 'up']));
    await run(outside(['ip', 'addr', 'add', `${OUTSIDE_ADDRESS}/${GUEST_PREFIX}`, 'dev', 'veth-out']));
    await run(outside(['ip', 'link', 'set', 'veth-out', 'up']));
    await run(outside(['ip', 'link', 'set', 'lo', 'up']));

    const mirror: MirrorServer = await serveMirror(network, mirrorRoot, MIRROR_PORT, join(runDir, 'mirror.log'));
    // The minimal image's apt source names this address: a change here must rebuild it (images.ts).
    if (mirror.url !== BOX_MIRROR_URL) throw new Error(`the box's mirror is at ${mirror.url}, but the minimal image reads ${BOX_MIRROR_URL}`);
    processes.push(mirror.process);
    cleanup.track(mirror.process.pid);

    const accelerator = await probeAccelerator(image, runDir);
    options.log(`accelerator: ${accelerator}`);
    // DigitalOcean's own cloud-config lets root in with the account's keys; and the guests resolve through the box's DNS.
    // (Only an ed25519 host key, as the other suites' test cloud: seed.ts TEST_CLOUD_VENDOR_DATA.)
    const vendorData = `#cloud-config\n${toYaml({ disable_root: false, ssh_pwauth: false, ssh_genkeytypes: ['ed25519'], bootcmd: [['sh', '-c', `echo 'nameserver ${BRIDGE_ADDRESS}' > /etc/resolv.conf`]] })}`;
    const identityFile = join(runDir, 'ssh', 'id_ed25519');
    await mkdir(join(runDir, 'ssh'), { recursive: true, mode: 0o700 });
    await run(['ssh-keygen', '-q', '-t', 'ed25519', '-N', '', '-C', 'e2e-box', '-f', identityFile]);
    const fingerprint = (await run(['ssh-keygen', '-l', '-E', 'md5', '-f', `${identityFile}.pub`])).split(' ')[1]!.replace(/^MD5:/, '');
    const accountKeys = new Map([[fingerprint, (await readFile(`${identityFile}.pub`, 'utf8')).trim()]]);

    const startMachine = async (droplet: FakeDroplet): Promise<void> => {
      const tap = freeTaps.shift();
      if (tap === undefined) throw new Error(`no free tap for droplet ${droplet.name}: the box has ${MACHINE_SLOTS}`);
      const ip = droplet.privateIpv4;
      const [, , third, fourth] = ip.split('.').map(Number) as [number, number, number, number];
      const macAddress = `52:54:00:77:${third.toString(16).padStart(2, '0')}:${fourth.toString(16).padStart(2, '0')}`;
      const seedIso = await writeSeedIso(
        {
          instanceId: `droplet-${droplet.id}`,
          hostname: droplet.name,
          userData: droplet.userData ?? '',
          macAddress,
          addressCidr: `${ip}/${GUEST_PREFIX}`,
          extraAddressCidrs: [`${linkLocalOf(ip)}/16`],
          vendorData,
          publicKeys: droplet.sshKeys.flatMap((key) => accountKeys.get(String(key)) ?? []),
        },
        runDir,
      );
      const vm = new Vm({ name: droplet.name, image: images.get(String(droplet.image)) ?? image, seedIso, macAddress, tap, network, runDir, accelerator, memoryMiB: options.memoryMiB ?? 1024 });
      await vm.createDisk();
      machines.set(droplet.id, { droplet, vm });
      vm.start();
      cleanup.track(vm.pid);
      options.log(`droplet ${droplet.name} (${droplet.id}): VM started at ${ip}`);
    };

    let applying = Promise.resolve();
    const backend: DropletBackend = {
      create: (droplet) => {
        startMachine(droplet).catch((error: unknown) => errors.push(`${droplet.name}: ${String(error)}`));
      },
      running: (droplet) => machines.get(droplet.id)?.vm.running ?? false,
      remove: (droplet) => {
        const machine = machines.get(droplet.id);
        if (!machine) return;
        machines.delete(droplet.id);
        void machine.vm.kill().then(() => freeTaps.push(machine.vm.spec.tap));
        options.log(`droplet ${droplet.name} (${droplet.id}): VM stopped`);
      },
      // One at a time, in order: the zone and the firewall always follow the latest state.
      changed: () => {
        applying = applying.then(() => applyNetwork()).catch((error: unknown) => void errors.push(`network: ${String(error)}`));
      },
    };

    /** dnsmasq with the zone's A records (address= lines: A only, no PTR; several for one name are all served) and SRV records, restarted on each change. */
    const applyDns = async (): Promise<void> => {
      const zone = fake?.domains.get(BOX_DOMAIN) ?? [];
      const records = zone.filter((record) => record.type === 'A');
      const srv = zone.filter((record) => record.type === 'SRV');
      const config = join(runDir, 'dnsmasq.conf');
      // local=: the zone is ours, so what has no record (a missing name, a name's AAAA) is NXDOMAIN, not REFUSED.
      await writeFile(
        config,
        [
          `local=/${BOX_DOMAIN}/`,
          ...records.map((record) => `address=/${record.name}.${BOX_DOMAIN}/${record.data}`),
          ...srv.map((record) => `srv-host=${record.name}.${BOX_DOMAIN},${record.data.replace(/\.$/, '')},${record.port},${record.priority ?? 0},${record.weight ?? 0}`),
          '',
        ].join('\n'),
      );
      if (dns) {
        const exited = new Promise((resolve) => dns!.once('exit', resolve));
        dns.kill('SIGKILL');
        await exited;
      }
      dns = startLogged(
        inside([
          'dnsmasq', '--keep-in-foreground', '--no-resolv', '--no-hosts', '--no-poll', '--user=root', '--group=root',
          `--listen-address=${BRIDGE_ADDRESS}`, '--bind-interfaces', `--conf-file=${config}`, '--log-queries', '--log-facility=-',
          `--pid-file=${join(runDir, 'dnsmasq.pid')}`,
        ]),
        join(runDir, 'dnsmasq.log'),
      );
      cleanup.track(dns.pid);
    };

    const applyNetwork = async (): Promise<void> => {
      await applyDns();
      const ruleset = firewallRuleset(fake!, options.firewallWithoutSources === true);
      await writeFile(join(runDir, 'firewall.nft'), ruleset);
      await run(inside(['nft', '-f', join(runDir, 'firewall.nft')]));
    };

    // The metadata service: each droplet learns about itself, known by the address it asks from.
    const metadataSocket = join(runDir, 'metadata.sock');
    const metadata = createServer((request, response) => {
      const source = String(request.headers['x-droplet-source'] ?? '');
      const droplet = [...(fake?.droplets.values() ?? [])].find((candidate) => candidate.privateIpv4 === source || linkLocalOf(candidate.privateIpv4) === source);
      const answers: Record<string, string | undefined> = {
        '/metadata/v1/id': droplet && String(droplet.id),
        '/metadata/v1/hostname': droplet?.name,
        '/metadata/v1/region': droplet?.region,
        '/metadata/v1/interfaces/private/0/ipv4/address': droplet?.privateIpv4,
        '/metadata/v1/user-data': droplet?.userData,
      };
      const answer = answers[request.url ?? ''];
      if (answer === undefined) response.writeHead(404).end('not found\n');
      else response.writeHead(200, { 'content-type': 'text/plain' }).end(answer);
    });
    await new Promise<void>((resolve) => metadata.listen(metadataSocket, resolve));
    servers.push(metadata);

    const apiSocket = join(runDir, 'api.sock');
    fake = await startFakeDigitalOcean({ domains: [BOX_DOMAIN], socketPath: apiSocket, vpcRange: VPC_RANGE, backend });
    await applyNetwork();
    const gateway = startLogged(inside(['node', GATEWAY_SCRIPT, BRIDGE_ADDRESS, String(API_PORT), apiSocket, METADATA_ADDRESS, metadataSocket]), join(runDir, 'gateway.log'));
    processes.push(gateway);
    cleanup.track(gateway.pid);
    const apiUrl = `http://${BRIDGE_ADDRESS}:${API_PORT}`;
    await waitFor(
      'the API gateway',
      async () => ((await runAllowingFailure(inside(['curl', '-sS', '-o', '/dev/null', `${apiUrl}/v2/account`]), { timeoutMs: 10_000 })).code === 0 ? true : undefined),
      { timeoutMs: 30_000, intervalMs: 300 },
    );

    const cliArgv = (args: readonly string[]) => inside([process.execPath, join(options.repoRoot, 'bin', 'etcd-cloudinit.js'), ...args]);
    const cliEnv = { DIGITALOCEAN_TOKEN: fake.token, DIGITALOCEAN_API_URL: apiUrl };
    const box: DigitalOceanBox = {
      runDir,
      workDir,
      network,
      fake,
      accelerator,
      releases,
      releaseUrl: `http://${BRIDGE_ADDRESS}:${MIRROR_PORT}`,
      packageRepo: {
        withdraw: () => rename(packageRepoDir, `${packageRepoDir}.withdrawn`),
        restore: () => rename(`${packageRepoDir}.withdrawn`, packageRepoDir),
      },
      mirrorLog: () => readFile(mirror.logFile, 'utf8'),
      ssh: { fingerprint, identityFile },
      cli: (args, timeoutMs = 15 * 60_000) => runAllowingFailure(cliArgv(args), { cwd: workDir, env: cliEnv, timeoutMs }),
      startCli: (args, logFile) => {
        const [command, ...rest] = cliArgv(args);
        const child = spawn(command!, rest, { cwd: workDir, env: { ...process.env, ...cliEnv }, stdio: ['ignore', 'pipe', 'pipe'] });
        child.stdout.on('data', (chunk: Buffer) => void writeFile(logFile, chunk, { flag: 'a' }));
        child.stderr.on('data', (chunk: Buffer) => void writeFile(logFile, chunk, { flag: 'a' }));
        return child;
      },
      machine: (name) => [...machines.values()].find((machine) => machine.droplet.name === name),
      machines: () => [...machines.values()],
      inside,
      outside,
      errors,
      teardown,
    };
    return box;
  } catch (error) {
    await teardown('failed');
    throw error;
  }
}

/**
 * The cloud firewalls as nftables rules on the bridge (family bridge: VM to VM, and output for what
 * the namespace itself sends). This kernel has no bridge conntrack, so it filters what a stateful
 * firewall decides on: a connection's first packet (TCP SYN). A droplet that carries a firewall's
 * tag accepts a new connection only on an inbound rule's ports from its sources (addresses, and
 * droplets by tag); every other new connection to it is dropped, as DigitalOcean drops it.
 */
export function firewallRuleset(fake: FakeDigitalOcean, withoutSources = false): string {
  const droplets = [...fake.droplets.values()];
  const rules: string[] = [];
  for (const firewall of fake.firewalls.values()) {
    const guarded = droplets.filter((droplet) => droplet.tags.some((tag) => firewall.tags.includes(tag)));
    for (const rule of firewall.inboundRules as { protocol?: string; ports?: string; sources?: { addresses?: string[]; tags?: string[] } }[]) {
      if (rule.protocol !== 'tcp') continue;
      const sources = [
        ...(rule.sources?.addresses ?? []).filter((address) => !address.includes(':')),
        ...droplets.filter((droplet) => droplet.tags.some((tag) => rule.sources?.tags?.includes(tag))).map((droplet) => droplet.privateIpv4),
      ];
      if (sources.length === 0 || withoutSources) continue;
      const ports = rule.ports === 'all' || rule.ports === '0' || rule.ports === undefined ? '' : ` tcp dport ${rule.ports}`;
      // One rule per source: a set may not hold a droplet's address and the VPC range that contains it.
      for (const droplet of guarded) for (const source of sources) rules.push(`ip daddr ${droplet.privateIpv4} ip saddr ${source} ip protocol tcp${ports} accept`);
    }
    for (const droplet of guarded) rules.push(`ip daddr ${droplet.privateIpv4} tcp flags & (syn | ack) == syn drop`);
  }
  return [
    'table bridge box {}',
    'delete table bridge box',
    'table bridge box {',
    '  chain inbound {',
    ...rules.map((rule) => `    ${rule}`),
    '  }',
    '  chain forward {',
    '    type filter hook forward priority 0; policy accept;',
    '    jump inbound',
    '  }',
    '  chain output {',
    '    type filter hook output priority 0; policy accept;',
    '    jump inbound',
    '  }',
    '}',
    '',
  ].join('\n');
}
