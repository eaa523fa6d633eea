import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { createServer } from 'node:net';
import {
  createDigitalOceanApi,
  DigitalOceanApiError,
  isNotFound,
  resolveDigitalOceanConfig,
  type DigitalOceanApi,
  type DropletCreateRequest,
} from '../../src/digitalocean/client.js';
import { startFakeDigitalOcean, type FakeDigitalOcean } from './fake-api.js';
import { OpenApiValidator } from './openapi.js';

let fake: FakeDigitalOcean;
let api: DigitalOceanApi;
let waits: number[];

beforeEach(async () => {
  fake = await startFakeDigitalOcean({ domains: ['example.com'] });
  waits = [];
  api = createDigitalOceanApi(
    { token: fake.token, apiUrl: fake.url },
    { sleep: async (ms) => void waits.push(ms), maxRetries: 3, maxRetryWaitSeconds: 30 },
  );
});
afterEach(async () => {
  await fake.close();
});

const dropletRequest = (vpcUuid: string, name = 'etcd-etcd1'): DropletCreateRequest => ({
  name,
  region: 'nyc3',
  size: 's-1vcpu-2gb',
  image: 'ubuntu-24-04-x64',
  sshKeys: ['3b:16:e4:bf:8b:00:8b:b8:59:8c:a9:d3:f0:19:45:fa'],
  tags: ['etcd-cluster-etcd'],
  userData: '#cloud-config\n{}\n',
  vpcUuid,
  monitoring: true,
});

async function closedPort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const port = (server.address() as { port: number }).port;
  await new Promise<void>((resolve) => server.close(() => resolve()));
  return port;
}

describe('resolveDigitalOceanConfig', () => {
  it.each([
    [{ DIGITALOCEAN_TOKEN: 'a' }, { token: 'a', apiUrl: 'https://api.digitalocean.com' }],
    [{ DIGITALOCEAN_ACCESS_TOKEN: 'b' }, { token: 'b', apiUrl: 'https://api.digitalocean.com' }],
    [{ DIGITALOCEAN_TOKEN: 'a', DIGITALOCEAN_ACCESS_TOKEN: 'b' }, { token: 'a', apiUrl: 'https://api.digitalocean.com' }],
    [{ DIGITALOCEAN_TOKEN: 'a', DIGITALOCEAN_API_URL: 'http://127.0.0.1:9/' }, { token: 'a', apiUrl: 'http://127.0.0.1:9' }],
  ])('%j', (env, want) => {
    expect(resolveDigitalOceanConfig(env)).toEqual(want);
  });

  it.each([
    [{}, 'no DigitalOcean API token: set DIGITALOCEAN_TOKEN (or DIGITALOCEAN_ACCESS_TOKEN) to a token with write scope'],
    [{ DIGITALOCEAN_TOKEN: '  ' }, 'no DigitalOcean API token: set DIGITALOCEAN_TOKEN (or DIGITALOCEAN_ACCESS_TOKEN) to a token with write scope'],
    [{ DIGITALOCEAN_TOKEN: 'a', DIGITALOCEAN_API_URL: 'not a url' }, 'DIGITALOCEAN_API_URL is not a URL: "not a url"'],
    [{ DIGITALOCEAN_TOKEN: 'a', DIGITALOCEAN_API_URL: 'ftp://x' }, 'DIGITALOCEAN_API_URL must be http(s): "ftp://x"'],
  ])('rejects %j', (env, message) => {
    expect(() => resolveDigitalOceanConfig(env)).toThrow(message);
  });
});

