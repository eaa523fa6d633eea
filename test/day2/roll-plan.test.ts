/**
 * roll and repair before they touch a cluster: etcd's upgrade rules, replacement names, and every
 * usage error (exit 2, one line naming the field and value, nothing written).
 */
import { cpSync, existsSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { replacementName } from '../../src/commands/roll.js';
import { parseEtcdVersion, upgradeRefusal } from '../../src/versions.js';
import { folderSnapshot, runCli, tempDirsRemovedAfterAll } from '../support/cli.js';
import { FIXTURES } from '../support/golden.js';

const workDir = tempDirsRemovedAfterAll('rollplan');
const version = (tag: string) => parseEtcdVersion(tag)!;

describe("etcd's upgrade rules", () => {
  it.each([
    ['v3.4.23', 'v3.4.23', undefined],
    ['v3.4.23', 'v3.4.37', undefined],
    ['v3.4.37', 'v3.4.23', undefined], // patch releases in any order within a minor
    ['v3.4.23', 'v3.5.30', undefined],
    ['v3.5.21', 'v3.6.14', undefined],
    ['v3.4.23', 'v3.6.14', 'v3.6.14 skips a minor version: upgrade v3.4.23 to the latest v3.5.x first (etcd upgrades one minor version at a time)'],
    ['v3.5.30', 'v3.4.23', 'v3.4.23 would downgrade the cluster from v3.5.30; etcd does not support downgrades by replacement'],
  ])('%s -> %s', (from, to, refusal) => {
    expect(upgradeRefusal(version(from), version(to))).toBe(refusal);
  });
});

describe('replacement names', () => {
  it('say whom they replace and are never reused', () => {
    const taken = new Set(['etcd1', 'etcd2', 'etcd1-2']);
    expect(replacementName('etcd2', taken)).toBe('etcd2-2');
    expect(replacementName('etcd1', taken)).toBe('etcd1-3');
    expect(replacementName('etcd1-3', taken)).toBe('etcd1-4');
    expect(taken).toEqual(new Set(['etcd1', 'etcd2', 'etcd1-2', 'etcd2-2', 'etcd1-3', 'etcd1-4']));
  });
});

/**
 * Folders as 0.1.0 wrote them (ipmode: v3.5.21 by IP; dnsdomain: --domain; docluster: create-droplets
 * on v3.6.14). No cluster runs, and each error comes before the command would contact one.
 */
describe('roll and repair usage errors', () => {
  it.each([
    ['ipmode', ['roll', '--etcd-version', 'v3.4.23', '--ips', '10.0.0.21,10.0.0.22,10.0.0.23'], '[validate] etcd-version: v3.4.23 would downgrade the cluster from v3.5.21; etcd does not support downgrades by replacement'],
    ['ipmode', ['roll', '--etcd-version', 'v3.7.1'], '[validate] etcd-version: v3.7.1 skips a minor version: upgrade v3.5.21 to the latest v3.6.x first'],
    ['docluster', ['roll', '--etcd-version', 'v3.5.30'], '[validate] etcd-version: v3.5.30 would downgrade the cluster from v3.6.14'],
    ['ipmode', ['roll', '--etcd-version', '3.6.14'], '[validate] etcd-version: "3.6.14"'],
    ['ipmode', ['roll', '--key-size', '1024'], '[validate] key-size: 1024'],
    ['ipmode', ['roll', '--install', 'rsync'], '[validate] install: "rsync"'],
    ['ipmode', ['roll', '--key-type', 'ed25519'], '[validate] key-type: "ed25519" is not one of rsa, ecdsa-p256, ecdsa-p384'],
    ['ipmode', ['roll', '--key-type', 'ecdsa-p256', '--key-size', '2048'], '[validate] key-size: 2048 is for RSA keys only, and key-type is ecdsa-p256; drop --key-size, or use --key-type rsa with it'],
    ['ipmode', ['roll'], '[validate] ips: give the new machine\'s IPv4 for each replaced member (etcd1, etcd2, etcd3): 3 address(es), got 0'],
    ['ipmode', ['roll', '--member', 'etcd2', '--ips', '10.0.0.300'], '[validate] ips[0]: "10.0.0.300" is not an IPv4 address'],
    ['ipmode', ['roll', '--member', 'etcd2', '--ips', '10.10.0.11'], '[validate] ips[0]: "10.10.0.11" is already used by member etcd1; a replacement is a new machine'],
    ['ipmode', ['roll', '--member', 'etcd9'], '[validate] member: "etcd9" is not a member (members: etcd1, etcd2, etcd3)'],
    ['ipmode', ['roll', '--size', 's-2vcpu-4gb', '--ips', '10.0.0.21,10.0.0.22,10.0.0.23'], '[validate] size: only a cluster create-droplets made has droplets'],
    ['ipmode', ['roll', '--catch-up-timeout', '0'], '[validate] catch-up-timeout: "0" is not a number of seconds from 1 to 7200'],
    ['dnsdomain', ['roll', '--hostnames', 'a.example.com,b.example.com,c.example.com'], '[validate] hostnames: cluster dnsdomain derives its names as <cluster-name>-<member>.example.com; do not give --hostnames'],
    ['docluster', ['roll', '--ips', '10.0.0.21'], '[validate] ips: the members of cluster docluster are named by DNS'],
    ['docluster', ['roll', '--size', 'S-2VCPU'], '[validate] size: "S-2VCPU" is not a droplet size slug'],
    ['ipmode', ['repair'], '[validate] name: is required: the dead member to replace (for example --name etcd2)'],
    ['ipmode', ['repair', '--name', 'etcd9'], '[validate] name: "etcd9" is not a member (members: etcd1, etcd2, etcd3)'],
    ['ipmode', ['repair', '--name', 'etcd2'], "[validate] ip: give the new machine's IPv4 for each replaced member (etcd2): 1 address(es), got 0"],
  ])('%s %j', async (name, args, message) => {
    const cwd = workDir();
    cpSync(join(FIXTURES, 'folders-0.1.0', name), join(cwd, 'out', name), { recursive: true });
    const before = folderSnapshot(join(cwd, 'out', name));
    const result = await runCli([...args, '--cluster-name', name], cwd);
    expect(result.stderr.split('\n')[0]).toContain(`etcd-cloudinit ${args[0]}: ${message}`);
    expect(result.code).toBe(2);
    expect(result.stdout).toBe('');
    expect(folderSnapshot(join(cwd, 'out', name))).toEqual(before);
    expect(existsSync(join(cwd, 'out', name, 'roll.json'))).toBe(false);
  });
});
