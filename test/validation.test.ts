import { execFile } from 'node:child_process';
import { existsSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { CliError, EXIT_USAGE } from '../src/errors.js';
import { CONFIG_MAX_BYTES, loadConfigFile, resolveClusterInput } from '../src/input.js';
import { CLI, tempDirsRemovedAfterAll } from './support/cli.js';

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
const NOT_CALENDAR = 'is not a systemd calendar expression (see systemd.time(7); check one with systemd-analyze calendar); for example hourly, Mon..Fri 02:00 or *-*-* 00/6:00:00';

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
    [{ ips: THREE, 'etcd-version': 'v3.3.27' }, '[validate] etcd-version: "v3.3.27" is not a supported etcd version (v3.4.x to v3.7.x, for example v3.6.16)'],
    [{ ips: THREE, 'etcd-version': '3.6.14' }, '[validate] etcd-version: "3.6.14" is not a supported etcd version (v3.4.x to v3.7.x, for example v3.6.16)'],
    [{ ips: THREE, 'release-url': 'ftp://mirror/etcd' }, `[validate] release-url: "ftp://mirror/etcd" is not an http(s) URL (only the characters RFC 3986 allows in a URL, and no quotes or '$')`],
    [{ ips: THREE, 'release-url': 'https://mirror/$(reboot)' }, `[validate] release-url: "https://mirror/$(reboot)" is not an http(s) URL (only the characters RFC 3986 allows in a URL, and no quotes or '$')`],
    // Values that reach a sourced shell file, YAML as cloud-init's PyYAML reads it, a systemd unit, or curl.
    [{ ips: THREE, out: 'out\n touch /tmp/pwned' }, '[validate] out: "out\\n touch /tmp/pwned" is not a folder path without control characters (line breaks, tabs, escape codes)'],
    [{ ips: THREE, out: 'out\u0085x' }, '[validate] out: "out\\u0085x" is not a folder path without control characters (line breaks, tabs, escape codes)'],
    [{ ips: THREE, out: 'out\u2028x' }, '[validate] out: "out\\u2028x" is not a folder path without control characters (line breaks, tabs, escape codes)'],
    [{ ips: THREE, out: '/proc/self/x' }, '[validate] out: "/proc/self/x" is under /proc, a kernel interface, not a folder for files'],
    [{ ips: THREE, out: '/sys' }, '[validate] out: "/sys" is under /sys, a kernel interface, not a folder for files'],
    [{ ips: THREE, out: '/dev/null/out' }, '[validate] out: "/dev/null/out" cannot be created: "/dev/null" is not a folder'],
    [{ ips: THREE, 'release-url': 'https://mirror/etcd\u0085' }, `[validate] release-url: "https://mirror/etcd\\u0085" is not an http(s) URL (only the characters RFC 3986 allows in a URL, and no quotes or '$')`],
    [{ ips: THREE, 'release-url': 'https://mirror/\u2029etcd' }, `[validate] release-url: "https://mirror/\\u2029etcd" is not an http(s) URL (only the characters RFC 3986 allows in a URL, and no quotes or '$')`],
    [{ ips: THREE, 'release-url': 'https://mirror/\u00e9tcd' }, `[validate] release-url: "https://mirror/\u00e9tcd" is not an http(s) URL (only the characters RFC 3986 allows in a URL, and no quotes or '$')`],
    [{ ips: THREE, 'release-url': 'https://mirror/etcd#v3' }, '[validate] release-url: "https://mirror/etcd#v3" has a fragment (#...); give the base URL that holds the <version>/ folders'],
    [{ ips: THREE, 'release-url': 'https://mirror/etcd?token=1' }, '[validate] release-url: "https://mirror/etcd?token=1" has a query (?...); nodes append /<version>/<file> to it, so give a plain base URL'],
    [{ ips: THREE, 'release-url': 'https:///etcd' }, '[validate] release-url: "https:///etcd" has no host (http(s)://host[:port]/path)'],
    [{ ips: THREE, 'release-url': 'http://user@:8080/etcd' }, '[validate] release-url: "http://user@:8080/etcd" has no host (http(s)://host[:port]/path)'],
    [{ ips: THREE, 'release-url': 'https://me:secret@mirror/etcd' }, `[validate] release-url: "https://me:secret@mirror/etcd" holds a password; every node's user-data would carry it: use a mirror that needs none (restrict it by network instead)`],
    [{ ips: THREE, 'release-url': 'http://mirror:99999/etcd' }, '[validate] release-url: "http://mirror:99999/etcd" is not a valid URL (check the host and port)'],
    [{ ips: THREE, 'key-type': 'ed25519' }, '[validate] key-type: "ed25519" is not one of rsa, ecdsa-p256, ecdsa-p384'],
    [{ ips: THREE, 'key-type': 'ECDSA-P256' }, '[validate] key-type: "ECDSA-P256" is not one of rsa, ecdsa-p256, ecdsa-p384'],
    [{ ips: THREE, 'key-type': 'ecdsa-p256', 'key-size': 2048 }, '[validate] key-size: 2048 is for RSA keys only, and key-type is ecdsa-p256; drop --key-size, or use --key-type rsa with it'],
    [{ ips: THREE, 'key-type': 'ecdsa-p384', 'key-size': 4096 }, '[validate] key-size: 4096 is for RSA keys only, and key-type is ecdsa-p384; drop --key-size, or use --key-type rsa with it'],
    [{ ips: THREE, 'snapshot-schedule': 'x' }, `[validate] snapshot-schedule: "x" ${NOT_CALENDAR}`],
    [{ ips: THREE, 'snapshot-schedule': '*-*-* 25:00' }, `[validate] snapshot-schedule: "*-*-* 25:00" ${NOT_CALENDAR}`],
    [{ ips: THREE, 'snapshot-schedule': 'Fri..Mon 02:00' }, `[validate] snapshot-schedule: "Fri..Mon 02:00" ${NOT_CALENDAR}`],
    [{ ips: THREE, 'snapshot-schedule': 'hourly\nExecStartPre=/bin/true' }, `[validate] snapshot-schedule: "hourly\\nExecStartPre=/bin/true" is not a systemd calendar expression (up to 64 characters of letters, digits, space and * : / , . ~ - _ +; for example hourly or *-*-* 00/6:00:00)`],
    [{ ips: THREE, 'etcd-sha256': 'abc' }, '[validate] etcd-sha256: "abc" is not a SHA-256 checksum (64 lowercase hex digits)'],
    [{ ips: THREE, 'key-size': 1024 }, '[validate] key-size: 1024 is not one of 2048, 3072, 4096'],
    [{ ips: THREE, 'key-size': 'big' }, '[validate] key-size: "big" is not one of 2048, 3072, 4096'],
    [{ ips: THREE, 'cert-days': 0 }, '[validate] cert-days: 0 is not a whole number of days from 1 to 3650'],
    [{ ips: THREE, 'cert-days': 'soon' }, '[validate] cert-days: "soon" is not a whole number of days from 1 to 3650'],
    [{ ips: THREE, 'heartbeat-interval': 5 }, '[validate] heartbeat-interval: 5 is not a whole number of milliseconds from 10 to 10000'],
    [{ ips: THREE, 'heartbeat-interval': 500 }, '[validate] election-timeout: 1000 must be at least 5 times heartbeat-interval (500), i.e. at least 2500'],
    [{ ips: THREE, 'election-timeout': 400 }, '[validate] election-timeout: 400 must be at least 5 times heartbeat-interval (100), i.e. at least 500'],
    // etcd documents 8 GiB as the suggested maximum (https://etcd.io/docs/v3.4/dev-guide/limit/).
    [{ ips: THREE, 'quota-backend-bytes': 8589934593 }, "[validate] quota-backend-bytes: 8589934593 is not a whole number of bytes from 16777216 (16 MiB) to 8589934592 (8 GiB, etcd's documented maximum)"],
    [{ ips: THREE, 'quota-backend-bytes': 16777215 }, "[validate] quota-backend-bytes: 16777215 is not a whole number of bytes from 16777216 (16 MiB) to 8589934592 (8 GiB, etcd's documented maximum)"],
    [{ ips: THREE, 'quota-backend-bytes': '2GiB' }, "[validate] quota-backend-bytes: \"2GiB\" is not a whole number of bytes from 16777216 (16 MiB) to 8589934592 (8 GiB, etcd's documented maximum)"],
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

  it.each([
    [{ domain: 'example.com', 'listen-cidr': '10.0.0.300/8' }, {}, '[validate] listen-cidr: "10.0.0.300/8" is not an IPv4 range in CIDR notation (for example 10.0.0.0/8)'],
    [{ domain: 'example.com', 'listen-cidr': '10.0.0.0/33' }, {}, '[validate] listen-cidr: "10.0.0.0/33" is not an IPv4 range in CIDR notation (for example 10.0.0.0/8)'],
    [{ domain: 'example.com', 'listen-cidr': '10.0.0.0' }, {}, '[validate] listen-cidr: "10.0.0.0" is not an IPv4 range in CIDR notation (for example 10.0.0.0/8)'],
    [{ domain: 'example.com', 'listen-cidr': '10.1.2.3/8' }, {}, '[validate] listen-cidr: "10.1.2.3/8" has bits set after the /8 prefix; the range is 10.0.0.0/8'],
    [{ ips: THREE, 'listen-cidr': '10.0.0.0/8' }, {}, "[validate] listen-cidr: \"10.0.0.0/8\" is for DNS-member mode (--hostnames or --domain); with ips etcd listens on each member's own address"],
    [{ ips: THREE, 'listen-from': 'instance-data' }, {}, "[validate] listen-from: \"instance-data\" is for DNS-member mode (--hostnames or --domain); with ips etcd listens on each member's own address"],
    [{ domain: 'example.com', 'listen-from': 'cidr' }, {}, '[validate] listen-from: "cidr" needs listen-cidr, the range the address is in (for example --listen-cidr 10.0.0.0/8)'],
    [{ domain: 'example.com', 'listen-from': 'aws' }, {}, '[validate] listen-from: "aws" is not one of do-metadata, cidr or instance-data'],
    [{ domain: 'example.com', 'listen-from': 'instance-data', 'listen-cidr': '10.0.0.0/8' }, {}, '[validate] listen-cidr: "10.0.0.0/8" is read only with listen-from cidr, and listen-from is "instance-data"; drop one of the two'],
    [{ domain: 'example.com' }, { 'listen-from': 'instance-data', 'listen-cidr': '10.0.0.0/8' }, '[validate] listen-cidr: "10.0.0.0/8" is read only with listen-from cidr, and listen-from is "instance-data"; drop one of the two'],
    [{ ips: THREE, metrics: 'yes' }, {}, '[validate] metrics: "yes" must be boolean'],
  ])('listen address and metrics: %j %j', (fileInput, flagInput, message) => {
    expect(errorOf(fileInput, flagInput)).toBe(message);
  });

  it('--listen-cidr on the command line wins over a config listen-from, and a flag listen-from drops the config range', () => {
    expect(resolveClusterInput({ domain: 'example.com', 'listen-from': 'instance-data' }, { 'listen-cidr': '10.0.0.0/8' }).input.listenFrom).toEqual({ from: 'cidr', cidr: '10.0.0.0/8' });
    expect(resolveClusterInput({ domain: 'example.com', 'listen-cidr': '10.0.0.0/8' }, { 'listen-from': 'instance-data' }).input.listenFrom).toEqual({ from: 'instance-data' });
    expect(resolveClusterInput({ domain: 'example.com', 'listen-cidr': '172.16.0.0/12' }, {}).input.listenFrom).toEqual({ from: 'cidr', cidr: '172.16.0.0/12' });
    expect(resolveClusterInput({ domain: 'example.com' }, {}).input).toMatchObject({ listenFrom: undefined, metrics: true });
  });

  it('applies defaults and accepts an even count with allow-even', () => {
    const { input, warnings } = resolveClusterInput({ ips: ['10.0.0.1', '10.0.0.2'], 'allow-even': true }, {});
    expect(input.members).toEqual([
      { name: 'etcd1', ip: '10.0.0.1' },
      { name: 'etcd2', ip: '10.0.0.2' },
    ]);
    expect(input).toMatchObject({ clusterName: 'etcd', out: 'out', keySize: 4096, certDays: 825, etcdVersion: 'v3.6.16' });
    expect(warnings).toEqual([]);
  });

  it('--key-type from a flag wins over the config, and RSA keeps --key-size', () => {
    expect(resolveClusterInput({ ips: THREE, 'key-type': 'ecdsa-p384' }, { 'key-type': 'ecdsa-p256' }).input).toMatchObject({ keyType: 'ecdsa-p256' });
    expect(resolveClusterInput({ ips: THREE }, { 'key-type': 'rsa', 'key-size': 2048 }).input).toMatchObject({ keyType: 'rsa', keySize: 2048 });
    expect(resolveClusterInput({ ips: THREE }, {}).input).toMatchObject({ keyType: 'rsa', keySize: 4096 });
  });

  it('warns about a public address but accepts it', () => {
    const { warnings } = resolveClusterInput({ ips: ['10.0.0.1', '203.0.113.7', '10.0.0.3'] }, {});
    expect(warnings).toEqual([
      'ips[1]: "203.0.113.7" is a public address; etcd will listen on it, so firewall ports 2379-2380 to the cluster\'s own addresses, and 2381 (metrics, plain HTTP) to your Prometheus',
    ]);
    expect(resolveClusterInput({ ips: ['10.0.0.1', '203.0.113.7', '10.0.0.3'], metrics: false }, {}).warnings).toEqual([
      'ips[1]: "203.0.113.7" is a public address; etcd will listen on it, so firewall ports 2379-2380 to the cluster\'s own addresses',
    ]);
  });
});

