import { cpSync, readFileSync, writeFileSync } from 'node:fs';
import { parse as parseYaml } from 'yaml';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { ClusterFolder, FOLDER_FILES, FOLDER_FORMAT_VERSION } from '../src/cluster-folder.js';
import { openCluster } from '../src/day2/open-cluster.js';
import { readClusterPki } from '../src/pki/mint.js';
import { NODE_PATHS, planCluster } from '../src/plan.js';
import { resolveClusterInput } from '../src/input.js';
import { renderUserData } from '../src/render.js';
import { runCli, tempDirsRemovedAfterAll } from './support/cli.js';
import { FIXTURES } from './support/golden.js';
import { DEFAULT_ETCD_VERSION } from '../src/versions.js';

const workDir = tempDirsRemovedAfterAll('folder');

/** The etcd configuration (or, in DNS-member mode, its template) a member's user-data writes. */
function etcdConfigOf(userData: string): string | undefined {
  const config = parseYaml(userData) as { write_files: { path: string; content: string }[] };
  return config.write_files.find((file) => file.path === NODE_PATHS.configFile || file.path === NODE_PATHS.configTemplate)?.content;
}

/** A copy of a fixture folder as 0.1.0 wrote it, under <tmp>/out/<name>. */
function oldFolder(name: string): ClusterFolder {
  const cwd = workDir();
  cpSync(join(FIXTURES, 'folders-0.1.0', name), join(cwd, 'out', name), { recursive: true });
  return new ClusterFolder('out', name, cwd);
}

/** What each fixture folder was generated from (test/fixtures/folders-0.1.0/README.md), as gen-userdata's input; 0.1.0 had no metrics listener and no defragmentation timer. */
// 0.1.0's default etcd release was v3.6.14: the inputs pin what it wrote.
const ORIGINAL_INPUT: Record<string, Record<string, unknown>> = {
  ipmode: { metrics: false, defrag: false, 'cluster-name': 'ipmode', ips: ['10.10.0.11', '10.10.0.12', '10.10.0.13'], 'etcd-version': 'v3.5.21', 'key-size': 2048 },
  dnsdomain: { metrics: false, defrag: false, 'cluster-name': 'dnsdomain', domain: 'example.com', 'snapshot-schedule': 'daily', 'snapshot-retain': 7, 'key-size': 2048, 'etcd-version': 'v3.6.14' },
  dnshosts: { metrics: false, defrag: false, 'cluster-name': 'dnshosts', hostnames: ['a.db.example.net', 'b.db.example.net', 'c.db.example.net'], snapshots: false, install: 'baked', 'key-size': 2048, 'etcd-version': 'v3.6.14' },
  docluster: { metrics: false, defrag: false, 'cluster-name': 'docluster', domain: 'example.com', names: ['etcd1', 'etcd2', 'etcd3'], 'key-size': 2048, 'etcd-version': 'v3.6.14' },
};

describe('folders written by 0.1.0 are read by this release', () => {
  it.each([
    ['ipmode', { ip: '10.10.0.11' }, undefined, 'static'],
    ['dnsdomain', { hostname: 'dnsdomain-etcd1.example.com' }, 'example.com', 'metadata'],
    ['dnshosts', { hostname: 'a.db.example.net' }, undefined, 'metadata'],
    ['docluster', { hostname: 'docluster-etcd1.example.com' }, 'example.com', 'metadata'],
  ])('%s', (name, firstMember, domain, listen) => {
    const cluster = openCluster(oldFolder(name));
    expect(cluster.record.formatVersion).toBe(FOLDER_FORMAT_VERSION);
    expect(cluster.record.members[0]).toMatchObject({ name: 'etcd1', ...firstMember });
    expect(cluster.record.domain).toBe(domain);
    expect(cluster.plan.domain).toBe(domain);
    expect(cluster.plan.listenAddress.source).toBe(listen);
    // The plan read back is the plan of the input that wrote the folder.
    const { input } = resolveClusterInput(ORIGINAL_INPUT[name]!, {});
    expect(cluster.plan).toEqual(planCluster(input, cluster.folder.dir));
    // And it renders each member's etcd configuration as it was then.
    const pki = readClusterPki(cluster.plan, cluster.pki);
    for (const member of ['etcd1', 'etcd2', 'etcd3']) {
      expect(etcdConfigOf(renderUserData(cluster.plan, pki, member)), member).toBe(etcdConfigOf(cluster.folder.readUserData(member)));
    }
    expect(cluster.adminTls.certPem).toBe(readFileSync(cluster.folder.path(FOLDER_FILES.cert('admin')), 'utf8'));
  });

  it('reads digitalocean.json of 0.1.0: the droplets, no recorded droplet settings', () => {
    const cluster = openCluster(oldFolder('docluster'));
    expect(cluster.digitalocean).toMatchObject({ formatVersion: FOLDER_FORMAT_VERSION, region: 'nyc3', domain: 'example.com', tag: 'etcd-cluster-docluster' });
    expect(cluster.digitalocean?.droplet).toBeUndefined();
    expect(cluster.digitalocean?.members.map((member) => [member.name, member.dropletName, member.dropletId])).toEqual([
      ['etcd1', 'docluster-etcd1', 300000001],
      ['etcd2', 'docluster-etcd2', 300000002],
      ['etcd3', 'docluster-etcd3', 300000003],
    ]);
    expect(openCluster(oldFolder('ipmode')).digitalocean).toBeUndefined();
  });
});

