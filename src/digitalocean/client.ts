// The facade over @digitalocean/dots: DigitalOceanApi (our types) in, dots' models out and back.
// Code outside src/digitalocean/ imports this module (and dry-run.ts) and never sees dots or
// kiota. Its parts: types.ts, errors.ts (DigitalOceanApiError), http.ts (config, timeouts,
// retries) and requests.ts (the bodies of changing calls, shared with the dry run).
import type { Droplet, Firewall, Firewall_rule_target, Page_links } from '@digitalocean/dots';
import { DigitalOceanApiError, toApiError } from './errors.js';
import { buildClient, type ClientOptions } from './http.js';
import { aRecordBody, dropletCreateBody, firewallBody, srvRecordBody, vpcCreateBody } from './requests.js';
import type { DigitalOceanApi, DigitalOceanConfig, DnsRecord, DropletInfo, FirewallInfo, FirewallRule, VpcInfo } from './types.js';

export { DigitalOceanApiError, isNotFound, toApiError, type DigitalOceanErrorKind } from './errors.js';
export { DEFAULT_API_URL, resolveDigitalOceanConfig, type ClientOptions } from './http.js';
export type * from './types.js';

const PER_PAGE = 200;
// 50 pages of 200 is far beyond any account this tool should touch; the bound stops a loop
// on a server that keeps answering "next".
const MAX_PAGES = 50;

export function createDigitalOceanApi(config: DigitalOceanConfig, options: ClientOptions = {}): DigitalOceanApi {
  const client = buildClient(config, options);
  const call = <T>(operation: string, fn: () => Promise<T>): Promise<T> =>
    fn().catch((error: unknown) => {
      throw toApiError(operation, error, config.apiUrl);
    });

  async function paged<R extends { links?: Page_links | null }, T>(
    operation: string,
    fetchPage: (query: { page: number; perPage: number }) => Promise<R | undefined>,
    items: (response: R) => T[] | null | undefined,
  ): Promise<T[]> {
    const all: T[] = [];
    for (let page = 1; page <= MAX_PAGES; page++) {
      const response = await call(operation, () => fetchPage({ page, perPage: PER_PAGE }));
      const batch = response ? (items(response) ?? []) : [];
      all.push(...batch);
      if (!response?.links?.pages?.next || batch.length === 0) return all;
    }
    throw new DigitalOceanApiError('unexpected', operation, `${operation}: more than ${MAX_PAGES} pages; refusing to continue`);
  }

  const required = <T>(operation: string, value: T | null | undefined): T => {
    if (value === null || value === undefined) {
      throw new DigitalOceanApiError('unexpected', operation, `${operation}: the API response has no body`);
    }
    return value;
  };

  return {
    apiUrl: config.apiUrl,

    async getAccount() {
      const response = await call('read account', () => client.v2.account.get());
      const account = required('read account', response?.account);
      return {
        ...(account.dropletLimit != null && { dropletLimit: account.dropletLimit }),
        ...(account.status != null && { status: account.status }),
        ...(account.statusMessage != null && { statusMessage: account.statusMessage }),
      };
    },

    async listDroplets(filter = {}) {
      const droplets = await paged(
        'list droplets',
        (q) => client.v2.droplets.get({ queryParameters: { ...q, ...(filter.tagName && { tagName: filter.tagName }) } }),
        (r) => r.droplets,
      );
      return droplets.map(toDropletInfo);
    },

    async getDroplet(id) {
      const response = await call(`read droplet ${id}`, () => client.v2.droplets.byDroplet_id(id).get());
      return toDropletInfo(required(`read droplet ${id}`, response?.droplet));
    },

    async createDroplet(request) {
      const operation = `create droplet ${request.name}`;
      // Read outside call(): a failure to produce the user-data is ours, not the API's.
      const userData = typeof request.userData === 'string' ? request.userData : await request.userData.read();
      const response = await call(operation, () => client.v2.droplets.post(dropletCreateBody(request, userData)));
      return toDropletInfo(required(operation, response?.droplet ?? response?.droplets?.[0]));
    },

    async deleteDroplet(id) {
      await call(`delete droplet ${id}`, () => client.v2.droplets.byDroplet_id(id).delete());
    },

    async deleteDropletsByTag(tagName) {
      await call(`delete droplets tagged ${tagName}`, () => client.v2.droplets.delete({ queryParameters: { tagName } }));
    },

    async listVpcs() {
      const vpcs = await paged('list VPCs', (q) => client.v2.vpcs.get({ queryParameters: q }), (r) => r.vpcs);
      return vpcs.flatMap((vpc) => (vpc.id ? [toVpcInfo({ ...vpc, id: vpc.id })] : []));
    },

    async getVpc(id) {
      const response = await call(`read VPC ${id}`, () => client.v2.vpcs.byVpc_id(id).get());
      const vpc = required(`read VPC ${id}`, response?.vpc);
      return toVpcInfo({ ...vpc, id: vpc.id ?? id });
    },

    async createVpc(request) {
      const operation = `create VPC ${request.name}`;
      const response = await call(operation, () => client.v2.vpcs.post(vpcCreateBody(request)));
      const vpc = required(operation, response?.vpc);
      return toVpcInfo({ ...vpc, id: required(operation, vpc.id) });
    },

    async deleteVpc(id) {
      await call(`delete VPC ${id}`, () => client.v2.vpcs.byVpc_id(id).delete());
    },

    async getDomain(name) {
      const response = await call(`read domain ${name}`, () => client.v2.domains.byDomain_name(name).get());
      return { name: required(`read domain ${name}`, response?.domain)?.name ?? name };
    },

    async listDomainRecords(domain) {
      const records = await paged(
        `list DNS records of ${domain}`,
        (q) => client.v2.domains.byDomain_name(domain).records.get({ queryParameters: q }),
        (r) => r.domainRecords,
      );
      return records.flatMap((r) =>
        r.id != null && r.type && r.name != null
          ? [{ id: r.id, type: r.type, name: r.name, data: r.data ?? '', ...(r.ttl != null && { ttl: r.ttl }), ...(r.port != null && { port: r.port }) }]
          : [],
      );
    },

    async createARecord(domain, record) {
      const operation = `create DNS record ${record.name}.${domain}`;
      const response = await call(operation, () => client.v2.domains.byDomain_name(domain).records.post(aRecordBody(record)));
      return toDnsRecord(operation, response?.domainRecord);
    },

    async createSrvRecord(domain, record) {
      const operation = `create DNS record ${record.name}.${domain}`;
      const response = await call(operation, () => client.v2.domains.byDomain_name(domain).records.post(srvRecordBody(record)));
      return toDnsRecord(operation, response?.domainRecord);
    },

    async updateARecord(domain, id, record) {
      const operation = `update DNS record ${record.name}.${domain}`;
      const response = await call(operation, () => client.v2.domains.byDomain_name(domain).records.byDomain_record_id(id).put(aRecordBody(record)));
      return toDnsRecord(operation, response?.domainRecord);
    },

    async deleteDomainRecord(domain, id) {
      await call(`delete DNS record ${id} of ${domain}`, () =>
        client.v2.domains.byDomain_name(domain).records.byDomain_record_id(id).delete(),
      );
    },

    async listFirewalls() {
      const firewalls = await paged('list firewalls', (q) => client.v2.firewalls.get({ queryParameters: q }), (r) => r.firewalls);
      return firewalls.flatMap((f) => (f.id ? [toFirewallInfo({ ...f, id: f.id })] : []));
    },

    async createFirewall(spec) {
      const operation = `create firewall ${spec.name}`;
      const response = await call(operation, () => client.v2.firewalls.post(firewallBody(spec)));
      const firewall = required(operation, response?.firewall);
      return toFirewallInfo({ ...firewall, id: required(operation, firewall.id) });
    },

    async updateFirewall(id, spec) {
      const operation = `update firewall ${spec.name}`;
      // PUT replaces the whole firewall: every rule and tag is sent.
      const response = await call(operation, () => client.v2.firewalls.byFirewall_id(id).put(firewallBody(spec)));
      const firewall = required(operation, response?.firewall);
      return toFirewallInfo({ ...firewall, id: firewall.id ?? id });
    },

    async deleteFirewall(id) {
      await call(`delete firewall ${id}`, () => client.v2.firewalls.byFirewall_id(id).delete());
    },
  };
}