describe('client against the fake API (real dots + kiota)', () => {
  it('round-trips every call the commands make, all conforming to the OpenAPI description', async () => {
    expect((await api.getAccount()).dropletLimit).toBe(25);
    expect(await api.getDomain('example.com')).toEqual({ name: 'example.com' });
    const vpc = await api.createVpc({ name: 'etcd-vpc', region: 'nyc3', ipRange: '10.20.0.0/20', description: 'etcd' });
    expect(vpc).toMatchObject({ name: 'etcd-vpc', region: 'nyc3', ipRange: '10.20.0.0/20' });
    expect((await api.getVpc(vpc.id)).id).toBe(vpc.id);
    expect((await api.listVpcs()).map((v) => v.id)).toContain(vpc.id);

    const created = await api.createDroplet(dropletRequest(vpc.id));
    expect(created).toMatchObject({ name: 'etcd-etcd1', status: 'new', tags: ['etcd-cluster-etcd'] });
    expect(created.privateIpv4).toBeUndefined();
    expect(fake.droplets.get(created.id)?.userData).toBe('#cloud-config\n{}\n');
    expect(fake.droplets.get(created.id)?.sshKeys).toEqual(['3b:16:e4:bf:8b:00:8b:b8:59:8c:a9:d3:f0:19:45:fa']);

    await new Promise((resolve) => setTimeout(resolve, 300));
    const active = await api.getDroplet(created.id);
    expect(active).toMatchObject({ status: 'active', privateIpv4: '10.20.0.2', vpcUuid: vpc.id, region: 'nyc3' });
    expect(active.publicIpv4).toMatch(/^203\.0\.113\./);
    expect((await api.listDroplets({ tagName: 'etcd-cluster-etcd' })).map((d) => d.id)).toEqual([created.id]);
    expect(await api.listDroplets({ tagName: 'other' })).toEqual([]);

    const record = await api.createARecord('example.com', { name: 'etcd-etcd1', data: '10.20.0.2', ttl: 60 });
    expect(record).toMatchObject({ type: 'A', name: 'etcd-etcd1', data: '10.20.0.2', ttl: 60 });
    const updated = await api.updateARecord('example.com', record.id, { name: 'etcd-etcd1', data: '10.20.0.9', ttl: 60 });
    expect(updated.data).toBe('10.20.0.9');
    expect((await api.listDomainRecords('example.com')).filter((r) => r.type === 'A')).toEqual([{ ...record, data: '10.20.0.9' }]);

    const firewall = await api.createFirewall({
      name: 'etcd-cluster-etcd',
      tags: ['etcd-cluster-etcd'],
      inbound: [{ protocol: 'tcp', ports: '2379-2380', targets: { tags: ['etcd-cluster-etcd'], addresses: ['10.20.0.0/20'] } }],
      outbound: [{ protocol: 'tcp', ports: 'all', targets: { addresses: ['0.0.0.0/0', '::/0'] } }],
    });
    expect(firewall.dropletIds).toEqual([created.id]);
    expect((await api.listFirewalls()).map((f) => f.name)).toEqual(['etcd-cluster-etcd']);

    await api.deleteFirewall(firewall.id);
    await api.deleteDomainRecord('example.com', record.id);
    await api.deleteDropletsByTag('etcd-cluster-etcd');
    expect(fake.droplets.size).toBe(0);
    await new Promise((resolve) => setTimeout(resolve, 150));
    await api.deleteVpc(vpc.id);
    expect(fake.vpcs.has(vpc.id)).toBe(false);
    expect(fake.violations).toEqual([]);
  });

  it('deletes one droplet by id; a second delete finds it gone (not-found)', async () => {
    const vpc = await api.createVpc({ name: 'etcd-vpc', region: 'nyc3', description: 'etcd' });
    const [keep, drop] = [await api.createDroplet(dropletRequest(vpc.id, 'etcd-keep')), await api.createDroplet(dropletRequest(vpc.id, 'etcd-drop'))];
    await api.deleteDroplet(drop.id);
    expect([...fake.droplets.keys()]).toEqual([keep.id]);
    expect(fake.mutations().at(-1)).toBe(`DELETE /v2/droplets/${drop.id}`);
    const again = await api.deleteDroplet(drop.id).catch((e: unknown) => e);
    expect(again).toBeInstanceOf(DigitalOceanApiError);
    expect(again).toMatchObject({ kind: 'not-found', status: 404, message: `delete droplet ${drop.id}: not found (404: The resource you were accessing could not be found.)` });
    expect(isNotFound(again)).toBe(true);
    expect(fake.violations).toEqual([]);
  });

  it('reads a user-data source only to send it; failing to read it is no API error and sends nothing', async () => {
    const vpc = await api.createVpc({ name: 'etcd-vpc', region: 'nyc3', description: 'etcd' });
    let reads = 0;
    const read = async () => `#cloud-config
# read ${++reads}
`;
    const created = await api.createDroplet({ ...dropletRequest(vpc.id), userData: { path: 'out/etcd/user-data/etcd1.yaml', read } });
    expect(fake.droplets.get(created.id)?.userData).toBe('#cloud-config\n# read 1\n');
    const failure = new Error('[write] out/etcd exists');
    const error = await api.createDroplet({ ...dropletRequest(vpc.id, 'etcd-etcd2'), userData: { path: 'x', read: () => Promise.reject(failure) } }).catch((e: unknown) => e);
    expect(error).toBe(failure);
    expect(fake.requests.filter((r) => r.method === 'POST' && r.path === '/v2/droplets')).toHaveLength(1);
  });

  it('follows pagination', async () => {
    const vpc = await api.createVpc({ name: 'etcd-vpc', region: 'nyc3', description: 'etcd' });
    for (let i = 0; i < 3; i++) await api.createDroplet(dropletRequest(vpc.id, `etcd-m${i}`));
    const paged = createDigitalOceanApi({ token: fake.token, apiUrl: fake.url });
    expect((await paged.listDroplets()).length).toBe(3);
    expect(fake.requests.filter((r) => r.method === 'GET' && r.path === '/v2/droplets').length).toBe(1);
    expect(fake.violations).toEqual([]);
  });
});

