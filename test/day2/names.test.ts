/**
 * A member name is never handed out twice (issue 27, case 8): add-member, roll and repair skip every
 * name the cluster has used, whether a roll replaced it, repair replaced it or remove-member removed
 * it; on a --domain cluster a reused name would get a DNS name whose old certificate is still valid.
 * On real etcd members on loopback, on every kind of cluster: by IP, by DNS name, and droplets.
 */
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { ClusterRecord, RollState } from '../../src/cluster-folder.js';
import { usedMemberNames } from '../../src/day2/names.js';
import { retiredMembersAfter } from '../../src/record-codec.js';
import { runCli, tempDirsRemovedAfterAll } from '../support/cli.js';
import { ETCD_BIN, ETCDCTL_BIN } from '../support/local-cluster.js';
import { DO_POLL_ARGS, LOOP_DOMAIN, LoopbackCluster, type ClusterKind } from '../support/loopback-cluster.js';

const canRun = process.getuid?.() === 0 && existsSync(ETCD_BIN) && existsSync(ETCDCTL_BIN);

const BOOTSTRAP = ['etcd1', 'etcd2', 'etcd3'];
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));
const json = <T>(path: string) => JSON.parse(readFileSync(path, 'utf8')) as T;

const member = (name: string) => ({ name, ip: '10.0.0.1' });

describe('the name history (unit)', () => {
  it('retiredMembersAfter: a dropped member is retired, a member again is not, the order is kept', () => {
    const record = { members: [member('etcd1'), member('etcd2'), member('etcd3')], retiredMembers: ['etcd4', 'etcd1-2'] } as unknown as ClusterRecord;
    expect(retiredMembersAfter(record, [{ name: 'etcd2' }, { name: 'etcd3' }])).toEqual(['etcd4', 'etcd1-2', 'etcd1']);
    expect(retiredMembersAfter(record, [{ name: 'etcd1' }, { name: 'etcd2' }, { name: 'etcd3' }, { name: 'etcd1-2' }])).toEqual(['etcd4']);
    expect(retiredMembersAfter({ ...record, retiredMembers: undefined }, record.members)).toEqual([]);
  });

  it('usedMemberNames: members, retired members, roll.json, pki/ certificates and droplets, each with where it was seen', () => {
    const roll: RollState = {
      formatVersion: 1,
      current: {
        operation: 'repair',
        startedAt: '2026-01-01T00:00:00.000Z',
        fromVersion: 'v3.4.23',
        target: { etcdVersion: 'v3.4.23', install: { mode: 'baked', version: 'v3.4.23' }, keySize: 2048 },
        steps: [{ old: 'etcd3', oldPeerUrl: 'https://10.0.0.3:2380', replacement: member('etcd3-2'), done: [] }],
      },
      history: [{ old: 'etcd1', replacement: 'etcd1-2', operation: 'roll', finishedAt: '2026-01-01T00:00:00.000Z' }],
    };
    const used = usedMemberNames(
      {
        folder: { readRollState: () => roll },
        record: { members: [member('etcd1-2'), member('etcd2'), member('etcd3')], retiredMembers: ['etcd4'] },
        pki: new Map([['ca', {}], ['admin', {}], ['clients/app', {}], ['etcd9', {}]]),
      },
      ['etcd7'],
    );
    expect(Object.fromEntries(used)).toEqual({
      'etcd1-2': 'is already a member',
      etcd2: 'is already a member',
      etcd3: 'is already a member',
      etcd4: 'was a member that left (cluster.json retiredMembers)',
      etcd1: 'was a member, replaced by etcd1-2 in a roll (roll.json)',
      'etcd3-2': 'is the replacement of etcd3 in the repair in progress (roll.json)',
      etcd9: 'has a certificate in the folder (pki/etcd9.crt)',
      etcd7: 'is held by a machine of the cluster (a droplet)',
    });
  });
});

