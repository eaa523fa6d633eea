/**
 * roll and repair on real etcd members on loopback, on every kind of cluster the tool makes: members
 * by IP, by DNS name (--domain), and droplets made by create-droplets against the fake DigitalOcean
 * API. The test plays the operator and the cloud: it boots each replacement from the user-data the
 * command wrote (or the API received) and destroys each machine the command retired. A client
 * writes throughout the roll: one put every 100 ms, each a new key holding a counter.
 */
import type { ChildProcess } from 'node:child_process';
import { X509Certificate } from 'node:crypto';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ETCD_BIN, ETCDCTL_BIN } from '../support/local-cluster.js';
import type { WriterSummary } from '../support/writer.js';
import { DO_POLL_ARGS, LOOP_DOMAIN, LoopbackCluster, type ClusterKind } from '../support/loopback-cluster.js';
import { outputSchemaErrors } from '../support/output-schemas.js';

const canRun = process.getuid?.() === 0 && existsSync(ETCD_BIN) && existsSync(ETCDCTL_BIN);

const BOOTSTRAP = ['etcd1', 'etcd2', 'etcd3'];
const WAITS = ['--catch-up-timeout', '60'];

interface RollJson {
  current?: { operation: string; steps: { old: string; replacement: { name: string }; done: string[]; memberId?: string; lastFailure?: string }[]; renewCredentials?: { done: boolean } };
  history: { old: string; replacement: string; operation: string }[];
}

const json = <T>(path: string) => JSON.parse(readFileSync(path, 'utf8')) as T;
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/** What differs between the kinds: the flags that give the replacements' addresses, and the wait flags. */
interface Kind {
  readonly kind: ClusterKind;
  readonly rollArgs: (cluster: LoopbackCluster) => string[];
  readonly addressArgs: (cluster: LoopbackCluster, n: number) => string[];
  readonly waits: string[];
  /** The client URLs of the bootstrap members and of their replacements: the writer's endpoints. */
  readonly writerEndpoints: (cluster: LoopbackCluster) => string[];
  /** The roll also changes the key type (RSA members and ECDSA replacements serve side by side meanwhile). */
  readonly keyType?: 'ecdsa-p256';
  /** gen-userdata's extra flags: a client certificate and the Kubernetes kit, which the roll's last step re-issues. */
  readonly genArgs?: readonly string[];
  /** The resumed roll prints its text summary instead of --json. */
  readonly textOutcome?: boolean;
}

const byName = (names: readonly string[]) => names.map((name) => `https://etcd-${name}.${LOOP_DOMAIN}:2379`);

const KINDS: readonly Kind[] = [
  {
    kind: 'ip',
    rollArgs: (cluster) => ['--ips', [11, 12, 13].map((n) => cluster.ip(n)).join(',')],
    addressArgs: (cluster, n) => ['--ip', cluster.ip(n)],
    waits: [...WAITS, '--poll-interval', '0.2'],
    writerEndpoints: (cluster) => [1, 2, 3, 11, 12, 13].map((n) => `https://${cluster.ip(n)}:2379`),
    keyType: 'ecdsa-p256',
    genArgs: ['--client', 'app', '--kubernetes'],
  },
  { kind: 'dns', rollArgs: () => [], addressArgs: () => [], waits: [...WAITS, '--poll-interval', '0.2'], writerEndpoints: () => byName([...BOOTSTRAP, ...BOOTSTRAP.map((name) => `${name}-2`)]), textOutcome: true },
  { kind: 'do', rollArgs: () => [], addressArgs: () => [], waits: [...WAITS, ...DO_POLL_ARGS], writerEndpoints: () => byName([...BOOTSTRAP, ...BOOTSTRAP.map((name) => `${name}-2`)]) },
];

/**
 * The operator and the cloud while a roll or repair runs: boots each replacement once its machine
 * exists (its user-data written, or on DigitalOcean its droplet active with its A record), and
 * destroys each old machine once it is out of the cluster.
 */
