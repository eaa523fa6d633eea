import { readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { parse as parseYaml } from 'yaml';
import { main } from '../src/cli.js';
import { ClusterFolder } from '../src/cluster-folder.js';
import { openCluster } from '../src/day2/open-cluster.js';
import { REPO_ROOT, tempDir } from './support/cli.js';
import { fixtureKeySource } from './support/golden.js';
import { readMemberUserData } from './support/local-cluster.js';

async function gen(args: string[], cwd: string) {
  let stderr = '';
  const code = await main(
    ['gen-userdata', '--key-size', '2048', ...args],
    { env: {}, stdout: { write: () => true }, stderr: { write: (text: string) => (stderr += text) }, cwd },
    { keySource: fixtureKeySource },
  );
  return { code, stderr };
}

/** The etcd config a member's user-data writes (the template in DNS-member mode). */
function etcdConfig(dir: string, member: string): string {
  const files = readMemberUserData(join(dir, 'out', 'etcd', 'user-data', `${member}.yaml`)).files;
  return (files.get('/etc/etcd/etcd.conf.yaml') ?? files.get('/etc/etcd/etcd.conf.yaml.in'))!.content;
}

const IPS = ['10.10.0.11', '10.10.0.12', '10.10.0.13'];

describe('listen-metrics-urls in the rendered config', () => {
  const dirs: string[] = [];
  const dir = () => {
    const made = tempDir('metrics');
    dirs.push(made);
    return made;
  };
  afterAll(() => dirs.forEach((made) => rmSync(made, { recursive: true, force: true })));

  it('is on by default: each member on its own address, port 2381, plain HTTP; cluster.json says so', async () => {
    const cwd = dir();
    expect((await gen(['--ips', IPS.join(',')], cwd)).code).toBe(0);
    for (const [index, ip] of IPS.entries()) {
      const config = parseYaml(etcdConfig(cwd, `etcd${index + 1}`)) as Record<string, unknown>;
      expect(config['listen-metrics-urls']).toBe(`http://${ip}:2381`);
      // The client URLs stay TLS with client certificates.
      expect(config['listen-client-urls']).toBe(`https://${ip}:2379,https://127.0.0.1:2379`);
      expect(config['client-transport-security']).toMatchObject({ 'client-cert-auth': true });
    }
    expect(JSON.parse(readFileSync(join(cwd, 'out', 'etcd', 'cluster.json'), 'utf8'))).toMatchObject({ metrics: true });
  });

  it.each([
    ['--no-metrics', ['--no-metrics']],
    ['metrics: false in --config', ['--config', 'cluster.yaml']],
  ])('%s renders no listen-metrics-urls, and cluster.json keeps it off', async (_name, args) => {
    const cwd = dir();
    writeFileSync(join(cwd, 'cluster.yaml'), 'metrics: false\n');
    expect((await gen(['--ips', IPS.join(','), ...args], cwd)).code).toBe(0);
    for (const member of ['etcd1', 'etcd2', 'etcd3']) expect(etcdConfig(cwd, member)).not.toContain('listen-metrics-urls');
    expect(JSON.parse(readFileSync(join(cwd, 'out', 'etcd', 'cluster.json'), 'utf8'))).toMatchObject({ metrics: false });
  });

  it('DNS-member mode: the placeholder the start step fills in, as for the client and peer URLs', async () => {
    const cwd = dir();
    expect((await gen(['--domain', 'example.com'], cwd)).code).toBe(0);
    expect(etcdConfig(cwd, 'etcd1')).toContain('listen-metrics-urls: "http://@PRIVATE_IPV4@:2381"\n');
  });

  it('day-2 commands keep the setting: on, off, and off for a cluster.json from before metrics existed', async () => {
    const cwd = dir();
    expect((await gen(['--ips', IPS.join(',')], cwd)).code).toBe(0);
    const folder = new ClusterFolder('out', 'etcd', cwd);
    expect(openCluster(folder).plan.members[0]!.listenMetricsUrls).toEqual(['http://10.10.0.11:2381']);
    const path = join(cwd, 'out', 'etcd', 'cluster.json');
    const record = JSON.parse(readFileSync(path, 'utf8')) as Record<string, unknown>;
    writeFileSync(path, JSON.stringify({ ...record, metrics: false }));
    expect(openCluster(folder).plan).toMatchObject({ metrics: false });
    delete record.metrics;
    writeFileSync(path, JSON.stringify(record));
    const old = openCluster(folder).plan;
    expect(old.metrics).toBe(false);
    expect(old.members.every((member) => member.listenMetricsUrls.length === 0)).toBe(true);
  });
});

/** The fenced ```yaml blocks of docs/metrics.md, by their first comment line. */
function docBlocks(): Map<string, unknown[]> {
  const text = readFileSync(join(REPO_ROOT, 'docs', 'metrics.md'), 'utf8');
  const blocks = new Map<string, unknown[]>();
  for (const [, body] of text.matchAll(/```yaml\n([\s\S]*?)```/g)) {
    const name = /^# ([\w.-]+)/.exec(body!)?.[1] ?? '?';
    blocks.set(name, [...(blocks.get(name) ?? []), parseYaml(body!)]);
  }
  return blocks;
}

describe('docs/metrics.md', () => {
  it('has an alert rules file that parses, with the three alerts on metrics etcd exports', () => {
    const [rules] = docBlocks().get('etcd-alerts.yml') ?? [];
    const groups = (rules as { groups: { name: string; rules: { alert: string; expr: string; for: string; labels: object; annotations: object }[] }[] }).groups;
    expect(groups).toHaveLength(1);
    const alerts = groups[0]!.rules;
    expect(alerts.map((rule) => [rule.alert, rule.expr])).toEqual([
      ['EtcdNoLeader', 'etcd_server_has_leader == 0'],
      ['EtcdFrequentLeaderChanges', 'increase(etcd_server_leader_changes_seen_total[1h]) > 3'],
      ['EtcdDatabaseNearQuota', 'etcd_mvcc_db_total_size_in_bytes / etcd_server_quota_backend_bytes > 0.8'],
    ]);
    for (const rule of alerts) {
      // Prometheus' rule fields only; a duration for `for`.
      expect(Object.keys(rule).sort(), rule.alert).toEqual(['alert', 'annotations', 'expr', 'for', 'labels']);
      expect(rule.for, rule.alert).toMatch(/^\d+[smh]$/);
      expect(rule.annotations, rule.alert).toHaveProperty('summary');
    }
  });

  it('has scrape configs that parse: static targets on 2381, and DigitalOcean discovery kept to the cluster tag and private addresses', () => {
    const [statics, discovery] = docBlocks().get('prometheus.yml') ?? [];
    type Job = { job_name: string; scheme: string; static_configs?: { targets: string[] }[]; digitalocean_sd_configs?: { port: number }[]; relabel_configs?: Record<string, unknown>[] };
    const staticJob = (statics as { scrape_configs: Job[] }).scrape_configs[0]!;
    expect(staticJob.scheme).toBe('http');
    expect(staticJob.static_configs![0]!.targets.every((target) => target.endsWith(':2381'))).toBe(true);
    const doJob = (discovery as { scrape_configs: Job[] }).scrape_configs[0]!;
    expect(doJob.digitalocean_sd_configs![0]!.port).toBe(2381);
    expect(doJob.relabel_configs).toContainEqual({ source_labels: ['__meta_digitalocean_tags'], regex: '.*,etcd-cluster-etcd,.*', action: 'keep' });
    expect(doJob.relabel_configs).toContainEqual(expect.objectContaining({ source_labels: ['__meta_digitalocean_private_ipv4'], target_label: '__address__' }));
  });
});