describe('cluster.json is checked on read', () => {
  const damaged = (change: (record: Record<string, unknown>) => unknown) => {
    const folder = oldFolder('dnsdomain');
    const file = folder.path(FOLDER_FILES.clusterJson);
    writeFileSync(file, JSON.stringify(change(JSON.parse(readFileSync(file, 'utf8')) as Record<string, unknown>)));
    return () => openCluster(folder);
  };

  it.each([
    ['a member with neither ip nor hostname', (r: Record<string, unknown>) => ({ ...r, members: [{ name: 'etcd1' }] }), '[parse] cluster.json: members[0] must have required property'],
    ['no members', (r: Record<string, unknown>) => ({ ...r, members: undefined }), "[parse] cluster.json: the document must have required property 'members'; was it written by etcd-cloudinit?"],
    ['a key size the tool never writes', (r: Record<string, unknown>) => ({ ...r, keySize: 1024 }), '[parse] cluster.json: keySize must be equal to one of the allowed values'],
    ['a newer format', (r: Record<string, unknown>) => ({ ...r, formatVersion: 2 }), '[parse] cluster.json: formatVersion 2 was written by a newer etcd-cloudinit (this one reads 1); upgrade etcd-cloudinit'],
    ['another cluster', (r: Record<string, unknown>) => ({ ...r, clusterName: 'other' }), '[parse] cluster.json: clusterName is "other", but the folder is for "dnsdomain"'],
  ])('%s', (_what, change, message) => {
    expect(damaged(change)).toThrow(message);
  });

  it('names a file that is not JSON', () => {
    const folder = oldFolder('ipmode');
    writeFileSync(folder.path(FOLDER_FILES.clusterJson), '{"clusterName":');
    expect(() => openCluster(folder)).toThrow(/^\[parse\] cluster\.json: is not valid JSON: /);
  });
});

describe('what this release writes', () => {
  it('cluster.json carries the format version and the --domain of a DNS-member cluster', async () => {
    const cwd = workDir();
    const result = await runCli(['gen-userdata', '--domain', 'example.com', '--cluster-name', 'acc', '--key-size', '2048'], cwd);
    expect(result.code, result.stderr).toBe(0);
    const record = JSON.parse(readFileSync(join(cwd, 'out', 'acc', 'cluster.json'), 'utf8')) as Record<string, unknown>;
    expect(record).toMatchObject({ formatVersion: 1, domain: 'example.com', clusterName: 'acc' });
    // The plan's derived download URLs are not state: the node derives them from releaseUrl and version.
    expect(record.install).toEqual({ mode: 'download', version: DEFAULT_ETCD_VERSION, releaseUrl: 'https://github.com/etcd-io/etcd/releases/download' });
    expect(openCluster(new ClusterFolder('out', 'acc', cwd)).record.domain).toBe('example.com');
  });

  it('a folder is shown as the user gave it: relative stays relative (outside the working directory too), absolute stays absolute', () => {
    expect(new ClusterFolder('out', 'etcd', '/work').shown).toBe('out/etcd');
    expect(new ClusterFolder('/srv/clusters', 'prod', '/work').shown).toBe('/srv/clusters/prod');
    expect(new ClusterFolder('../elsewhere', 'prod', '/work/repo').shown).toBe('../elsewhere/prod');
  });
});