describe('values a consumer accepts pass', () => {
  it.each([
    ['snapshot-schedule', 'Mon..Fri 02:00'],
    ['snapshot-schedule', '*:0/15'],
    ['snapshot-schedule', 'Sat *-*-1..7 03:00 UTC'],
    ['snapshot-schedule', '*-*~01 04:30:00'],
    ['release-url', 'http://mirror.internal:8080/etcd/'],
    ['release-url', 'https://[fd00::1]:8443/etcd'],
    ['release-url', 'https://mirror/etcd%20releases'],
    ['release-url', 'http://reader@mirror/etcd'],
    ['out', `clusters/it's "$HOME" & more`],
  ])('%s: %j', (key, value) => {
    expect(() => resolveClusterInput({ ips: THREE, [key]: value }, {})).not.toThrow();
  });
});

describe('--config size cap', () => {
  const workDir = tempDirsRemovedAfterAll('config-size');

  it('reads a config of exactly 1 MiB', () => {
    const dir = workDir();
    writeFileSync(join(dir, 'cluster.yaml'), `cluster-name: big\n${'#'.repeat(CONFIG_MAX_BYTES - 19)}\n`);
    expect(loadConfigFile('cluster.yaml', dir)).toEqual({ 'cluster-name': 'big' });
  });

  it.each([
    ['a file one byte over', 'cluster.yaml'],
    ['a device that never ends', '/dev/zero'],
  ])('refuses %s with a [parse] error', (_what, file) => {
    const dir = workDir();
    if (file === 'cluster.yaml') writeFileSync(join(dir, file), `cluster-name: big\n${'#'.repeat(CONFIG_MAX_BYTES - 18)}\n`);
    let error: unknown;
    try {
      loadConfigFile(file, dir);
    } catch (thrown) {
      error = thrown;
    }
    expect(error).toBeInstanceOf(CliError);
    expect((error as CliError).exitCode).toBe(EXIT_USAGE);
    expect((error as Error).message).toBe(`[parse] config: ${JSON.stringify(file)} is larger than 1 MiB (1048576 bytes); is it the right file?`);
  });
});

