/**
 * --etcd-option (issue 24, item 2): the allowlist per etcd minor, as etcd's own config struct has it
 * (embed.Config's json tags: embed/config.go at v3.4.0 and v3.4.45, server/embed/config.go at
 * v3.5.0, v3.5.33, v3.6.0, v3.6.14 and main for 3.7; src/etcd-options.ts cites each row group),
 * the CLI's refusals (flag, value, version; exit 2; nothing written), the record and its carry-over,
 * roll's re-check for the target version, and a real etcd 3.4 that starts from the rendered config
 * and applies an option.
 */
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { checkEtcdOptions, etcdConfigEntries, ETCD_MINORS, type EtcdMinor } from '../src/etcd-options.js';
import { resolveClusterInput, withSettingChanges } from '../src/input.js';
import { inputFromRecord } from '../src/record-codec.js';
import type { ClusterRecord } from '../src/cluster-folder.js';
import { folderSnapshot, runCli } from './support/cli.js';
import { LoopbackCluster } from './support/loopback-cluster.js';

const VERSION: Record<EtcdMinor, string> = { '3.4': 'v3.4.23', '3.5': 'v3.5.21', '3.6': 'v3.6.16', '3.7': 'v3.7.0' };

/** Per minor: settings etcd accepts (and we allow), and settings refused with the words the refusal must carry. */
const TABLE: Record<EtcdMinor, { accepted: Record<string, string>; refused: [string, string, RegExp][] }> = {
  '3.4': {
    accepted: {
      'snapshot-count': '50000',
      'max-txn-ops': '256',
      'max-request-bytes': '2097152',
      'max-snapshots': '5',
      'auto-compaction-retention': '30m',
      'grpc-keepalive-interval': '2h',
      'experimental-compaction-batch-limit': '500',
      'experimental-corrupt-check-time': '1h',
      'experimental-initial-corrupt-check': 'true',
      'experimental-backend-bbolt-freelist-type': 'map',
      'log-level': 'warn',
    },
    refused: [
      ['compaction-batch-limit', '500', /etcd 3\.4 does not accept compaction-batch-limit \(it is there from etcd 3\.6\)/],
      ['backend-bbolt-freelist-type', 'map', /etcd 3\.4 does not accept backend-bbolt-freelist-type \(it is there from etcd 3\.5\)/],
      ['experimental-watch-progress-notify-interval', '10m', /etcd 3\.4 does not accept/],
      ['max-learners', '2', /etcd 3\.4 does not accept max-learners/],
    ],
  },
  '3.5': {
    accepted: {
      'backend-bbolt-freelist-type': 'array',
      'experimental-compaction-batch-limit': '1000',
      'experimental-watch-progress-notify-interval': '10m',
      'experimental-warning-apply-duration': '200ms',
      'experimental-bootstrap-defrag-threshold-megabytes': '100',
      'auto-compaction-mode': 'revision',
      'auto-compaction-retention': '1000',
    },
    refused: [
      ['experimental-backend-bbolt-freelist-type', 'map', /etcd 3\.5 no longer accepts experimental-backend-bbolt-freelist-type: renamed backend-bbolt-freelist-type in etcd 3\.5/],
      ['watch-progress-notify-interval', '10m', /etcd 3\.5 does not accept watch-progress-notify-interval \(it is there from etcd 3\.6\)/],
    ],
  },
  '3.6': {
    accepted: {
      'compaction-batch-limit': '1000',
      'watch-progress-notify-interval': '10m',
      'warning-apply-duration': '200ms',
      'corrupt-check-time': '2h',
      'compaction-sleep-interval': '10ms',
      'bootstrap-defrag-threshold-megabytes': '100',
      'max-learners': '2',
      'max-snapshots': '5',
    },
    refused: [
      ['experimental-compaction-batch-limit', '1000', /etcd 3\.6 no longer accepts experimental-compaction-batch-limit: renamed compaction-batch-limit in etcd 3\.6/],
      ['experimental-watch-progress-notify-interval', '10m', /etcd 3\.6 no longer accepts .*renamed watch-progress-notify-interval/],
      ['experimental-initial-corrupt-check', 'true', /etcd 3\.6 no longer accepts experimental-initial-corrupt-check: replaced by the InitialCorruptCheck feature gate/],
      ['enable-v2', 'true', /enable-v2 is set by etcd-cloudinit .*etcd 3\.6 removed it/],
    ],
  },
  '3.7': {
    accepted: { 'compaction-batch-limit': '1000', 'max-learners': '3', 'snapshot-count': '10000' },
    refused: [
      ['max-snapshots', '5', /etcd 3\.7 no longer accepts max-snapshots: removed in etcd 3\.7/],
      ['experimental-corrupt-check-time', '1h', /etcd 3\.7 no longer accepts experimental-corrupt-check-time: renamed corrupt-check-time in etcd 3\.6/],
      ['experimental-bootstrap-defrag-threshold-megabytes', '100', /etcd 3\.7 no longer accepts .*renamed bootstrap-defrag-threshold-megabytes in etcd 3\.6/],
    ],
  },
};

