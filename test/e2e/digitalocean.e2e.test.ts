import { X509Certificate } from 'node:crypto';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { runAllowingFailure, waitFor, type RunResult } from './exec.js';
import { readCloudInitVerdict } from './guest-console.js';
import { startWriter, type WriterSummary } from '../support/writer.js';
import { BOX_DOMAIN, BOX_MINIMAL_IMAGE_ID, BOX_REGION, OUTSIDE_ADDRESS, startDigitalOceanBox, type DigitalOceanBox } from './do-box.js';

const repoRoot = fileURLToPath(new URL('../..', import.meta.url));
const debianMirror = process.env['E2E_DEBIAN_MIRROR'] ?? 'http://deb.debian.org/debian';
const log = (line: string): void => console.log(`[e2e-do ${new Date().toISOString().slice(11, 19)}] ${line}`);

const CLUSTER = 'box';
const MEMBERS = ['etcd1', 'etcd2', 'etcd3'];
const dropletName = (member: string) => `${CLUSTER}-${member}`;
const hostname = (member: string) => `${dropletName(member)}.${BOX_DOMAIN}`;
const FOLDER = ['--cluster-name', CLUSTER];
// Short polls; the guests run what a user's droplets would (etcd's default raft timing, pre-vote on).
const POLL = ['--poll-interval', '2', '--wait-timeout', '900'];
const escapeRegExp = (text: string) => text.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
/** The mirror served this address the nftables package (the node's apt-get install of it). */
const nftablesFetchedBy = (address: string) => new RegExp(`^${escapeRegExp(address)} GET /debian/nftables_\\S+_amd64\\.deb 200`, 'm');
const INSTALLING_NFTABLES = 'etcd-cloudinit: metadata-lockdown: neither nft nor iptables is installed; installing nftables with apt-get';

/**
 * The path a DigitalOcean user takes, through the real CLI with no step a user would not do:
 * create-droplets on the account's minimal image (no nft, no iptables: each node installs nftables
 * from the package mirror), interrupted once, then resumed; the cluster forms through the cloud
 * firewall; add-member while the package mirror is down (the 4th droplet stops before etcd with the
 * clear line, health points to its console, and the documented way forward, run on the node, makes
 * it join as a learner and promote itself); remove-member, renew-certs,
 * roll from etcd 3.4 to 3.5 (every member replaced by a new droplet while a client writes every
 * 100 ms), destroy-droplets. Each step's time is logged.
 */