function toDropletInfo(droplet: Droplet): DropletInfo {
  const v4 = droplet.networks?.v4 ?? [];
  const address = (type: 'private' | 'public') => v4.find((n) => n.type === type && n.ipAddress)?.ipAddress ?? undefined;
  const privateIpv4 = address('private');
  const publicIpv4 = address('public');
  if (droplet.id == null || !droplet.name) {
    throw new DigitalOceanApiError('unexpected', 'read droplet', 'the API returned a droplet without id or name');
  }
  return {
    id: droplet.id,
    name: droplet.name,
    status: droplet.status ?? 'unknown',
    tags: droplet.tags ?? [],
    ...(droplet.region?.slug && { region: droplet.region.slug }),
    ...(droplet.vpcUuid && { vpcUuid: droplet.vpcUuid }),
    ...(privateIpv4 && { privateIpv4 }),
    ...(publicIpv4 && { publicIpv4 }),
  };
}

function toVpcInfo(vpc: { id: string; name?: string | null; region?: string | null; ipRange?: string | null; description?: string | null }): VpcInfo {
  return {
    id: vpc.id,
    name: vpc.name ?? '',
    ...(vpc.region && { region: vpc.region }),
    ...(vpc.ipRange && { ipRange: vpc.ipRange }),
    ...(vpc.description && { description: vpc.description }),
  };
}

function toDnsRecord(
  operation: string,
  record: { id?: number | null; type?: string | null; name?: string | null; data?: string | null; ttl?: number | null } | null | undefined,
): DnsRecord {
  if (!record || record.id == null) {
    throw new DigitalOceanApiError('unexpected', operation, `${operation}: the API response has no record id`);
  }
  return {
    id: record.id,
    type: record.type ?? 'A',
    name: record.name ?? '',
    data: record.data ?? '',
    ...(record.ttl != null && { ttl: record.ttl }),
  };
}

function toRule(protocol: string | null | undefined, ports: string | null | undefined, target: Firewall_rule_target | null | undefined): FirewallRule {
  return {
    protocol: (protocol ?? 'tcp') as FirewallRule['protocol'],
    ports: ports ?? '',
    targets: {
      ...(target?.addresses?.length && { addresses: target.addresses }),
      ...(target?.tags?.length && { tags: target.tags }),
      ...(target?.dropletIds?.length && { dropletIds: target.dropletIds }),
    },
  };
}

function toFirewallInfo(firewall: Firewall & { id: string }): FirewallInfo {
  return {
    id: firewall.id,
    name: firewall.name ?? '',
    tags: firewall.tags ?? [],
    dropletIds: firewall.dropletIds ?? [],
    inbound: (firewall.inboundRules ?? []).map((rule) => toRule(rule.protocol, rule.ports, rule.sources)),
    outbound: (firewall.outboundRules ?? []).map((rule) => toRule(rule.protocol, rule.ports, rule.destinations)),
  };
}