describe('the etcd options table, per etcd minor', () => {
  it('covers 3.4, 3.5, 3.6 and 3.7', () => {
    expect([...ETCD_MINORS]).toEqual(Object.keys(TABLE));
  });

  for (const minor of ETCD_MINORS) {
    it(`etcd ${minor}: accepts its settings and refuses the others, naming the version`, () => {
      const { accepted, refused } = TABLE[minor];
      expect(checkEtcdOptions(accepted, VERSION[minor])).toEqual(accepted);
      for (const [name, value, message] of refused) {
        expect(() => checkEtcdOptions({ [name]: value }, VERSION[minor]), name).toThrow(message);
      }
    });
  }

  it('refuses what etcd-cloudinit sets itself, unknown names, and values out of type or range', () => {
    expect(() => checkEtcdOptions({ 'quota-backend-bytes': '1' }, 'v3.5.21')).toThrow(/quota-backend-bytes is set by --quota-backend-bytes/);
    expect(() => checkEtcdOptions({ 'heartbeat-interval': '200' }, 'v3.5.21')).toThrow(/set by --heartbeat-interval/);
    expect(() => checkEtcdOptions({ 'data-dir': '/tmp' }, 'v3.5.21')).toThrow(/set by the node layout/);
    expect(() => checkEtcdOptions({ 'initial-cluster': 'a=b' }, 'v3.5.21')).toThrow(/set by the member list/);
    expect(() => checkEtcdOptions({ 'snapshot-cont': '1' }, 'v3.5.21')).toThrow(/"snapshot-cont" is not an etcd setting etcd-cloudinit allows; allowed: snapshot-count, /);
    expect(() => checkEtcdOptions({ 'snapshot-count': '12' }, 'v3.5.21')).toThrow(/"snapshot-count=12": the value is not a whole number from 1000 to 10000000/);
    expect(() => checkEtcdOptions({ 'max-txn-ops': '-1' }, 'v3.5.21')).toThrow(/whole number/);
    expect(() => checkEtcdOptions({ 'grpc-keepalive-timeout': '5' }, 'v3.5.21')).toThrow(/is not a duration from 1s to 1h/);
    expect(() => checkEtcdOptions({ 'experimental-initial-corrupt-check': 'yes' }, 'v3.5.21')).toThrow(/is not true or false/);
    expect(() => checkEtcdOptions({ 'log-level': 'loud' }, 'v3.5.21')).toThrow(/is not one of debug, info, warn, error/);
    expect(() => checkEtcdOptions({ 'auto-compaction-mode': 'revision' }, 'v3.5.21')).toThrow(/needs auto-compaction-retention=<revisions>/);
    expect(() => checkEtcdOptions({ 'auto-compaction-mode': 'revision', 'auto-compaction-retention': '1h' }, 'v3.5.21')).toThrow(/not "1h"/);
  });

  it('writes durations as nanoseconds (etcd reads its YAML config through JSON into time.Duration), numbers and booleans as such', () => {
    expect(etcdConfigEntries({ 'grpc-keepalive-interval': '2h', 'snapshot-count': '50000', 'experimental-initial-corrupt-check': 'true', 'auto-compaction-retention': '30m' })).toEqual({
      'grpc-keepalive-interval': 7_200_000_000_000,
      'snapshot-count': 50000,
      'experimental-initial-corrupt-check': true,
      'auto-compaction-retention': '30m',
    });
  });
});