describe('DigitalOcean in a box: the whole life of a cluster on real VMs', () => {
  let box: DigitalOceanBox;
  let anyFailed = false;
  const stepStarted = new Map<string, number>();
  const step = (name: string) => stepStarted.set(name, Date.now());
  const done = (name: string) => log(`step ${name}: ${Math.round((Date.now() - (stepStarted.get(name) ?? Date.now())) / 1000)} s`);

  beforeAll(async () => {
    box = await startDigitalOceanBox({ repoRoot, debianMirror, log });
  });
  afterEach((context) => {
    if (context.task.result?.state === 'fail') anyFailed = true;
  });
  afterAll(async () => {
    await box?.teardown(anyFailed ? 'failed' : 'passed');
  });

  const pki = (file: string) => join(box.workDir, 'out', CLUSTER, 'pki', file);
  const etcdctl = (args: readonly string[], endpoints: readonly string[] = MEMBERS.map((member) => `https://${hostname(member)}:2379`)): Promise<RunResult> =>
    runAllowingFailure(
      box.inside(['etcdctl', `--endpoints=${endpoints.join(',')}`, `--cacert=${pki('ca.crt')}`, `--cert=${pki('admin.crt')}`, `--key=${pki('admin.key')}`, '--dial-timeout=5s', '--command-timeout=15s', ...args]),
      { timeoutMs: 60_000 },
    );
  /** A command on a member's droplet, as root over SSH with the account's key (the firewall lets the VPC in on 22). */
  const onMember = (member: string, command: readonly string[], input?: string) =>
    runAllowingFailure(
      box.inside(['ssh', '-i', box.ssh.identityFile, '-o', 'StrictHostKeyChecking=no', '-o', 'UserKnownHostsFile=/dev/null', '-o', 'BatchMode=yes', '-o', 'ConnectTimeout=30', `root@${hostname(member)}`, ...command]),
      { timeoutMs: 3 * 60_000, ...(input !== undefined ? { input } : {}) },
    );
  /** The member's droplet booted the minimal image, installed nftables from the mirror at boot, and locked the metadata service down. */
  const expectLockedDownOnMinimalImage = (member: string, mirrorLog: string) => {
    const machine = box.machine(dropletName(member))!;
    expect(machine.droplet.image, member).toBe(BOX_MINIMAL_IMAGE_ID);
    expect(machine.vm.console(), member).toContain(INSTALLING_NFTABLES);
    expect(mirrorLog, member).toMatch(nftablesFetchedBy(machine.droplet.privateIpv4));
    expect(machine.vm.console(), member).toContain('etcd-cloudinit: metadata-lockdown: only root may reach 169.254.169.254');
    return machine;
  };
  /** The members' own A records (the stable client name `box` has its own, below). */
  const aRecords = () => (box.fake.domains.get(BOX_DOMAIN) ?? []).filter((record) => record.type === 'A' && record.name !== CLUSTER);
  /**
   * Issue 29: what the box's DNS answers for the stable client name box.<domain> (A) and its
   * _etcd-client-ssl._tcp SRV records, queried inside the namespace as a client there would.
   */
  const stableName = async (): Promise<{ addresses: string[]; targets: string[] }> => {
    const script = `const { Resolver } = require('node:dns').promises; const r = new Resolver(); r.setServers(['10.77.0.1']);
      Promise.all([r.resolve4('${CLUSTER}.${BOX_DOMAIN}').catch(() => []), r.resolveSrv('_etcd-client-ssl._tcp.${CLUSTER}.${BOX_DOMAIN}').catch(() => [])])
        .then(([a, srv]) => console.log(JSON.stringify({ addresses: a.sort(), targets: srv.map((s) => s.name + ':' + s.port).sort() })));`;
    const answer = await runAllowingFailure(box.inside([process.execPath, '-e', script]), { timeoutMs: 30_000 });
    expect(answer.code, answer.stderr).toBe(0);
    return JSON.parse(answer.stdout) as { addresses: string[]; targets: string[] };
  };
  /** The stable name lists exactly these members: by DNS, as the API holds the records (dnsmasq restarts on each change). */
  const expectStableName = async (members: readonly string[]) => {
    const wanted = {
      addresses: members.map((member) => [...box.fake.droplets.values()].find((droplet) => droplet.name === dropletName(member))!.privateIpv4!).sort(),
      targets: members.map((member) => `${hostname(member)}:2379`).sort(),
    };
    const seen = await waitFor(`${CLUSTER}.${BOX_DOMAIN} to list ${members.join(', ')}`, async () => {
      const now = await stableName();
      return JSON.stringify(now) === JSON.stringify(wanted) ? now : undefined;
    }, { timeoutMs: 60_000, intervalMs: 2_000 });
    log(`stable name ${CLUSTER}.${BOX_DOMAIN}: A ${seen.addresses.join(', ')}; SRV ${seen.targets.join(', ')}`);
  };
  const healthy = (members: number, timeoutMs: number) =>
    waitFor(
      `health of ${members} members`,
      async () => {
        const health = await box.cli(['health', ...FOLDER, '--json', '--timeout', '10'], 120_000);
        if (health.code !== 0) return undefined;
        const report = JSON.parse(health.stdout) as { members: { healthy: boolean; learner: boolean }[] };
        return report.members.length === members && report.members.every((member) => member.healthy && !member.learner) ? report : undefined;
      },
      { timeoutMs, intervalMs: 15_000 },
    );

  it('create-droplets, killed after the droplets exist and before their records, resumes to a whole cluster', async () => {
    step('create (interrupted)');
    const create = [
      'create-droplets', ...FOLDER, '--domain', BOX_DOMAIN, '--region', BOX_REGION,
      // The old release: the journey ends with a roll to the new one.
      '--etcd-version', box.releases.old.version, '--release-url', box.releaseUrl, '--key-size', '2048', ...POLL,
      // The account's key for root, and port 22 from the VPC only (the workstation is in it).
      '--ssh-key', box.ssh.fingerprint, '--ssh-from', '10.77.0.0/24',
      // The account's minimal custom image: no nft and no iptables (issue 30).
      '--image', String(BOX_MINIMAL_IMAGE_ID),
    ];
    // The API drops the first record request, and the user's Ctrl-C ends the command there.
    box.fake.fail({ method: 'POST', path: `/v2/domains/${BOX_DOMAIN}/records`, network: true, times: 1 });
    const interrupted = box.startCli(create, join(box.runDir, 'create-interrupted.log'));
    await waitFor(
      'the first A record request',
      async () => (box.fake.requests.some((request) => request.method === 'POST' && request.path.endsWith('/records')) ? true : undefined),
      { timeoutMs: 10 * 60_000, intervalMs: 200 },
    );
    const exited = interrupted.exitCode !== null || interrupted.signalCode !== null ? Promise.resolve() : new Promise((resolve) => interrupted.once('exit', resolve));
    interrupted.kill('SIGKILL');
    await exited;
    done('create (interrupted)');
    expect([...box.fake.droplets.values()].map((droplet) => droplet.name).sort()).toEqual(MEMBERS.map(dropletName));
    expect(aRecords()).toEqual([]);
    const dropletIds = [...box.fake.droplets.keys()].sort();

    step('create (resumed)');
    const resumed = await box.cli(create);
    expect(resumed.code, resumed.stderr).toBe(0);
    done('create (resumed)');
    expect([...box.fake.droplets.keys()].sort()).toEqual(dropletIds);
    expect(aRecords().map((record) => record.name).sort()).toEqual(MEMBERS.map(dropletName));
    expect(box.fake.firewalls.size).toBe(1);
    expect(box.fake.violations).toEqual([]);
    // The resumed run also made the stable client name, listing every member it created.
    await expectStableName(MEMBERS);
  });

  it('the cluster forms through the firewall: health exits 0 and data goes in', async () => {
    step('healthy');
    await healthy(3, 25 * 60_000);
    done('healthy');
    const put = await etcdctl(['put', '/box/before', 'kept']);
    expect(put.code, put.stderr).toBe(0);
    const status = await etcdctl(['endpoint', 'status', '-w', 'json']);
    expect(status.code, status.stderr).toBe(0);
    const versions = (JSON.parse(status.stdout) as { Status: { version: string } }[]).map((entry) => entry.Status.version);
    expect(versions).toEqual(MEMBERS.map(() => box.releases.old.version.slice(1)));
    log(`etcd ${versions.join(', ')} booted for real`);
  });

  it('each droplet asked the metadata service for its own address, and cloud-init finished cleanly', async () => {
    for (const member of MEMBERS) {
      const machine = box.machine(dropletName(member))!;
      expect(machine.vm.console(), member).toContain(`etcd-cloudinit: listen-address: etcd listens on ${machine.droplet.privateIpv4}`);
      const verdict = await waitFor(`cloud-init's verdict on ${member}`, async () => readCloudInitVerdict(machine.vm.console()), { timeoutMs: 5 * 60_000, intervalMs: 5_000 });
      expect(verdict, member).toMatchObject({ status: 'done', errors: [], failedModules: [] });
    }
  });

  it('on every droplet, booted on an image without nft or iptables, the node installs nftables from the package mirror, and only root reaches the metadata service (it serves the user-data with the member key)', async () => {
    const url = 'http://169.254.169.254/metadata/v1';
    const mirrorLog = await box.mirrorLog();
    for (const member of MEMBERS) {
      const machine = expectLockedDownOnMinimalImage(member, mirrorLog);
      const asRoot = await onMember(member, ['curl', '-sS', '--max-time', '10', `${url}/interfaces/private/0/ipv4/address`]);
      expect(asRoot, member).toMatchObject({ code: 0, stdout: machine.droplet.privateIpv4 });
      const asNobody = await onMember(member, ['setpriv', '--reuid=65534', '--regid=65534', '--clear-groups', 'curl', '-sS', '--max-time', '10', `${url}/user-data`]);
      // Refused at once by the node's nftables rule (curl: could not connect); nothing of the user-data leaks.
      expect(asNobody.code, `${member}: ${asNobody.stderr}`).toBe(7);
      expect(asNobody.stdout).toBe('');
    }
  });

  it('a host outside the firewall\'s sources is refused on 2379 and 2380; the VPC is not', async () => {
    const target = box.machine(dropletName('etcd1'))!.droplet.privateIpv4;
    for (const port of [2379, 2380]) {
      // No certificate: a TCP connection that gets as far as TLS is what the firewall must prevent.
      const fromOutside = await runAllowingFailure(box.outside(['curl', '-sS', '-k', '--connect-timeout', '5', '--max-time', '10', `https://${target}:${port}/health`]), { timeoutMs: 30_000 });
      expect(fromOutside.code, `${OUTSIDE_ADDRESS} -> ${target}:${port}: ${fromOutside.stderr}`).toBe(28);
      const fromVpc = await runAllowingFailure(box.inside(['curl', '-sS', '-k', '--connect-timeout', '5', '--max-time', '10', `https://${target}:${port}/health`]), { timeoutMs: 30_000 });
      // Inside the VPC the member answers, and its TLS layer refuses a client without a certificate.
      expect(fromVpc.code, fromVpc.stderr).not.toBe(28);
      expect(fromVpc.code, fromVpc.stderr).not.toBe(7);
    }
  });

  it('add-member while the package mirror is down: the 4th droplet stops before etcd with the clear line, and health points to its console', async () => {
    step('add-member (mirror down)');
    await box.packageRepo.withdraw();
    try {
      const added = await box.cli(['add-member', ...FOLDER, ...POLL]);
      expect(added.code, added.stderr).toBe(0);
      const droplet = [...box.fake.droplets.values()].find((candidate) => candidate.name === dropletName('etcd4'));
      expect(droplet?.userData).toBe(readFileSync(join(box.workDir, 'out', CLUSTER, 'user-data', 'etcd4.yaml'), 'utf8'));
      expect(aRecords().find((record) => record.name === dropletName('etcd4'))?.data).toBe(droplet?.privateIpv4);
      const machine = box.machine(dropletName('etcd4'))!;
      await waitFor(
        'etcd4 to stop at the metadata lockdown',
        async () => (machine.vm.console().includes('etcd-cloudinit: metadata-lockdown: installing nftables failed (see above), so etcd stays stopped') ? true : undefined),
        { timeoutMs: 20 * 60_000, intervalMs: 5_000 },
      );
      expect(machine.vm.console()).toContain(INSTALLING_NFTABLES);
      expect(machine.vm.console()).toContain("every local user can read this droplet's user-data (with the member key) from 169.254.169.254");
      const verdict = await waitFor("cloud-init's verdict on etcd4", async () => readCloudInitVerdict(machine.vm.console()), { timeoutMs: 5 * 60_000, intervalMs: 5_000 });
      expect(verdict.status).toBe('error');
      expect((await onMember('etcd4', ['systemctl', 'is-active', 'etcd.service'])).stdout.trim()).not.toBe('active');
      // From the workstation: etcd4 never answered, and the way to its console.
      const health = await box.cli(['health', ...FOLDER, '--timeout', '5']);
      expect(health.code, health.stdout).not.toBe(0);
      expect(health.stdout).toContain('etcd4 did not answer');
      expect(health.stdout).toContain("'cloud-init status --long'");
      expect(health.stdout).toContain(`Droplet Console of droplet ${dropletName('etcd4')}`);
    } finally {
      await box.packageRepo.restore();
    }
    done('add-member (mirror down)');
  });

  it('the way forward the node printed (once the mirror is back, run the boot\'s runcmd again as root) makes etcd4 join as a learner and promote itself', async () => {
    step('add-member (way forward)');
    const finished = await onMember('etcd4', ['sh', '/var/lib/cloud/instance/scripts/runcmd']);
    expect(finished.code, finished.stderr).toBe(0);
    expect(await box.mirrorLog()).toMatch(nftablesFetchedBy(box.machine(dropletName('etcd4'))!.droplet.privateIpv4));
    await healthy(4, 20 * 60_000);
    done('add-member (way forward)');
    expect(box.machine(dropletName('etcd4'))!.vm.console()).toMatch(/etcd-cloudinit: etcd-promote: promoted member etcd4/);
    const read = await etcdctl(['get', '/box/before', '--print-value-only', '--consistency=s'], [`https://${hostname('etcd4')}:2379`]);
    expect(read.stdout.trim(), read.stderr).toBe('kept');
    expect(box.fake.violations).toEqual([]);
  });

  it('remove-member: the member, its droplet, VM and record are gone', async () => {
    step('remove-member');
    const removed = await box.cli(['remove-member', ...FOLDER, '--name', 'etcd4', '--yes']);
    expect(removed.code, removed.stderr).toBe(0);
    expect(box.machine(dropletName('etcd4'))).toBeUndefined();
    expect([...box.fake.droplets.values()].map((droplet) => droplet.name).sort()).toEqual(MEMBERS.map(dropletName));
    expect(aRecords().map((record) => record.name).sort()).toEqual(MEMBERS.map(dropletName));
    await healthy(3, 5 * 60_000);
    done('remove-member');
  });

  it('renew-certs in place (no SSH): each member makes its new key, and every member serves the certificate renew-certs reports', async () => {
    step('renew-certs');
    const renewed = await box.cli(['renew-certs', ...FOLDER, '--timeout', '300', '--json']);
    expect(renewed.code, renewed.stderr).toBe(0);
    const report = JSON.parse(renewed.stdout) as { method: string; members: { name: string; serial: string }[]; failed: unknown[] };
    expect(report).toMatchObject({ method: 'in-place', failed: [] });
    for (const member of MEMBERS) expect(existsSync(pki(`${member}.key`)), `pki/${member}.key`).toBe(false);
    const health = await box.cli(['health', ...FOLDER, '--json']);
    expect(health.code, health.stdout).toBe(0);
    const served = (JSON.parse(health.stdout) as { members: { name: string; certSerial: string }[] }).members;
    for (const member of MEMBERS) {
      const serial = new X509Certificate(readFileSync(pki(`${member}.crt`))).serialNumber;
      expect(report.members.find((entry) => entry.name === member)?.serial, member).toBe(serial);
      expect(served.find((entry) => entry.name === member)?.certSerial, member).toBe(serial);
    }
    done('renew-certs');
  });

  it('roll: every member is replaced by a new droplet on the next etcd minor while a client writes every 100 ms; no acknowledged write is lost', async () => {
    step('roll');
    const replacements = MEMBERS.map((member) => `${member}-2`);
    const writer = startWriter(
      box.inside,
      join(box.runDir, 'roll-writer.json'),
      { cacert: pki('ca.crt'), cert: pki('admin.crt'), key: pki('admin.key') },
      '/roll/',
      [...MEMBERS, ...replacements].map((member) => `https://${hostname(member)}:2379`),
    );
    let summary: WriterSummary | undefined;
    let rolled: RunResult;
    try {
      rolled = await box.cli(['roll', ...FOLDER, '--etcd-version', box.releases.new.version, ...POLL, '--catch-up-timeout', '1500'], 90 * 60_000);
      summary = await writer.stop();
    } finally {
      if (!summary) await writer.stop().catch(() => undefined);
    }
    for (const line of rolled.stderr.trim().split('\n')) log(`roll: ${line}`);
    expect(rolled.code, rolled.stderr).toBe(0);
    done('roll');
    const clusterVersion = /^Cluster version: (\S+)$/m.exec(rolled.stdout)?.[1];
    expect(clusterVersion, rolled.stdout).toMatch(/^3\.5\./);

    const endpoints = replacements.map((member) => `https://${hostname(member)}:2379`);
    const status = await etcdctl(['endpoint', 'status', '-w', 'json'], endpoints);
    expect(status.code, status.stderr).toBe(0);
    expect((JSON.parse(status.stdout) as { Status: { version: string } }[]).map((entry) => entry.Status.version)).toEqual(replacements.map(() => box.releases.new.version.slice(1)));
    const list = await etcdctl(['member', 'list', '-w', 'simple'], endpoints);
    expect(list.stdout.trim().split('\n').map((line) => line.split(', ')[2]).sort(), list.stderr).toEqual(replacements);
    expect([...box.fake.droplets.values()].map((droplet) => droplet.name).sort()).toEqual(replacements.map(dropletName));
    expect(aRecords().map((record) => record.name).sort()).toEqual(replacements.map(dropletName));
    // Each replacement was listed under the stable name once promoted and each old member delisted before its removal.
    await expectStableName(replacements);
    expect(rolled.stderr).toMatch(/^pre-roll backup: snapshot of \S+ at revision \d+ \(\d+ bytes, sha256 [0-9a-f]{64}\) saved to \S+\/backups\/\S+\.db \(0600/m);
    // The replacements boot the cluster's image (the minimal one) and install nftables at boot too.
    const mirrorLog = await box.mirrorLog();
    for (const member of replacements) expectLockedDownOnMinimalImage(member, mirrorLog);

    let lost = 0;
    for (const endpoint of endpoints) {
      const keys = await etcdctl(['get', '/roll/', '--prefix', '--keys-only'], [endpoint]);
      expect(keys.code, keys.stderr).toBe(0);
      const stored = new Set(keys.stdout.split('\n').filter((line) => line !== ''));
      const missing = summary!.acknowledged.filter((key) => !stored.has(key));
      lost = Math.max(lost, missing.length);
      expect(missing.slice(0, 5), `acknowledged writes missing on ${endpoint}`).toEqual([]);
    }
    log(`roll: ${summary!.acknowledged.length} of ${summary!.attempts} writes acknowledged, ${lost} lost; longest gap between two acknowledged writes ${summary!.longestGapMs} ms; cluster version ${clusterVersion}`);
    expect(summary!.acknowledged.length).toBeGreaterThan(100);
    expect(box.fake.violations).toEqual([]);
  });

  it('destroy-droplets --yes leaves no droplet, VM, record, firewall or VPC', async () => {
    step('destroy');
    const destroyed = await box.cli(['destroy-droplets', ...FOLDER, '--yes']);
    expect(destroyed.code, destroyed.stderr).toBe(0);
    expect(box.fake.droplets.size).toBe(0);
    expect(box.machines()).toEqual([]);
    expect(aRecords()).toEqual([]);
    expect(box.fake.firewalls.size).toBe(0);
    expect([...box.fake.vpcs.values()].filter((vpc) => !vpc.isDefault)).toEqual([]);
    expect(box.fake.violations).toEqual([]);
    expect(box.errors).toEqual([]);
    done('destroy');
  });
});