describe('a gen-userdata re-run keeps the CA, and so the names it signed certificates for', () => {
  const workDir = tempDirsRemovedAfterAll('names');
  it('members the re-run drops join retiredMembers; a name given again leaves it', async () => {
    const cwd = workDir();
    const gen = (names: string) => runCli(['gen-userdata', '--ips', '127.0.0.1,127.0.0.2,127.0.0.3', '--names', names, '--key-type', 'ecdsa-p256'], cwd);
    const retired = () => json<{ retiredMembers?: string[] }>(join(cwd, 'out', 'etcd', 'cluster.json')).retiredMembers;
    expect((await gen('etcd1,etcd2,etcd3')).code).toBe(0);
    expect(retired()).toBeUndefined();
    expect((await gen('alpha,beta,gamma')).code).toBe(0);
    expect(retired()).toEqual(['etcd1', 'etcd2', 'etcd3']);
    const again = await runCli(['gen-userdata', '--ips', '127.0.0.1,127.0.0.2,127.0.0.3', '--names', 'alpha,beta,etcd1', '--key-type', 'ecdsa-p256', '--force'], cwd);
    expect(again.code, again.stderr).toBe(0);
    expect(retired()).toEqual(['etcd2', 'etcd3', 'gamma']);
  });
});

/** What differs between the kinds: the flags that give a new machine's address. */
interface Kind {
  readonly kind: ClusterKind;
  /** Flags of add-member for member n named `name` (undefined: the default name). */
  readonly addArgs: (cluster: LoopbackCluster, n: number, name?: string) => string[];
  /** Flags of roll/repair for one replacement at address n. */
  readonly replaceArgs: (cluster: LoopbackCluster, n: number, flag: 'ips' | 'ip') => string[];
  readonly waits: readonly string[];
}

const WAITS = ['--catch-up-timeout', '60', '--poll-interval', '0.2'];
const KINDS: readonly Kind[] = [
  {
    kind: 'ip',
    addArgs: (cluster, n, name) => ['--ip', cluster.ip(n), ...(name ? ['--name', name] : [])],
    replaceArgs: (cluster, n, flag) => [`--${flag}`, cluster.ip(n)],
    waits: WAITS,
  },
  { kind: 'dns', addArgs: (_cluster, _n, name) => (name ? ['--name', name] : []), replaceArgs: () => [], waits: WAITS },
  { kind: 'do', addArgs: (_cluster, _n, name) => [...(name ? ['--name', name] : []), ...DO_POLL_ARGS], replaceArgs: () => [], waits: [...WAITS, ...DO_POLL_ARGS] },
];

