/**
 * The node's defragmentation timer (issue 24, item 1) on a real 3-member loopback cluster: the
 * script from the user-data, run with its unit's ExecStart, defragments its own member only above
 * the threshold, never two members at once (etcd's lock: the runs' log lines show intervals that do
 * not overlap), and never while a member is down.
 */
import { randomBytes } from 'node:crypto';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { basename, join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parse as parseYaml } from 'yaml';
import { NODE_PATHS } from '../../src/plan.js';
import { rewriteNodePaths, runProcess, writeFilesOf } from '../support/local-cluster.js';
import { LoopbackCluster } from '../support/loopback-cluster.js';

const MEMBERS = ['etcd1', 'etcd2', 'etcd3'];
const THRESHOLD = 30;
const EXEC_START = /^ExecStart=(.+)$/m;

interface Line {
  readonly at: number;
  readonly text: string;
}

describe('the defragmentation timer on a real 3-member cluster', () => {
  let cluster: LoopbackCluster;

  /** Runs etcd-defrag.service's command for the member (node paths under its root), with each stdout line's arrival time. */
  const runTimer = async (name: string): Promise<{ code: number; stderr: string; lines: Line[] }> => {
    const root = cluster.root(name);
    const service = writeFilesOf(cluster.userData(name)).get(NODE_PATHS.defragService)!.content;
    const [program, ...args] = rewriteNodePaths(EXEC_START.exec(service)![1]!, root).split(' ');
    const lines: Line[] = [];
    let pending = '';
    const result = await runProcess(program!, args, 60_000, (child) => {
      child.stdout!.on('data', (chunk: Buffer) => {
        const at = performance.now();
        pending += chunk.toString();
        const complete = pending.split('\n');
        pending = complete.pop()!;
        for (const text of complete) lines.push({ at, text });
      });
    });
    return { code: result.code, stderr: result.stderr, lines };
  };

  const gateway = (path: string, body: unknown) => cluster.gateway(path, body);

  /** Polls `check` every 200 ms until it holds, for at most 15 s. */
  const waitFor = async (check: () => Promise<boolean>): Promise<void> => {
    const deadline = Date.now() + 15_000;
    while (!(await check())) {
      if (Date.now() > deadline) throw new Error('condition not met in 15 s');
      await new Promise((resolve) => setTimeout(resolve, 200));
    }
  };

  /** dbSize and dbSizeInUse of one member, from etcdctl endpoint status. */
  const status = async (name: string): Promise<{ dbSize: number; dbSizeInUse: number }> => {
    const run = await cluster.etcdctl(['endpoint', 'status', '-w', 'json'], [cluster.clientUrl(name)]);
    expect(run.code, run.stderr).toBe(0);
    const [entry] = JSON.parse(run.stdout) as { Status: { dbSize: number; dbSizeInUse: number } }[];
    return entry!.Status;
  };

  beforeAll(async () => {
    cluster = await LoopbackCluster.create('ip', ['--defrag-threshold', String(THRESHOLD), '--defrag-schedule', 'Sun 03:00']);
    await cluster.startAll(MEMBERS);
  }, 120_000);

  afterAll(async () => {
    await cluster?.cleanup();
  });

  it('writes the script, service and timer, enables the timer, and records the setting in cluster.json', async () => {
    const userData = cluster.userData('etcd1');
    const files = writeFilesOf(userData);
    expect(files.get(NODE_PATHS.defragScript)?.permissions).toBe('0755');
    expect(files.get(NODE_PATHS.defragScript)?.content).toBe(readFileSync('cloud-init/etcd-defrag.sh', 'utf8'));
    expect(files.get(NODE_PATHS.defragTimer)?.content).toContain('OnCalendar=Sun 03:00\n');
    expect(files.get(NODE_PATHS.defragService)?.content).toContain(
      `ExecStart=/usr/local/lib/etcd-cloudinit/etcd-defrag.sh --etcdctl /usr/local/bin/etcdctl --endpoint ${cluster.endpoint(1)} --cacert /etc/etcd/pki/ca.crt --cert /etc/etcd/pki/member.crt --key /etc/etcd/pki/member.key --member etcd1 --threshold ${THRESHOLD} --lock-wait 3600\n`,
    );
    const runcmd = (parseYaml(userData) as { runcmd: string[][] }).runcmd[0]!.at(-1)!;
    expect(runcmd.split('\n')).toContain('systemctl enable --no-reload --now etcd-defrag.timer');
    const record = JSON.parse(readFileSync(join(cluster.outDir, 'cluster.json'), 'utf8')) as { defrag?: unknown };
    expect(record.defrag).toEqual({ schedule: 'Sun 03:00', thresholdPercent: THRESHOLD });

    // systemd accepts the units as written (node paths moved under the member's root).
    const root = cluster.root('etcd1');
    const unitDir = join(root, 'verify-defrag');
    mkdirSync(unitDir, { recursive: true });
    const units = [NODE_PATHS.defragService, NODE_PATHS.defragTimer, NODE_PATHS.unitFile].map((path) => {
      const target = join(unitDir, basename(path));
      writeFileSync(target, rewriteNodePaths(files.get(path)!.content, root));
      return target;
    });
    const verified = await runProcess('systemd-analyze', ['verify', ...units]);
    expect(verified.stderr).toBe('');
    expect(verified.code).toBe(0);
  });

  it('defragments the members above the threshold one at a time under the lock, and leaves a member below it alone', async () => {
    // 16 MiB of values, 10 MiB of them deleted and compacted away: the files keep their size, mostly free.
    for (let index = 0; index < 32; index++) {
      const key = index < 20 ? `/defrag/${index}` : `/keep/${index}`;
      const put = await gateway('/v3/kv/put', { key: Buffer.from(key).toString('base64'), value: randomBytes(512 * 1024).toString('base64') });
      expect(put.status, put.text).toBe(200);
    }
    const deleted = await cluster.etcdctl(['del', '--prefix', '/defrag/', '-w', 'json'], [cluster.clientUrl('etcd1')]);
    expect(deleted.code, deleted.stderr).toBe(0);
    const revision = (JSON.parse(deleted.stdout) as { header: { revision: number } }).header.revision;
    const compacted = await cluster.etcdctl(['compact', String(revision), '--physical'], [cluster.clientUrl('etcd1')]);
    expect(compacted.code, compacted.stderr).toBe(0);
    // bbolt frees the pages at a later write's commit, once no older read is open: a few small writes, then the share is in the status.
    await waitFor(async () => {
      await cluster.etcdctl(['put', '/defrag-tick', String(Date.now())], [cluster.clientUrl('etcd1')]);
      const states = await Promise.all(MEMBERS.map((name) => status(name)));
      return states.every((state) => (state.dbSize - state.dbSizeInUse) / state.dbSize > 0.45);
    });

    // etcd3 is defragmented by hand first: below the threshold when its timer runs.
    const manual = await cluster.etcdctl(['defrag'], [cluster.clientUrl('etcd3')]);
    expect(manual.code, manual.stderr).toBe(0);
    const before = Object.fromEntries(await Promise.all(MEMBERS.map(async (name) => [name, await status(name)] as const)));
    for (const name of ['etcd1', 'etcd2']) {
      expect(before[name]!.dbSize).toBeGreaterThan(8 * 1024 * 1024);
      expect((before[name]!.dbSize - before[name]!.dbSizeInUse) / before[name]!.dbSize).toBeGreaterThan(THRESHOLD / 100);
    }
    expect((before.etcd3!.dbSize - before.etcd3!.dbSizeInUse) / before.etcd3!.dbSize).toBeLessThan(THRESHOLD / 100);

    // The timers of etcd1 and etcd2 fire at the same moment; etcd3's too.
    const [one, two, three] = await Promise.all(['etcd1', 'etcd2', 'etcd3'].map((name) => runTimer(name)));
    for (const run of [one!, two!, three!]) expect(run.code, run.stderr).toBe(0);

    const after = Object.fromEntries(await Promise.all(MEMBERS.map(async (name) => [name, await status(name)] as const)));
    const interval = (name: string, lines: readonly Line[]) => {
      const start = lines.find((line) => line.text.startsWith(`etcd-cloudinit: etcd-defrag: ${name}: defragmenting: `));
      const end = lines.find((line) => /^etcd-cloudinit: etcd-defrag: \S+: \d+\.\d MiB -> \d+\.\d MiB \(\d+% reclaimable >= 30%\)$/.test(line.text));
      expect(start, lines.map((line) => line.text).join('\n')).toBeDefined();
      expect(end, lines.map((line) => line.text).join('\n')).toBeDefined();
      return [start!.at, end!.at] as const;
    };
    for (const [name, run] of [['etcd1', one!], ['etcd2', two!]] as const) {
      expect(run.lines.map((line) => line.text)).toEqual([
        expect.stringMatching(new RegExp(`^etcd-cloudinit: etcd-defrag: ${name}: defragmenting: \\d+% reclaimable >= 30% \\(holding lock etcd-cloudinit-defrag\\)$`)),
        expect.stringMatching(new RegExp(`^etcd-cloudinit: etcd-defrag: ${name}: \\d+\\.\\d MiB -> \\d+\\.\\d MiB \\(\\d+% reclaimable >= 30%\\)$`)),
      ]);
      // Its own file shrank; the one it says.
      expect(after[name]!.dbSize).toBeLessThan(before[name]!.dbSize / 2);
    }
    // One at a time: one run's interval ends before the other's begins.
    const [start1, end1] = interval('etcd1', one!.lines);
    const [start2, end2] = interval('etcd2', two!.lines);
    expect(end1 < start2 || end2 < start1, `etcd1 ${start1}..${end1}, etcd2 ${start2}..${end2}`).toBe(true);

    // etcd3 was below the threshold: one line, and its file did not shrink (the lock's own writes may grow it a page run).
    expect(three!.lines.map((line) => line.text)).toEqual([expect.stringMatching(/^etcd-cloudinit: etcd-defrag: etcd3: skipped: \d+% reclaimable < 30%$/)]);
    expect(after.etcd3!.dbSize).toBeGreaterThanOrEqual(before.etcd3!.dbSize);
  }, 90_000);

  it('with a member down, the timer skips: cluster unhealthy', async () => {
    await cluster.stop('etcd3');
    const run = await runTimer('etcd1');
    expect(run.code, run.stderr).toBe(0);
    expect(run.lines.map((line) => line.text)).toEqual(['etcd-cloudinit: etcd-defrag: etcd1: skipped: cluster unhealthy']);
  }, 60_000);
});
