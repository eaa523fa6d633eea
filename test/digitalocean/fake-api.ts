// A stateful fake of the DigitalOcean API on 127.0.0.1 (random port). Every request is checked
// against the published OpenAPI description; a request the spec rejects gets 400 and is
// recorded in `violations`, which tests assert empty.
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { randomUUID } from 'node:crypto';
import { OpenApiValidator } from './openapi.js';

export interface FakeDroplet {
  id: number;
  name: string;
  region: string;
  size: string;
  image: string | number;
  tags: string[];
  userData: string | undefined;
  sshKeys: (string | number)[];
  vpcUuid: string;
  createdAt: number;
  privateIpv4: string;
  publicIpv4: string;
}
export interface FakeVpc {
  id: string;
  name: string;
  region: string;
  ipRange: string;
  description: string;
  isDefault: boolean;
  nextHost: number;
  /** Droplets deleted but not yet released by the platform: VPC delete answers 409 until then. */
  releasingUntil: number;
}
export interface FakeRecord {
  id: number;
  type: string;
  name: string;
  data: string;
  ttl: number;
  /** SRV only. */
  priority?: number;
  port?: number;
  weight?: number;
}
export interface FakeFirewall {
  id: string;
  name: string;
  tags: string[];
  inboundRules: unknown[];
  outboundRules: unknown[];
  createdAt: number;
}
export interface RecordedRequest {
  method: string;
  path: string;
  query: Record<string, string>;
  body: unknown;
}
export interface Fault {
  method?: string;
  /** Matched against the path (no query string). */
  path?: string | RegExp;
  status?: number;
  id?: string;
  message?: string;
  retryAfter?: string;
  /** Destroy the socket without answering, like a dropped connection. */
  network?: boolean;
  /** How many matching requests fail (default 1). */
  times?: number;
  /** Let this many matching requests through first (default 0). */
  skip?: number;
}
export interface FakeDigitalOceanOptions {
  token?: string;
  domains?: string[];
  dropletLimit?: number;
  /** new -> active after this long. */
  activeAfterMs?: number;
  /** The private IPv4 shows in `networks` after this long. */
  privateIpAfterMs?: number;
  /** After droplets are deleted, their VPC still counts them for this long. */
  releaseAfterMs?: number;
  now?: () => number;
  /** Also serve the API on this Unix socket (the DigitalOcean-in-a-box reaches it from its network namespace). */
  socketPath?: string;
  /** The range of a VPC created without ip_range (default 10.<10+n>.0.0/20). */
  vpcRange?: string;
  /** Real machines behind the droplets (the e2e box): a droplet is active once its machine runs. */
  backend?: DropletBackend;
}

/** What boots, stops and connects the machines behind the fake's droplets. */
export interface DropletBackend {
  /** A droplet was created: start its machine (asynchronously; `running` says when it is up). */
  create(droplet: FakeDroplet): void;
  running(droplet: FakeDroplet): boolean;
  /** A droplet was deleted: stop its machine. */
  remove(droplet: FakeDroplet): void;
  /** Droplets, domain records or firewalls changed: what the network enforces and resolves must follow. */
  changed(): void;
}
export interface FakeDigitalOcean {
  url: string;
  token: string;
  droplets: Map<number, FakeDroplet>;
  vpcs: Map<string, FakeVpc>;
  domains: Map<string, FakeRecord[]>;
  firewalls: Map<string, FakeFirewall>;
  requests: RecordedRequest[];
  violations: string[];
  fail(fault: Fault): void;
  /** Requests that changed state (not GET), as "METHOD /path". */
  mutations(): string[];
  close(): Promise<void>;
}

let validatorSingleton: OpenApiValidator | undefined;
const validator = () => (validatorSingleton ??= OpenApiValidator.fromOpenapiDirectory());

class HttpError extends Error {
  constructor(
    readonly status: number,
    readonly id: string,
    message: string,
  ) {
    super(message);
  }
}

const notFound = () => new HttpError(404, 'not_found', 'The resource you were accessing could not be found.');
const unprocessable = (message: string) => new HttpError(422, 'unprocessable_entity', message);