class Operator {
  private running = true;
  private readonly loop: Promise<void>;
  readonly errors: string[] = [];

  constructor(private readonly cluster: LoopbackCluster) {
    this.loop = this.run();
  }

  private rollState(): RollJson | undefined {
    const path = join(this.cluster.outDir, 'roll.json');
    try {
      return json<RollJson>(path);
    } catch {
      return undefined; // not written yet, or being replaced
    }
  }

  private machineReady(name: string): boolean {
    if (this.cluster.kind !== 'do') return existsSync(this.cluster.userDataPath(name));
    const droplet = this.cluster.droplet(name);
    const record = (this.cluster.fake!.domains.get(LOOP_DOMAIN) ?? []).some((entry) => entry.type === 'A' && entry.name === `${this.cluster.clusterName}-${name}`);
    return droplet?.userData !== undefined && record;
  }

  /** 'do': the private IPv4s the stable client name (A records `etcd`) lists now. */
  private listed(): string[] {
    return (this.cluster.fake!.domains.get(LOOP_DOMAIN) ?? []).filter((entry) => entry.type === 'A' && entry.name === this.cluster.clusterName).map((entry) => entry.data);
  }

  private async run(): Promise<void> {
    while (this.running) {
      for (const step of this.rollState()?.current?.steps ?? []) {
        try {
          const name = step.replacement.name;
          if (this.cluster.kind === 'do') {
            // Issue 29: a learner is never listed under the stable name; a member on its way out is delisted before it is removed.
            const droplet = this.cluster.droplet(name);
            if (step.done.includes('add') && !step.done.includes('promote') && droplet?.privateIpv4 && this.listed().includes(droplet.privateIpv4)) {
              this.errors.push(`learner ${name} (${droplet.privateIpv4}) is listed under the stable name`);
            }
            const old = this.cluster.droplet(step.old);
            if (step.done.includes('remove-old') && old?.privateIpv4 && this.listed().includes(old.privateIpv4)) this.errors.push(`removed member ${step.old} (${old.privateIpv4}) is still listed under the stable name`);
          }
          if (step.done.includes('add') && !this.cluster.isBooted(name) && this.machineReady(name)) await this.cluster.boot(name);
          if (step.done.includes('remove-old') && this.cluster.runningMembers().includes(step.old)) await this.cluster.stop(step.old);
        } catch (error) {
          this.errors.push((error as Error).message);
        }
      }
      await sleep(100);
    }
  }

  /** Stops the loop; machines of members no longer in cluster.json are destroyed. */
  async stop(): Promise<void> {
    this.running = false;
    await this.loop;
    const members = json<{ members: { name: string }[] }>(join(this.cluster.outDir, 'cluster.json')).members.map((member) => member.name);
    for (const name of this.cluster.runningMembers()) if (!members.includes(name)) await this.cluster.stop(name);
  }
}

