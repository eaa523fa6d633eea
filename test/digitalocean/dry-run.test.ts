import { afterEach, describe, expect, it } from 'vitest';
import { createDigitalOceanApi, type DigitalOceanApi } from '../../src/digitalocean/client.js';
import { createDropletCluster, destroyDropletCluster, findDropletCluster, type DropletClusterSpec } from '../../src/digitalocean/cluster.js';
import { recordingApi, type PlannedCall } from '../../src/digitalocean/dry-run.js';
import { startFakeDigitalOcean, type FakeDigitalOcean, type FakeDigitalOceanOptions, type RecordedRequest } from './fake-api.js';

let fakes: FakeDigitalOcean[] = [];
const fresh = async (options: FakeDigitalOceanOptions = {}) => {
  const fake = await startFakeDigitalOcean({ domains: ['example.com'], ...options });
  fakes.push(fake);
  return fake;
};
afterEach(async () => {
  await Promise.all(fakes.map((fake) => fake.close()));
  fakes = [];
});

const apiOf = (fake: FakeDigitalOcean) => createDigitalOceanApi({ token: fake.token, apiUrl: fake.url });

const spec: DropletClusterSpec = {
  clusterName: 'etcd',
  domain: 'example.com',
  region: 'nyc3',
  size: 's-1vcpu-2gb',
  image: 'ubuntu-24-04-x64',
  sshKeys: ['aa:bb:cc'],
  sshFrom: ['198.51.100.7/32'],
  vpcUuid: undefined,
  vpcRange: undefined,
  ttl: 60,
  metrics: true,
  members: ['etcd1', 'etcd2', 'etcd3'].map((name) => ({ name, dropletName: `etcd-${name}`, hostname: `etcd-${name}.example.com` })),
};

/** Runs the create flow on `api`, counting how often it asked for a member's user-data. */
async function create(api: DigitalOceanApi, lines: string[] = []) {
  const userDataReads: string[] = [];
  const result = await createDropletCluster(api, spec, {
    progress: (line) => void lines.push(line),
    sleep: (ms) => new Promise((resolve) => setTimeout(resolve, ms)),
    now: Date.now,
    waitTimeoutMs: 20_000,
    pollIntervalMs: 50,
    userData: async (member) => {
      userDataReads.push(member.name);
      return `#cloud-config\n# ${member.name}\n`;
    },
    userDataPath: (member) => `out/etcd/user-data/${member.name}.yaml`,
  });
  return { result, userDataReads };
}

const destroySpec = { clusterName: 'etcd', domains: ['example.com'], knownRecordNames: [], vpcDeleteTimeoutMs: 10_000 };
const destroy = async (api: DigitalOceanApi) =>
  destroyDropletCluster(api, destroySpec, await findDropletCluster(api, destroySpec), { progress: () => {}, sleep: (ms) => new Promise((resolve) => setTimeout(resolve, ms)), now: Date.now });

const changing = (fake: FakeDigitalOcean) => fake.requests.filter((r) => r.method !== 'GET');
const requestLine = (r: RecordedRequest) => `${r.method} ${r.path}${Object.keys(r.query).length > 0 ? `?${new URLSearchParams(r.query)}` : ''}`;
const callLine = (c: PlannedCall) => `${c.method} ${c.path}`;

/** Equal, except that a planned `<stand-in>` string may hold any value the real run had there. */
function sameWithStandIns(planned: unknown, sent: unknown): boolean {
  if (typeof planned === 'string' && /^<.+>$/.test(planned)) return sent !== undefined;
  if (Array.isArray(planned)) return Array.isArray(sent) && planned.length === sent.length && planned.every((item, i) => sameWithStandIns(item, sent[i]));
  if (typeof planned === 'object' && planned !== null) {
    if (typeof sent !== 'object' || sent === null) return false;
    const keys = (o: object) => Object.keys(o).sort().join();
    return keys(planned) === keys(sent) && Object.entries(planned).every(([key, value]) => sameWithStandIns(value, (sent as Record<string, unknown>)[key]));
  }
  return planned === sent;
}

