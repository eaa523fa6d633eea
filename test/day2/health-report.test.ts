import { describe, expect, it } from 'vitest';
import { assessHealth, renderHealthTable, type LocalCertificate, type MemberHealth } from '../../src/day2/health.js';

const NOW = new Date('2026-06-01T00:00:00Z');

function member(name: string, overrides: Partial<MemberHealth> = {}): MemberHealth {
  return {
    name,
    endpoint: `https://10.0.0.${name.slice(-1)}:2379`,
    healthy: true,
    leader: false,
    learner: false,
    version: '3.5.21',
    dbSizeBytes: 20480,
    raftIndex: 42,
    memberId: `${name.slice(-1)}`,
    certExpiresInDays: 400,
    certNotAfter: '2027-07-06T00:00:00.000Z',
    error: undefined,
    ...overrides,
  };
}

const CERTS: LocalCertificate[] = [
  { file: 'pki/admin.crt', notAfter: '2027-07-06T00:00:00.000Z', expiresInDays: 400 },
  { file: 'pki/ca.crt', notAfter: '2036-05-30T00:00:00.000Z', expiresInDays: 3650 },
];
const HEALTHY = [member('etcd1', { leader: true }), member('etcd2'), member('etcd3')];

describe('assessHealth: every reason for a non-zero exit, and none when all is well', () => {
  it.each<[string, MemberHealth[], LocalCertificate[], string[], string[]]>([
    ['all well', HEALTHY, CERTS, [], []],
    [
      'a member does not answer',
      [member('etcd1', { leader: true }), member('etcd2'), member('etcd3', { healthy: false, error: 'ECONNREFUSED: connect ECONNREFUSED 10.0.0.3:2379', version: undefined })],
      CERTS,
      [],
      ['member etcd3 (https://10.0.0.3:2379) is unhealthy: ECONNREFUSED: connect ECONNREFUSED 10.0.0.3:2379'],
    ],
    [
      'a member serves a certificate about to expire',
      [member('etcd1', { leader: true }), member('etcd2', { certExpiresInDays: 12 }), member('etcd3')],
      CERTS,
      [],
      ['member etcd2 serves a certificate that expires in 12 day(s) (< --warn-days 30); run renew-certs'],
    ],
    ['no leader', [member('etcd1'), member('etcd2'), member('etcd3')], CERTS, [], ['no member reports itself as leader']],
    [
      'the admin certificate is about to expire',
      HEALTHY,
      [{ file: 'pki/admin.crt', notAfter: '2026-06-10T00:00:00.000Z', expiresInDays: 9 }, CERTS[1]!],
      [],
      ['pki/admin.crt expires in 9 day(s) (< --warn-days 30)'],
    ],
    ['membership drift', HEALTHY, CERTS, ['etcd4 (https://10.0.0.4:2380) is in cluster.json but not in the cluster'], ['membership: etcd4 (https://10.0.0.4:2380) is in cluster.json but not in the cluster']],
  ])('%s', (_case, members, certificates, drift, problems) => {
    const report = assessHealth('prod', members, certificates, drift, 30, NOW);
    expect(report.problems).toEqual(problems);
    expect(report.healthy).toBe(problems.length === 0);
  });
});

describe('renderHealthTable', () => {
  it('prints one row per member, the local certificates and the verdict', () => {
    const report = assessHealth('prod', [member('etcd1', { leader: true }), member('etcd2', { healthy: false, error: 'timeout', version: undefined, dbSizeBytes: undefined, raftIndex: undefined, certExpiresInDays: undefined })], CERTS, [], 30, NOW);
    expect(renderHealthTable(report)).toBe(
      [
        'MEMBER  ENDPOINT               HEALTHY  LEADER  VERSION  DB SIZE   RAFT INDEX  CERT EXPIRES',
        'etcd1   https://10.0.0.1:2379  yes      *       3.5.21   20.0 KiB  42          400d',
        'etcd2   https://10.0.0.2:2379  NO               -        -         -           -',
        'pki/admin.crt expires in 400d (2027-07-06)',
        'pki/ca.crt expires in 3650d (2036-05-30)',
        'Cluster prod: 1 problem(s):',
        '  - member etcd2 (https://10.0.0.2:2379) is unhealthy: timeout',
        '',
      ].join('\n'),
    );
  });

  it('marks a learner and says it promotes itself, without calling it a problem', () => {
    const report = assessHealth('prod', [member('etcd1', { leader: true }), member('etcd4', { learner: true })], CERTS, [], 30, NOW);
    expect(report.healthy).toBe(true);
    const table = renderHealthTable(report);
    expect(table).toContain('etcd4   https://10.0.0.4:2379  yes      learner  3.5.21');
    expect(table).toContain('etcd4 is a learner: it gets the data but has no vote until it promotes itself (etcd-promote.service on the node).\nCluster prod: 2 member(s) healthy.');
  });
});
