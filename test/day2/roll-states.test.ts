/**
 * The state machine of roll and repair on real etcd members on loopback: every state a roll or a
 * repair can be left in (each action recorded done or not) crossed with what a person or etcd may
 * do meanwhile (the learner removed, the replacement never started, the old member removed by hand,
 * a member added by hand). From each, a re-run finishes, or `--abort` leaves a clean folder and a
 * healthy cluster. The rows of issue 27 (cases 1 to 6) are rows here.
 *
 * One cluster serves every row: each row leaves it healthy with a clean folder, and checks so.
 * Kill points are real (the CLI is killed when roll.json records the action) or, where the window
 * is too short to hit, roll.json is written as the code writes it (rollStateFile).
 */
import type { ChildProcess } from 'node:child_process';
import { existsSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { rollStateFile, type RollState } from '../../src/cluster-folder.js';
import { ETCD_BIN, ETCDCTL_BIN } from '../support/local-cluster.js';
import { LOOP_DOMAIN, LoopbackCluster } from '../support/loopback-cluster.js';
import { outputSchemaErrors } from '../support/output-schemas.js';

const canRun = process.getuid?.() === 0 && existsSync(ETCD_BIN) && existsSync(ETCDCTL_BIN);
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));
const WAITS = ['--catch-up-timeout', '60', '--poll-interval', '0.2'];