describe('etcd options through the input, the record and a roll', () => {
  const base = () =>
    resolveClusterInput({ ips: ['127.0.0.11'], 'etcd-version': 'v3.5.21', 'etcd-options': { 'experimental-compaction-batch-limit': 500 } }, { 'etcd-options': { 'snapshot-count': '20000' } }).input;

  it("--config's etcd-options and --etcd-option merge, flags winning per key", () => {
    const input = resolveClusterInput({ ips: ['127.0.0.11'], 'etcd-version': 'v3.5.21', 'etcd-options': { 'snapshot-count': 30000, 'max-txn-ops': 64 } }, { 'etcd-options': { 'snapshot-count': '20000' } }).input;
    expect(input.etcdOptions).toEqual({ 'snapshot-count': '20000', 'max-txn-ops': '64' });
  });

  it('a member planned from cluster.json (add-member, roll, repair) gets the recorded options and timer; an older record has no timer', () => {
    const record = {
      formatVersion: 1,
      clusterName: 'etcd',
      etcdVersion: 'v3.5.21',
      install: { mode: 'download', releaseUrl: 'https://example.test/etcd' },
      initialClusterToken: 't',
      keySize: 2048,
      certDays: 30,
      members: [{ name: 'etcd1', ip: '127.0.0.11' }],
      etcdOptions: { 'snapshot-count': '20000' },
      defrag: { schedule: 'Sun 03:00', thresholdPercent: 40 },
    } as unknown as ClusterRecord;
    const input = inputFromRecord(record, 'out');
    expect([input.etcdOptions, input.defrag, input.defragSchedule, input.defragThreshold]).toEqual([{ 'snapshot-count': '20000' }, true, 'Sun 03:00', 40]);
    const older = inputFromRecord({ ...record, etcdOptions: undefined, defrag: undefined } as unknown as ClusterRecord, 'out');
    expect([older.etcdOptions, older.defrag]).toEqual([{}, false]);
  });

  it("a roll to another minor re-checks the recorded options for the target and refuses, naming the option and version", () => {
    const input = base();
    expect(withSettingChanges(input, { 'etcd-version': 'v3.5.22' }).etcdVersion).toBe('v3.5.22');
    expect(() => withSettingChanges(input, { 'etcd-version': 'v3.6.16' })).toThrow(
      /etcd-version: "v3\.6\.16" refuses an etcd option cluster\.json records \(etcdOptions\): "experimental-compaction-batch-limit=500": etcd 3\.6 no longer accepts experimental-compaction-batch-limit: renamed compaction-batch-limit in etcd 3\.6/,
    );
  });
});

describe('--etcd-option and the defrag flags on the command line', () => {
  let work: string;
  beforeAll(() => {
    work = mkdtempSync(join(tmpdir(), 'etcd-options-'));
  });
  afterAll(() => rmSync(work, { recursive: true, force: true }));

  const refusals: [string[], RegExp][] = [
    [['--etcd-option', 'experimental-compaction-batch-limit=100', '--etcd-version', 'v3.6.16'], /\[validate\] etcd-option: "experimental-compaction-batch-limit=100": etcd 3\.6 no longer accepts/],
    [['--etcd-option', 'snapshot-count=many'], /\[validate\] etcd-option: "snapshot-count=many": the value is not a whole number/],
    [['--etcd-option', 'snapshot-count'], /\[validate\] etcd-option: "snapshot-count" is not key=value/],
    [['--etcd-option', 'quota-backend-bytes=1'], /\[validate\] etcd-option: "quota-backend-bytes=1": quota-backend-bytes is set by --quota-backend-bytes/],
    [['--defrag-threshold', '0'], /\[validate\] defrag-threshold: 0 is not a whole percentage from 1 to 99/],
    [['--defrag-threshold', '50%'], /\[validate\] defrag-threshold: "50%" is not a whole percentage from 1 to 99/],
    [['--defrag-schedule', 'every-hour'], /\[validate\] defrag-schedule: "every-hour" is not a systemd calendar expression/],
    [['--no-defrag', '--defrag-schedule', 'daily'], /\[validate\] defrag-schedule: "daily" sets the defragmentation timer, and it is off \(--no-defrag\)/],
  ];
  for (const [args, message] of refusals) {
    it(`refuses ${args.join(' ')}: names the flag and value, exits 2, writes nothing`, async () => {
      const out = join(work, `out-${args.join('-').replace(/[^a-z0-9]+/gi, '_')}`);
      const run = await runCli(['gen-userdata', '--ips', '127.0.0.11', '--key-type', 'ecdsa-p256', '--out', out, ...args], work);
      expect(run.stderr).toMatch(message);
      expect(run.code).toBe(2);
      expect(existsSync(out)).toBe(false);
    });
  }

  it('--no-defrag: no timer in the user-data, recorded as off, and a re-run keeps it off', async () => {
    const out = join(work, 'no-defrag');
    const first = await runCli(['gen-userdata', '--ips', '127.0.0.11', '--key-type', 'ecdsa-p256', '--out', out, '--no-defrag', '--etcd-option', 'snapshot-count=20000'], work);
    expect(first.code, first.stderr).toBe(0);
    const again = await runCli(['gen-userdata', '--ips', '127.0.0.11', '--key-type', 'ecdsa-p256', '--out', out], work);
    expect(again.code, again.stderr).toBe(0);
    const userData = readFileSync(join(out, 'etcd', 'user-data', 'etcd1.yaml'), 'utf8');
    expect(userData).not.toContain('etcd-defrag');
    expect(userData).toContain('snapshot-count: 20000');
    const record = JSON.parse(readFileSync(join(out, 'etcd', 'cluster.json'), 'utf8')) as { defrag?: unknown; etcdOptions?: unknown };
    expect(record.defrag).toBe(false);
    expect(record.etcdOptions).toEqual({ 'snapshot-count': '20000' });
  });
});

