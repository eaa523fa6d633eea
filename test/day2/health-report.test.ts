import { describe, expect, it } from 'vitest';
import { dropletConsole } from '../../src/day2/droplets.js';
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
    dbSizeInUseBytes: 16384,
    raftIndex: 42,
    memberId: `${name.slice(-1)}`,
    certExpiresInDays: 400,
    certNotAfter: '2027-07-06T00:00:00.000Z',
    certSerial: '5E0A2C',
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
      ['member etcd3 (https://10.0.0.3:2379) did not answer: ECONNREFUSED: connect ECONNREFUSED 10.0.0.3:2379'],
    ],
    [
      'members that never answer: timed out, name not resolved',
      [
        member('etcd1', { leader: true }),
        member('etcd2', { healthy: false, error: 'no answer within 5000 ms', version: undefined }),
        member('etcd3', { healthy: false, error: 'ENOTFOUND: getaddrinfo ENOTFOUND prod-etcd3.example.com', version: undefined }),
      ],
      CERTS,
      [],
      ['member etcd2 (https://10.0.0.2:2379) did not answer: no answer within 5000 ms', 'member etcd3 (https://10.0.0.3:2379) did not answer: ENOTFOUND: getaddrinfo ENOTFOUND prod-etcd3.example.com'],
    ],
    [
      'a member answers unhealthy',
      [member('etcd1', { leader: true }), member('etcd2'), member('etcd3', { healthy: false, error: 'unhealthy: alarm:NOSPACE' })],
      CERTS,
      [],
      ['member etcd3 (https://10.0.0.3:2379) is unhealthy: unhealthy: alarm:NOSPACE'],
    ],
    [
      'a member whose TLS handshake fails answered something: unhealthy, not silent',
      [member('etcd1', { leader: true }), member('etcd2'), member('etcd3', { healthy: false, error: 'EPROTO: write EPROTO bad certificate', version: undefined })],
      CERTS,
      [],
      ['member etcd3 (https://10.0.0.3:2379) is unhealthy: EPROTO: write EPROTO bad certificate'],
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

describe('assessHealth: the database against its quota, and the alarms', () => {
  const MIB = 1024 * 1024;
  const QUOTA = 100 * MIB;
  const sized = (name: string, dbSizeBytes: number, dbSizeInUseBytes: number, leader = false) => member(name, { leader, dbSizeBytes, dbSizeInUseBytes });
  it.each<[string, MemberHealth[], { alarm: string; memberID: string }[] | undefined, string[]]>([
    ['80% exactly is still well', [sized('etcd1', 80 * MIB, 10 * MIB, true)], [], []],
    [
      'above 80%: says how much defrag would give back',
      [sized('etcd1', 81 * MIB, 60 * MIB, true), sized('etcd2', 10 * MIB, 9 * MIB)],
      [],
      [
        "member etcd1's database is at 81% of the quota (81.0 MiB of 100.0 MiB; above 80%): at 100% etcd raises NOSPACE and refuses writes; run 'etcd-cloudinit defrag --cluster-name prod' to give back the 21.0 MiB not in use, delete keys you no longer need, or raise --quota-backend-bytes (docs/day2.md)",
      ],
    ],
    [
      'NOSPACE: the alarm, with the member that raised it and what to do (not a second line for its size)',
      [sized('etcd1', 101 * MIB, 99 * MIB, true), sized('etcd2', 50 * MIB, 49 * MIB)],
      [{ alarm: 'NOSPACE', memberID: '1' }],
      [
        "alarm NOSPACE (raised by etcd1): the database reached its quota and the cluster refuses every write; delete keys you no longer need, then run 'etcd-cloudinit defrag --cluster-name prod' (it compacts, defragments every member and disarms the alarm)",
      ],
    ],
    [
      'CORRUPT: replace the member; defrag is no cure',
      [sized('etcd1', MIB, MIB, true)],
      [{ alarm: 'CORRUPT', memberID: '7' }],
      ["alarm CORRUPT (raised by member 7): a member's data differs from the others'; stop writing, keep a snapshot of a sound member, and replace the corrupt one (remove-member, then add-member)"],
    ],
    ['alarms that could not be listed', [sized('etcd1', MIB, MIB, true)], undefined, ["could not list the alarms (NOSPACE, CORRUPT): see the members' errors"]],
  ])('%s', (_case, members, alarms, problems) => {
    const report = assessHealth('prod', members, CERTS, [], 30, NOW, { quotaBackendBytes: QUOTA, alarms });
    expect(report.problems).toEqual(problems);
    expect(report.healthy).toBe(problems.length === 0);
    expect(report.quotaBackendBytes).toBe(QUOTA);
    expect(report.members.map((reported) => reported.quotaPercent)).toEqual(members.map((given) => Math.round((given.dbSizeBytes! / QUOTA) * 1000) / 10));
    expect(report.alarms.map((alarm) => [alarm.alarm, alarm.member])).toEqual((alarms ?? []).map((alarm) => [alarm.alarm, members.find((given) => given.memberId === alarm.memberID)?.name]));
  });
});

describe('renderHealthTable', () => {
  it('prints one row per member, the local certificates and the verdict', () => {
    const report = assessHealth('prod', [member('etcd1', { leader: true }), member('etcd2', { healthy: false, error: 'timeout', version: undefined, dbSizeBytes: undefined, dbSizeInUseBytes: undefined, raftIndex: undefined, certExpiresInDays: undefined, certSerial: undefined })], CERTS, [], 30, NOW);
    expect(renderHealthTable(report)).toBe(
      [
        'MEMBER  ENDPOINT               HEALTHY  LEADER  VERSION  DB SIZE   IN USE    QUOTA  RAFT INDEX  CERT EXPIRES  CERT SERIAL  ALARMS',
        'etcd1   https://10.0.0.1:2379  yes      *       3.5.21   20.0 KiB  16.0 KiB  0.0%   42          400d          5E0A2C       -',
        'etcd2   https://10.0.0.2:2379  NO               -        -         -         -      -           -             -            -',
        'Quota: 2.0 GiB per member (QUOTA is DB SIZE against it; etcd refuses writes at 100%).',
        'pki/admin.crt expires in 400d (2027-07-06)',
        'pki/ca.crt expires in 3650d (2036-05-30)',
        'Cluster prod: 1 problem(s):',
        '  - member etcd2 (https://10.0.0.2:2379) is unhealthy: timeout',
        '',
      ].join('\n'),
    );
  });

  const SILENT = { healthy: false, version: undefined, dbSizeBytes: undefined, dbSizeInUseBytes: undefined, raftIndex: undefined, certExpiresInDays: undefined } as const;

  it('points a member that did not answer to its console and cloud-init status --long; an unhealthy answer gets no such advice', () => {
    const report = assessHealth(
      'prod',
      [member('etcd1', { leader: true }), member('etcd2', { ...SILENT, error: 'ECONNREFUSED: connect ECONNREFUSED 10.0.0.2:2379' }), member('etcd3', { healthy: false, error: 'unhealthy: alarm:NOSPACE' })],
      CERTS,
      [],
      30,
      NOW,
    );
    expect(renderHealthTable(report).split('\n').slice(-5)).toEqual([
      '  - member etcd2 (https://10.0.0.2:2379) did not answer: ECONNREFUSED: connect ECONNREFUSED 10.0.0.2:2379',
      '  - member etcd3 (https://10.0.0.3:2379) is unhealthy: unhealthy: alarm:NOSPACE',
      "etcd2 did not answer. If this machine can reach it, etcd may never have started there. On its console, 'cloud-init status --long' and 'systemctl --failed' name a boot step that failed:",
      "  etcd2: the console of etcd2's machine (your cloud's or hypervisor's)",
      '',
    ]);
  });

  it("on droplets, names each droplet's Droplet Console", () => {
    const silent = (name: string) => member(name, { ...SILENT, error: 'no answer within 5000 ms' });
    const report = assessHealth('prod', [silent('etcd1'), silent('etcd2'), member('etcd3', { leader: true })], CERTS, [], 30, NOW);
    const ids: Record<string, number> = { etcd1: 101, etcd2: 102 };
    const table = renderHealthTable(report, (name) => dropletConsole({ dropletName: `prod-${name}`, dropletId: ids[name]! }));
    expect(table).toContain(
      [
        "etcd1, etcd2 did not answer. If this machine can reach them, etcd may never have started there. On their consoles, 'cloud-init status --long' and 'systemctl --failed' name a boot step that failed:",
        "  etcd1: the Droplet Console of droplet prod-etcd1 (id 101) in DigitalOcean's control panel (Droplets > prod-etcd1 > Access)",
        "  etcd2: the Droplet Console of droplet prod-etcd2 (id 102) in DigitalOcean's control panel (Droplets > prod-etcd2 > Access)",
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