describe.runIf(canRun)('roll and repair on real etcd members', () => {
  describe.each(KINDS)('$kind cluster', ({ kind, rollArgs, addressArgs, waits, writerEndpoints, keyType, genArgs, textOutcome }) => {
    let cluster: LoopbackCluster;

    beforeAll(async () => {
      cluster = await LoopbackCluster.create(kind, genArgs);
      await cluster.startAll(BOOTSTRAP);
    });

    afterAll(async () => {
      await cluster?.cleanup();
    });

    const rollJson = () => json<RollJson>(join(cluster.outDir, 'roll.json'));
    const recordMembers = () => json<{ members: { name: string }[] }>(join(cluster.outDir, 'cluster.json')).members.map((member) => member.name).sort();
    /** [name, ID, learner] of the running cluster, asked of any running member. */
    const memberList = async () => {
      const list = await cluster.memberList();
      expect(list, 'member list').toBeDefined();
      return list!.map(({ name, id, learner }) => ({ name, id, learner })).sort((a, b) => a.name.localeCompare(b.name));
    };

    const expectValidApiRequests = () => expect(cluster.fake?.violations ?? []).toEqual([]);
    /** 'do' (issue 29): the stable client name etcd.<domain> lists exactly these members: their A records and SRV targets. */
    const expectStableName = (members: readonly string[]) => {
      if (kind !== 'do') return;
      const records = cluster.fake!.domains.get(LOOP_DOMAIN) ?? [];
      const ips = members.map((name) => cluster.droplet(name)!.privateIpv4).sort();
      expect(records.filter((r) => r.type === 'A' && r.name === 'etcd').map((r) => r.data).sort(), 'A records of the stable name').toEqual(ips);
      expect(records.filter((r) => r.type === 'SRV' && r.name === '_etcd-client-ssl._tcp.etcd').map((r) => `${r.data}:${r.port}`).sort(), 'SRV records').toEqual(
        members.map((name) => `etcd-${name}.${LOOP_DOMAIN}.:2379`).sort(),
      );
    };

    /** Runs the CLI while the operator boots and destroys machines. */
    const withOperator = async (args: readonly string[], env: Record<string, string> = {}) => {
      const operator = new Operator(cluster);
      try {
        return await cluster.cli(args, env, undefined, 300_000);
      } finally {
        await operator.stop();
        expect(operator.errors).toEqual([]);
      }
    };

    it('roll: killed mid-roll and run again, it replaces every member once; no acknowledged write is lost; new certificates', async () => {
      const originalSerials = new Set(await Promise.all(BOOTSTRAP.map((name) => cluster.servedSerial(name))));
      // The pairs the roll's last step re-issues, and the CA that must not change.
      const pem = (file: string) => new X509Certificate(readFileSync(join(cluster.outDir, file)));
      const credentialFiles = ['pki/admin.crt', ...(genArgs ? ['pki/clients/app.crt', 'pki/clients/kube-apiserver-etcd-client.crt', 'kubernetes/apiserver-etcd-client.crt'] : [])];
      const credentialSerials = new Map(credentialFiles.map((file) => [file, pem(file).serialNumber]));
      const caBefore = pem('pki/ca.crt').fingerprint256;
      const writer = cluster.startWriter('/roll/', writerEndpoints(cluster));
      let summary: WriterSummary | undefined;
      try {
        await sleep(500);
        // First run: killed (as by Ctrl-C or a crash) right after its first replacement joined the cluster as a learner.
        let child: ChildProcess | undefined;
        const first = cluster.cli(['roll', ...rollArgs(cluster), ...(keyType ? ['--key-type', keyType] : []), ...waits], {}, (spawned) => (child = spawned), 300_000);
        const deadline = Date.now() + 60_000;
        while (!existsSync(join(cluster.outDir, 'roll.json')) || !rollJson().current?.steps[0]?.done.includes('add')) {
          if (Date.now() > deadline) throw new Error(`the first replacement was not added within 60 s: ${(await first).stderr}`);
          await sleep(50);
        }
        child!.kill('SIGKILL');
        expect((await first).code).not.toBe(0);
        const before = rollJson().current!.steps[0]!;
        expect(before.done).toEqual(['add']);

        let earlierRuns = '';
        if (genArgs) {
          // Killed again: once every member is replaced, just before the last step writes anything ...
          const beforeRenewal = await withOperator(['roll', ...waits], { ETCD_CLOUDINIT_CRASH_AT: '1' });
          expect(beforeRenewal.code).not.toBe(0);
          expect(beforeRenewal.stderr).toContain('ETCD_CLOUDINIT_CRASH_AT=1: killed before create the staging folder');
          expect(rollJson().current!.steps.every((step) => step.done.length === 4)).toBe(true);
          expect(rollJson().current!.renewCredentials).toEqual({ done: false });
          for (const file of credentialFiles) expect(pem(file).serialNumber, file).toBe(credentialSerials.get(file));
          // ... and during it, after its folder write committed: the next run finishes placing the files, and does not issue them again.
          const duringRenewal = await withOperator(['roll', ...waits], { ETCD_CLOUDINIT_CRASH_AT: '16' });
          expect(duringRenewal.code).not.toBe(0);
          expect(duringRenewal.stderr).toMatch(/resuming the roll .*: every member replaced; renewing the admin and client certificates/);
          expect(duringRenewal.stderr).toMatch(/ETCD_CLOUDINIT_CRASH_AT=16: killed before (place|create) /);
          earlierRuns = beforeRenewal.stderr + duringRenewal.stderr;
        }
        const resumed = await withOperator(['roll', ...waits, ...(textOutcome ? [] : ['--json'])]);
        expect(resumed.code, resumed.stderr).toBe(0);
        if (genArgs) {
          expect(resumed.stderr).toMatch(/resuming the roll .*: every member replaced; checking the cluster version/);
          expect(resumed.stderr).not.toContain('renewed the admin certificate');
        }
        if (textOutcome) {
          // The summary says what was replaced, what the last step renewed, and what the operator does with it.
          expect(resumed.stdout).toMatch(/^Rolled cluster etcd: /);
          for (const name of BOOTSTRAP) expect(resumed.stdout).toContain(`${name} -> ${name}-2`);
          expect(resumed.stdout).toMatch(/\nRenewed the admin certificate with the same CA \(new RSA-2048 keys\):\n  admin   out\/etcd\/pki\/admin\.crt until \d{4}-\d\d-\d\d \(used from the folder, etcdctl\.env too: nothing to install\)\n/);
        } else {
          // --json: stdout is only the outcome, as schema/output/roll.schema.json describes it.
          const outcome = JSON.parse(resumed.stdout) as { dryRun: boolean; steps: { old: string; replacement: { name: string } }[]; renewedCredentials: { keys: string; admin: { certificate: string }; clients: { name: string }[]; kubernetes: string | null } };
          expect(outputSchemaErrors('roll', outcome)).toEqual([]);
          expect(outcome.dryRun).toBe(false);
          expect(outcome.steps.map((step) => [step.old, step.replacement.name]).sort()).toEqual(BOOTSTRAP.map((name) => [name, `${name}-2`]));
          expect(outcome.renewedCredentials).toMatchObject({ keys: keyType ? 'ECDSA P-256' : 'RSA-2048', admin: { certificate: expect.stringMatching(/pki\/admin\.crt$/) } });
          expect(outcome.renewedCredentials.clients.map((client) => client.name).sort()).toEqual(genArgs ? ['app', 'kube-apiserver-etcd-client'] : []);
          expect(outcome.renewedCredentials.kubernetes !== null).toBe(genArgs !== undefined);
        }
        expect(resumed.stderr).toContain('resuming the roll');
        // The leader is replaced last, and hands its leadership to its replacement before it is removed.
        expect(earlierRuns + resumed.stderr).toMatch(/etcd\d: was the leader; leadership moved to etcd\d-2/);
        await sleep(500);
        summary = await writer.stop();

        // Exactly one replacement per member, the first one the same member added before the kill.
        const members = await memberList();
        expect(members.map((member) => member.name).sort()).toEqual(BOOTSTRAP.map((name) => `${name}-2`));
        expect(members.every((member) => !member.learner)).toBe(true);
        expect(members.find((member) => member.name === before.replacement.name)!.id).toBe(BigInt(before.memberId!).toString(16));
        expect(recordMembers()).toEqual(BOOTSTRAP.map((name) => `${name}-2`));
        const state = rollJson();
        expect(state.current).toBeUndefined();
        expect(state.history.map((entry) => [entry.old, entry.replacement]).sort()).toEqual(BOOTSTRAP.map((name) => [name, `${name}-2`]));

        expectStableName(BOOTSTRAP.map((name) => `${name}-2`));

        // Every acknowledged write is on every member.
        console.log(`[roll ${kind}] ${summary.acknowledged.length} of ${summary.attempts} writes acknowledged; longest gap between two ${summary.longestGapMs} ms`);
        expect(summary.acknowledged.length).toBeGreaterThan(10);
        for (const member of members) {
          const stored = await cluster.range(member.name, '/roll/');
          const lost = summary.acknowledged.filter((key) => !stored.has(key));
          expect(lost, `acknowledged writes missing on ${member.name}`).toEqual([]);
        }
        // Every member serves a certificate with a new serial.
        for (const member of members) expect(originalSerials.has(await cluster.servedSerial(member.name)), member.name).toBe(false);
        for (const name of BOOTSTRAP) expect(existsSync(join(cluster.outDir, 'pki', `${name}.key`)), name).toBe(false);
        // The replacements have keys of the roll's type, signed by the cluster's RSA CA, and cluster.json says so.
        const keyTypeOf = (file: string) => new X509Certificate(readFileSync(join(cluster.outDir, 'pki', file))).publicKey.asymmetricKeyType;
        for (const member of members) expect(keyTypeOf(`${member.name}.crt`), member.name).toBe(keyType ? 'ec' : 'rsa');
        expect(keyTypeOf('ca.crt')).toBe('rsa');
        expect(json<{ keyType?: string }>(join(cluster.outDir, 'cluster.json')).keyType ?? 'rsa').toBe(keyType ?? 'rsa');
        // The last step re-issued the admin and client pairs: new serials, new keys of the roll's type, the same CA.
        const ca = pem('pki/ca.crt');
        expect(ca.fingerprint256).toBe(caBefore);
        for (const file of credentialFiles) {
          const cert = pem(file);
          expect(cert.serialNumber, file).not.toBe(credentialSerials.get(file));
          expect(cert.publicKey.asymmetricKeyType, file).toBe(keyType ? 'ec' : 'rsa');
          if (keyType) expect(cert.publicKey.asymmetricKeyDetails?.namedCurve, file).toBe('prime256v1');
          expect(cert.checkIssued(ca) && cert.verify(ca.publicKey), file).toBe(true);
        }
        if (genArgs) {
          // The kit holds the same pair as pki/clients/, and etcdctl with it (no admin certificate) can put and get.
          expect(readFileSync(join(cluster.outDir, 'kubernetes/apiserver-etcd-client.crt'), 'utf8')).toBe(readFileSync(join(cluster.outDir, 'pki/clients/kube-apiserver-etcd-client.crt'), 'utf8'));
          const kit = { cacert: join(cluster.outDir, 'kubernetes/ca.crt'), cert: join(cluster.outDir, 'kubernetes/apiserver-etcd-client.crt'), key: join(cluster.outDir, 'kubernetes/apiserver-etcd-client.key') };
          const put = await cluster.etcdctl(['put', '/kube/after-roll', 'renewed'], undefined, kit);
          expect(put.code, put.stderr).toBe(0);
          const got = await cluster.etcdctl(['get', '/kube/after-roll', '--print-value-only'], undefined, kit);
          expect(got.stdout.trim(), got.stderr).toBe('renewed');
        }
        const health = await cluster.cli(['health']);
        expect(health.code, health.stdout + health.stderr).toBe(0);
        expectValidApiRequests();
      } finally {
        if (!summary) await writer.stop().catch(() => undefined);
      }
    });

    it('roll: a replacement that never starts is rolled back, the old member still serving; run again, it is replaced', async () => {
      const membersBefore = await memberList();
      const adminSerial = () => new X509Certificate(readFileSync(join(cluster.outDir, 'pki', 'admin.crt'))).serialNumber;
      const adminBefore = adminSerial();
      const failed = await cluster.cli(['roll', '--member', 'etcd1-2', ...(kind === 'ip' ? ['--ips', cluster.ip(14)] : []), '--catch-up-timeout', '3', '--poll-interval', '0.2', '--print', ...(kind === 'do' ? ['--wait-timeout', '20'] : [])]);
      expect(failed.code, failed.stderr).toBe(1);
      // --print wrote the replacement's user-data to stdout as it was made.
      expect(failed.stdout).toMatch(/^#cloud-config\n/);
      expect(failed.stdout).toContain('name: "etcd1-3"');
      expect(failed.stderr).toContain('etcd1-3 did not join and catch up within 3 s');
      expect(failed.stderr).toContain('etcd1-2 still serves');
      expect(await memberList()).toEqual(membersBefore);
      expect(existsSync(cluster.userDataPath('etcd1-3'))).toBe(false);
      expect(recordMembers()).toEqual(BOOTSTRAP.map((name) => `${name}-2`));
      expect(rollJson().current!.steps[0]).toMatchObject({ old: 'etcd1-2', done: [] });
      expect(rollJson().current!.steps[0]!.lastFailure).toContain('did not join');
      if (kind === 'do') expect(cluster.droplet('etcd1-3')).toBeUndefined();
      // Other day-2 commands wait for the roll.
      const blocked = await cluster.cli(['renew-certs']);
      expect(blocked.code).toBe(1);
      expect(blocked.stderr).toContain('a roll of cluster etcd is in progress');
      const health = await cluster.cli(['health']);
      expect(health.code, health.stdout).toBe(0);
      expect(health.stderr).toMatch(/note: a roll is in progress \(started .*, 0 of 1 member\(s\) replaced\); run 'roll' to finish it/);

      const retried = await withOperator(['roll', ...waits]);
      expect(retried.code, retried.stderr).toBe(0);
      // A roll of some members keeps the admin and client certificates.
      expect(retried.stdout).not.toContain('Renewed the admin certificate');
      expect(adminSerial()).toBe(adminBefore);
      expect((await memberList()).map((member) => member.name).sort()).toEqual(['etcd1-3', 'etcd2-2', 'etcd3-2']);
      expectValidApiRequests();
    });

    it('repair: a stopped member is removed first, then replaced; refused while the member is healthy', async () => {
      const healthy = await cluster.cli(['repair', '--name', 'etcd3-2', ...addressArgs(cluster, 15)]);
      expect(healthy.code).toBe(2);
      expect(healthy.stderr).toContain('member: etcd3-2 is healthy');

      // Two of three down: removing one would leave no quorum, so repair refuses.
      await cluster.stop('etcd2-2');
      await cluster.stop('etcd3-2');
      const noQuorum = await cluster.cli(['repair', '--name', 'etcd2-2', ...addressArgs(cluster, 15), '--timeout', '2']);
      expect(noQuorum.code, noQuorum.stderr).toBe(1);
      // The one member still up has no quorum either, so it is not healthy.
      expect(noQuorum.stderr).toMatch(/refusing to remove etcd2-2: only 0 other member\(s\) are healthy voters \((etcd3-2, etcd1-3|etcd1-3, etcd3-2) unhealthy\), and 2 members need 2 for quorum/);
      expect(existsSync(join(cluster.outDir, 'roll.json')) && rollJson().current).toBeFalsy();
      await cluster.start('etcd3-2');
      await cluster.waitHealthy(['etcd1-3', 'etcd3-2']);

      const repaired = await withOperator(['repair', '--name', 'etcd2-2', ...addressArgs(cluster, 15), ...waits, '--timeout', '2']);
      expect(repaired.code, repaired.stderr).toBe(0);
      const members = await memberList();
      expect(members.map((member) => member.name).sort()).toEqual(['etcd1-3', 'etcd2-3', 'etcd3-2']);
      expect(members.every((member) => !member.learner)).toBe(true);
      expect(recordMembers()).toEqual(['etcd1-3', 'etcd2-3', 'etcd3-2']);
      if (kind === 'do') expect(cluster.droplet('etcd2-2')).toBeUndefined();
      expectStableName(['etcd1-3', 'etcd2-3', 'etcd3-2']);
      const health = await cluster.cli(['health']);
      expect(health.code, health.stdout + health.stderr).toBe(0);
      expectValidApiRequests();
    });
  });
});
