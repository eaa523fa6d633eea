import { describe, expect, it } from 'vitest';
import { CliError, EXIT_USAGE } from '../src/errors.js';
import { resolveClusterInput } from '../src/input.js';

function errorOf(fileInput: Record<string, unknown>, flagInput: Record<string, unknown> = {}): string {
  try {
    resolveClusterInput(fileInput, flagInput);
  } catch (error) {
    expect(error).toBeInstanceOf(CliError);
    expect((error as CliError).exitCode).toBe(EXIT_USAGE);
    return (error as Error).message;
  }
  throw new Error('expected a validation error');
}

const THREE = ['10.0.0.1', '10.0.0.2', '10.0.0.3'];

describe('input validation: each bad input gets one message naming the field and the value', () => {
  it.each([
    [{}, '[validate] ips: is required (for example --ips 10.10.0.11,10.10.0.12,10.10.0.13), or give members in --config'],
    [{ ips: ['10.0.0.1', '10.0.0.2', '10.0.0.300'] }, '[validate] ips[2]: "10.0.0.300" is not an IPv4 address'],
    [{ ips: ['10.0.0.1', 'db.example.com', '10.0.0.3'] }, '[validate] ips[1]: "db.example.com" is not an IPv4 address'],
    [{ ips: [] }, '[validate] ips: at least 1 member is required'],
    [{ ips: Array.from({ length: 11 }, (_v, i) => `10.0.0.${i + 1}`) }, '[validate] ips: 11 members given; a cluster has 1 to 9 members (more slows every write and adds no useful fault tolerance)'],
    [{ ips: ['10.0.0.1', '10.0.0.2'] }, '[validate] ips: 2 members is an even count: it tolerates 0 failed members, the same as 1 member, while one more vote is needed for quorum; use 1 or 3 members, or pass --allow-even'],
    [{ ips: ['10.0.0.1', '10.0.0.2', '10.0.0.1'] }, '[validate] ips[2]: "10.0.0.1" is already used by ips[0]'],
    [{ ips: ['10.0.0.1', '0.0.0.0', '10.0.0.3'] }, '[validate] ips[1]: "0.0.0.0" is not a unicast host address'],
    [{ ips: ['10.0.0.1', '239.1.1.1', '10.0.0.3'] }, '[validate] ips[1]: "239.1.1.1" is not a unicast host address'],
    [{ ips: THREE, names: ['a', 'b'] }, '[validate] names: 2 names given for 3 addresses in ips; give one name per address'],
    [{ ips: THREE, names: ['a', 'B', 'c'] }, `[validate] names[1]: "B" is not a lowercase DNS label (a-z, 0-9 and '-', at most 63 characters, starting with a letter, not ending with '-')`],
    [{ ips: ['10.0.0.1', '10.0.0.2', '10.0.0.3', '10.0.0.4'] }, '[validate] ips: 4 members is an even count: it tolerates 1 failed member, the same as 3 members, while one more vote is needed for quorum; use 3 or 5 members, or pass --allow-even'],
    [{ ips: THREE, names: ['a', 'b', 'a'] }, '[validate] names[2]: "a" is already used by names[0]'],
    [{ ips: THREE, names: ['a', 'ca', 'c'] }, '[validate] names[1]: "ca" is reserved for pki/ca.crt; choose another member name'],
    [{ ips: THREE, 'cluster-name': 'Prod_1' }, `[validate] cluster-name: "Prod_1" is not a valid cluster name (1-32 characters of a-z, 0-9 and '-', starting with a letter, not ending with '-')`],
    [{ ips: THREE, 'etcd-version': 'v3.3.27' }, '[validate] etcd-version: "v3.3.27" is not a supported etcd version (v3.4.x to v3.7.x, for example v3.6.14)'],
    [{ ips: THREE, 'etcd-version': '3.6.14' }, '[validate] etcd-version: "3.6.14" is not a supported etcd version (v3.4.x to v3.7.x, for example v3.6.14)'],
    [{ ips: THREE, 'release-url': 'ftp://mirror/etcd' }, `[validate] release-url: "ftp://mirror/etcd" is not an http(s) URL without spaces, quotes or '$'`],
    [{ ips: THREE, 'release-url': 'https://mirror/$(reboot)' }, `[validate] release-url: "https://mirror/$(reboot)" is not an http(s) URL without spaces, quotes or '$'`],
    [{ ips: THREE, 'etcd-sha256': 'abc' }, '[validate] etcd-sha256: "abc" is not a SHA-256 checksum (64 lowercase hex digits)'],
    [{ ips: THREE, 'key-size': 1024 }, '[validate] key-size: 1024 is not one of 2048, 3072, 4096'],
    [{ ips: THREE, 'key-size': 'big' }, '[validate] key-size: "big" is not one of 2048, 3072, 4096'],
    [{ ips: THREE, 'cert-days': 0 }, '[validate] cert-days: 0 is not a whole number of days from 1 to 3650'],
    [{ ips: THREE, 'cert-days': 'soon' }, '[validate] cert-days: "soon" is not a whole number of days from 1 to 3650'],
    [{ ips: THREE, 'heartbeat-interval': 5 }, '[validate] heartbeat-interval: 5 is not a whole number of milliseconds from 10 to 10000'],
    [{ ips: THREE, 'heartbeat-interval': 500 }, '[validate] election-timeout: 1000 must be at least 5 times heartbeat-interval (500), i.e. at least 2500'],
    [{ ips: THREE, 'election-timeout': 400 }, '[validate] election-timeout: 400 must be at least 5 times heartbeat-interval (100), i.e. at least 500'],
    [{ ips: THREE, colour: 'blue' }, '[validate] colour: unknown option'],
    [{ members: [{ name: 'a', ip: '10.0.0.1' }, { name: 'b' }, { ip: '10.0.0.3' }] }, '[validate] members[1].ip: is required'],
    [{ members: [{ name: 'a', ip: '10.0.0.1', port: 1 }] }, '[validate] members[0].port: unknown option'],
    [{ members: [{ name: 'a', ip: '10.0.0.1' }, { ip: '10.0.0.1' }, { ip: '10.0.0.3' }] }, '[validate] members[1].ip: "10.0.0.1" is already used by members[0].ip'],
  ])('%j -> %s', (input, message) => {
    expect(errorOf(input)).toBe(message);
  });

  it('lets flags override the config file, --ips replacing its members', () => {
    const { input } = resolveClusterInput(
      { members: [{ ip: '10.9.9.9' }], 'cluster-name': 'from-file', 'key-size': 2048 },
      { ips: THREE, 'cluster-name': 'from-flag' },
    );
    expect(input.members.map((member) => member.ip)).toEqual(THREE);
    expect(input.clusterName).toBe('from-flag');
    expect(input.keySize).toBe(2048);
  });

  it('applies defaults and accepts an even count with allow-even', () => {
    const { input, warnings } = resolveClusterInput({ ips: ['10.0.0.1', '10.0.0.2'], 'allow-even': true }, {});
    expect(input.members).toEqual([
      { name: 'etcd1', ip: '10.0.0.1' },
      { name: 'etcd2', ip: '10.0.0.2' },
    ]);
    expect(input).toMatchObject({ clusterName: 'etcd', out: 'out', keySize: 4096, certDays: 825, etcdVersion: 'v3.6.14' });
    expect(warnings).toEqual([]);
  });

  it('warns about a public address but accepts it', () => {
    const { warnings } = resolveClusterInput({ ips: ['10.0.0.1', '203.0.113.7', '10.0.0.3'] }, {});
    expect(warnings).toEqual([
      'ips[1]: "203.0.113.7" is a public address; etcd will listen on it, so firewall ports 2379-2380 to the cluster\'s own addresses',
    ]);
  });
});