describe.runIf(canRun)('every state of a roll or repair has a way forward and a way out', () => {
  let cluster: LoopbackCluster;
  /** The next free address of the block for a replacement. */
  let nextIp = 11;

  beforeAll(async () => {
    cluster = await LoopbackCluster.create('ip');
    await cluster.startAll(['etcd1', 'etcd2', 'etcd3']);
  }, 120_000);

  afterAll(async () => {
    await cluster?.cleanup();
  });

  const file = (path: string) => join(cluster.outDir, path);
  const rollState = (): RollState | undefined => (existsSync(file('roll.json')) ? (JSON.parse(readFileSync(file('roll.json'), 'utf8')) as RollState) : undefined);
  const writeRollState = (state: RollState) => {
    const written = rollStateFile(state);
    writeFileSync(file(written.path), written.content);
  };
  const recordMembers = () => (JSON.parse(readFileSync(file('cluster.json'), 'utf8')) as { members: { name: string; ip: string }[] }).members;

  /** The running cluster's members: name, hex ID, learner. */
  const memberList = async () => {
    const list = await cluster.memberList();
    expect(list, 'member list').toBeDefined();
    return list!;
  };
  /**
   * etcdctl member remove, as a person would, again while etcd refuses ("unhealthy cluster": a
   * member became active less than 5 s ago); etcdctl may retry a removal that went through and
   * then say "member not found": the member list decides.
   */
  const removeByHand = async (id: string) => {
    const deadline = Date.now() + 30_000;
    for (;;) {
      const removed = await cluster.etcdctl(['member', 'remove', id]);
      const gone = !(await memberList()).some((member) => member.id === id);
      if (gone) return;
      if (Date.now() > deadline) throw new Error(`member remove ${id}: ${removed.stderr}`);
      await sleep(1000);
    }
  };
  const leader = async () => {
    const status = await cluster.etcdctl(['endpoint', 'status', '-w', 'json']);
    expect(status.code, status.stderr).toBe(0);
    const statuses = JSON.parse(status.stdout) as { Endpoint: string; Status: { header: { member_id: number }; leader: number } }[];
    // IDs are 64-bit: compare the endpoints, which a leader reports as itself.
    const led = statuses.find((entry) => String(entry.Status.header.member_id) === String(entry.Status.leader));
    const member = recordMembers().find((candidate) => led?.Endpoint.includes(`//${candidate.ip}:`));
    return member!.name;
  };

  /** A clean folder and a healthy cluster: no roll in progress, cluster.json = the running voters, files only for members. */
  const expectClean = async () => {
    expect(rollState()?.current).toBeUndefined();
    const running = await memberList();
    expect(running.every((member) => !member.learner && member.name !== '')).toBe(true);
    const names = recordMembers().map((member) => member.name).sort();
    expect(running.map((member) => member.name).sort()).toEqual(names);
    expect(readdirSync(file('user-data')).map((entry) => entry.replace(/\.yaml$/, '')).sort()).toEqual(names);
    const memberCerts = readdirSync(file('pki')).filter((entry) => entry.endsWith('.crt') && entry !== 'ca.crt' && entry !== 'admin.crt');
    expect(memberCerts.map((entry) => entry.replace(/\.crt$/, '')).sort()).toEqual(names);
    const health = await cluster.cli(['health']);
    expect(health.code, health.stdout + health.stderr).toBe(0);
    // The machines of members no longer in the cluster are destroyed.
    for (const name of cluster.runningMembers()) if (!names.includes(name)) await cluster.stop(name);
  };

  /** Starts the CLI and kills it (as Ctrl-C or a crash would) once roll.json records `action` for the step of `old`. */
  const killedAfter = async (args: readonly string[], old: string, action: string) => {
    let child: ChildProcess | undefined;
    const run = cluster.cli(args, {}, (spawned) => (child = spawned), 120_000);
    const deadline = Date.now() + 60_000;
    while (!rollState()?.current?.steps.find((step) => step.old === old)?.done.includes(action as never)) {
      if (Date.now() > deadline) throw new Error(`${action} of ${old} not recorded within 60 s: ${(await run).stderr}`);
      await sleep(50);
    }
    child!.kill('SIGKILL');
    expect((await run).code).not.toBe(0);
    return rollState()!.current!.steps.find((step) => step.old === old)!;
  };

  /**
   * The operator while a command runs: boots a new machine each time the command says to boot a
   * replacement (with the user-data it names), and destroys each old machine once roll.json records
   * it out of the cluster.
   */
  const withOperator = async (args: readonly string[]) => {
    let running = true;
    let stderr = '';
    let booted = 0;
    const errors: string[] = [];
    const loop = (async () => {
      while (running) {
        try {
          const asked = [...stderr.matchAll(/boot the replacement machine \S+ with \S*user-data\/(\S+)\.yaml now/g)].map((match) => match[1]!);
          for (const name of asked.slice(booted)) {
            booted += 1;
            if (cluster.isBooted(name)) await cluster.stop(name);
            await cluster.boot(name);
          }
          for (const step of rollState()?.current?.steps ?? []) {
            if (step.done.includes('remove-old') && cluster.runningMembers().includes(step.old)) await cluster.stop(step.old);
          }
        } catch (error) {
          errors.push((error as Error).message);
        }
        await sleep(100);
      }
    })();
    try {
      return await cluster.cli(args, {}, (child) => child.stderr?.on('data', (chunk: Buffer) => (stderr += chunk.toString())), 120_000);
    } finally {
      running = false;
      await loop;
      expect(errors).toEqual([]);
    }
  };

  const finishes = async (args: readonly string[] = ['roll']) => {
    const rerun = await withOperator([...args, ...WAITS]);
    expect(rerun.code, rerun.stderr).toBe(0);
    await expectClean();
    return rerun;
  };
  const aborts = async (command = 'roll') => {
    const aborted = await cluster.cli([command, '--abort', '--json']);
    expect(aborted.code, aborted.stderr).toBe(0);
    const document = JSON.parse(aborted.stdout) as { aborted: boolean; undone: string[]; left: string[] };
    expect(outputSchemaErrors('roll', document)).toEqual([]);
    expect(document.aborted).toBe(true);
    await expectClean();
    return document;
  };
  const ipArgs = (n = 1) => ['--ips', Array.from({ length: n }, () => cluster.ip(nextIp++)).join(',')];
  /** A member of cluster.json that does not lead (a roll of it moves no leadership). */
  const follower = async () => {
    const led = await leader();
    return recordMembers().find((member) => member.name !== led)!.name;
  };

  it('case 1: add recorded, the learner removed by etcdctl: the re-run adds it anew and finishes', async () => {
    const old = await follower();
    const step = await killedAfter(['roll', '--member', old, ...ipArgs(), ...WAITS], old, 'add');
    await removeByHand(BigInt(step.memberId!).toString(16));
    const rerun = await finishes();
    expect(rerun.stderr).toContain(`replacement ${step.replacement.name} (ID ${BigInt(step.memberId!).toString(16)}) is no longer in the cluster`);
    const members = await memberList();
    expect(members.map((member) => member.name)).toContain(step.replacement.name);
    expect(members.map((member) => member.name)).not.toContain(old);
    // Added anew: another member ID than the one removed.
    expect(members.find((member) => member.name === step.replacement.name)!.id).not.toBe(BigInt(step.memberId!).toString(16));
  });

  it('add recorded, the replacement never started: --abort removes the learner, its files, and clears roll.json', async () => {
    const old = await follower();
    const step = await killedAfter(['roll', '--member', old, ...ipArgs(), ...WAITS], old, 'add');
    expect((await memberList()).find((member) => member.id === BigInt(step.memberId!).toString(16))?.learner).toBe(true);
    const document = await aborts();
    expect(document.undone.join('\n')).toContain(`${step.replacement.name}: removed the learner`);
    expect(existsSync(file(`pki/${step.replacement.name}.key`))).toBe(false);
    expect(recordMembers().map((member) => member.name)).toContain(old);
    // The name was minted: it stays used.
    expect(rollState()!.history).toContainEqual(expect.objectContaining({ replacement: step.replacement.name, aborted: true }));
    // Nothing left to abort: says so, exit 0.
    const again = await cluster.cli(['roll', '--abort']);
    expect(again.code, again.stderr).toBe(0);
    expect(again.stdout).toContain('nothing to abort');
  });

  it('add recorded, the old member removed by hand: the re-run drops it and finishes', async () => {
    const old = await follower();
    const step = await killedAfter(['roll', '--member', old, ...ipArgs(), ...WAITS], old, 'add');
    const oldId = (await memberList()).find((member) => member.name === old)!.id;
    await removeByHand(oldId);
    await cluster.stop(old);
    const rerun = await finishes();
    expect(rerun.stderr).toContain(`${old}: no longer in the cluster (removed by hand?)`);
    expect((await memberList()).map((member) => member.name)).toContain(step.replacement.name);
  });

  it('add recorded, the learner removed and added again by hand at its address: the re-run adopts it and finishes', async () => {
    const old = await follower();
    const step = await killedAfter(['roll', '--member', old, ...ipArgs(), ...WAITS], old, 'add');
    await removeByHand(BigInt(step.memberId!).toString(16));
    // As a person would: again while etcd refuses (its answers under load include "member not found"); the member list decides.
    const peer = `https://${step.replacement.ip}:2380`;
    let byHand: string | undefined;
    for (const deadline = Date.now() + 30_000; byHand === undefined; ) {
      const added = await cluster.etcdctl(['member', 'add', step.replacement.name, '--learner', `--peer-urls=${peer}`]);
      byHand = (await memberList()).find((member) => member.peer === peer)?.id;
      if (byHand === undefined && Date.now() > deadline) throw new Error(`member add ${peer}: ${added.stderr}`);
      if (byHand === undefined) await sleep(1000);
    }
    const rerun = await finishes();
    expect(rerun.stderr).toContain(`found replacement ${step.replacement.name}`);
    expect((await memberList()).find((member) => member.name === step.replacement.name)!.id).toBe(byHand);
  });

  it('nothing recorded yet, the old member removed by hand: the re-run adds its replacement and finishes', async () => {
    const old = await follower();
    const record = JSON.parse(readFileSync(file('cluster.json'), 'utf8')) as { etcdVersion: string; install: never; keyType?: never; keySize: never };
    const ip = cluster.ip(nextIp++);
    const name = `${old.replace(/-\d+$/, '')}-9`;
    // What planRoll writes before the first action: the step, nothing done.
    writeRollState({
      formatVersion: 1,
      current: {
        operation: 'roll',
        startedAt: new Date().toISOString(),
        fromVersion: record.etcdVersion,
        target: { etcdVersion: record.etcdVersion, install: record.install, keyType: record.keyType, keySize: record.keySize },
        steps: [{ old, oldPeerUrl: `https://${recordMembers().find((member) => member.name === old)!.ip}:2380`, replacement: { name, ip }, done: [] }],
      },
      history: rollState()?.history ?? [],
    });
    // While it is pending, gen-userdata --force and restore refuse, before they write or ask anything (case 3).
    const before = readFileSync(file('cluster.json'), 'utf8');
    const forced = await cluster.cli(['gen-userdata', '--force', '--ips', [1, 2, 3].map((n) => cluster.ip(n)).join(',')]);
    expect(forced.code).toBe(1);
    expect(forced.stderr).toMatch(/a roll of cluster etcd is in progress \(started .*\); finish it with 'roll', or undo it with 'roll --abort', then run gen-userdata --force again/);
    const restored = await cluster.cli(['restore', '--ips', [1, 2, 3].map((n) => cluster.ip(n)).join(','), '--backup-url', 's3://bucket/etcd', '--backup-endpoint', 'http://127.0.0.1:9'], { SPACES_ACCESS_KEY_ID: 'k', SPACES_SECRET_ACCESS_KEY: 's' });
    expect(restored.code).toBe(1);
    expect(restored.stderr).toContain("finish it with 'roll', or undo it with 'roll --abort', then run restore again");
    expect(readFileSync(file('cluster.json'), 'utf8')).toBe(before);

    const oldId = (await memberList()).find((member) => member.name === old)!.id;
    await removeByHand(oldId);
    await cluster.stop(old);
    await finishes();
    expect((await memberList()).map((member) => member.name)).toContain(name);
  });

  it('add and promote recorded: --abort keeps the replacement, a voting member, and says so', async () => {
    const old = await follower();
    const step = await killedAfter(['roll', '--member', old, ...ipArgs(), ...WAITS], old, 'add');
    await cluster.boot(step.replacement.name);
    const hex = BigInt(step.memberId!).toString(16);
    const deadline = Date.now() + 60_000;
    for (;;) {
      const promoted = await cluster.etcdctl(['member', 'promote', hex]);
      if (promoted.code === 0) break;
      if (Date.now() > deadline) throw new Error(`promote: ${promoted.stderr}`);
      await sleep(300);
    }
    await cluster.waitHealthy([step.replacement.name]);
    const state = rollState()!;
    writeRollState({ ...state, current: { ...state.current!, steps: state.current!.steps.map((candidate) => ({ ...candidate, done: [...candidate.done, 'promote'] })) } });
    const document = await aborts();
    expect(document.left.join('\n')).toContain(`${step.replacement.name}: a voting member`);
    expect(recordMembers().map((member) => member.name)).toEqual(expect.arrayContaining([old, step.replacement.name]));
    // Back to three members, as the operator would.
    const removed = await cluster.cli(['remove-member', '--member', old, '--yes']);
    expect(removed.code, removed.stderr).toBe(0);
    await expectClean();
  });

  it('cases 4 and 5: --ips pair with --member in the order given; a resume with the same flags is accepted though roll.json put the leader last', async () => {
    const led = await leader();
    const other = recordMembers().find((member) => member.name !== led)!.name;
    const [a, b] = [cluster.ip(nextIp++), cluster.ip(nextIp++)];
    const flags = ['--member', `${led},${other}`, '--ips', `${a},${b}`];
    const plan = await cluster.cli(['roll', ...flags, '--dry-run', '--json']);
    expect(plan.code, plan.stderr).toBe(0);
    const steps = (JSON.parse(plan.stdout) as { steps: { old: string; replacement: { host: string } }[] }).steps;
    expect(steps.map((step) => [step.old, step.replacement.host])).toEqual([
      [other, b],
      [led, a],
    ]);
    await killedAfter(['roll', ...flags, ...WAITS], other, 'add');
    expect(rollState()!.current!.steps.map((step) => step.old)).toEqual([other, led]);
    const resumed = await cluster.cli(['roll', ...flags, '--dry-run']);
    expect(resumed.code, resumed.stderr).toBe(0);
    // The same addresses paired otherwise are another roll.
    const swapped = await cluster.cli(['roll', '--member', `${led},${other}`, '--ips', `${b},${a}`, '--dry-run']);
    expect(swapped.code).toBe(2);
    expect(swapped.stderr).toContain(`ips[0]: "${b}" for ${led} differs from the roll in progress`);
    // The way out from a roll of two, the first replacement an unstarted learner.
    const document = await aborts();
    expect(document.undone).toHaveLength(1);
  });

  it('case 2: a --member roll that changes the release is refused before anything is written', async () => {
    const before = readFileSync(file('cluster.json'), 'utf8');
    const refused = await cluster.cli(['roll', '--member', await follower(), ...ipArgs(), '--etcd-version', 'v3.4.30']);
    expect(refused.code).toBe(2);
    expect(refused.stderr).toMatch(/\[validate\] etcd-version: v3\.4\.30 with --member .*: a roll of some members keeps the cluster's release \(v3\.4\.23\)/);
    expect(rollState()?.current).toBeUndefined();
    expect(readFileSync(file('cluster.json'), 'utf8')).toBe(before);
    const member = await follower();
    const twice = await cluster.cli(['roll', '--member', `${member},${member}`]);
    expect(twice.code).toBe(2);
    expect(twice.stderr).toContain(`[validate] member: "${member}" is given twice`);
  });

  it('case 6: roll --hostnames checks each name as add-member checks --hostname, before it writes roll.json', async () => {
    const made = await cluster.cli(['gen-userdata', '--cluster-name', 'hn', '--hostnames', 'a.loop.test,b.loop.test,c.loop.test', '--key-size', '2048']);
    expect(made.code, made.stderr).toBe(0);
    const folder = join(cluster.workDir, 'out', 'hn');
    for (const [hostnames, message] of [
      ['x.loop.test,bad_name,y.loop.test', 'hostnames[1]: "bad_name"'],
      ['x.loop.test,x.loop.test,y.loop.test', 'hostnames[1]: "x.loop.test" is given twice'],
      ['x.loop.test,a.loop.test,y.loop.test', 'hostnames[1]: "a.loop.test" is already used by member'],
    ] as const) {
      const refused = await cluster.cli(['roll', '--cluster-name', 'hn', '--hostnames', hostnames]);
      expect(refused.code, refused.stderr).toBe(2);
      expect(refused.stderr).toContain(`[validate] ${message}`);
      expect(existsSync(join(folder, 'roll.json'))).toBe(false);
    }
  });

  it('repair: add recorded, the learner removed by etcdctl: the re-run adds it anew and finishes', async () => {
    const dead = await follower();
    await cluster.stop(dead);
    const step = await killedAfter(['repair', '--member', dead, '--ip', cluster.ip(nextIp++), ...WAITS], dead, 'add');
    expect(step.done).toEqual(['remove-old', 'retire-old', 'add']);
    await removeByHand(BigInt(step.memberId!).toString(16));
    const rerun = await finishes(['repair']);
    expect(rerun.stderr).toContain('is no longer in the cluster');
    expect((await memberList()).length).toBe(3);
  });

  it('repair: add recorded, the replacement never started: --abort removes the learner and says the dead member is gone', async () => {
    const dead = await follower();
    await cluster.stop(dead);
    const step = await killedAfter(['repair', '--member', dead, '--ip', cluster.ip(nextIp++), ...WAITS], dead, 'add');
    const wrong = await cluster.cli(['roll', '--abort']);
    expect(wrong.code).toBe(1);
    expect(wrong.stderr).toContain("undo it with 'repair --abort'");
    const document = await aborts('repair');
    expect(document.undone.join('\n')).toContain(`${step.replacement.name}: removed the learner`);
    expect(recordMembers().map((member) => member.name)).not.toContain(dead);
    expect((await memberList()).length).toBe(2);
  });

  it('add recorded, then the whole cluster lost: --abort removes nothing, clears roll.json and says what it kept, so restore can start over', async () => {
    const old = await follower();
    const step = await killedAfter(['roll', '--member', old, ...ipArgs(), ...WAITS], old, 'add');
    for (const name of cluster.runningMembers()) await cluster.stop(name);
    const aborted = await cluster.cli(['roll', '--abort', '--timeout', '1']);
    expect(aborted.code, aborted.stderr).toBe(0);
    expect(aborted.stdout).toContain(`${step.replacement.name}: the cluster did not answer`);
    expect(rollState()!.current).toBeUndefined();
    // It may be a member: it stays in cluster.json, with its files.
    expect(recordMembers().map((member) => member.name)).toContain(step.replacement.name);
    expect(existsSync(file(`pki/${step.replacement.name}.crt`))).toBe(true);
  });
});

// The way out on a cluster create-droplets made: the replacement's droplet and A record go too.
describe.runIf(canRun)('roll --abort on a create-droplets cluster', () => {
  let cluster: LoopbackCluster;

  beforeAll(async () => {
    cluster = await LoopbackCluster.create('do');
    await cluster.startAll(['etcd1', 'etcd2', 'etcd3']);
  }, 120_000);

  afterAll(async () => {
    await cluster?.cleanup();
  });

  it('the replacement\'s droplet exists and never booted: --abort removes the learner, the droplet, its A record and its files', async () => {
    const aRecords = () => (cluster.fake!.domains.get(LOOP_DOMAIN) ?? []).filter((record) => record.type === 'A').map((record) => record.name).sort();
    const recordsBefore = aRecords();
    let child: ChildProcess | undefined;
    const run = cluster.cli(['roll', '--member', 'etcd1', ...WAITS], {}, (spawned) => (child = spawned), 120_000);
    const deadline = Date.now() + 150_000;
    // Killed (as Ctrl-C would) once its droplet exists: the roll then waits for a machine nobody boots.
    while (cluster.droplet('etcd1-2') === undefined || !aRecords().includes('etcd-etcd1-2')) {
      if (Date.now() > deadline) throw new Error(`no droplet etcd-etcd1-2 within 150 s: ${(await run).stderr}`);
      await sleep(50);
    }
    child!.kill('SIGKILL');
    expect((await run).code).not.toBe(0);
    const learners = (await cluster.memberList())!.filter((member) => member.learner);
    expect(learners.map((member) => member.name)).toEqual(['']);

    const aborted = await cluster.cli(['roll', '--abort']);
    expect(aborted.code, aborted.stderr).toBe(0);
    expect(aborted.stdout).toContain('etcd1-2: removed the learner');
    expect(cluster.droplet('etcd1-2')).toBeUndefined();
    expect(aRecords()).toEqual(recordsBefore);
    expect(existsSync(join(cluster.outDir, 'pki', 'etcd1-2.key'))).toBe(false);
    expect(existsSync(join(cluster.outDir, 'roll.json')) ? (JSON.parse(readFileSync(join(cluster.outDir, 'roll.json'), 'utf8')) as RollState).current : undefined).toBeUndefined();
    expect((await cluster.memberList())!.map((member) => member.name).sort()).toEqual(['etcd1', 'etcd2', 'etcd3']);
    const health = await cluster.cli(['health']);
    expect(health.code, health.stdout + health.stderr).toBe(0);
    // Nothing left to abort, and the next roll of etcd1 works from here: its replacement gets a new name.
    const dryRun = await cluster.cli(['roll', '--member', 'etcd1', '--dry-run']);
    expect(dryRun.code, dryRun.stderr).toBe(0);
    expect(dryRun.stdout + dryRun.stderr).not.toMatch(/etcd1 -> etcd1-2\b/);
  }, 300_000);
});
