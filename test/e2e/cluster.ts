import { spawnSync, type ChildProcess } from 'node:child_process';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { existsSync, rmdirSync, rmSync } from 'node:fs';
import { mkdir, readFile, readdir, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { run, runAllowingFailure, startLogged, waitFor, type RunResult } from './exec.js';
import type { ClientIdentity } from './certificates.js';
import { etcdctl, startedMembers } from './etcd-client.js';
import { diagnoseConsole, type ConsoleFinding } from './guest-console.js';
import { buildGuestImage, type BakeStep, type GuestImage } from './guest-image.js';
import { buildEtcdMirror, DEBIAN_ETCD_RELEASE, serveMirror, type MirrorServer } from './mirror.js';
import { createTestNetwork, destroyTestNetwork, type TestNetwork } from './netns.js';
import { writeSeedIso } from './seed.js';
import { probeAccelerator, Vm, type Accelerator } from './vm.js';

// The whole rig for one run: guest image, release mirror, private network, the product's user-data, N VMs.

export const CLUSTER_NAME = 'e2e';
const BRIDGE_ADDRESS = '10.77.0.1';
const PREFIX_LENGTH = 24;
const MIRROR_PORT = 8080;
const S3_PORT = 9000;
/** The bucket of the test's S3 server (s3rver's own key pair S3RVER/S3RVER, signatures checked). */
export const E2E_BUCKET = { name: 'e2e-backups', endpoint: `http://${BRIDGE_ADDRESS}:${S3_PORT}`, env: { SPACES_ACCESS_KEY_ID: 'S3RVER', SPACES_SECRET_ACCESS_KEY: 'S3RVER' } } as const;
const S3_SERVER_SCRIPT = fileURLToPath(new URL('./s3-server.ts', import.meta.url));
const MEMBER_IPS = ['10.77.0.11', '10.77.0.12', '10.77.0.13'];

export interface Member {
  name: string;
  ip: string;
  clientUrl: string;
  peerUrl: string;
  vm: Vm;
}

export interface GeneratedCluster {
  outDir: string;
  pkiDir: string;
  userDataDir: string;
  memberNames: string[];
}

export interface TestClusterOptions {
  repoRoot: string;
  debianMirror: string;
  log: (line: string) => void;
  // The negative test breaks the generated output here, before any VM boots.
  alterGenerated?: (generated: GeneratedCluster, scratchDir: string) => Promise<void>;
  // Issue 5's baked mode: a bake step for the image and e.g. ['--install', 'baked'] for gen-userdata.
  bake?: BakeStep;
  extraGenUserDataArgs?: string[];
  memoryMiB?: number;
  /** Serve E2E_BUCKET on the bridge (for --backup-url) and give gen-userdata its key pair. */
  s3Bucket?: boolean;
}

export interface TestCluster {
  runDir: string;
  network: TestNetwork;
  mirror: MirrorServer;
  accelerator: Accelerator;
  members: Member[];
  /** The members' addresses, as gen-userdata got them. */
  memberIps: readonly string[];
  admin: ClientIdentity & { cert: string; key: string };
  // Wall clock when the first qemu started.
  vmsStartedAt: number;
  etcdctl(args: readonly string[], endpoints?: readonly string[], identity?: ClientIdentity): ReturnType<typeof etcdctl>;
  waitHealthy(timeoutMs: number): Promise<number>;
  /** The product's CLI, run inside the test network (so it reaches the members) on this run's out/ folder. */
  cli(args: readonly string[]): Promise<RunResult>;
  /** Kills every VM: the cluster is lost (their disks are kept until teardown, unused). */
  destroyAllVms(): Promise<void>;
  /**
   * Boots one new VM per member from the user-data now in out/, on fresh disks; `label` names the VMs
   * and their consoles. `image` replaces the cluster's image (the restore boots the baked one).
   */
  bootNewVms(label: string, image?: GuestImage): Promise<Member[]>;
  // Boots a killed member again from its own overlay disk.
  restart(member: Member): void;
  findings(): { member: string; findings: ConsoleFinding[] }[];
  teardown(outcome: 'passed' | 'failed'): Promise<void>;
}

export async function startTestCluster(options: TestClusterOptions): Promise<TestCluster> {
  const cacheDir = join(options.repoRoot, '.e2e-cache');
  const runDir = join(cacheDir, 'runs', new Date().toISOString().replace(/[:.]/g, '-'));
  await mkdir(runDir, { recursive: true });
  options.log(`run dir: ${runDir}`);

  const image = await buildGuestImage({ cacheDir, debianMirror: options.debianMirror, bake: options.bake, log: options.log });
  const mirrorRoot = join(runDir, 'mirror');
  await buildEtcdMirror(mirrorRoot, DEBIAN_ETCD_RELEASE);
  const releaseUrl = `http://${BRIDGE_ADDRESS}:${MIRROR_PORT}`;

  const memberNames = MEMBER_IPS.map((_, index) => `etcd${index + 1}`);
  const generated = await generateUserData(
    options.repoRoot,
    join(runDir, 'out'),
    releaseUrl,
    ['--ips', MEMBER_IPS.join(','), ...(options.extraGenUserDataArgs ?? [])],
    memberNames,
    options.s3Bucket ? { ...E2E_BUCKET.env } : {},
  );
  if (options.alterGenerated !== undefined) await options.alterGenerated(generated, join(runDir, 'altered'));

  const namespace = `e2e-etcd-${process.pid}`;
  const cleanup = new EmergencyCleanup(namespace);
  const network = await createTestNetwork({
    namespace,
    bridgeAddress: BRIDGE_ADDRESS,
    prefixLength: PREFIX_LENGTH,
    tapCount: MEMBER_IPS.length,
  });
  const members: Member[] = [];
  let mirror: MirrorServer | undefined;
  let s3: ChildProcess | undefined;
  const retired: Member[] = [];
  const teardown = async (outcome: 'passed' | 'failed'): Promise<void> => {
    for (const member of [...members, ...retired]) await member.vm.kill();
    if (mirror !== undefined) mirror.process.kill('SIGKILL');
    if (s3 !== undefined) s3.kill('SIGKILL');
    await destroyTestNetwork(namespace);
    removeNetnsEtcDir(namespace);
    cleanup.disarm();
    await keepRunEvidence(runDir, outcome, options.log);
  };

  try {
    mirror = await serveMirror(network, mirrorRoot, MIRROR_PORT, join(runDir, 'mirror.log'));
    cleanup.track(mirror.process.pid);
    if (options.s3Bucket) {
      const tsx = join(options.repoRoot, 'node_modules', 'tsx', 'dist', 'loader.mjs');
      const logFile = join(runDir, 's3.log');
      const server = startLogged(network.inside([process.execPath, '--import', pathToFileURL(tsx).href, S3_SERVER_SCRIPT, join(runDir, 's3rver'), BRIDGE_ADDRESS, String(S3_PORT), E2E_BUCKET.name]), logFile);
      s3 = server;
      cleanup.track(server.pid);
      await waitFor(
        `the S3 server at ${E2E_BUCKET.endpoint}`,
        async () => {
          if (server.exitCode !== null) throw new Error(`S3 server exited (${server.exitCode}); see ${logFile}`);
          // Unsigned: the front answers 403, which says it listens.
          const probe = await runAllowingFailure(network.inside(['curl', '-sS', '-o', '/dev/null', '-w', '%{http_code}', `${E2E_BUCKET.endpoint}/`]), { timeoutMs: 10_000 });
          return probe.stdout.trim() === '403' ? true : undefined;
        },
        { timeoutMs: 60_000, intervalMs: 500 },
      );
    }
    const accelerator = await probeAccelerator(image, runDir);
    options.log(`accelerator: ${accelerator}`);

    const createMember = async (name: string, ip: string, tap: string, vmName = name, memberImage = image): Promise<Member> => {
      const macAddress = `52:54:00:77:00:${ip.split('.')[3]}`;
      const userData = await readFile(join(generated.userDataDir, `${name}.yaml`), 'utf8');
      const seedIso = await writeSeedIso({ instanceId: `${CLUSTER_NAME}-${vmName}`, hostname: vmName, userData, macAddress, addressCidr: `${ip}/${PREFIX_LENGTH}` }, runDir);
      const vm = new Vm({ name: vmName, image: memberImage, seedIso, macAddress, tap, network, runDir, accelerator, memoryMiB: options.memoryMiB ?? 1024 });
      await vm.createDisk();
      const member = { name, ip, clientUrl: `https://${ip}:2379`, peerUrl: `https://${ip}:2380`, vm };
      members.push(member);
      return member;
    };
    for (const [index, ip] of MEMBER_IPS.entries()) {
      await createMember(memberNames[index]!, ip, network.taps[index] ?? '');
    }
    const vmsStartedAt = Date.now();
    for (const member of members) {
      member.vm.start();
      cleanup.track(member.vm.pid);
    }
    options.log(`started ${members.length} VMs; consoles: ${runDir}/*.console.log`);

    const admin = {
      cacert: join(generated.pkiDir, 'ca.crt'),
      cert: join(generated.pkiDir, 'admin.crt'),
      key: join(generated.pkiDir, 'admin.key'),
    };
    const clientUrls = members.map((member) => member.clientUrl);
    const cluster: TestCluster = {
      runDir,
      network,
      mirror,
      accelerator,
      members,
      memberIps: MEMBER_IPS,
      admin,
      vmsStartedAt,
      etcdctl: (args, endpoints = clientUrls, identity = admin) => etcdctl(network, identity, endpoints, args),
      findings: () =>
        members.map((member) => ({ member: member.name, findings: diagnoseConsole(member.vm.console()) })),
      waitHealthy: (timeoutMs) => waitHealthy(cluster, timeoutMs, options.log),
      cli: (args) =>
        runAllowingFailure(network.inside([process.execPath, join(options.repoRoot, 'bin', 'etcd-cloudinit.js'), ...args, '--out', join(runDir, 'out'), '--cluster-name', CLUSTER_NAME]), {
          cwd: options.repoRoot,
          timeoutMs: 5 * 60_000,
        }),
      destroyAllVms: async () => {
        for (const member of members) await member.vm.kill();
        retired.push(...members.splice(0, members.length));
        options.log(`killed every VM (${retired.map((member) => member.vm.spec.name).join(', ')})`);
      },
      bootNewVms: async (label, newImage = image) => {
        if (members.length > 0) throw new Error('bootNewVms: destroy the running VMs first');
        for (const [index, ip] of MEMBER_IPS.entries()) {
          await createMember(memberNames[index]!, ip, network.taps[index] ?? '', `${memberNames[index]}-${label}`, newImage);
        }
        cluster.vmsStartedAt = Date.now();
        for (const member of members) {
          member.vm.start();
          cleanup.track(member.vm.pid);
        }
        options.log(`started ${members.length} new VMs (${label}) on fresh disks`);
        return members;
      },
      restart: (member) => {
        member.vm.start();
        cleanup.track(member.vm.pid);
      },
      teardown,
    };
    return cluster;
  } catch (error) {
    await teardown('failed');
    throw error;
  }
}

async function generateUserData(repoRoot: string, outDir: string, releaseUrl: string, extraArgs: string[], memberNames: string[], env: Record<string, string>): Promise<GeneratedCluster> {
  const cli = join(repoRoot, 'bin', 'etcd-cloudinit.js');
  if (!existsSync(join(repoRoot, 'dist', 'cli.js'))) throw new Error('dist/cli.js is missing: run `npm ci` (or `npm run build`) first');
  // Exactly as a user would run it; only the release URL points at the local mirror.
  await run(
    [
      process.execPath, cli, 'gen-userdata',
      '--cluster-name', CLUSTER_NAME,
      '--out', outDir,
      '--etcd-version', DEBIAN_ETCD_RELEASE.version,
      '--release-url', releaseUrl,
      '--key-size', '2048',
      // TCG guests on a shared 2-core host answer TLS handshakes in seconds: etcd's tuning for slow networks.
      '--heartbeat-interval', '500',
      '--election-timeout', '5000',
      ...extraArgs,
    ],
    { cwd: repoRoot, timeoutMs: 5 * 60_000, env },
  );
  const clusterDir = join(outDir, CLUSTER_NAME);
  return { outDir: clusterDir, pkiDir: join(clusterDir, 'pki'), userDataDir: join(clusterDir, 'user-data'), memberNames };
}

// Fails fast, naming the cause from the guests' consoles, when a known fatal error shows and persists.
const FATAL_GRACE_MS = 120_000;

async function waitHealthy(cluster: TestCluster, timeoutMs: number, log: (line: string) => void): Promise<number> {
  let fatalSeenAt: number | undefined;
  try {
    await waitFor(
      'endpoint health --cluster',
      async () => {
        for (const member of cluster.members) {
          if (!member.vm.running) throw new Error(`qemu for ${member.name} exited; see ${member.vm.consoleLog}`);
        }
        // `endpoint health --cluster` silently skips members that have not published client URLs yet.
        const list = await cluster.etcdctl(['member', 'list', '--write-out=json']);
        const allStarted = list.code === 0 && startedMembers(list.stdout).length === cluster.members.length;
        if (allStarted && (await cluster.etcdctl(['endpoint', 'health', '--cluster'])).code === 0) return true;
        if (cluster.findings().some((entry) => entry.findings.some((finding) => finding.fatal))) {
          fatalSeenAt ??= Date.now();
          if (Date.now() - fatalSeenAt > FATAL_GRACE_MS) throw new Error('guests report a fatal error and the cluster is still unhealthy');
        }
        return undefined;
      },
      { timeoutMs, intervalMs: 10_000 },
    );
  } catch (error) {
    throw new Error(`[health] ${(error as Error).message}\n${describeFindings(cluster)}`);
  }
  const seconds = Math.round((Date.now() - cluster.vmsStartedAt) / 1000);
  log(`healthy ${seconds}s after the VMs started (${cluster.accelerator})`);
  return seconds;
}

export function describeFindings(cluster: TestCluster): string {
  const lines = ['what the guest consoles say:'];
  for (const { member, findings } of cluster.findings()) {
    if (findings.length === 0) lines.push(`  ${member}: no known failure signature`);
    for (const finding of findings) lines.push(`  ${member}: ${finding.meaning}\n      e.g. ${finding.evidence}`);
  }
  lines.push(`consoles kept in ${cluster.runDir}`);
  return lines.join('\n');
}

// If the test process dies without afterAll (timeout, crash), still kill our qemus and drop the namespaces.
export class EmergencyCleanup {
  private readonly pids = new Set<number>();
  private readonly namespaces: readonly string[];
  private readonly onExit = (): void => {
    for (const pid of this.pids) {
      try {
        process.kill(pid, 'SIGKILL');
      } catch {
        // already gone
      }
    }
    for (const namespace of this.namespaces) {
      spawnSync('ip', ['netns', 'del', namespace]);
      removeNetnsEtcDir(namespace);
    }
  };

  // vitest stops a worker with SIGTERM on timeout or Ctrl-C; Node's default then skips 'exit' handlers.
  private readonly onSignal = (signal: NodeJS.Signals): void => {
    this.onExit();
    process.exit(signal === 'SIGINT' ? 130 : 143);
  };

  constructor(...namespaces: string[]) {
    this.namespaces = namespaces;
    process.once('exit', this.onExit);
    process.once('SIGTERM', this.onSignal);
    process.once('SIGINT', this.onSignal);
  }

  track(pid: number | undefined): void {
    if (pid !== undefined) this.pids.add(pid);
  }

  disarm(): void {
    process.off('exit', this.onExit);
    process.off('SIGTERM', this.onSignal);
    process.off('SIGINT', this.onSignal);
  }
}

/** After a run: overlays are gigabytes of sparse disk and go; consoles and logs are small and stay for reading. */
export async function keepRunEvidence(runDir: string, outcome: 'passed' | 'failed', log: (line: string) => void): Promise<void> {
  if (outcome === 'passed') {
    for (const name of await readdir(runDir)) if (name.endsWith('.qcow2')) await rm(join(runDir, name));
  } else {
    log(`kept the failed run's consoles and logs in ${runDir}`);
  }
}

/** Files here replace /etc's for commands run with `ip netns exec <namespace>`. */
export function netnsEtcDir(namespace: string): string {
  return join('/etc/netns', namespace);
}

/** Ours, and /etc/netns too once nothing else is in it. */
export function removeNetnsEtcDir(namespace: string): void {
  rmSync(netnsEtcDir(namespace), { recursive: true, force: true });
  try {
    rmdirSync('/etc/netns');
  } catch {
    // not empty (another namespace's files), or never made
  }
}
