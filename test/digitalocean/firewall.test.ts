/**
 * Issue 23: who may reach a create-droplets cluster from outside its VPC. --trusted-source opens
 * etcd's client port (never the peer port) to listed sources; --ssh-from and the trusted sources
 * are recorded in digitalocean.json, so a re-run without the flags keeps them; `firewall` changes
 * them in place; a rule added by hand is never dropped silently. Against the fake API, which
 * checks every request body against DigitalOcean's OpenAPI description.
 */
import { readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { runInProcess } from './in-process.js';
import { folderSnapshot, tempDir } from '../support/cli.js';
import { startFakeDigitalOcean, type FakeDigitalOcean } from './fake-api.js';

let fake: FakeDigitalOcean;
let workDir: string;

beforeEach(async () => {
  fake = await startFakeDigitalOcean({ domains: ['example.com'] });
  workDir = tempDir('do-firewall');
});
afterEach(async () => {
  await fake.close();
  rmSync(workDir, { recursive: true, force: true });
});

const run = (args: string[]) => runInProcess(args, workDir, { DIGITALOCEAN_TOKEN: fake.token, DIGITALOCEAN_API_URL: fake.url });

const FAST = ['--key-size', '2048', '--poll-interval', '0.05', '--wait-timeout', '20'];
const BASE = ['create-droplets', '--domain', 'example.com', '--region', 'nyc3', ...FAST];
const LAPTOP = '203.0.113.7/32';

type WireRule = { protocol: string; ports: string; sources: { addresses?: string[]; tags?: string[]; droplet_ids?: number[] } };
const theFirewall = () => {
  const all = [...fake.firewalls.values()];
  expect(all).toHaveLength(1);
  return all[0]!;
};
const inbound = () => theFirewall().inboundRules as WireRule[];
const rulesOn = (ports: string) => inbound().filter((rule) => rule.ports === ports);
const stateFile = () => join(workDir, 'out/etcd/digitalocean.json');
const state = () => JSON.parse(readFileSync(stateFile(), 'utf8')) as { access?: { sshFrom: string[]; trustedSources: string[] } };
const firewallPuts = () => fake.mutations().filter((call) => call.startsWith('PUT /v2/firewalls/'));

describe('trusted sources: the client port from outside the VPC, the peer port never', () => {
  it('create-droplets opens 2379 to each trusted source, keeps 2379-2380 to the VPC and tag, and records the access', async () => {
    const created = await run([...BASE, '--trusted-source', LAPTOP, '--trusted-source', 'tag:k8s-control-plane', '--trusted-source', 'droplet:4242', '--ssh-from', '198.51.100.0/24']);
    expect(created.code, created.stderr).toBe(0);
    expect(rulesOn('2379')).toEqual([{ protocol: 'tcp', ports: '2379', sources: { addresses: [LAPTOP], tags: ['k8s-control-plane'], droplet_ids: [4242] } }]);
    // The peer port stays inside: its only rule is the VPC range and the cluster's tag.
    const peer = rulesOn('2379-2380');
    expect(peer).toHaveLength(1);
    expect(peer[0]!.sources.tags).toEqual(['etcd-cluster-etcd']);
    expect(peer[0]!.sources.addresses).toHaveLength(1);
    expect(peer[0]!.sources.addresses![0]).toMatch(/^10\.\d+\.\d+\.\d+\/\d+$/);
    expect(inbound().flatMap((rule) => rule.sources.addresses ?? []).filter((a) => a === LAPTOP)).toHaveLength(1);
    expect(state().access).toEqual({ sshFrom: ['198.51.100.0/24'], trustedSources: [LAPTOP, 'tag:k8s-control-plane', 'droplet:4242'] });
    expect(created.stderr).toContain(`2379 from ${LAPTOP}, tag:k8s-control-plane, droplet:4242; 22 from 198.51.100.0/24`);
    expect(fake.violations).toEqual([]);
  });

  it('a re-run without --ssh-from or --trusted-source keeps both: the firewall is not touched', async () => {
    expect((await run([...BASE, '--trusted-source', LAPTOP, '--ssh-from', '198.51.100.0/24'])).code).toBe(0);
    const puts = firewallPuts().length;
    const again = await run(BASE);
    expect(again.code, again.stderr).toBe(0);
    expect(firewallPuts()).toHaveLength(puts);
    expect(rulesOn('22')).toEqual([{ protocol: 'tcp', ports: '22', sources: { addresses: ['198.51.100.0/24'] } }]);
    expect(rulesOn('2379')[0]!.sources).toEqual({ addresses: [LAPTOP] });
    expect(state().access).toEqual({ sshFrom: ['198.51.100.0/24'], trustedSources: [LAPTOP] });
  });

  it('a folder from before the record: a re-run without --ssh-from keeps the SSH sources the firewall has', async () => {
    expect((await run([...BASE, '--ssh-from', '198.51.100.0/24'])).code).toBe(0);
    const { access: _dropped, ...older } = state();
    writeFileSync(stateFile(), JSON.stringify(older));
    const again = await run(BASE);
    expect(again.code, again.stderr).toBe(0);
    expect(rulesOn('22')).toEqual([{ protocol: 'tcp', ports: '22', sources: { addresses: ['198.51.100.0/24'] } }]);
    expect(state().access).toEqual({ sshFrom: ['198.51.100.0/24'], trustedSources: [] });
  });

  it.each([
    [['--trusted-source', '0.0.0.0/0'], '[validate] trusted-source[0]: 0.0.0.0/0 opens etcd\'s client port to the whole internet'],
    [['--trusted-source', '::/0'], '[validate] trusted-source[0]: ::/0 opens etcd\'s client port to the whole internet'],
    [['--trusted-source', LAPTOP, '--trusted-source', 'laptop'], '[validate] trusted-source[1]: "laptop" is not a CIDR like 203.0.113.7/32, tag:NAME or droplet:ID'],
    [['--trusted-source', 'tag:'], '[validate] trusted-source[0]: "tag:" is not a CIDR'],
    [['--trusted-source', 'droplet:12ab'], '[validate] trusted-source[0]: "droplet:12ab" is not a CIDR'],
    [['--trusted-source', 'none', '--trusted-source', LAPTOP], '[validate] trusted-source: "none" (no source at all) cannot be given with other sources: 203.0.113.7/32'],
    [['--allow-internet'], '[validate] allow-internet: only goes with --trusted-source 0.0.0.0/0 or ::/0'],
    [['--ssh-from', 'anywhere'], '[validate] ssh-from[0]: "anywhere" is not a CIDR'],
  ])('refuses %j before any call, naming the flag and the value', async (flags, message) => {
    const result = await run([...BASE, ...flags]);
    expect(result.stderr).toContain(message);
    expect(result.code).toBe(2);
    expect(fake.mutations()).toEqual([]);
  });

  it('0.0.0.0/0 with --allow-internet is taken, with a warning', async () => {
    const result = await run([...BASE, '--trusted-source', '0.0.0.0/0', '--allow-internet']);
    expect(result.code, result.stderr).toBe(0);
    expect(result.stderr).toContain('warning: --trusted-source 0.0.0.0/0: every address on the internet may reach port 2379');
    expect(rulesOn('2379')[0]!.sources).toEqual({ addresses: ['0.0.0.0/0'] });
  });
});

describe('firewall: change who gets in, in place; the tool owns its firewall and nothing else', () => {
  it('adds and removes trusted sources and SSH without touching droplets, records each change; --dry-run changes nothing', async () => {
    expect((await run([...BASE, '--ssh-from', '198.51.100.0/24'])).code).toBe(0);
    const droplets = JSON.stringify([...fake.droplets.values()]);
    const before = folderSnapshot(join(workDir, 'out'));
    const mutations = fake.mutations().length;
    const planned = await run(['firewall', '--trusted-source', LAPTOP, '--dry-run']);
    expect(planned.code, planned.stderr).toBe(0);
    expect(planned.stderr).toMatch(/\[dry-run\] PUT \/v2\/firewalls\//);
    expect(planned.stdout).toContain(`clients (port 2379) from outside the VPC: ${LAPTOP}`);
    expect(fake.mutations()).toHaveLength(mutations);
    expect(folderSnapshot(join(workDir, 'out'))).toEqual(before);

    const opened = await run(['firewall', '--trusted-source', LAPTOP, '--json']);
    expect(opened.code, opened.stderr).toBe(0);
    expect(JSON.parse(opened.stdout)).toMatchObject({ dryRun: false, firewall: { outcome: 'updated', access: { sshFrom: ['198.51.100.0/24'], trustedSources: [LAPTOP] } } });
    expect(rulesOn('2379')[0]!.sources).toEqual({ addresses: [LAPTOP] });
    expect(state().access).toEqual({ sshFrom: ['198.51.100.0/24'], trustedSources: [LAPTOP] });

    const closed = await run(['firewall', '--trusted-source', 'none', '--ssh-from', 'none']);
    expect(closed.code, closed.stderr).toBe(0);
    expect(rulesOn('2379')).toEqual([]);
    expect(rulesOn('22')).toEqual([]);
    expect(state().access).toEqual({ sshFrom: [], trustedSources: [] });
    expect(JSON.stringify([...fake.droplets.values()])).toBe(droplets);
    expect(fake.violations).toEqual([]);
  });

  it('a rule added by hand stops create-droplets and firewall, named, with nothing changed; adopting it or --drop-hand-added-rules goes on', async () => {
    expect((await run([...BASE, '--trusted-source', LAPTOP])).code).toBe(0);
    // Someone adds the Kubernetes control plane in the control panel, as an older docs page said.
    inbound().push({ protocol: 'tcp', ports: '2379', sources: { tags: ['k8s-control-plane'] } });
    const puts = firewallPuts().length;
    for (const args of [BASE, ['firewall', '--ssh-from', '198.51.100.0/24']]) {
      const refused = await run(args);
      expect(refused.code).not.toBe(0);
      expect(refused.stderr).toContain('has rules this tool did not make: inbound tcp 2379 from tag:k8s-control-plane');
      expect(refused.stderr).toContain('--trusted-source tag:NAME');
      expect(refused.stderr).toContain('--drop-hand-added-rules');
      expect(firewallPuts()).toHaveLength(puts);
      expect(state().access).toEqual({ sshFrom: [], trustedSources: [LAPTOP] });
    }
    // Adopted: the same grant is now the record's, and the firewall is exactly the record.
    const adopted = await run(['firewall', '--trusted-source', LAPTOP, '--trusted-source', 'tag:k8s-control-plane']);
    expect(adopted.code, adopted.stderr).toBe(0);
    expect(rulesOn('2379')).toEqual([{ protocol: 'tcp', ports: '2379', sources: { addresses: [LAPTOP], tags: ['k8s-control-plane'] } }]);

    // Another hand-added grant, this time dropped on purpose: said, not silent.
    rulesOn('2379')[0]!.sources.addresses!.push('192.0.2.66/32');
    const dropped = await run(['firewall', '--drop-hand-added-rules']);
    expect(dropped.code, dropped.stderr).toBe(0);
    expect(dropped.stderr).toContain('dropped rules added by hand (--drop-hand-added-rules): inbound tcp 2379 from 192.0.2.66/32');
    expect(rulesOn('2379')[0]!.sources.addresses).toEqual([LAPTOP]);
  });

  it('refuses a folder create-droplets did not make, before any call', async () => {
    const made = await run(['gen-userdata', '--ips', '127.0.0.11,127.0.0.12,127.0.0.13', '--key-size', '2048']);
    expect(made.code, made.stderr).toBe(0);
    const result = await run(['firewall', '--trusted-source', LAPTOP]);
    expect(result.code).not.toBe(0);
    expect(result.stderr).toContain('digitalocean.json does not exist');
    expect(fake.mutations()).toEqual([]);
  });
});
