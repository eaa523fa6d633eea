import { existsSync, readFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { CommandContext } from '../../src/context.js';
import { runInProcess } from './in-process.js';
import { tempDir } from '../support/cli.js';
import { startFakeDigitalOcean, type FakeDigitalOcean } from './fake-api.js';
import { createDigitalOceanApi } from '../../src/digitalocean/client.js';
import { createDropletCluster } from '../../src/digitalocean/cluster.js';

let fake: FakeDigitalOcean;
let workDir: string;

beforeEach(async () => {
  fake = await startFakeDigitalOcean({ domains: ['example.com'] });
  workDir = tempDir('do');
});
afterEach(async () => {
  await fake.close();
  rmSync(workDir, { recursive: true, force: true });
});

/** The CLI in-process, with the fake's token and URL and an explicit env. */
const run = (args: string[], env: Record<string, string> = {}, overrides: Partial<CommandContext> = {}) =>
  runInProcess(args, workDir, { DIGITALOCEAN_TOKEN: fake.token, DIGITALOCEAN_API_URL: fake.url, ...env }, overrides);

// Small keys keep minting fast; a short poll keeps the fake's new -> active delay cheap.
const FAST = ['--key-size', '2048', '--poll-interval', '0.05', '--wait-timeout', '20'];
const CREATE = ['create-droplets', '--domain', 'example.com', '--region', 'nyc3', '--ssh-key', 'aa:bb:cc', '--ssh-from', '198.51.100.7/32', ...FAST];
const MEMBERS = ['etcd1', 'etcd2', 'etcd3'];
const tag = 'etcd-cluster-etcd';

/** The members' own A records (not the stable client name's). */
const aRecords = () => (fake.domains.get('example.com') ?? []).filter((r) => r.type === 'A' && r.name !== 'etcd');
/** The stable client name's records: A `etcd` and SRV `_etcd-client-ssl._tcp.etcd`. */
const clientNameRecords = () => (fake.domains.get('example.com') ?? []).filter((r) => r.name === 'etcd' || r.name === '_etcd-client-ssl._tcp.etcd');
const dropletsByName = () => new Map([...fake.droplets.values()].map((d) => [d.name, d]));
const userDataFile = (member: string, cluster = 'etcd') => readFileSync(join(workDir, 'out', cluster, 'user-data', `${member}.yaml`), 'utf8');

describe('create-droplets', () => {
  it('builds the whole cluster: VPC, tagged droplets with per-member user-data, A records, firewall', async () => {
    const result = await run(CREATE);
    expect(result.code, result.stderr).toBe(0);

    const droplets = dropletsByName();
    expect([...droplets.keys()].sort()).toEqual(['etcd-etcd1', 'etcd-etcd2', 'etcd-etcd3']);
    const [vpc, ...otherVpcs] = [...fake.vpcs.values()];
    expect(otherVpcs).toEqual([]);
    expect(vpc).toMatchObject({ name: tag, region: 'nyc3', description: 'etcd-cloudinit cluster etcd' });
    for (const member of MEMBERS) {
      const droplet = droplets.get(`etcd-${member}`)!;
      expect(droplet).toMatchObject({ region: 'nyc3', size: 's-1vcpu-2gb', image: 'ubuntu-24-04-x64', tags: [tag], sshKeys: ['aa:bb:cc'], vpcUuid: vpc!.id });
      // Each droplet gets its own user-data, byte for byte what was written to out/.
      expect(droplet.userData).toBe(userDataFile(member));
      expect(droplet.userData).toContain(`# etcd member ${member} (etcd-${member}.example.com) of cluster etcd`);
    }
    expect(new Set([...droplets.values()].map((d) => d.userData)).size).toBe(3);

    // A records: relative names, the private address, a short TTL.
    expect(aRecords().map(({ name, data, ttl }) => ({ name, data, ttl })).sort((a, b) => a.name.localeCompare(b.name))).toEqual(
      MEMBERS.map((member) => ({ name: `etcd-${member}`, data: droplets.get(`etcd-${member}`)!.privateIpv4, ttl: 60 })),
    );
    // The stable client name etcd.example.com: an A record per member, and the SRV records etcd's clients discover members by.
    const privateIps = MEMBERS.map((member) => droplets.get(`etcd-${member}`)!.privateIpv4).sort();
    expect(clientNameRecords().filter((r) => r.type === 'A').map((r) => r.data).sort()).toEqual(privateIps);
    expect(clientNameRecords().filter((r) => r.type === 'SRV').map(({ name, data, port, priority, weight, ttl }) => ({ name, data, port, priority, weight, ttl }))).toEqual(
      MEMBERS.map((member) => ({ name: '_etcd-client-ssl._tcp.etcd', data: `etcd-${member}.example.com.`, port: 2379, priority: 0, weight: 0, ttl: 60 })),
    );

    const [firewall, ...otherFirewalls] = [...fake.firewalls.values()];
    expect(otherFirewalls).toEqual([]);
    expect(firewall).toMatchObject({
      name: tag,
      tags: [tag],
      inboundRules: [
        { protocol: 'tcp', ports: '2379-2380', sources: { addresses: [vpc!.ipRange], tags: [tag] } },
        // Metrics (plain HTTP) from the VPC and the cluster's droplets only.
        { protocol: 'tcp', ports: '2381', sources: { addresses: [vpc!.ipRange], tags: [tag] } },
        { protocol: 'tcp', ports: '22', sources: { addresses: ['198.51.100.7/32'] } },
      ],
    });
    expect(result.stdout).toContain('2379-2380 and 2381 from the tag and the VPC; 2379 from no trusted source; 22 from 198.51.100.7/32');
    for (const member of MEMBERS) expect(droplets.get(`etcd-${member}`)!.userData).toContain('listen-metrics-urls: "http://@PRIVATE_IPV4@:2381"');
    expect(fake.violations).toEqual([]);
    // Outbound open: a firewall without outbound rules would block the etcd download.
    expect(firewall!.outboundRules).toEqual([
      { protocol: 'tcp', ports: 'all', destinations: { addresses: ['0.0.0.0/0', '::/0'] } },
      { protocol: 'udp', ports: 'all', destinations: { addresses: ['0.0.0.0/0', '::/0'] } },
      { protocol: 'icmp', ports: '0', destinations: { addresses: ['0.0.0.0/0', '::/0'] } },
    ]);

    // Progress per droplet, then a summary with endpoints and the health command.
    for (const member of MEMBERS) {
      expect(result.stderr).toMatch(new RegExp(`${member}: created droplet etcd-${member} \\(id \\d+\\)`));
      expect(result.stderr).toMatch(new RegExp(`${member}: active, private 10\\.\\d+\\.0\\.\\d+, public 203\\.0\\.113\\.\\d+`));
      expect(result.stderr).toContain(`${member}: DNS etcd-${member}.example.com -> ${droplets.get(`etcd-${member}`)!.privateIpv4} (created)`);
    }
    expect(result.stdout).toContain('Endpoints: https://etcd-etcd1.example.com:2379,https://etcd-etcd2.example.com:2379,https://etcd-etcd3.example.com:2379');
    expect(result.stdout).toContain('\n  etcd-cloudinit health\n');
    // create-droplets does not wait for etcd: it says where a member that never answers shows why.
    expect(result.stdout).toContain(
      "A member that never answers may have failed to boot: in its droplet's Droplet Console (control panel,\nDroplets > <droplet> > Access), 'cloud-init status --long' and 'systemctl --failed' name the failed step.\n",
    );
    expect(readFileSync(join(workDir, 'out/etcd/etcdctl.env'), 'utf8')).toContain(
      'ETCDCTL_ENDPOINTS=https://etcd-etcd1.example.com:2379,https://etcd-etcd2.example.com:2379,https://etcd-etcd3.example.com:2379',
    );
    const state = JSON.parse(readFileSync(join(workDir, 'out/etcd/digitalocean.json'), 'utf8')) as { domain: string; vpc: { id: string; createdByTool: boolean } };
    expect(state).toMatchObject({ domain: 'example.com', vpc: { id: vpc!.id, createdByTool: true } });

    // Nothing secret on the terminal.
    for (const text of [result.stdout, result.stderr]) {
      expect(text).not.toContain(fake.token);
      expect(text).not.toContain('PRIVATE KEY');
    }
    expect(fake.violations).toEqual([]);
  });

  it('sends exactly the user-data gen-userdata renders in DNS-member mode for the same members', async () => {
    // gen-userdata first: create-droplets reuses that PKI and must send those very files.
    const generated = await run(['gen-userdata', '--domain', 'example.com', '--cluster-name', 'acc', '--names', 'a,b,c', '--key-size', '2048']);
    expect(generated.code, generated.stderr).toBe(0);
    const rendered = new Map(['a', 'b', 'c'].map((member) => [member, userDataFile(member, 'acc')]));

    const created = await run([...CREATE, '--cluster-name', 'acc', '--names', 'a,b,c']);
    expect(created.code, created.stderr).toBe(0);
    for (const [member, text] of rendered) expect(dropletsByName().get(`acc-${member}`)?.userData).toBe(text);

    // And --hostnames with the same names renders the same bytes.
    // (with the stable client name --domain gives by default: it is in every member certificate)
    const explicit = await run(['gen-userdata', '--hostnames', 'acc-a.example.com,acc-b.example.com,acc-c.example.com', '--names', 'a,b,c', '--cluster-name', 'acc', '--client-endpoint', 'acc.example.com', '--key-size', '2048']);
    expect(explicit.code, explicit.stderr).toBe(0);
    for (const [member, text] of rendered) expect(userDataFile(member, 'acc')).toBe(text);
    expect(fake.violations).toEqual([]);
  });

  it('resumes after a failure part-way, creating only what is missing, and a third run changes nothing', async () => {
    fake.fail({ method: 'POST', path: '/v2/droplets', skip: 1, status: 422, message: 'Size is not available in this region.' });
    const first = await run(CREATE);
    expect(first.code).toBe(1);
    const vpc = [...fake.vpcs.values()][0]!;
    const firstDroplet = dropletsByName().get('etcd-etcd1')!;
    expect(first.stderr).toContain(
      [
        'etcd-cloudinit create-droplets: [api] create droplet etcd-etcd2: DigitalOcean refused the request (422: Size is not available in this region.)',
        `Exists now: VPC ${tag} (${vpc.id}), droplet etcd-etcd1 (id ${firstDroplet.id}).`,
        'Not done: droplet etcd-etcd2, droplet etcd-etcd3, DNS records, firewall.',
        'Re-run the same create-droplets command to resume: it finds these by tag and creates only what is missing.',
        'Or remove everything: etcd-cloudinit destroy-droplets --cluster-name etcd --domain example.com --yes',
      ].join('\n'),
    );
    expect(fake.droplets.size).toBe(1);
    const userDataBefore = firstDroplet.userData;

    const before = fake.mutations().length;
    const second = await run(CREATE);
    expect(second.code, second.stderr).toBe(0);
    expect(second.stderr).toContain(`etcd1: droplet etcd-etcd1 exists (id ${firstDroplet.id}`);
    expect(second.stderr).toContain(`vpc: using ${tag} (${vpc.id}`);
    expect(fake.mutations().slice(before).filter((m) => m === 'POST /v2/droplets')).toHaveLength(2);
    expect(fake.mutations().filter((m) => m === 'POST /v2/vpcs')).toHaveLength(1);
    expect([...dropletsByName().keys()].sort()).toEqual(['etcd-etcd1', 'etcd-etcd2', 'etcd-etcd3']);
    // The resumed members share the first member's CA and cluster definition: same PKI kept on disk.
    expect(dropletsByName().get('etcd-etcd1')!.userData).toBe(userDataBefore);
    expect(userDataFile('etcd1')).toBe(userDataBefore);
    expect(aRecords()).toHaveLength(3);
    expect(fake.firewalls.size).toBe(1);

    const settled = fake.mutations().length;
    const third = await run(CREATE);
    expect(third.code, third.stderr).toBe(0);
    expect(fake.mutations().slice(settled)).toEqual([]);
    expect(third.stderr).toContain('firewall: etcd-cluster-etcd');
    expect(third.stderr).toContain('(unchanged)');
    expect(fake.violations).toEqual([]);
  });

  it('refuses to resume without the CA that signed the existing members, or with other members', async () => {
    fake.fail({ method: 'POST', path: '/v2/droplets', skip: 1, status: 500, message: 'Server Error' });
    expect((await run(CREATE)).code).toBe(1);
    expect(fake.droplets.size).toBe(1);

    const otherMembers = await run([...CREATE, '--count', '5']);
    expect(otherMembers.code).toBe(1);
    expect(otherMembers.stderr).toContain(
      '[preflight] droplets etcd-etcd1 exist with initial-cluster etcd1=https://etcd-etcd1.example.com:2380,etcd2=https://etcd-etcd2.example.com:2380,etcd3=https://etcd-etcd3.example.com:2380; this run plans etcd1=',
    );

    rmSync(join(workDir, 'out'), { recursive: true });
    const lostCa = await run(CREATE);
    expect(lostCa.code).toBe(1);
    expect(lostCa.stderr).toContain('[preflight] droplets etcd-etcd1 of cluster etcd exist, but out/etcd/pki/ca.key does not: new members would get another CA and never join.');
    expect(fake.droplets.size).toBe(1);
    expect(existsSync(join(workDir, 'out'))).toBe(false);
  });

  it('--no-metrics: no 2381 in the firewall or the user-data, and cluster.json keeps it off', async () => {
    const result = await run([...CREATE, '--no-metrics']);
    expect(result.code, result.stderr).toBe(0);
    const [firewall] = [...fake.firewalls.values()];
    expect((firewall!.inboundRules as { ports: string }[]).map((rule) => rule.ports)).toEqual(['2379-2380', '22']);
    expect(result.stdout).toContain('2379-2380 from the tag and the VPC; 2379 from no trusted source');
    for (const droplet of fake.droplets.values()) expect(droplet.userData).not.toContain('listen-metrics-urls');
    expect(JSON.parse(readFileSync(join(workDir, 'out/etcd/cluster.json'), 'utf8'))).toMatchObject({ metrics: false, listenFrom: { from: 'do-metadata' } });
    expect(fake.violations).toEqual([]);
  });

  it('refuses --listen-cidr: droplets read their address from the metadata service', async () => {
    const result = await run(['restore', '--domain', 'example.com', '--region', 'nyc3', '--listen-cidr', '10.0.0.0/8', '--backup-url', 's3://b/p/', ...FAST], { SPACES_ACCESS_KEY_ID: 'k', SPACES_SECRET_ACCESS_KEY: 's' });
    expect(result.stderr).toContain("[validate] listen-cidr: \"10.0.0.0/8\" is not for droplets: create-droplets members read their address from DigitalOcean's metadata service");
    expect(result.code).toBe(2);
    expect(fake.mutations()).toEqual([]);
  });

  it('updates a stale A record and a firewall whose SSH sources changed', async () => {
    expect((await run(CREATE)).code).toBe(0);
    const record = aRecords().find((r) => r.name === 'etcd-etcd2')!;
    record.data = '10.99.99.99';
    const again = await run([...CREATE.filter((arg) => arg !== '198.51.100.7/32' && arg !== '--ssh-from'), '--ssh-from', '192.0.2.0/24']);
    expect(again.code, again.stderr).toBe(0);
    expect(record.data).toBe(fake.droplets.get([...fake.droplets.values()].find((d) => d.name === 'etcd-etcd2')!.id)!.privateIpv4);
    expect(again.stderr).toContain('etcd2: DNS etcd-etcd2.example.com');
    expect(again.stderr).toMatch(/etcd2: DNS .* \(updated\)/);
    expect([...fake.firewalls.values()][0]!.inboundRules).toContainEqual({ protocol: 'tcp', ports: '22', sources: { addresses: ['192.0.2.0/24'] } });
    expect(fake.mutations()).toContain(`PUT /v2/firewalls/${[...fake.firewalls.keys()][0]}`);
    expect(fake.violations).toEqual([]);
  });

  it('--dry-run lists every changing call and changes nothing, locally or remotely', async () => {
    const result = await run([...CREATE, '--dry-run']);
    expect(result.code, result.stderr).toBe(0);
    expect(fake.mutations()).toEqual([]);
    expect(existsSync(join(workDir, 'out'))).toBe(false);
    const planned = result.stderr.split('\n').filter((line) => line.startsWith('[dry-run] '));
    expect(planned.map((line) => line.split(' ').slice(1, 3).join(' '))).toEqual([
      'POST /v2/vpcs',
      'POST /v2/droplets',
      'POST /v2/droplets',
      'POST /v2/droplets',
      'POST /v2/domains/example.com/records',
      'POST /v2/domains/example.com/records',
      'POST /v2/domains/example.com/records',
      // the stable client name: 3 A records, then 3 SRV records
      ...Array.from({ length: 6 }, () => 'POST /v2/domains/example.com/records'),
      'POST /v2/firewalls',
    ]);
    expect(planned[1]).toContain('"user_data":"<out/etcd/user-data/etcd1.yaml>"');
    expect(planned[1]).toContain('"vpc_uuid":"<id of the new VPC>"');
    expect(result.stdout).toBe('Dry run: 14 call(s) would change something (listed above); nothing was changed or written.\n');

    const json = await run([...CREATE, '--dry-run', '--json']);
    const parsed = JSON.parse(json.stdout) as { dryRun: boolean; plannedCalls: { method: string; path: string; body: Record<string, unknown> }[] };
    expect(parsed.dryRun).toBe(true);
    expect(parsed.plannedCalls).toHaveLength(14);
    expect(parsed.plannedCalls.at(-1)!.body).toMatchObject({ name: tag, tags: [tag] });
    expect(fake.mutations()).toEqual([]);
  });

  it('--dry-run on an existing cluster plans only the fixes a real run would make', async () => {
    expect((await run(CREATE)).code).toBe(0);
    const settled = fake.mutations().length;
    const nothing = await run([...CREATE, '--dry-run']);
    expect(nothing.code, nothing.stderr).toBe(0);
    expect(nothing.stdout).toBe('Dry run: 0 call(s) would change something (listed above); nothing was changed or written.\n');
    const record = aRecords().find((r) => r.name === 'etcd-etcd3')!;
    record.data = '10.99.99.99';
    const stale = await run([...CREATE, '--dry-run']);
    const planned = stale.stderr.split('\n').filter((line) => line.startsWith('[dry-run] '));
    const address = [...fake.droplets.values()].find((d) => d.name === 'etcd-etcd3')!.privateIpv4;
    // The body as dots serialises it for the real PUT (its key order).
    expect(planned).toEqual([`[dry-run] PUT /v2/domains/example.com/records/${record.id} {"data":"${address}","name":"etcd-etcd3","ttl":60,"type":"A"}`]);
    expect(fake.mutations().length).toBe(settled);
  });

  it('--json prints the result on stdout, progress on stderr', async () => {
    const result = await run([...CREATE, '--json']);
    expect(result.code, result.stderr).toBe(0);
    const parsed = JSON.parse(result.stdout) as { endpoints: string[]; members: { name: string; privateIpv4: string; droplet: string }[]; etcdctlEnv: string };
    expect(parsed.endpoints).toEqual(MEMBERS.map((m) => `https://etcd-${m}.example.com:2379`));
    expect(parsed.members.map((m) => m.droplet)).toEqual(['created', 'created', 'created']);
    expect(parsed.members.every((m) => /^10\./.test(m.privateIpv4))).toBe(true);
    expect(parsed.etcdctlEnv).toBe('out/etcd/etcdctl.env');
    expect(result.stderr).toContain('etcd1: created droplet');
  });

  it('refuses to make a second cluster next to a same-named droplet it does not own', async () => {
    const stranger = await fetch(`${fake.url}/v2/droplets`, {
      method: 'POST',
      headers: { authorization: `Bearer ${fake.token}`, 'content-type': 'application/json' },
      body: JSON.stringify({ name: 'etcd-etcd2', region: 'nyc3', size: 's-1vcpu-1gb', image: 'ubuntu-24-04-x64' }),
    });
    expect(stranger.status).toBe(202);
    const result = await run(CREATE);
    expect(result.code).toBe(1);
    expect(result.stderr).toMatch(/\[preflight\] a droplet named etcd-etcd2 \(id \d+\) exists without tag etcd-cluster-etcd; it is not part of this cluster/);
    expect(fake.droplets.size).toBe(1);
    expect(fake.vpcs.size).toBe(1); // only the region's default VPC the stranger landed in
  });
});

describe('create-droplets errors', () => {
  it('401: a rejected token, nothing minted or created, the token never printed', async () => {
    const result = await run(CREATE, { DIGITALOCEAN_TOKEN: 'dop_v1_wrong_token' });
    expect(result.code).toBe(1);
    expect(result.stderr).toContain(
      'etcd-cloudinit create-droplets: [preflight] read account: DigitalOcean rejected the API token (401: Unable to authenticate you); check DIGITALOCEAN_TOKEN',
    );
    expect(result.stderr).not.toContain('dop_v1_wrong_token');
    expect(existsSync(join(workDir, 'out'))).toBe(false);
    expect(fake.mutations()).toEqual([]);
  });

  it('no token at all', async () => {
    const result = await run(CREATE, { DIGITALOCEAN_TOKEN: '' });
    expect(result.code).toBe(1);
    expect(result.stderr).toContain('[preflight] no DigitalOcean API token: set DIGITALOCEAN_TOKEN (or DIGITALOCEAN_ACCESS_TOKEN) to a token with write scope');
  });

  it('DIGITALOCEAN_ACCESS_TOKEN works too', async () => {
    const result = await run([...CREATE, '--dry-run'], { DIGITALOCEAN_TOKEN: '', DIGITALOCEAN_ACCESS_TOKEN: fake.token });
    expect(result.code, result.stderr).toBe(0);
  });

  it('a domain that is not on DigitalOcean DNS', async () => {
    const result = await run(CREATE.map((arg) => (arg === 'example.com' ? 'example.org' : arg)));
    expect(result.code).toBe(1);
    expect(result.stderr).toContain('[preflight] domain example.org is not on DigitalOcean DNS: add it');
    expect(fake.mutations()).toEqual([]);
  });

  it('the account droplet limit', async () => {
    await fake.close();
    fake = await startFakeDigitalOcean({ domains: ['example.com'], dropletLimit: 2 });
    const result = await run(CREATE);
    expect(result.code).toBe(1);
    expect(result.stderr).toContain('[preflight] the account may have 2 droplets and has 0; 3 more are needed.');
    expect(fake.mutations()).toEqual([]);
  });

  it('429 with Retry-After: waits, says so, and carries on', async () => {
    fake.fail({ method: 'GET', path: '/v2/account', status: 429, retryAfter: '1', message: 'API Rate limit exceeded.' });
    const result = await run(CREATE);
    expect(result.code, result.stderr).toBe(0);
    expect(result.stderr).toContain('api: HTTP 429, retrying in 1 s (attempt 1)');
    expect(fake.droplets.size).toBe(3);
  });

  it('a network failure while waiting names what exists and how to resume or destroy', async () => {
    fake.fail({ method: 'GET', path: '/v2/droplets', skip: 1, network: true });
    const result = await run(CREATE);
    expect(result.code).toBe(1);
    expect(result.stderr).toMatch(/\[api\] list droplets: cannot reach the DigitalOcean API at http:\/\/127\.0\.0\.1:\d+ \(/);
    expect(result.stderr).toMatch(/Exists now: VPC etcd-cluster-etcd \([0-9a-f-]+\), droplet etcd-etcd1 \(id \d+\), droplet etcd-etcd2 \(id \d+\), droplet etcd-etcd3 \(id \d+\)\./);
    expect(result.stderr).toContain('Not done: DNS records, firewall.');
    expect(result.stderr).toContain('destroy-droplets --cluster-name etcd --domain example.com --yes');
  });

  it('nothing listening at DIGITALOCEAN_API_URL', async () => {
    const url = fake.url;
    await fake.close();
    const result = await run(CREATE, { DIGITALOCEAN_API_URL: url });
    fake = await startFakeDigitalOcean();
    expect(result.code).toBe(1);
    expect(result.stderr).toContain(`[api] read account: cannot reach the DigitalOcean API at ${url} (ECONNREFUSED)\nNothing was created.`);
  });

  it('droplets that never become active: a bounded wait', async () => {
    await fake.close();
    fake = await startFakeDigitalOcean({ domains: ['example.com'], activeAfterMs: 3_600_000 });
    const result = await run([...CREATE.filter((a) => a !== '20'), '1'].map((a, i, all) => (all[i - 1] === '--wait-timeout' ? '1' : a)));
    expect(result.code).toBe(1);
    expect(result.stderr).toContain('[api] droplets not active with a private IPv4 after 1 s: etcd-etcd1 (new), etcd-etcd2 (new), etcd-etcd3 (new)');
    expect(result.stderr).toContain('Not done: DNS records, firewall.');
  });

  it.each([
    [['create-droplets', '--region', 'nyc3'], '[validate] domain: is required'],
    [['create-droplets', '--domain', 'example.com'], '[validate] region: is required, e.g. --region nyc3'],
    [['create-droplets', '--domain', 'example.com', '--region', 'nyc3', '--count', '10'], '[validate] count: "10" is not a member count from 1 to 9'],
    [['create-droplets', '--domain', 'example.com', '--region', 'nyc3', '--count', '4'], '[validate] ips: 4 members is an even count'],
    [['create-droplets', '--domain', 'example.com', '--region', 'nyc3', '--ssh-from', '1.2.3.4'], '[validate] ssh-from[0]: "1.2.3.4" is not a CIDR like 198.51.100.7/32'],
    [['create-droplets', '--domain', 'example.com', '--region', 'nyc3', '--ttl', '5'], '[validate] ttl: "5" is not a TTL in whole seconds from 30 to 86400'],
    [['create-droplets', '--domain', 'example.com', '--region', 'nyc3', '--cluster-name', 'a-very-long-cluster-name', '--names', 'member-one'], '[validate] names[0]: droplet name "a-very-long-cluster-name-member-one" (<cluster-name>-<member>) is longer than 32 characters'],
    [['create-droplets', '--domain', 'Not_A_Domain', '--region', 'nyc3'], '[validate] domain: "not_a_domain" is not a lowercase fully qualified DNS name'],
    [['create-droplets', '--domain', 'example.com', '--region', 'nyc3', '--vpc-uuid', 'nope'], '[validate] vpc-uuid: "nope" is not a VPC id (a UUID)'],
  ])('%j', async (args, message) => {
    const result = await run(args);
    expect(result.code).toBe(2);
    expect(result.stderr).toContain(message);
    expect(fake.requests).toEqual([]);
  });
});

describe('createDropletCluster (the steps, with a virtual clock)', () => {
  it('says every 30 s what it is waiting for, and gives up at the deadline', async () => {
    await fake.close();
    fake = await startFakeDigitalOcean({ domains: ['example.com'], activeAfterMs: 3_600_000 });
    let clock = 0;
    const lines: string[] = [];
    const api = createDigitalOceanApi({ token: fake.token, apiUrl: fake.url });
    const members = ['etcd1'].map((name) => ({ name, dropletName: `etcd-${name}`, hostname: `etcd-${name}.example.com` }));
    const attempt = createDropletCluster(
      api,
      { clusterName: 'etcd', domain: 'example.com', region: 'nyc3', size: 's-1vcpu-2gb', image: 'ubuntu-24-04-x64', sshKeys: [], sshFrom: [], vpcUuid: undefined, vpcRange: undefined, ttl: 60, metrics: true, members },
      {
        progress: (line) => void lines.push(line),
        sleep: async (ms) => void (clock += ms),
        now: () => clock,
        waitTimeoutMs: 65_000,
        pollIntervalMs: 10_000,
        userData: async () => '#cloud-config\n',
        userDataPath: () => 'x',
      },
    );
    await expect(attempt).rejects.toThrow('droplets not active with a private IPv4 after 65 s: etcd-etcd1 (new)');
    expect(lines.filter((line) => line.startsWith('waiting for'))).toEqual([
      'waiting for etcd-etcd1 (new): 30 s of at most 65 s',
      'waiting for etcd-etcd1 (new): 60 s of at most 65 s',
    ]);
    expect(fake.requests.filter((r) => r.method === 'GET' && r.path === '/v2/droplets' && r.query['tag_name'])).toHaveLength(8);
  });
});

describe('destroy-droplets', () => {
  it('removes droplets by tag, DNS records, firewall and the VPC it created; then finds nothing', async () => {
    expect((await run(CREATE)).code).toBe(0);
    // Someone else's record in the same zone stays.
    fake.domains.get('example.com')!.push({ id: 1, type: 'A', name: 'www', data: '203.0.113.200', ttl: 300 });

    const result = await run(['destroy-droplets', '--yes']);
    expect(result.code, result.stderr).toBe(0);
    expect(result.stderr).toContain('Cluster etcd (tag etcd-cluster-etcd):');
    expect(result.stderr).toMatch(/deleted 3 droplet\(s\) tagged etcd-cluster-etcd: etcd-etcd1, etcd-etcd2, etcd-etcd3/);
    expect(fake.droplets.size).toBe(0);
    expect(aRecords().map((r) => r.name)).toEqual(['www']);
    expect(fake.firewalls.size).toBe(0);
    expect(fake.vpcs.size).toBe(0);
    expect(fake.mutations()).toContain('DELETE /v2/droplets');
    expect(fake.requests.find((r) => r.method === 'DELETE' && r.path === '/v2/droplets')?.query).toEqual({ tag_name: 'etcd-cluster-etcd' });
    expect(result.stdout).toContain('Destroyed cluster etcd.');
    // The local PKI stays: the CA key is the only way to add members later.
    expect(existsSync(join(workDir, 'out/etcd/pki/ca.key'))).toBe(true);

    const again = await run(['destroy-droplets', '--yes']);
    expect(again.code).toBe(0);
    expect(again.stdout).toBe('Nothing to destroy for cluster etcd: no droplet tagged etcd-cluster-etcd, no firewall, DNS record or VPC of it.\n');
    expect(fake.violations).toEqual([]);
  });

  it('after the droplets are gone, removes only the records create-droplets recorded', async () => {
    expect((await run(CREATE)).code).toBe(0);
    await fetch(`${fake.url}/v2/droplets?tag_name=${tag}`, { method: 'DELETE', headers: { authorization: `Bearer ${fake.token}` } });
    fake.domains.get('example.com')!.push({ id: 2, type: 'A', name: 'etcd-backup', data: '10.0.0.99', ttl: 300 });
    const result = await run(['destroy-droplets', '--yes']);
    expect(result.code, result.stderr).toBe(0);
    expect(aRecords().map((r) => r.name)).toEqual(['etcd-backup']);
    expect(fake.firewalls.size).toBe(0);
  });

  it('keeps a VPC it did not create (--vpc-uuid)', async () => {
    const own = await fetch(`${fake.url}/v2/vpcs`, {
      method: 'POST',
      headers: { authorization: `Bearer ${fake.token}`, 'content-type': 'application/json' },
      body: JSON.stringify({ name: 'shared', region: 'nyc3', ip_range: '10.50.0.0/20' }),
    });
    const vpcId = ((await own.json()) as { vpc: { id: string } }).vpc.id;
    expect((await run([...CREATE, '--vpc-uuid', vpcId])).code).toBe(0);
    expect([...fake.droplets.values()].every((d) => d.vpcUuid === vpcId && d.privateIpv4.startsWith('10.50.'))).toBe(true);
    expect([...fake.firewalls.values()][0]!.inboundRules[0]).toMatchObject({ sources: { addresses: ['10.50.0.0/20'] } });

    expect((await run(['destroy-droplets', '--yes'])).code).toBe(0);
    expect([...fake.vpcs.keys()]).toEqual([vpcId]);
    expect(fake.droplets.size).toBe(0);
  });

  it('asks first; no answer means no deletion', async () => {
    expect((await run(CREATE)).code).toBe(0);
    const before = fake.mutations().length;
    const declined = await run(['destroy-droplets'], {}, { confirm: async () => false });
    expect(declined.code).toBe(1);
    expect(declined.stderr).toContain('Nothing deleted.');
    const noTerminal = await run(['destroy-droplets'], {}, { confirm: async () => undefined });
    expect(noTerminal.code).toBe(2);
    expect(noTerminal.stderr).toContain('[validate] yes: refusing to delete without confirmation; no terminal to ask on, so pass --yes');
    const dry = await run(['destroy-droplets', '--dry-run']);
    expect(dry.code).toBe(0);
    expect(dry.stderr).toContain('[dry-run] DELETE /v2/droplets?tag_name=etcd-cluster-etcd');
    expect(fake.mutations().length).toBe(before);
    const accepted = await run(['destroy-droplets'], {}, { confirm: async () => true });
    expect(accepted.code, accepted.stderr).toBe(0);
    expect(fake.droplets.size).toBe(0);
  });

  it('finds DNS records without the state file when given --domain', async () => {
    expect((await run(CREATE)).code).toBe(0);
    rmSync(join(workDir, 'out'), { recursive: true });
    const result = await run(['destroy-droplets', '--domain', 'example.com', '--yes', '--json']);
    expect(result.code, result.stderr).toBe(0);
    const parsed = JSON.parse(result.stdout) as { deleted: boolean; dnsRecords: { name: string }[] };
    expect(parsed.deleted).toBe(true);
    expect(parsed.dnsRecords.map((r) => r.name).sort()).toEqual(
      [...MEMBERS.map((m) => `etcd-${m}.example.com`), ...MEMBERS.map(() => 'etcd.example.com'), ...MEMBERS.map(() => '_etcd-client-ssl._tcp.etcd.example.com')].sort(),
    );
    expect(aRecords()).toEqual([]);
    expect(clientNameRecords()).toEqual([]);
  });
});