describe('errors become clear messages', () => {
  it('401: a wrong token', async () => {
    const wrong = createDigitalOceanApi({ token: 'not-the-token', apiUrl: fake.url });
    const error = await wrong.getAccount().catch((e: unknown) => e);
    expect(error).toBeInstanceOf(DigitalOceanApiError);
    expect(error).toMatchObject({ kind: 'auth', status: 401 });
    expect((error as Error).message).toBe(
      'read account: DigitalOcean rejected the API token (401: Unable to authenticate you); check DIGITALOCEAN_TOKEN',
    );
    expect((error as Error).message).not.toContain('not-the-token');
  });

  it("422: carries DigitalOcean's own message", async () => {
    fake.fail({ method: 'POST', path: '/v2/droplets', status: 422, message: 'Region is not available' });
    const vpc = await api.createVpc({ name: 'etcd-vpc', region: 'nyc3', description: 'etcd' });
    await expect(api.createDroplet(dropletRequest(vpc.id))).rejects.toThrow(
      'create droplet etcd-etcd1: DigitalOcean refused the request (422: Region is not available)',
    );
  });

  it('429: waits as Retry-After says, then succeeds', async () => {
    fake.fail({ path: '/v2/account', status: 429, retryAfter: '7', times: 2, message: 'Too many requests' });
    const seen: number[] = [];
    const withProgress = createDigitalOceanApi(
      { token: fake.token, apiUrl: fake.url },
      { sleep: async (ms) => void waits.push(ms), onRetry: ({ waitSeconds }) => void seen.push(waitSeconds) },
    );
    expect((await withProgress.getAccount()).dropletLimit).toBe(25);
    expect(waits).toEqual([7000, 7000]);
    expect(seen).toEqual([7, 7]);
  });

  it('429: bounded retries, then says so', async () => {
    fake.fail({ path: '/v2/account', status: 429, retryAfter: '2', times: 10, message: 'Too many requests' });
    await expect(api.getAccount()).rejects.toThrow(
      'read account: rate limited by DigitalOcean (429: Too many requests); it asks to retry after 2 s. Wait and re-run the same command: it resumes',
    );
    expect(waits).toEqual([2000, 2000, 2000]);
  });

  it('429: refuses to sleep longer than the cap', async () => {
    fake.fail({ path: '/v2/account', status: 429, retryAfter: '3600', times: 1 });
    await expect(api.getAccount()).rejects.toThrow(/rate limited.*retry after 3600 s/);
    expect(waits).toEqual([]);
  });

  it('503 on a POST is not retried (a retried create could make a second droplet)', async () => {
    const vpc = await api.createVpc({ name: 'etcd-vpc', region: 'nyc3', description: 'etcd' });
    fake.fail({ method: 'POST', path: '/v2/droplets', status: 503, times: 1, message: 'Service Unavailable' });
    await expect(api.createDroplet(dropletRequest(vpc.id))).rejects.toThrow(
      'create droplet etcd-etcd1: DigitalOcean API error 503: Service Unavailable; re-run the same command later: it resumes',
    );
    expect(fake.requests.filter((r) => r.method === 'POST' && r.path === '/v2/droplets').length).toBe(1);
  });

  it('a dropped connection', async () => {
    fake.fail({ path: '/v2/account', network: true });
    await expect(api.getAccount()).rejects.toThrow(new RegExp(`^read account: cannot reach the DigitalOcean API at ${fake.url} \\(`));
  });

  it('nothing listening', async () => {
    const url = `http://127.0.0.1:${await closedPort()}`;
    const nowhere = createDigitalOceanApi({ token: 't', apiUrl: url });
    await expect(nowhere.getAccount()).rejects.toThrow(`read account: cannot reach the DigitalOcean API at ${url} (ECONNREFUSED)`);
  });

  it('a server that never answers times out', async () => {
    const sockets = new Set<import('node:net').Socket>();
    const silent = createServer((socket) => void sockets.add(socket));
    await new Promise<void>((resolve) => silent.listen(0, '127.0.0.1', resolve));
    const url = `http://127.0.0.1:${(silent.address() as { port: number }).port}`;
    try {
      const slow = createDigitalOceanApi({ token: 't', apiUrl: url }, { requestTimeoutMs: 200 });
      await expect(slow.getAccount()).rejects.toThrow(`read account: no answer from ${url} in time (request timed out)`);
    } finally {
      for (const socket of sockets) socket.destroy();
      await new Promise<void>((resolve) => silent.close(() => resolve()));
    }
  });

  it('404 on a missing domain', async () => {
    await expect(api.getDomain('nope.example')).rejects.toMatchObject({ kind: 'not-found', status: 404 });
  });
});

