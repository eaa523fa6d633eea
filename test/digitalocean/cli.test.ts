import { readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runCli, tempDir } from '../support/cli.js';
import { startFakeDigitalOcean, type FakeDigitalOcean } from './fake-api.js';

/** The real entry point (`node bin/etcd-cloudinit.js`), its env given explicitly, against the fake API. */
describe('create-droplets / destroy-droplets (black box)', () => {
  let fake: FakeDigitalOcean;
  const workDir = tempDir('do-cli');
  const env = () => ({ DIGITALOCEAN_TOKEN: fake.token, DIGITALOCEAN_API_URL: fake.url });

  beforeAll(async () => {
    fake = await startFakeDigitalOcean({ domains: ['example.com'] });
  });
  afterAll(async () => {
    await fake.close();
    rmSync(workDir, { recursive: true, force: true });
  });

  it('creates, resumes as a no-op, and destroys a cluster', async () => {
    const args = ['create-droplets', '--domain', 'example.com', '--region', 'ams3', '--ssh-key', '12345', '--key-size', '2048', '--poll-interval', '0.1', '--cluster-name', 'blackbox'];
    const created = await runCli(args, workDir, env());
    expect(created.code, created.stderr).toBe(0);
    expect(created.stdout).toContain('Cluster blackbox on DigitalOcean: 3 droplet(s) in ams3, VPC etcd-cluster-blackbox');
    expect(created.stdout).toContain('\n  etcd-cloudinit health --cluster-name blackbox\n');
    expect(fake.droplets.size).toBe(3);
    for (const droplet of fake.droplets.values()) {
      const member = droplet.name.replace('blackbox-', '');
      expect(droplet.userData).toBe(readFileSync(join(workDir, 'out', 'blackbox', 'user-data', `${member}.yaml`), 'utf8'));
      // --ssh-key 12345 (a numeric id) is sent as given.
      expect(droplet.sshKeys).toEqual(['12345']);
    }

    const mutations = fake.mutations().length;
    const again = await runCli(args, workDir, env());
    expect(again.code, again.stderr).toBe(0);
    expect(fake.mutations().length).toBe(mutations);

    const destroyed = await runCli(['destroy-droplets', '--cluster-name', 'blackbox', '--yes'], workDir, env());
    expect(destroyed.code, destroyed.stderr).toBe(0);
    expect(fake.droplets.size).toBe(0);
    expect(fake.firewalls.size).toBe(0);
    expect(fake.vpcs.size).toBe(0);
    expect((fake.domains.get('example.com') ?? []).filter((r) => r.type === 'A')).toEqual([]);
    expect(fake.violations).toEqual([]);
  });

  it('takes --config, the raft timings, the quota and --print as gen-userdata does', async () => {
    writeFileSync(join(workDir, 'cluster.yaml'), 'cluster-name: cfg\nnames: [alpha, beta, gamma]\nheartbeat-interval: 150\nquota-backend-bytes: 4294967296\n');
    const args = ['create-droplets', '--config', 'cluster.yaml', '--domain', 'example.com', '--region', 'ams3', '--key-size', '2048', '--poll-interval', '0.1', '--election-timeout', '1500'];
    const created = await runCli([...args, '--print', 'beta'], workDir, env());
    expect(created.code, created.stderr).toBe(0);
    // The config's names and cluster name, the flag's and the config's raft timings.
    expect([...fake.droplets.values()].map((droplet) => droplet.name).sort()).toEqual(['cfg-alpha', 'cfg-beta', 'cfg-gamma']);
    const beta = readFileSync(join(workDir, 'out', 'cfg', 'user-data', 'beta.yaml'), 'utf8');
    expect(beta).toContain('heartbeat-interval: 150');
    expect(beta).toContain('election-timeout: 1500');
    expect(beta).toContain('quota-backend-bytes: 4294967296');
    expect(JSON.parse(readFileSync(join(workDir, 'out', 'cfg', 'cluster.json'), 'utf8'))).toMatchObject({ quotaBackendBytes: 4294967296 });
    // --print: that member's user-data on stdout, the summary on stderr.
    expect(created.stdout).toBe(beta);
    expect(created.stderr).toContain('Cluster cfg on DigitalOcean: 3 droplet(s) in ams3');
    // A re-run creates nothing and prints the folder's user-data.
    const again = await runCli([...args, '--print', 'gamma'], workDir, env());
    expect(again.code, again.stderr).toBe(0);
    expect(again.stdout).toBe(readFileSync(join(workDir, 'out', 'cfg', 'user-data', 'gamma.yaml'), 'utf8'));

    for (const [extra, message] of [
      [['--print', 'delta'], '[validate] print: "delta" is not a member (members: alpha, beta, gamma)'],
      [['--print', 'beta', '--dry-run'], '[validate] print: a dry run writes no user-data to print; drop --dry-run or --print'],
      [['--print', 'beta', '--json'], '[validate] print: cannot be combined with --json'],
    ] as const) {
      const refused = await runCli([...args, ...extra], workDir, env());
      expect(refused.code, refused.stderr).toBe(2);
      expect(refused.stderr).toContain(message);
    }
    const destroyed = await runCli(['destroy-droplets', '--cluster-name', 'cfg', '--yes'], workDir, env());
    expect(destroyed.code, destroyed.stderr).toBe(0);
    expect(fake.violations).toEqual([]);
  });

  it('without --yes and without a terminal, refuses to delete', async () => {
    const response = await fetch(`${fake.url}/v2/droplets`, {
      method: 'POST',
      headers: { authorization: `Bearer ${fake.token}`, 'content-type': 'application/json' },
      body: JSON.stringify({ name: 'blackbox-etcd1', region: 'ams3', size: 's-1vcpu-2gb', image: 'ubuntu-24-04-x64', tags: ['etcd-cluster-blackbox'] }),
    });
    expect(response.status).toBe(202);
    const refused = await runCli(['destroy-droplets', '--cluster-name', 'blackbox'], workDir, env());
    expect(refused.code).toBe(2);
    expect(refused.stderr).toContain('[validate] yes: refusing to delete without confirmation; no terminal to ask on, so pass --yes');
    expect(fake.droplets.size).toBe(1);
    const done = await runCli(['destroy-droplets', '--cluster-name', 'blackbox', '--yes'], workDir, env());
    expect(done.code, done.stderr).toBe(0);
    expect(fake.droplets.size).toBe(0);
    const again = await runCli(['destroy-droplets', '--cluster-name', 'blackbox', '--yes'], workDir, env());
    expect(again.stdout).toContain('Nothing to destroy for cluster blackbox');
  });

  it('a wrong token: exit 1, one clear line, the token not echoed', async () => {
    const result = await runCli(['create-droplets', '--domain', 'example.com', '--region', 'ams3'], workDir, { DIGITALOCEAN_TOKEN: 'dop_v1_secret_wrong', DIGITALOCEAN_API_URL: fake.url });
    expect(result.code).toBe(1);
    expect(result.stderr).toContain('[preflight] read account: DigitalOcean rejected the API token (401: Unable to authenticate you); check DIGITALOCEAN_TOKEN');
    expect(result.stderr + result.stdout).not.toContain('dop_v1_secret_wrong');
  });

  it('lists both commands and documents every option in --help', async () => {
    const help = await runCli(['--help'], workDir);
    expect(help.stdout).toContain('create-droplets');
    expect(help.stdout).toContain('destroy-droplets');
    const create = await runCli(['create-droplets', '--help'], workDir);
    for (const option of ['--domain', '--region', '--size', '--image', '--ssh-key', '--ssh-from', '--count', '--names', '--vpc-uuid', '--vpc-range', '--ttl', '--dry-run', '--json', '--wait-timeout']) {
      expect(create.stdout).toContain(option);
    }
    const destroy = await runCli(['destroy-droplets', '--help'], workDir);
    for (const option of ['--cluster-name', '--domain', '--yes', '--dry-run', '--json']) expect(destroy.stdout).toContain(option);
  });
});