describe.runIf(canRun)('names are never reused, on real etcd members', () => {
  describe.each(KINDS)('$kind cluster', ({ kind, addArgs, replaceArgs, waits }) => {
    let cluster: LoopbackCluster;

    beforeAll(async () => {
      cluster = await LoopbackCluster.create(kind);
      await cluster.startAll(BOOTSTRAP);
    });

    afterAll(async () => {
      await cluster?.cleanup();
    });

    const record = () => json<{ members: { name: string }[]; retiredMembers?: string[] }>(join(cluster.outDir, 'cluster.json'));
    const memberNames = () => record().members.map((entry) => entry.name).sort();

    /** The operator while a roll or repair runs: boots each replacement once added, stops each old member once removed. */
    const withOperator = async (args: readonly string[]) => {
      let running = true;
      const errors: string[] = [];
      const loop = (async () => {
        while (running) {
          let state: RollState | undefined;
          try {
            state = json<RollState>(join(cluster.outDir, 'roll.json'));
          } catch {
            state = undefined; // not written yet, or being replaced
          }
          for (const step of state?.current?.steps ?? []) {
            try {
              const name = step.replacement.name;
              // A droplet boots once it has its user-data and its A record (the address the hosts file gives it).
              const aRecord = () => (cluster.fake!.domains.get(LOOP_DOMAIN) ?? []).some((entry) => entry.type === 'A' && entry.name === `${cluster.clusterName}-${name}`);
              const ready = kind === 'do' ? cluster.droplet(name)?.userData !== undefined && aRecord() : existsSync(cluster.userDataPath(name));
              if (step.done.includes('add') && !cluster.isBooted(name) && ready) await cluster.boot(name);
              if (step.done.includes('remove-old') && cluster.runningMembers().includes(step.old)) await cluster.stop(step.old);
            } catch (error) {
              errors.push((error as Error).message);
            }
          }
          await sleep(100);
        }
      })();
      try {
        return await cluster.cli(args, {}, undefined, 300_000);
      } finally {
        running = false;
        await loop;
        expect(errors).toEqual([]);
      }
    };

    /** add-member for real: the member boots, is promoted, and serves. */
    const addMember = async (n: number, name?: string) => {
      const added = await cluster.cli(['add-member', ...addArgs(cluster, n, name)]);
      expect(added.code, added.stderr).toBe(0);
      const joined = name ?? /Added member (\S+) /.exec(added.stdout)![1]!;
      await cluster.boot(joined);
      await cluster.waitHealthy([joined]);
      await cluster.promote(joined);
      return joined;
    };

    it('after a roll (etcd1 became etcd1-2), add-member names the new member etcd4, and refuses --name etcd1', async () => {
      const rolled = await withOperator(['roll', '--member', 'etcd1', ...replaceArgs(cluster, 11, 'ips'), ...waits]);
      expect(rolled.code, rolled.stderr).toBe(0);
      expect(memberNames()).toEqual(['etcd1-2', 'etcd2', 'etcd3']);

      const planned = await cluster.cli(['add-member', ...addArgs(cluster, 4), '--dry-run']);
      expect(planned.code, planned.stderr).toBe(0);
      expect(planned.stdout).toMatch(/^Dry run: would add member etcd4 /m);

      const reused = await cluster.cli(['add-member', ...addArgs(cluster, 4, 'etcd1'), '--dry-run']);
      expect(reused.code, reused.stdout).toBe(2);
      expect(reused.stderr).toContain('[validate] name: "etcd1" was a member that left (cluster.json retiredMembers); a member name is never used twice in a cluster');
      // The roll recorded the member it removed in cluster.json.
      expect(record().retiredMembers).toEqual(['etcd1']);
    });

    it('a member remove-member removed is retired: add-member skips its name, refuses it, and a roll does not take it', async () => {
      // Someone adds etcd2-2 by hand and removes it again: the name is spent.
      await addMember(4, 'etcd2-2');
      const removed = await cluster.cli(['remove-member', '--member', 'etcd2-2', '--yes']);
      expect(removed.code, removed.stderr).toBe(0);
      await cluster.stop('etcd2-2');

      const reused = await cluster.cli(['add-member', ...addArgs(cluster, 5, 'etcd2-2'), '--dry-run']);
      expect(reused.code, reused.stdout).toBe(2);
      expect(reused.stderr).toContain('[validate] name: "etcd2-2" was a member that left (cluster.json retiredMembers)');

      // The roll of etcd2 names its replacement etcd2-3: etcd2-2's certificate may still be out there.
      const plan = await cluster.cli(['roll', '--member', 'etcd2', ...replaceArgs(cluster, 12, 'ips'), '--dry-run']);
      expect(plan.code, plan.stderr).toBe(0);
      expect(plan.stdout).toContain('etcd2 -> etcd2-3');
      expect(plan.stdout).not.toContain('etcd2-2');
      expect(record().retiredMembers).toEqual(['etcd1', 'etcd2-2']);
    });

    it('repair records the dead member it removed; a folder without retiredMembers falls back to roll.json', async () => {
      await cluster.stop('etcd3');
      const repaired = await withOperator(['repair', '--member', 'etcd3', ...replaceArgs(cluster, 13, 'ip'), ...waits, '--timeout', '2']);
      expect(repaired.code, repaired.stderr).toBe(0);
      expect(memberNames()).toEqual(['etcd1-2', 'etcd2', 'etcd3-2']);
      const reusedNow = await cluster.cli(['add-member', ...addArgs(cluster, 6, 'etcd3'), '--dry-run']);
      expect(reusedNow.code, reusedNow.stdout).toBe(2);
      expect(record().retiredMembers).toEqual(['etcd1', 'etcd2-2', 'etcd3']);

      // A folder an older release wrote has no retiredMembers: the names its rolls and repairs replaced are still known.
      const path = join(cluster.outDir, 'cluster.json');
      const { retiredMembers: _dropped, ...older } = json<Record<string, unknown>>(path);
      writeFileSync(path, `${JSON.stringify(older, null, 2)}\n`);
      for (const name of ['etcd1', 'etcd3']) {
        const reused = await cluster.cli(['add-member', ...addArgs(cluster, 6, name), '--dry-run']);
        expect(reused.code, reused.stdout).toBe(2);
        expect(reused.stderr).toMatch(new RegExp(`\\[validate\\] name: "${name}" was a member, replaced by ${name}-2 in a (roll|repair) \\(roll\\.json\\)`));
      }
      const planned = await cluster.cli(['add-member', ...addArgs(cluster, 6), '--dry-run']);
      expect(planned.code, planned.stderr).toBe(0);
      expect(planned.stdout).toMatch(/would add member etcd4 /);
      const health = await cluster.cli(['health']);
      expect(health.code, health.stdout).toBe(0);
    });
  });
});
