import { cpSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { COMMANDS } from '../../src/cli.js';
import { runCli, tempDirsRemovedAfterAll } from '../support/cli.js';
import { FIXTURES } from '../support/golden.js';
import { LoopbackCluster } from '../support/loopback-cluster.js';

const workDir = tempDirsRemovedAfterAll('day2v');

/** Usage errors need no running cluster: a generated folder is enough. */
describe('day-2 usage errors (exit 2, one line naming the field and value)', () => {
  let cluster: LoopbackCluster;

  beforeAll(async () => {
    cluster = await LoopbackCluster.create('ip');
  });

  afterAll(async () => {
    await cluster?.cleanup();
  });

  it.each([
    [['add-member'], '[validate] ip: is required (for example --ip 10.10.0.14)'],
    [['add-member', '--ip', '10.0.0.256'], '[validate] ip: "10.0.0.256" is not an IPv4 address'],
    [['add-member', '--ip', '10.0.0'], '[validate] ip: "10.0.0" is not an IPv4 address'],
    [['add-member', '--ip', '224.0.0.9'], '[validate] ip: "224.0.0.9" is not a unicast host address'],
    [['add-member', '--ip', '10.0.0.9', '--name', 'Delta'], `[validate] name: "Delta" is not a lowercase DNS label`],
    [['add-member', '--ip', '10.0.0.9', '--name', 'etcd3'], '[validate] name: "etcd3" is already a member'],
    [['add-member', '--ip', '10.0.0.9', '--name', 'admin'], '[validate] name: "admin" is reserved for pki/admin.crt; choose another member name'],
    [['add-member', '--ip', '10.0.0.9', '--timeout', '0'], '[validate] timeout: "0" is not a number of seconds above 0 and at most 600'],
    [['add-member', '--ip', '10.0.0.9', '--cluster-name', 'prod'], '[parse] cluster-name: no cluster.json in'],
    [['add-member', '--ips', '10.0.0.9'], "[parse] Unknown option '--ips'"],
    [['remove-member', '--yes'], '[validate] member: is required (for example --member etcd3)'],
    [['remove-member', '--member', 'etcd9', '--yes'], '[validate] member: "etcd9" is not a member (members: etcd1, etcd2, etcd3)'],
    [['health', '--warn-days', 'soon'], '[validate] warn-days: "soon" is not a whole number of days from 0 to 3650'],
    [['renew-certs', '--member', 'etcd9'], '[validate] member: "etcd9" is not a member (members: etcd1, etcd2, etcd3)'],
    [['renew-certs', '--cert-days', '0'], '[validate] cert-days: "0" is not a whole number of days from 1 to 3650'],
    [['renew-certs', '--timeout', '0'], '[validate] timeout: "0" is not a number of seconds above 0 and at most 3600'],
  ])('%j -> %s', async (args, message) => {
    const result = await cluster.cli(args);
    expect(result.code).toBe(2);
    expect(result.stdout).toBe('');
    const [first] = result.stderr.split('\n');
    expect(first).toContain(`etcd-cloudinit ${args[0]}: ${message}`);
  });

  it('add-member refuses an address a member already has', async () => {
    const result = await cluster.cli(['add-member', '--ip', cluster.ip(2)]);
    expect(result.code).toBe(2);
    expect(result.stderr).toContain(`etcd-cloudinit add-member: [validate] ip: "${cluster.ip(2)}" is already used by member etcd2`);
  });

  it('a missing cluster folder names the folder and the way out', async () => {
    const result = await runCli(['health', '--out', 'elsewhere'], cluster.workDir);
    expect(result.code).toBe(2);
    expect(result.stderr).toContain(`[parse] cluster-name: no cluster.json in "${cluster.workDir}/elsewhere/etcd"; run gen-userdata first`);
  });
});

/** add-member names the new member in the cluster's own mode; folders as 0.1.0 wrote them, no cluster needed. */
describe('add-member in each kind of cluster: usage errors', () => {
  it.each([
    ['ipmode', ['--hostname', 'etcd4.example.com'], '[validate] hostname: the members of cluster ipmode are addressed by IPv4; give the new member\'s --ip instead'],
    ['dnsdomain', ['--ip', '10.0.0.9'], '[validate] ip: the members of cluster dnsdomain are named by DNS (DNS-member mode), and each listens on the address its machine has; give --hostname, or only --name to use <cluster-name>-<name>.example.com'],
    ['dnshosts', ['--name', 'etcd4'], '[validate] hostname: is required: the members of cluster dnshosts are named by DNS (for example --hostname etcd4.example.com)'],
    ['dnshosts', ['--hostname', 'Bad_Name'], '[validate] hostname: "Bad_Name" is not a lowercase fully qualified DNS name'],
    ['dnshosts', ['--hostname', 'b.db.example.net'], '[validate] hostname: "b.db.example.net" is already used by member etcd2'],
    ['docluster', ['--hostname', 'x.example.com'], '[validate] hostname: create-droplets made cluster docluster, so its names are <cluster-name>-<member>.example.com (the droplet\'s A record); give only --name'],
    ['docluster', ['--name', 'a-name-that-is-far-too-long'], '[validate] name: droplet name "docluster-a-name-that-is-far-too-long" (<cluster-name>-<member>) is longer than 32 characters'],
    ['docluster', ['--wait-timeout', '0'], '[validate] wait-timeout: "0" is not a number of seconds from 1 to 3600'],
  ])('%s %j', async (name, args, message) => {
    const cwd = workDir();
    cpSync(join(FIXTURES, 'folders-0.1.0', name), join(cwd, 'out', name), { recursive: true });
    const result = await runCli(['add-member', '--cluster-name', name, ...args], cwd);
    expect(result.code).toBe(2);
    expect(result.stdout).toBe('');
    expect(result.stderr.split('\n')[0]).toContain(`etcd-cloudinit add-member: ${message}`);
  });
});

describe('day-2 commands in the CLI table', () => {
  it.each(['health', 'defrag', 'add-member', 'remove-member', 'renew-certs', 'roll', 'repair'])('%s has --help with options and examples', async (name) => {
    const command = COMMANDS.find((candidate) => candidate.name === name);
    expect(command).toBeDefined();
    const result = await runCli([name, '--help'], '/');
    expect(result.code).toBe(0);
    expect(result.stdout).toContain(`Usage: etcd-cloudinit ${name}`);
    expect(result.stdout).toMatch(/Examples:\n {2}etcd-cloudinit /);
    const main = await runCli(['--help'], '/');
    expect(main.stdout).toMatch(new RegExp(`^ {2}${name} +\\S`, 'm'));
  });
});