export async function startFakeDigitalOcean(options: FakeDigitalOceanOptions = {}): Promise<FakeDigitalOcean> {
  const token = options.token ?? `fake-token-${randomUUID()}`;
  const now = options.now ?? Date.now;
  const activeAfterMs = options.activeAfterMs ?? 150;
  const privateIpAfterMs = options.privateIpAfterMs ?? 250;
  const releaseAfterMs = options.releaseAfterMs ?? 100;
  const droplets = new Map<number, FakeDroplet>();
  const vpcs = new Map<string, FakeVpc>();
  const domains = new Map<string, FakeRecord[]>();
  const firewalls = new Map<string, FakeFirewall>();
  const requests: RecordedRequest[] = [];
  const violations: string[] = [];
  const faults: (Fault & { remaining: number; toSkip: number })[] = [];
  let nextDropletId = 300_000_001;
  let nextRecordId = 900_001;
  let nextPublicHost = 10;

  for (const domain of options.domains ?? []) {
    domains.set(domain, [
      { id: nextRecordId++, type: 'NS', name: '@', data: 'ns1.digitalocean.com', ttl: 1800 },
      { id: nextRecordId++, type: 'NS', name: '@', data: 'ns2.digitalocean.com', ttl: 1800 },
      { id: nextRecordId++, type: 'SOA', name: '@', data: '1800', ttl: 1800 },
    ]);
  }

  const onRequest = (req: IncomingMessage, res: ServerResponse) => {
    handle(req, res).catch((error: unknown) => {
      violations.push(`fake API crashed on ${req.method} ${req.url}: ${String(error)}`);
      send(res, 500, { id: 'server_error', message: String(error) });
    });
  };
  const server = createServer(onRequest);

  async function handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const raw = await readBody(req);
    const url = new URL(req.url ?? '/', 'http://fake');
    const method = (req.method ?? 'GET').toUpperCase();
    let body: unknown;
    if (raw.length > 0) {
      try {
        body = JSON.parse(raw);
      } catch {
        violations.push(`${method} ${url.pathname}: body is not JSON`);
        return send(res, 400, { id: 'bad_request', message: 'body is not JSON' });
      }
    }
    requests.push({ method, path: url.pathname, query: Object.fromEntries(url.searchParams), body });

    const fault = faults.find(
      (f) =>
        f.remaining > 0 &&
        (!f.method || f.method.toUpperCase() === method) &&
        (!f.path || (typeof f.path === 'string' ? f.path === url.pathname : f.path.test(url.pathname))),
    );
    if (fault && fault.toSkip > 0) {
      fault.toSkip--;
    } else if (fault) {
      fault.remaining--;
      if (fault.network) {
        req.socket.destroy();
        return;
      }
      const status = fault.status ?? 500;
      if (fault.retryAfter !== undefined) res.setHeader('Retry-After', fault.retryAfter);
      return send(res, status, { id: fault.id ?? defaultErrorId(status), message: fault.message ?? 'injected failure' });
    }

    if (req.headers.authorization !== `Bearer ${token}`) {
      return send(res, 401, { id: 'unauthorized', message: 'Unable to authenticate you' });
    }

    const problems = validator().validate(method, url.pathname, url.searchParams, body);
    if (problems.length > 0) {
      violations.push(...problems);
      return send(res, 400, { id: 'bad_request', message: `OpenAPI violation: ${problems.join('; ')}` });
    }

    try {
      const [status, payload] = route(method, url, body as Record<string, unknown> | undefined);
      if (method !== 'GET' && status < 300) options.backend?.changed();
      violations.push(...validator().validateResponse(method, url.pathname, status, payload === undefined ? undefined : JSON.parse(JSON.stringify(payload))));
      send(res, status, payload);
    } catch (error) {
      if (error instanceof HttpError) return send(res, error.status, { id: error.id, message: error.message });
      throw error;
    }
  }

  function route(method: string, url: URL, body: Record<string, unknown> | undefined): [number, unknown] {
    const path = url.pathname;
    const q = url.searchParams;
    let m: RegExpMatchArray | null;

    if (method === 'GET' && path === '/v2/account') {
      return [200, { account: { droplet_limit: options.dropletLimit ?? 25, floating_ip_limit: 3, volume_limit: 100, email: 'fake@example.com', name: 'Fake', uuid: 'b6fr89dbf6d9156cace5f3c78dc9851d957381ef', email_verified: true, status: 'active', status_message: '' } }];
    }

    if (path === '/v2/droplets') {
      if (method === 'GET') {
        let list = [...droplets.values()];
        const tag = q.get('tag_name');
        const name = q.get('name');
        if (tag) list = list.filter((d) => d.tags.includes(tag));
        if (name) list = list.filter((d) => d.name.toLowerCase() === name.toLowerCase());
        return [200, paginate(url, 'droplets', list.map(dropletJson))];
      }
      if (method === 'POST') return [202, createDroplet(body ?? {})];
      if (method === 'DELETE') {
        const tag = q.get('tag_name');
        if (!tag) throw unprocessable('tag_name is required');
        for (const d of [...droplets.values()].filter((d) => d.tags.includes(tag))) removeDroplet(d);
        return [204, undefined];
      }
    }
    if ((m = path.match(/^\/v2\/droplets\/(\d+)$/))) {
      const droplet = droplets.get(Number(m[1]));
      if (!droplet) throw notFound();
      if (method === 'GET') return [200, { droplet: dropletJson(droplet) }];
      if (method === 'DELETE') {
        removeDroplet(droplet);
        return [204, undefined];
      }
    }

    if (path === '/v2/vpcs') {
      if (method === 'GET') return [200, paginate(url, 'vpcs', [...vpcs.values()].map(vpcJson))];
      if (method === 'POST') return [201, { vpc: vpcJson(createVpc(body ?? {})) }];
    }
    if ((m = path.match(/^\/v2\/vpcs\/([^/]+)$/))) {
      const vpc = vpcs.get(m[1] ?? '');
      if (!vpc) throw notFound();
      if (method === 'GET') return [200, { vpc: vpcJson(vpc) }];
      if (method === 'DELETE') {
        const members = [...droplets.values()].filter((d) => d.vpcUuid === vpc.id).length;
        if (members > 0 || vpc.releasingUntil > now()) {
          throw new HttpError(409, 'conflict', 'Can not delete VPC with members');
        }
        if (vpc.isDefault) throw new HttpError(403, 'forbidden', 'Can not delete the default VPC');
        vpcs.delete(vpc.id);
        return [204, undefined];
      }
    }

    if ((m = path.match(/^\/v2\/domains\/([^/]+)$/)) && method === 'GET') {
      const name = m[1] ?? '';
      if (!domains.has(name)) throw notFound();
      return [200, { domain: { name, ttl: 1800, zone_file: '' } }];
    }
    if ((m = path.match(/^\/v2\/domains\/([^/]+)\/records$/))) {
      const domain = m[1] ?? '';
      const records = domains.get(domain);
      if (!records) throw notFound();
      if (method === 'GET') {
        let list = records;
        const name = q.get('name');
        if (name) list = list.filter((r) => (r.name === '@' ? domain : `${r.name}.${domain}`) === name);
        return [200, paginate(url, 'domain_records', list.map(recordJson))];
      }
      if (method === 'POST') return [201, { domain_record: recordJson(createRecord(domain, records, body ?? {})) }];
    }
    if ((m = path.match(/^\/v2\/domains\/([^/]+)\/records\/(\d+)$/))) {
      const domain = m[1] ?? '';
      const records = domains.get(domain);
      const record = records?.find((r) => r.id === Number(m?.[2]));
      if (!records || !record) throw notFound();
      if (method === 'GET') return [200, { domain_record: recordJson(record) }];
      if (method === 'PUT' || method === 'PATCH') {
        checkRecordName(domain, body?.['name']);
        if (typeof body?.['data'] === 'string') record.data = body['data'];
        if (typeof body?.['name'] === 'string') record.name = body['name'];
        if (typeof body?.['ttl'] === 'number') record.ttl = body['ttl'];
        return [200, { domain_record: recordJson(record) }];
      }
      if (method === 'DELETE') {
        records.splice(records.indexOf(record), 1);
        return [204, undefined];
      }
    }

    if (path === '/v2/firewalls') {
      if (method === 'GET') return [200, paginate(url, 'firewalls', [...firewalls.values()].map(firewallJson))];
      if (method === 'POST') return [202, { firewall: firewallJson(createFirewall(body ?? {})) }];
    }
    if ((m = path.match(/^\/v2\/firewalls\/([^/]+)$/))) {
      const firewall = firewalls.get(m[1] ?? '');
      if (!firewall) throw notFound();
      if (method === 'GET') return [200, { firewall: firewallJson(firewall) }];
      if (method === 'PUT') {
        firewall.name = String(body?.['name']);
        firewall.tags = Array.isArray(body?.['tags']) ? body['tags'].map(String) : [];
        firewall.inboundRules = Array.isArray(body?.['inbound_rules']) ? body['inbound_rules'] : [];
        firewall.outboundRules = Array.isArray(body?.['outbound_rules']) ? body['outbound_rules'] : [];
        return [200, { firewall: firewallJson(firewall) }];
      }
      if (method === 'DELETE') {
        firewalls.delete(firewall.id);
        return [204, undefined];
      }
    }

    violations.push(`${method} ${path}: the fake does not implement this operation`);
    throw new HttpError(501, 'not_implemented', `fake: ${method} ${path} not implemented`);
  }

  function createDroplet(body: Record<string, unknown>): unknown {
    if (Array.isArray(body['names'])) throw unprocessable('fake: multi-create is not used by this tool');
    const name = String(body['name']);
    // Names that satisfy every spec version (FIELD-NOTES): 2-32 of [a-z0-9-], starting with a letter.
    if (!/^[a-z][a-z0-9-]{1,31}$/.test(name)) throw unprocessable(`Name is invalid: ${JSON.stringify(name)}`);
    if (droplets.size >= (options.dropletLimit ?? 25)) {
      throw unprocessable('creating this/these droplet(s) will exceed your droplet limit');
    }
    const userData = typeof body['user_data'] === 'string' ? body['user_data'] : undefined;
    if (userData !== undefined && Buffer.byteLength(userData) > 64 * 1024) throw unprocessable('user_data is larger than 64 KiB');
    const region = String(body['region']);
    const vpcUuid = typeof body['vpc_uuid'] === 'string' ? body['vpc_uuid'] : defaultVpc(region).id;
    const vpc = vpcs.get(vpcUuid);
    if (!vpc) throw unprocessable(`vpc_uuid ${vpcUuid} does not exist`);
    if (vpc.region !== region) throw unprocessable(`VPC ${vpcUuid} is in ${vpc.region}, not ${region}`);
    const droplet: FakeDroplet = {
      id: nextDropletId++,
      name,
      region,
      size: String(body['size']),
      image: body['image'] as string | number,
      tags: Array.isArray(body['tags']) ? body['tags'].map(String) : [],
      userData,
      sshKeys: Array.isArray(body['ssh_keys']) ? (body['ssh_keys'] as (string | number)[]) : [],
      vpcUuid,
      createdAt: now(),
      privateIpv4: allocatePrivate(vpc),
      publicIpv4: `203.0.113.${nextPublicHost++}`,
    };
    droplets.set(droplet.id, droplet);
    options.backend?.create(droplet);
    return { droplet: dropletJson(droplet), links: { actions: [{ id: droplet.id + 1, rel: 'create', href: `http://fake/v2/actions/${droplet.id + 1}` }] } };
  }

  function removeDroplet(droplet: FakeDroplet): void {
    droplets.delete(droplet.id);
    options.backend?.remove(droplet);
    const vpc = vpcs.get(droplet.vpcUuid);
    if (vpc) vpc.releasingUntil = now() + releaseAfterMs;
  }

  function defaultVpc(region: string): FakeVpc {
    const existing = [...vpcs.values()].find((v) => v.isDefault && v.region === region);
    if (existing) return existing;
    const vpc = newVpc({ name: `default-${region}`, region, ipRange: '10.116.0.0/20', description: '', isDefault: true });
    return vpc;
  }

  function createVpc(body: Record<string, unknown>): FakeVpc {
    const name = String(body['name']);
    const region = String(body['region']);
    if ([...vpcs.values()].some((v) => v.name === name)) throw unprocessable(`A VPC with name ${name} already exists`);
    const ipRange = typeof body['ip_range'] === 'string' ? body['ip_range'] : (options.vpcRange ?? `10.${10 + vpcs.size}.0.0/20`);
    const [base, bits] = ipRange.split('/');
    if (!base || !/^\d+\.\d+\.\d+\.\d+$/.test(base) || Number(bits) < 16 || Number(bits) > 24) {
      throw unprocessable(`ip_range ${ipRange} must be a private range between /16 and /24`);
    }
    return newVpc({ name, region, ipRange, description: typeof body['description'] === 'string' ? body['description'] : '', isDefault: false });
  }

  function newVpc(v: Pick<FakeVpc, 'name' | 'region' | 'ipRange' | 'description' | 'isDefault'>): FakeVpc {
    const vpc: FakeVpc = { ...v, id: randomUUID(), nextHost: 2, releasingUntil: 0 };
    vpcs.set(vpc.id, vpc);
    return vpc;
  }

  function allocatePrivate(vpc: FakeVpc): string {
    const [base] = vpc.ipRange.split('/');
    const octets = (base ?? '10.0.0.0').split('.').map(Number);
    const n = (((octets[0] ?? 0) << 24) | ((octets[1] ?? 0) << 16) | ((octets[2] ?? 0) << 8) | (octets[3] ?? 0)) + vpc.nextHost++;
    return [n >>> 24, (n >>> 16) & 255, (n >>> 8) & 255, n & 255].join('.');
  }

  function checkRecordName(domain: string, name: unknown): void {
    // DO takes names relative to the zone; an absolute one silently becomes name.domain.domain.
    if (typeof name === 'string' && (name === domain || name.endsWith(`.${domain}`))) {
      violations.push(`record name ${JSON.stringify(name)} is absolute; DigitalOcean wants it relative to ${domain}`);
    }
  }

  function createRecord(domain: string, records: FakeRecord[], body: Record<string, unknown>): FakeRecord {
    checkRecordName(domain, body['name']);
    const ttl = typeof body['ttl'] === 'number' ? body['ttl'] : 1800;
    if (ttl < 30) throw unprocessable('TTL must be at least 30 seconds.');
    const data = body['data'];
    if (body['type'] === 'SRV') {
      // DigitalOcean: an SRV record needs priority, port and weight; its data is the target host.
      for (const key of ['priority', 'port', 'weight']) if (typeof body[key] !== 'number') throw unprocessable(`${key} is required for SRV records.`);
      if (typeof data !== 'string' || !/^[a-z0-9.-]+\.$/i.test(data)) throw unprocessable('Data needs to end with a dot (.)');
      const record: FakeRecord = { id: nextRecordId++, type: 'SRV', name: String(body['name']), data, ttl, priority: body['priority'] as number, port: body['port'] as number, weight: body['weight'] as number };
      records.push(record);
      return record;
    }
    if (body['type'] !== 'A') throw unprocessable('fake: only A and SRV records are supported');
    if (typeof data !== 'string' || !/^\d+\.\d+\.\d+\.\d+$/.test(data)) throw unprocessable('Data needs to be an IPv4 address.');
    const record: FakeRecord = { id: nextRecordId++, type: 'A', name: String(body['name']), data, ttl };
    records.push(record);
    return record;
  }

  function createFirewall(body: Record<string, unknown>): FakeFirewall {
    const name = String(body['name']);
    if ([...firewalls.values()].some((f) => f.name === name)) throw unprocessable(`A firewall named ${name} already exists`);
    const firewall: FakeFirewall = {
      id: randomUUID(),
      name,
      tags: Array.isArray(body['tags']) ? body['tags'].map(String) : [],
      inboundRules: Array.isArray(body['inbound_rules']) ? body['inbound_rules'] : [],
      outboundRules: Array.isArray(body['outbound_rules']) ? body['outbound_rules'] : [],
      createdAt: now(),
    };
    firewalls.set(firewall.id, firewall);
    return firewall;
  }

  function dropletJson(d: FakeDroplet): unknown {
    const age = now() - d.createdAt;
    const active = options.backend ? options.backend.running(d) : age >= activeAfterMs;
    const v4 = [
      ...((options.backend ? active : age >= privateIpAfterMs) ? [{ ip_address: d.privateIpv4, netmask: '255.255.240.0', gateway: '', type: 'private' }] : []),
      ...(active ? [{ ip_address: d.publicIpv4, netmask: '255.255.255.0', gateway: '203.0.113.1', type: 'public' }] : []),
    ];
    return {
      id: d.id,
      name: d.name,
      memory: 2048,
      vcpus: 2,
      disk: 60,
      locked: !active,
      status: active ? 'active' : 'new',
      created_at: new Date(d.createdAt).toISOString(),
      features: ['monitoring', 'private_networking'],
      backup_ids: [],
      next_backup_window: null,
      snapshot_ids: [],
      image: typeof d.image === 'number' ? { id: d.image } : { slug: d.image, distribution: 'Ubuntu' },
      volume_ids: [],
      size: { slug: d.size, memory: 2048, vcpus: 2, disk: 60, transfer: 3, price_monthly: 18, price_hourly: 0.02679, regions: [d.region], available: true, description: 'Basic' },
      size_slug: d.size,
      networks: { v4, v6: [] },
      region: { slug: d.region, name: d.region, features: [], available: true, sizes: [] },
      tags: d.tags,
      vpc_uuid: d.vpcUuid,
    };
  }

  const vpcJson = (v: FakeVpc) => ({ id: v.id, urn: `do:vpc:${v.id}`, name: v.name, description: v.description, region: v.region, ip_range: v.ipRange, default: v.isDefault, created_at: '2026-01-01T00:00:00Z' });
  const recordJson = (r: FakeRecord) => ({ id: r.id, type: r.type, name: r.name, data: r.data, priority: r.priority ?? null, port: r.port ?? null, ttl: r.ttl, weight: r.weight ?? null, flags: null, tag: null });
  const firewallJson = (f: FakeFirewall) => ({
    id: f.id,
    name: f.name,
    status: 'succeeded',
    created_at: new Date(f.createdAt).toISOString(),
    pending_changes: [],
    inbound_rules: f.inboundRules,
    outbound_rules: f.outboundRules,
    droplet_ids: [...droplets.values()].filter((d) => d.tags.some((t) => f.tags.includes(t))).map((d) => d.id),
    tags: f.tags,
  });

  function paginate(url: URL, key: string, items: unknown[]): unknown {
    const perPage = Math.min(Number(url.searchParams.get('per_page') ?? 20), 200);
    const page = Math.max(Number(url.searchParams.get('page') ?? 1), 1);
    const last = Math.max(1, Math.ceil(items.length / perPage));
    const link = (p: number) => {
      const u = new URL(url.pathname, `http://127.0.0.1:${port}`);
      u.searchParams.set('page', String(p));
      u.searchParams.set('per_page', String(perPage));
      return u.toString();
    };
    const pages = page < last ? { next: link(page + 1), last: link(last) } : {};
    return { [key]: items.slice((page - 1) * perPage, page * perPage), links: { pages }, meta: { total: items.length } };
  }

  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const port = (server.address() as AddressInfo).port;
  const socketServer = options.socketPath ? createServer(onRequest) : undefined;
  if (socketServer) await new Promise<void>((resolve) => socketServer.listen(options.socketPath, resolve));

  return {
    url: `http://127.0.0.1:${port}`,
    token,
    droplets,
    vpcs,
    domains,
    firewalls,
    requests,
    violations,
    fail(fault) {
      faults.push({ ...fault, remaining: fault.times ?? 1, toSkip: fault.skip ?? 0 });
    },
    mutations() {
      return requests.filter((r) => r.method !== 'GET').map((r) => `${r.method} ${r.path}`);
    },
    close() {
      const closing = [server, ...(socketServer ? [socketServer] : [])].map((each) => {
        each.closeAllConnections();
        return new Promise<void>((resolve) => each.close(() => resolve()));
      });
      return Promise.all(closing).then(() => undefined);
    },
  };
}

function defaultErrorId(status: number): string {
  return ({ 401: 'unauthorized', 403: 'forbidden', 404: 'not_found', 422: 'unprocessable_entity', 429: 'too_many_requests' } as Record<number, string>)[status] ?? 'server_error';
}

function readBody(req: IncomingMessage): Promise<string> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    req.on('data', (chunk: Buffer) => chunks.push(chunk));
    req.on('end', () => resolve(Buffer.concat(chunks).toString('utf8')));
    req.on('error', reject);
  });
}

function send(res: ServerResponse, status: number, payload: unknown): void {
  if (res.headersSent || res.destroyed) return;
  if (payload === undefined) {
    res.writeHead(status).end();
    return;
  }
  const text = JSON.stringify(payload);
  res.writeHead(status, { 'content-type': 'application/json; charset=utf-8', 'content-length': Buffer.byteLength(text) }).end(text);
}
