/**
 * Dry runs and preflights in the real world: a dry run on a folder whose cluster cannot be reached
 * (127.0.99.x, where nothing listens: loopback, refused at once) prints the plan, says what it could
 * not check, and exits 0; a preflight waits out a transient unhealthy answer before it refuses.
 */
import { join } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { settledHealth, type MemberHealth } from '../../src/day2/health.js';
import { folderSnapshot, runCli, tempDirsRemovedAfterAll } from '../support/cli.js';

const newDir = tempDirsRemovedAfterAll('dryoffline');

describe('every day-2 --dry-run on a cluster that cannot be reached', () => {
  let dir: string;
  beforeAll(async () => {
    dir = newDir();
    const generated = await runCli(['gen-userdata', '--ips', '127.0.99.1,127.0.99.2,127.0.99.3', '--key-type', 'ecdsa-p256', '--client', 'app'], dir);
    expect(generated.code, generated.stderr).toBe(0);
  });

  it.each([
    [
      ['roll', '--ips', '127.0.99.11,127.0.99.12,127.0.99.13'],
      'Dry run: roll of cluster etcd from v3.6.16 to v3.6.16, keys ECDSA P-256; nothing was changed or written.',
      "dry run: could not check the members' health, that none is a learner, or which one leads (it is replaced last): no member answered",
    ],
    [
      ['roll', '--member', 'etcd2', '--ips', '127.0.99.12', '--key-type', 'rsa'],
      '  etcd2 -> etcd2-2 (127.0.99.12): add -> promote -> remove-old -> retire-old',
      "dry run: could not check the members' health",
    ],
    [['repair', '--member', 'etcd2', '--ip', '127.0.99.12'], '  etcd2 -> etcd2-2 (127.0.99.12): remove-old -> retire-old -> add -> promote', 'dry run: could not check that etcd2 is dead or that the others keep quorum without it'],
    [
      ['add-member', '--ip', '127.0.99.4'],
      'Dry run: would add member etcd4 (127.0.99.4) as a learner to cluster etcd; nothing was changed or written.',
      "dry run: could not check the members' health, the running member list against cluster.json, or that no learner is still catching up",
    ],
    [
      ['remove-member', '--member', 'etcd3'],
      'Dry run: would remove member etcd3 from cluster etcd; nothing was changed or written.',
      'dry run: could not check whether etcd3 is still in the running cluster, or its member ID: no remaining member answered member list',
    ],
    [
      ['defrag'],
      'Dry run: would defragment cluster etcd:',
      "dry run: could not check the members' status, the revision and the alarms: no member answered",
    ],
    [['defrag'], '  etcd2   size not read (quota 2.0 GiB)', '[dry-run] etcd https://127.0.99.3:2379: defragment'],
    // renew-certs' dry run never asks the cluster: it has nothing it could not check.
    [['renew-certs'], 'Dry run: would renew 3 member certificate(s) in place, the admin certificate and 1 client certificate(s) of cluster etcd (members: a new key each, made on the member; admin and clients: keys kept; 825 days); nothing was written.', undefined],
    [['renew-certs', '--via-ssh-script'], 'Dry run: would renew 3 member certificate(s), the admin certificate and 1 client certificate(s) of cluster etcd (keys kept, 825 days); nothing was written.', undefined],
  ])('%j: the plan, what it could not check, exit 0, nothing written', async (args, planLine, unchecked) => {
    const before = folderSnapshot(join(dir, 'out'));
    const run = await runCli([...args, '--dry-run', ...(args[0] === 'renew-certs' ? [] : ['--timeout', '2'])], dir);
    expect(run.code, run.stderr).toBe(0);
    expect(run.stdout.split('\n')).toContain(planLine);
    if (unchecked === undefined) expect(run.stderr).not.toContain('could not check');
    else {
      expect(run.stderr).toContain(unchecked);
      expect(run.stderr).toContain('127.0.99.1:2379');
      expect(run.stderr).toContain('the plan assumes');
    }
    expect(folderSnapshot(join(dir, 'out'))).toEqual(before);
  });

  it('without --dry-run the same preflight still refuses (exit 1), and writes nothing', async () => {
    const before = folderSnapshot(join(dir, 'out'));
    const run = await runCli(['roll', '--ips', '127.0.99.11,127.0.99.12,127.0.99.13', '--timeout', '2'], dir);
    expect(run.code).toBe(1);
    expect(run.stderr).toContain('[preflight] refusing to roll an unhealthy cluster: etcd1 (');
    expect(folderSnapshot(join(dir, 'out'))).toEqual(before);
  });
});