describe('a real etcd 3.4 from the rendered config', () => {
  let cluster: LoopbackCluster;
  const gateway = (path: string, body: unknown) => cluster.gateway(path, body);
  beforeAll(async () => {
    cluster = await LoopbackCluster.create(
      'ip',
      ['--etcd-option', 'snapshot-count=12345', '--etcd-option', 'max-txn-ops=4', '--etcd-option', 'grpc-keepalive-interval=90s', '--etcd-option', 'experimental-compaction-batch-limit=500', '--etcd-option', 'auto-compaction-retention=2h', '--etcd-option', 'experimental-backend-bbolt-freelist-type=map'],
      { size: 1 },
    );
    await cluster.startAll(['etcd1']);
  }, 60_000);
  afterAll(async () => {
    await cluster?.cleanup();
  });

  it('starts with the options, logs them, and applies max-txn-ops', async () => {
    const userData = cluster.userData('etcd1');
    expect(userData).toContain('grpc-keepalive-interval: 90000000000');
    expect(userData).toContain('auto-compaction-retention: "2h"');
    expect(userData.match(/auto-compaction-retention:/g)).toHaveLength(1);
    const log = readFileSync(join(cluster.root('etcd1'), 'etcd.log'), 'utf8');
    expect(log).toMatch(/"snapshot-count":12345/);
    expect(log).toMatch(/"auto-compaction-retention":"2h0m0s"|"auto-compaction-retention":"2h"/);
    // A transaction of 4 puts goes through; of 5, etcd refuses it.
    const txn = (count: number) => {
      const success = Array.from({ length: count }, (_, index) => ({ request_put: { key: Buffer.from(`/txn/${index}`).toString('base64'), value: Buffer.from('v').toString('base64') } }));
      return gateway('/v3/kv/txn', { success });
    };
    const allowed = await txn(4);
    expect(allowed.status, allowed.text).toBe(200);
    const tooMany = await txn(5);
    expect(tooMany.text).toMatch(/too many operations in txn request/);
  });

  it('roll to 3.5 refuses the recorded 3.4-only option, naming it and the version, before it changes anything', async () => {
    const before = folderSnapshot(cluster.outDir);
    const run = await cluster.cli(['roll', '--etcd-version', 'v3.5.21']);
    expect(run.stderr).toMatch(
      /\[validate\] etcd-version: "v3\.5\.21" refuses an etcd option cluster\.json records \(etcdOptions\): "experimental-backend-bbolt-freelist-type=map": etcd 3\.5 no longer accepts experimental-backend-bbolt-freelist-type: renamed backend-bbolt-freelist-type in etcd 3\.5/,
    );
    expect(run.code).toBe(2);
    expect(folderSnapshot(cluster.outDir)).toEqual(before);
  });
});