describe('the fake enforces the OpenAPI description', () => {
  it('checks its own answers too: a droplet missing required fields is reported', () => {
    const validator = OpenApiValidator.fromOpenapiDirectory();
    expect(validator.validateResponse('GET', '/v2/droplets/1', 200, { droplet: { id: 1, name: 'x' } }).join('\n')).toMatch(/body\/droplet must have required property/);
    expect(validator.validateResponse('GET', '/v2/account', 200, { account: { droplet_limit: 25, floating_ip_limit: 3, email: 'a@b.c', uuid: 'u', email_verified: true, status: 'active', status_message: '' } })).toEqual([]);
  });

  it('rejects and records a body the spec does not allow', async () => {
    const response = await fetch(`${fake.url}/v2/firewalls`, {
      method: 'POST',
      headers: { authorization: `Bearer ${fake.token}`, 'content-type': 'application/json' },
      body: JSON.stringify({ name: 'fw', inbound_rules: [{ protocol: 'icmp', sources: { addresses: ['0.0.0.0/0'] } }] }),
    });
    expect(response.status).toBe(400);
    expect(fake.violations.join('\n')).toMatch(/inbound_rules\/0 must have required property 'ports'/);
  });

  it.each([
    ['PUT', '/v2/domains/example.com/records/1', { name: 'a', data: '10.0.0.1' }, /must have required property 'type'/],
    ['POST', '/v2/vpcs', { name: 'etcd_vpc', region: 'nyc3' }, /body\/name must match pattern/],
    ['POST', '/v2/droplets', { name: 'a', names: ['b'], region: 'nyc3', size: 's', image: 'u' }, /must match exactly one schema in oneOf/],
    ['GET', '/v2/droplets?per_page=500', undefined, /query per_page=500: data must be <= 200/],
    ['GET', '/v2/droplets?tagName=x', undefined, /query parameter "tagName" is not in the description/],
    ['GET', '/v2/nonsense', undefined, /no such operation/],
  ])('%s %s', async (method, path, body, expected) => {
    const response = await fetch(`${fake.url}${path}`, {
      method,
      headers: { authorization: `Bearer ${fake.token}`, 'content-type': 'application/json' },
      ...(body && { body: JSON.stringify(body) }),
    });
    expect(response.status).toBe(400);
    expect(fake.violations.join('\n')).toMatch(expected);
  });
});