describe('a preflight waits out a transient unhealthy answer', () => {
  const member = (name: string, state: 'healthy' | 'busy' | 'silent'): MemberHealth => ({
    name,
    endpoint: `https://127.0.99.${name.slice(-1)}:2379`,
    healthy: state === 'healthy',
    leader: name === 'etcd1' && state === 'healthy',
    learner: false,
    version: state === 'silent' ? undefined : '3.6.16',
    dbSizeBytes: undefined,
    raftIndex: undefined,
    memberId: undefined,
    certExpiresInDays: undefined,
    certNotAfter: undefined,
    error: state === 'healthy' ? undefined : state === 'busy' ? 'unhealthy: QGET ... request timed out' : 'ECONNREFUSED',
  });
  type State = Parameters<typeof member>[1];

  it.each<[string, State[][], number, boolean, string | undefined]>([
    ['healthy at once: no wait', [['healthy', 'healthy', 'healthy']], 1, true, undefined],
    ['one {"health":"false"}, then healthy: ridden out', [['healthy', 'busy', 'healthy'], ['healthy', 'healthy', 'healthy']], 2, true, undefined],
    ['busy for three polls, then healthy', [['busy', 'healthy', 'healthy'], ['busy', 'healthy', 'healthy'], ['healthy', 'busy', 'healthy'], ['healthy', 'healthy', 'healthy']], 4, true, undefined],
    ['a member that does not answer: no wait, the caller refuses at once', [['healthy', 'silent', 'healthy']], 1, false, undefined],
    ['one busy, one that does not answer: no wait (waiting cannot make the dead one healthy)', [['busy', 'silent', 'healthy'], ['healthy', 'silent', 'healthy']], 1, false, undefined],
    ['every member answering unhealthy (an election): waited for', [['busy', 'busy', 'busy'], ['healthy', 'healthy', 'healthy']], 2, true, undefined],
    ['busy past the bound: the last answer, for the caller to refuse', Array.from({ length: 50 }, () => ['healthy', 'busy', 'healthy'] as State[]), 11, false, undefined],
    ["repair's dead member answering unhealthy is not waited for", [['healthy', 'busy', 'healthy']], 1, false, 'etcd2'],
    ["repair's dead member silent, another busy: waited for", [['busy', 'silent', 'healthy'], ['healthy', 'silent', 'healthy']], 2, false, 'etcd2'],
  ])('%s', async (_case, answers, checks, healthy, ignore) => {
    let now = 0;
    let asked = 0;
    const lines: string[] = [];
    const realNow = Date.now;
    // The bound is wall-clock (as the steps'): the sleeps advance a fake clock instead.
    Date.now = () => now;
    try {
      const health = await settledHealth(
        async () => answers[Math.min(asked++, answers.length - 1)]!.map((state, index) => member(`etcd${index + 1}`, state)),
        'the roll',
        { settleMs: 50_000, pollMs: 5_000, sleep: async (ms) => void (now += ms), progress: (line) => void lines.push(line), ignore },
      );
      expect(asked).toBe(checks);
      expect(health.every((entry) => entry.healthy)).toBe(healthy);
      expect(lines).toEqual(checks > 1 ? [expect.stringMatching(/^waiting up to 50 s for the cluster to settle before the roll: etcd\d \(unhealthy: QGET/)] : []);
    } finally {
      Date.now = realNow;
    }
  });
});
