/**
 * roll and repair before they touch a cluster: etcd's upgrade rules, replacement names, and every
 * usage error (exit 2, one line naming the field and value, nothing written).
 */
import { cpSync, existsSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { replacementName } from '../../src/commands/roll.js';
import { parseEtcdVersion, upgradeRefusal } from '../../src/versions.js';
import { folderSnapshot, runCli, tempDirsRemovedAfterAll } from '../support/cli.js';
import { FIXTURES } from '../support/golden.js';
import { outputSchemaErrors } from '../support/output-schemas.js';

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
    ['ipmode', ['repair'], '[validate] member: is required: the dead member to replace (for example --member etcd2)'],
    ['ipmode', ['repair', '--name', 'etcd9'], '[validate] member: "etcd9" is not a member (members: etcd1, etcd2, etcd3)'],
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

/**
 * A roll in progress: its dry run reads roll.json and shows what a re-run would still do, the roll's
 * last step (renew-credentials) included, without contacting the cluster. A roll.json an older
 * release wrote (no renewCredentials) still reads.
 */
describe('the dry run of a roll in progress', () => {
  const DONE = ['add', 'promote', 'remove-old', 'retire-old'];
  const rollJson = (stepsDone: string[][], renewCredentials: { done: boolean } | undefined) => ({
    formatVersion: 1,
    current: {
      operation: 'roll',
      startedAt: '2026-01-01T00:00:00.000Z',
      fromVersion: 'v3.5.21',
      target: { etcdVersion: 'v3.5.21', install: { mode: 'download', version: 'v3.5.21', releaseUrl: 'https://github.com/etcd-io/etcd/releases/download' }, keyType: 'ecdsa-p256', keySize: 2048 },
      steps: stepsDone.map((done, index) => ({ old: `etcd${index + 1}`, oldPeerUrl: `https://10.10.0.1${index + 1}:2380`, replacement: { name: `etcd${index + 1}-2`, ip: `10.0.0.2${index + 1}` }, done })),
      ...(renewCredentials ? { renewCredentials } : {}),
    },
    history: [],
  });

  it.each([
    ['members left, then the step', [DONE, ['add'], []], { done: false }, /etcd2 -> etcd2-2 \(10\.0\.0\.22\): promote -> remove-old -> retire-old\n.*\n  then: renew-credentials: out\/ipmode\/pki\/admin\.crt re-issued by the same CA with new keys\n/],
    ['every member replaced, the step pending', [DONE, DONE, DONE], { done: false }, /etcd3 -> etcd3-2 \(10\.0\.0\.23\): done\n  then: renew-credentials: out\/ipmode\/pki\/admin\.crt/],
    ['the step done', [DONE, DONE, DONE], { done: true }, /  then \(done\): renew-credentials: /],
    ['roll.json of an older release', [DONE, ['add'], []], undefined, /The admin and client certificates are kept: this roll does not replace every member, or an older release started it/],
  ])('%s', async (_name, stepsDone, renewCredentials, shown) => {
    const cwd = workDir();
    const folder = join(cwd, 'out', 'ipmode');
    cpSync(join(FIXTURES, 'folders-0.1.0', 'ipmode'), folder, { recursive: true });
    writeFileSync(join(folder, 'roll.json'), `${JSON.stringify(rollJson(stepsDone, renewCredentials), null, 2)}\n`);
    const before = folderSnapshot(folder);
    const text = await runCli(['roll', '--dry-run', '--cluster-name', 'ipmode'], cwd);
    expect(text.code, text.stderr).toBe(0);
    expect(text.stdout).toMatch(/^Dry run: roll of cluster ipmode from v3\.5\.21 to v3\.5\.21, keys ECDSA P-256; nothing was changed or written\./);
    expect(text.stdout).toMatch(shown);
    if (stepsDone.every((done) => done.length === 4)) expect(text.stderr).toContain(`every member replaced; ${renewCredentials?.done === false ? 'renewing the admin and client certificates' : 'checking the cluster version'}`);
    const json = await runCli(['roll', '--dry-run', '--json', '--cluster-name', 'ipmode'], cwd);
    expect(json.code, json.stderr).toBe(0);
    const document = JSON.parse(json.stdout) as { renewCredentials: unknown };
    expect(outputSchemaErrors('roll', document)).toEqual([]);
    expect(document.renewCredentials).toEqual(renewCredentials ? { ...renewCredentials, certificates: ['out/ipmode/pki/admin.crt'], kubernetes: null } : null);
    expect(folderSnapshot(folder)).toEqual(before);
  });

  it('a roll.json whose renewCredentials is not its shape is refused, naming it', async () => {
    const cwd = workDir();
    const folder = join(cwd, 'out', 'ipmode');
    cpSync(join(FIXTURES, 'folders-0.1.0', 'ipmode'), folder, { recursive: true });
    const state = rollJson([DONE, DONE, DONE], { done: false });
    writeFileSync(join(folder, 'roll.json'), JSON.stringify({ ...state, current: { ...state.current, renewCredentials: { done: 'yes' } } }));
    const result = await runCli(['roll', '--dry-run', '--cluster-name', 'ipmode'], cwd);
    expect(result.code).not.toBe(0);
    expect(result.stderr).toContain('renewCredentials');
    expect(readFileSync(join(folder, 'roll.json'), 'utf8')).toContain('"yes"');
  });
});