describe('gen-userdata --out under /proc (the real CLI, bounded: Node\'s recursive mkdir spins there)', () => {
  const workDir = tempDirsRemovedAfterAll('proc-out');

  it('exits 2 at [validate] promptly and writes nothing', async () => {
    const cwd = workDir();
    const run = await new Promise<{ code: number | null; stderr: string; killed: boolean }>((resolve) => {
      execFile(process.execPath, [CLI, 'gen-userdata', '--ips', '10.0.0.1', '--key-size', '2048', '--out', '/proc/self/x'], { cwd, timeout: 15_000, env: { PATH: process.env.PATH ?? '/usr/bin:/bin' } }, (error, _stdout, stderr) =>
        resolve({ code: error ? (typeof error.code === 'number' ? error.code : null) : 0, stderr, killed: error?.killed ?? false }),
      );
    });
    expect(run.killed, 'still running after 15 s').toBe(false);
    expect(run).toEqual({ code: 2, stderr: expect.stringContaining('[validate] out: "/proc/self/x" is under /proc, a kernel interface, not a folder for files'), killed: false });
    expect(existsSync(join(cwd, 'out'))).toBe(false);
  }, 30_000);

  it('a relative --out that resolves under /proc (run from there) is refused the same way', async () => {
    const run = await new Promise<{ code: number | null; stderr: string; killed: boolean }>((resolve) => {
      execFile(process.execPath, [CLI, 'gen-userdata', '--ips', '10.0.0.1', '--key-size', '2048', '--out', 'x'], { cwd: '/proc/self', timeout: 15_000, env: { PATH: process.env.PATH ?? '/usr/bin:/bin' } }, (error, _stdout, stderr) =>
        resolve({ code: error ? (typeof error.code === 'number' ? error.code : null) : 0, stderr, killed: error?.killed ?? false }),
      );
    });
    expect(run.killed, 'still running after 15 s').toBe(false);
    expect(run).toEqual({ code: 2, stderr: expect.stringContaining('[validate] out: "x" is under /proc, a kernel interface, not a folder for files'), killed: false });
  }, 30_000);
});
