import { execFile } from 'node:child_process';
import { existsSync, readFileSync, readdirSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { beforeAll, describe, expect, it } from 'vitest';
import { parse as parseYaml } from 'yaml';
import { runCli, tempDirsRemovedAfterAll } from './support/cli.js';

const execFileAsync = promisify(execFile);
const IPS = '10.10.0.11,10.10.0.12,10.10.0.13';
const workDir = tempDirsRemovedAfterAll('cli');

function mode(path: string): string {
  return (statSync(path).mode & 0o777).toString(8);
}

describe('etcd-cloudinit gen-userdata (black box)', () => {
  const cwd = workDir();
  const clusterDir = join(cwd, 'out', 'etcd');
  let first: Awaited<ReturnType<typeof runCli>>;

  beforeAll(async () => {
    first = await runCli(['gen-userdata', '--ips', IPS, '--key-size', '2048'], cwd);
  });

  it('writes the documented layout with private keys 0600', () => {
    expect(first.code, first.stderr).toBe(0);
    expect(readdirSync(clusterDir).sort()).toEqual(['cluster.json', 'etcdctl.env', 'pki', 'user-data']);
    expect(readdirSync(join(clusterDir, 'pki')).sort()).toEqual(
      ['admin.crt', 'admin.key', 'ca.crt', 'ca.key', 'etcd1.crt', 'etcd1.key', 'etcd2.crt', 'etcd2.key', 'etcd3.crt', 'etcd3.key'],
    );
    expect(readdirSync(join(clusterDir, 'user-data')).sort()).toEqual(['etcd1.yaml', 'etcd2.yaml', 'etcd3.yaml']);
    for (const key of ['ca', 'admin', 'etcd1', 'etcd2', 'etcd3']) expect(mode(join(clusterDir, 'pki', `${key}.key`)), key).toBe('600');
    expect(mode(join(clusterDir, 'user-data', 'etcd1.yaml'))).toBe('600');
    expect(mode(join(clusterDir, 'pki', 'ca.crt'))).toBe('644');
    // Nothing left over from the staging directory.
    expect(readdirSync(join(cwd, 'out'))).toEqual(['etcd']);
  });

  it('prints no private key and never puts the CA key into user-data', () => {
    expect(first.stdout + first.stderr).not.toMatch(/PRIVATE KEY/);
    const caKey = readFileSync(join(clusterDir, 'pki', 'ca.key'), 'utf8');
    for (const member of ['etcd1', 'etcd2', 'etcd3']) {
      const userData = readFileSync(join(clusterDir, 'user-data', `${member}.yaml`), 'utf8');
      expect(userData).not.toContain(caKey.split('\n')[1]);
      expect(userData).toContain(readFileSync(join(clusterDir, 'pki', `${member}.key`), 'utf8').split('\n')[1]);
      expect(userData.match(/BEGIN PRIVATE KEY/g)).toHaveLength(1);
    }
  });

  it('puts the member key on the node 0600 owned by etcd, deferred until the user exists', () => {
    const config = parseYaml(readFileSync(join(clusterDir, 'user-data', 'etcd2.yaml'), 'utf8')) as { write_files: { path: string; owner: string; permissions: string; defer?: boolean }[] };
    const key = config.write_files.find((file) => file.path === '/etc/etcd/pki/member.key');
    expect(key).toMatchObject({ owner: 'etcd:etcd', permissions: '0600', defer: true });
    for (const file of config.write_files.filter((entry) => entry.owner.startsWith('etcd'))) expect(file.defer, file.path).toBe(true);
  });

  it('describes the cluster in cluster.json and etcdctl.env', async () => {
    const cluster = JSON.parse(readFileSync(join(clusterDir, 'cluster.json'), 'utf8')) as {
      members: { name: string; ip: string; certificate: { sha256Fingerprint: string; notAfter: string } }[];
      endpoints: string[];
      etcdVersion: string;
    };
    expect(cluster.members.map((member) => [member.name, member.ip])).toEqual([['etcd1', '10.10.0.11'], ['etcd2', '10.10.0.12'], ['etcd3', '10.10.0.13']]);
    expect(cluster.endpoints).toEqual(['https://10.10.0.11:2379', 'https://10.10.0.12:2379', 'https://10.10.0.13:2379']);
    expect(cluster.etcdVersion).toBe('v3.6.16');
    const { stdout: fingerprint } = await execFileAsync('openssl', ['x509', '-in', join(clusterDir, 'pki', 'etcd1.crt'), '-noout', '-fingerprint', '-sha256']);
    expect(fingerprint.trim()).toBe(`sha256 Fingerprint=${cluster.members[0]!.certificate.sha256Fingerprint}`);
    const { stdout: env } = await execFileAsync('sh', ['-c', `. ${join(clusterDir, 'etcdctl.env')} && env`]);
    expect(env).toContain('ETCDCTL_ENDPOINTS=https://10.10.0.11:2379,https://10.10.0.12:2379,https://10.10.0.13:2379');
    expect(env).toContain(`ETCDCTL_KEY=${join(clusterDir, 'pki', 'admin.key')}`);
  });

  it('keeps the CA and unchanged certificates on a re-run, and --force re-mints leaves only', async () => {
    const before = Object.fromEntries(['ca.key', 'ca.crt', 'etcd1.crt', 'admin.crt'].map((file) => [file, readFileSync(join(clusterDir, 'pki', file), 'utf8')]));
    const again = await runCli(['gen-userdata', '--ips', IPS, '--key-size', '2048'], cwd);
    expect(again.code, again.stderr).toBe(0);
    expect(again.stdout).toMatch(/ca +kept/);
    for (const [file, content] of Object.entries(before)) expect(readFileSync(join(clusterDir, 'pki', file), 'utf8'), file).toBe(content);
    const forced = await runCli(['gen-userdata', '--ips', IPS, '--key-size', '2048', '--force'], cwd);
    expect(forced.code, forced.stderr).toBe(0);
    expect(readFileSync(join(clusterDir, 'pki', 'ca.key'), 'utf8')).toBe(before['ca.key']);
    expect(readFileSync(join(clusterDir, 'pki', 'etcd1.crt'), 'utf8')).not.toBe(before['etcd1.crt']);
  });

  it('--print writes exactly one member\'s user-data to stdout and the summary to stderr', async () => {
    const printed = await runCli(['gen-userdata', '--ips', IPS, '--key-size', '2048', '--print', 'etcd2'], cwd);
    expect(printed.code, printed.stderr).toBe(0);
    expect(printed.stdout).toBe(readFileSync(join(clusterDir, 'user-data', 'etcd2.yaml'), 'utf8'));
    expect(printed.stderr).toContain('Wrote out/etcd/');
  });
});

describe('bad input: clear error, exit code, nothing written', () => {
  it.each([
    [['gen-userdata', '--ips', '10.0.0.1,10.0.0.2,10.0.0.300'], 2, 'etcd-cloudinit gen-userdata: [validate] ips[2]: "10.0.0.300" is not an IPv4 address'],
    [['gen-userdata', '--ips', IPS, '--key-size', '1000'], 2, 'etcd-cloudinit gen-userdata: [validate] key-size: 1000 is not one of 2048, 3072, 4096'],
    [['gen-userdata', '--ips', IPS, '--bogus'], 2, "etcd-cloudinit gen-userdata: [parse] Unknown option '--bogus'"],
    [['gen-userdata', '--ips', IPS, '--print', 'etcd9'], 2, 'etcd-cloudinit gen-userdata: [validate] print: "etcd9" is not a member (members: etcd1, etcd2, etcd3)'],
    [['gen-userdata', '--config', 'missing.yaml'], 2, 'etcd-cloudinit gen-userdata: [parse] config: cannot read "missing.yaml": ENOENT'],
    [['frobnicate'], 2, 'etcd-cloudinit: unknown command "frobnicate"'],
  ])('%j exits %i: %s', async (args, code, message) => {
    const cwd = workDir();
    const run = await runCli(args, cwd);
    expect(run.code).toBe(code);
    expect(run.stderr.split('\n')[0]).toBe(message);
    expect(run.stdout).toBe('');
    expect(existsSync(join(cwd, 'out'))).toBe(false);
  });

  it('reports a broken config file with the field from the file', async () => {
    const cwd = workDir();
    writeFileSync(join(cwd, 'cluster.yaml'), 'members:\n  - ip: 10.0.0.1\n    name: Alpha\n');
    const run = await runCli(['gen-userdata', '--config', 'cluster.yaml'], cwd);
    expect(run.code).toBe(2);
    expect(run.stderr).toContain(`[validate] members[0].name: "Alpha" is not a lowercase DNS label`);
    expect(existsSync(join(cwd, 'out'))).toBe(false);
  });

  it('never overwrites a CA key that does not match its certificate, and changes nothing', async () => {
    const cwd = workDir();
    expect((await runCli(['gen-userdata', '--ips', IPS, '--key-size', '2048'], cwd)).code).toBe(0);
    const pki = join(cwd, 'out', 'etcd', 'pki');
    const foreignKey = readFileSync(join(pki, 'admin.key'), 'utf8');
    writeFileSync(join(pki, 'ca.key'), foreignKey, { mode: 0o600 });
    const snapshot = readdirSync(pki).map((file) => readFileSync(join(pki, file), 'utf8'));
    const run = await runCli(['gen-userdata', '--ips', IPS, '--key-size', '2048', '--force'], cwd);
    expect(run.code).toBe(1);
    expect(run.stderr).toContain('[mint] pki/ca.key does not belong to pki/ca.crt');
    expect(readdirSync(pki).map((file) => readFileSync(join(pki, file), 'utf8'))).toEqual(snapshot);
    expect(readdirSync(join(cwd, 'out'))).toEqual(['etcd']);
  });

  it.each([
    ['null', 'null\n'],
    ['not JSON', '{"clusterName": "etcd", '],
  ])('rewrites a damaged cluster.json (%s) with the CA kept', async (_label, damaged) => {
    const cwd = workDir();
    expect((await runCli(['gen-userdata', '--ips', IPS, '--key-size', '2048'], cwd)).code).toBe(0);
    const clusterJson = join(cwd, 'out', 'etcd', 'cluster.json');
    const caKey = readFileSync(join(cwd, 'out', 'etcd', 'pki', 'ca.key'), 'utf8');
    writeFileSync(clusterJson, damaged);
    const run = await runCli(['gen-userdata', '--ips', IPS, '--key-size', '2048'], cwd);
    expect(run.stderr).toBe('');
    expect(run.code).toBe(0);
    expect((JSON.parse(readFileSync(clusterJson, 'utf8')) as { members: unknown[] }).members).toHaveLength(3);
    expect(readFileSync(join(cwd, 'out', 'etcd', 'pki', 'ca.key'), 'utf8')).toBe(caKey);
  });

  it('fails the write phase without leaving a half-filled folder', async () => {
    const cwd = workDir();
    // A file where the output folder's parent should be: the write cannot even start.
    writeFileSync(join(cwd, 'out'), 'not a directory');
    const run = await runCli(['gen-userdata', '--ips', IPS, '--key-size', '2048'], cwd);
    expect(run.code).toBe(1);
    expect(run.stderr).toMatch(/^etcd-cloudinit gen-userdata: \[write\] cannot write .*out\/etcd/);
    expect(readFileSync(join(cwd, 'out'), 'utf8')).toBe('not a directory');
    expect(readdirSync(cwd)).toEqual(['out']);
  });
});

describe('help', () => {
  it('lists commands and every gen-userdata option', async () => {
    const main = await runCli(['--help'], workDir());
    expect(main.code).toBe(0);
    expect(main.stdout).toContain('gen-userdata');
    const help = await runCli(['gen-userdata', '--help'], workDir());
    expect(help.code).toBe(0);
    for (const option of ['--ips', '--names', '--cluster-name', '--config', '--out', '--etcd-version', '--release-url', '--etcd-sha256', '--key-size', '--cert-days', '--allow-even', '--force', '--print']) {
      expect(help.stdout, option).toContain(option);
    }
  });
});