describe('recordingApi: a dry run is the real flow over a recording API', () => {
  it('sends nothing that changes, and plans exactly the requests a real run then sends', async () => {
    const dryFake = await fresh();
    const lines: string[] = [];
    const recording = recordingApi(apiOf(dryFake), (line) => void lines.push(line));
    const dry = await create(recording, lines);
    expect(dryFake.mutations()).toEqual([]);
    expect(dry.userDataReads).toEqual([]);
    // The wait ran and ended at once: one list call, no second poll.
    expect(dryFake.requests.filter((r) => r.method === 'GET' && r.path === '/v2/droplets' && r.query['tag_name'])).toHaveLength(1);
    expect(lines.filter((line) => line.startsWith('[dry-run] '))).toEqual(
      recording.plannedCalls.map((c) => `[dry-run] ${callLine(c)}${c.body ? ` ${JSON.stringify(c.body)}` : ''}`),
    );
    expect(dry.result.plannedCalls).toBe(recording.plannedCalls);

    // Droplets leave the VPC at once, so the real destroy deletes the VPC in one request.
    const realFake = await fresh({ releaseAfterMs: 0 });
    const real = await create(apiOf(realFake));
    expect(real.result.plannedCalls).toEqual([]);
    expect(real.userDataReads).toEqual(['etcd1', 'etcd2', 'etcd3']);
    const sent = changing(realFake);
    expect(recording.plannedCalls.map(callLine)).toEqual(sent.map(requestLine));
    expect(sent.map(requestLine)).toEqual([
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
    // Same keys and values as the real bodies, stand-ins only where a real run knows more.
    recording.plannedCalls.forEach((call, i) => expect(sameWithStandIns(call.body, sent[i]!.body), `${callLine(call)} ${JSON.stringify(call.body)}`).toBe(true));
    expect(recording.plannedCalls[1]!.body).toMatchObject({ user_data: '<out/etcd/user-data/etcd1.yaml>', vpc_uuid: '<id of the new VPC>' });
    expect(recording.plannedCalls.at(-1)!.body).toMatchObject({ inbound_rules: [
        { ports: '2379-2380', sources: { addresses: ['<range of the new VPC>'] } },
        { ports: '2381', sources: { addresses: ['<range of the new VPC>'], tags: ['etcd-cluster-etcd'] } },
        { ports: '22' },
      ],
    });
    expect(realFake.violations).toEqual([]);

    // destroy: the dry run on the real cluster plans the very deletes the real destroy then sends.
    const settled = changing(realFake).length;
    const dryDestroy = recordingApi(apiOf(realFake), () => {});
    await destroy(dryDestroy);
    expect(changing(realFake)).toHaveLength(settled);
    await destroy(apiOf(realFake));
    const deletes = changing(realFake).slice(settled).map(requestLine);
    expect(dryDestroy.plannedCalls.map(callLine)).toEqual(deletes);
    expect(deletes).toContain('DELETE /v2/droplets?tag_name=etcd-cluster-etcd');
    expect(realFake.droplets.size + realFake.firewalls.size).toBe(0);
  });

  it('answers reads from the real API, with planned droplets active at once and deleted ones gone', async () => {
    const fake = await fresh();
    const real = apiOf(fake);
    const vpc = await real.createVpc({ name: 'etcd-vpc', region: 'nyc3', description: 'etcd' });
    const existing = await real.createDroplet({ name: 'etcd-old', region: 'nyc3', size: 's', image: 'ubuntu-24-04-x64', sshKeys: [], tags: ['t'], userData: '#cloud-config\n', vpcUuid: vpc.id, monitoring: true });
    const before = fake.mutations().length;

    const lines: string[] = [];
    const dry = recordingApi(real, (line) => void lines.push(line));
    const planned = await dry.createDroplet({ name: 'etcd-new', region: 'nyc3', size: 's', image: 'ubuntu-24-04-x64', sshKeys: [], tags: ['t'], userData: '#cloud-config\n', vpcUuid: vpc.id, monitoring: true });
    expect(planned).toMatchObject({ name: 'etcd-new', status: 'active', privateIpv4: '<private IPv4 of etcd-new>' });
    expect(planned.id).toBeLessThan(0);
    // A user-data given as text is not printed: it is long, and the count of bytes says which.
    expect(lines[0]).toContain('"user_data":"<user-data, 14 bytes>"');
    expect((await dry.listDroplets({ tagName: 't' })).map((d) => d.name)).toEqual(['etcd-old', 'etcd-new']);
    expect(await dry.listDroplets({ tagName: 'other' })).toEqual([]);
    expect(await dry.getDroplet(planned.id)).toEqual(planned);

    await dry.deleteDroplet(existing.id);
    expect((await dry.listDroplets()).map((d) => d.name)).toEqual(['etcd-new']);
    await expect(dry.getDroplet(existing.id)).rejects.toMatchObject({ kind: 'not-found' });
    await dry.deleteDropletsByTag('t');
    expect(await dry.listDroplets()).toEqual([]);

    expect(dry.plannedCalls.map(callLine)).toEqual(['POST /v2/droplets', `DELETE /v2/droplets/${existing.id}`, 'DELETE /v2/droplets?tag_name=t']);
    expect(fake.mutations().length).toBe(before);
    expect(fake.droplets.has(existing.id)).toBe(true);
  });
});
