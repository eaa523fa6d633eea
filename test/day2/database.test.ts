/**
 * The database on real etcd (issue 27, items 2 and 3): a cluster made with a small
 * --quota-backend-bytes is filled until etcd refuses writes with NOSPACE; health names the alarm
 * and exits 1; defrag (compact, defragment each member in turn, disarm) brings writes back, and
 * every member's file is smaller after it, as health --json reads before and after.
 */
import { randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { outputSchemaErrors } from '../support/output-schemas.js';
import { LoopbackCluster } from '../support/loopback-cluster.js';

const MEMBERS = ['etcd1', 'etcd2', 'etcd3'];
/** 16 MiB: the least the flag takes, filled by a few dozen half-MiB values. */
const QUOTA = 16 * 1024 * 1024;
const VALUE_BYTES = 512 * 1024;

interface MemberReport {
  name: string;
  healthy: boolean;
  dbSizeBytes: number;
  dbSizeInUseBytes: number;
  quotaPercent: number;
  alarms: string[];
}
interface HealthReport {
  healthy: boolean;
  quotaBackendBytes: number;
  alarms: { alarm: string; memberId: string; member?: string }[];
  members: MemberReport[];
  problems: string[];
}
interface DefragReport {
  dryRun: boolean;
  compactedTo: string;
  members: { name: string; dbSizeBefore: number; dbSizeAfter: number; startedAt: string; finishedAt: string }[];
  disarmed: { alarm: string }[];
  leftArmed: unknown[];
}

describe('the database: quota, NOSPACE in health, and defrag on a real 3-member cluster', () => {
  let cluster: LoopbackCluster;

  const gateway = (path: string, body: unknown) => cluster.gateway(path, body);
  const put = (key: string, bytes: number) => gateway('/v3/kv/put', { key: Buffer.from(key).toString('base64'), value: randomBytes(bytes).toString('base64') });
  const health = async (): Promise<{ code: number; report: HealthReport; stdout: string }> => {
    const run = await cluster.cli(['health', '--json']);
    const report = JSON.parse(run.stdout) as HealthReport;
    expect(outputSchemaErrors('health', report)).toEqual([]);
    return { code: run.code, report, stdout: run.stdout };
  };

  beforeAll(async () => {
    cluster = await LoopbackCluster.create('ip', ['--quota-backend-bytes', String(QUOTA)]);
    await cluster.startAll(MEMBERS);
  }, 120_000);

  afterAll(async () => {
    await cluster?.cleanup();
  });

  it('writes the quota to every member and records it in cluster.json', () => {
    for (const name of MEMBERS) expect(cluster.userData(name)).toContain(`quota-backend-bytes: ${QUOTA}`);
    const record = JSON.parse(readFileSync(join(cluster.outDir, 'cluster.json'), 'utf8')) as { quotaBackendBytes?: number };
    expect(record.quotaBackendBytes).toBe(QUOTA);
    // etcd itself runs with it (3.4 logs its settings at start).
    expect(readFileSync(join(cluster.root('etcd1'), 'etcd.log'), 'utf8')).toMatch(/quota-size-bytes":16777216|quota-backend-bytes":16777216|16 MB/);
  });

  it('fills to NOSPACE: health names the alarm, exits 1 and says what to do; defrag brings writes back and shrinks every file', async () => {
    const before = await health();
    expect(before.code).toBe(0);
    expect(before.report.quotaBackendBytes).toBe(QUOTA);
    expect(before.report.alarms).toEqual([]);
    for (const member of before.report.members) {
      expect(member.dbSizeInUseBytes).toBeGreaterThan(0);
      expect(member.quotaPercent).toBeCloseTo((member.dbSizeBytes / QUOTA) * 100, 0);
      expect(member.alarms).toEqual([]);
    }

    // Fill: distinct keys of incompressible values, until etcd refuses (bounded: the quota takes about 32).
    let refused = '';
    for (let index = 0; index < 80 && refused === ''; index++) {
      const answer = await put(`fill/${index}`, VALUE_BYTES);
      if (answer.status !== 200) refused = answer.text;
    }
    expect(refused).toContain('database space exceeded');

    const full = await health();
    expect(full.code).toBe(1);
    expect(full.report.healthy).toBe(false);
    expect(full.report.alarms.map((alarm) => alarm.alarm)).toContain('NOSPACE');
    expect(full.report.alarms.every((alarm) => MEMBERS.includes(alarm.member!))).toBe(true);
    expect(full.report.members.some((member) => member.alarms.includes('NOSPACE'))).toBe(true);
    expect(full.report.problems.join('\n')).toMatch(/alarm NOSPACE \(raised by etcd\d\): the database reached its quota and the cluster refuses every write; delete keys you no longer need, then run 'etcd-cloudinit defrag'/);
    const table = await cluster.cli(['health']);
    expect(table.code).toBe(1);
    expect(table.stdout).toMatch(/^MEMBER\s+ENDPOINT\s+HEALTHY\s+LEADER\s+VERSION\s+DB SIZE\s+IN USE\s+QUOTA\s+RAFT INDEX\s+CERT EXPIRES\s+CERT SERIAL\s+ALARMS$/m);
    expect(table.stdout).toMatch(/\s\d+(\.\d)?%\s.*NOSPACE$/m);

    // A dry run prints each step in order and changes nothing: the alarm stays, writes stay refused.
    const dry = await cluster.cli(['defrag', '--dry-run']);
    expect(dry.code, dry.stderr).toBe(0);
    const steps = dry.stderr.split('\n').filter((line) => line.startsWith('[dry-run]'));
    expect(steps[0]).toMatch(/^\[dry-run\] etcd https:\/\/\S+: compact the history up to revision \d+ \(physical\)$/);
    expect(steps.slice(1, 4)).toEqual(expect.arrayContaining(MEMBERS.map((name) => `[dry-run] etcd ${cluster.clientUrl(name)}: defragment`)));
    expect(steps.slice(4).length).toBeGreaterThan(0);
    for (const step of steps.slice(4)) expect(step).toMatch(/: alarm disarm NOSPACE of member [0-9a-f]+$/);
    expect((await put('still/refused', 10)).text).toContain('database space exceeded');
    expect((await health()).report.alarms.map((alarm) => alarm.alarm)).toContain('NOSPACE');

    // As a user would: delete what is not needed (etcd allows deletes under NOSPACE), then defrag.
    const deleted = await gateway('/v3/kv/deleterange', { key: Buffer.from('fill/').toString('base64'), range_end: Buffer.from('fill0').toString('base64') });
    expect(deleted.status, deleted.text).toBe(200);
    const run = await cluster.cli(['defrag', '--json']);
    expect(run.code, run.stderr).toBe(0);
    const result = JSON.parse(run.stdout) as DefragReport;
    expect(outputSchemaErrors('defrag', result)).toEqual([]);
    expect(result.dryRun).toBe(false);
    expect(Number(result.compactedTo)).toBeGreaterThan(0);
    expect(result.disarmed.map((alarm) => alarm.alarm)).toContain('NOSPACE');
    expect(result.leftArmed).toEqual([]);
    expect(result.members.map((member) => member.name).sort()).toEqual(MEMBERS);
    // One member at a time: each starts after the one before it finished.
    for (let index = 1; index < result.members.length; index++) {
      expect(Date.parse(result.members[index]!.startedAt)).toBeGreaterThanOrEqual(Date.parse(result.members[index - 1]!.finishedAt));
    }

    // Writes are accepted again, health is clean, and every member's file shrank.
    const write = await put('after/defrag', 10);
    expect(write.status, write.text).toBe(200);
    const after = await health();
    expect(after.code, after.stdout).toBe(0);
    expect(after.report.alarms).toEqual([]);
    for (const member of after.report.members) {
      const was = full.report.members.find((candidate) => candidate.name === member.name)!;
      expect(member.dbSizeBytes, member.name).toBeLessThan(was.dbSizeBytes / 2);
      expect(member.quotaPercent).toBeLessThan(50);
    }
  }, 180_000);

  it('a member added later gets the same quota in its user-data', async () => {
    const added = await cluster.cli(['add-member', '--ip', cluster.ip(4)]);
    expect(added.code, added.stderr).toBe(0);
    expect(cluster.userData('etcd4')).toContain(`quota-backend-bytes: ${QUOTA}`);
    const record = JSON.parse(readFileSync(join(cluster.outDir, 'cluster.json'), 'utf8')) as { quotaBackendBytes?: number };
    expect(record.quotaBackendBytes).toBe(QUOTA);
  });

  it('defrag refuses while a member does not answer (etcd4, added but never booted), naming it; nothing is compacted', async () => {
    // Two revisions of one key: the older stays readable unless the history is compacted.
    const key = Buffer.from('history/x').toString('base64');
    const first = JSON.parse((await put('history/x', 10)).text) as { header: { revision: string } };
    expect((await put('history/x', 10)).status).toBe(200);
    const readOld = () => gateway('/v3/kv/range', { key, revision: first.header.revision });
    expect((await readOld()).status).toBe(200);
    const refused = await cluster.cli(['defrag', '--timeout', '2']);
    expect(refused.code).toBe(1);
    expect(refused.stderr).toMatch(/\[preflight\] every member must answer to be defragmented, and etcd4 \(https:\/\/[\d.]+:2379: ECONNREFUSED[^)]*\) did not; run health, bring it back \(or repair it\), then defrag again/);
    expect(refused.stdout).toBe('');
    const old = await readOld();
    expect(old.status, old.text).toBe(200);
    expect(old.text).toContain('"kvs"');
  });
});
