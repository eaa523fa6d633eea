// What each changing call sends, in one place: our types into the bodies dots serialises. The
// facade sends these bodies; a dry run asks dots' own request builders for the request they
// would send (method, path, JSON), so what it lists is what a real run puts on the wire.
import {
  createDigitalOceanClient,
  type DigitalOceanClient,
  type Domain_record,
  type Droplet_single_create,
  type Firewall,
  type VpcsPostRequestBody,
} from '@digitalocean/dots';
import { AnonymousAuthenticationProvider, type RequestInformation } from '@microsoft/kiota-abstractions';
import { FetchRequestAdapter } from '@microsoft/kiota-http-fetchlibrary';
import type { ARecordRequest, ChangingCall, DigitalOceanApi, DropletCreateRequest, FirewallSpec, SrvRecordRequest, VpcCreateRequest } from './types.js';

export function vpcCreateBody(request: VpcCreateRequest): VpcsPostRequestBody {
  return {
    name: request.name,
    region: request.region,
    description: request.description,
    ...(request.ipRange && { ipRange: request.ipRange }),
  };
}

export function dropletCreateBody(request: DropletCreateRequest, userData: string): Droplet_single_create {
  return {
    name: request.name,
    region: request.region,
    size: request.size,
    image: request.image,
    sshKeys: request.sshKeys,
    tags: request.tags,
    userData,
    vpcUuid: request.vpcUuid,
    monitoring: request.monitoring,
  };
}

// The published spec requires `type` on an update too, even though it cannot change.
export function aRecordBody(record: ARecordRequest): Domain_record & { type: 'A'; name: string; data: string } {
  return { type: 'A', name: record.name, data: record.data, ttl: record.ttl };
}

/** DigitalOcean wants an SRV target as a name with a final dot (a name without one is taken relative to the zone). */
export function srvRecordBody(record: SrvRecordRequest): Domain_record & { type: 'SRV'; name: string; data: string } {
  return { type: 'SRV', name: record.name, data: `${record.target}.`, priority: 0, port: record.port, weight: 0, ttl: record.ttl };
}

export function firewallBody(spec: FirewallSpec): Firewall {
  return {
    name: spec.name,
    tags: spec.tags,
    inboundRules: spec.inbound.map((rule) => ({ protocol: rule.protocol, ports: rule.ports, sources: rule.targets })),
    outboundRules: spec.outbound.map((rule) => ({ protocol: rule.protocol, ports: rule.ports, destinations: rule.targets })),
  };
}

/** One API request in the API's own wire terms: path from the API root, snake_case JSON body. */
export interface PlannedCall {
  readonly method: 'POST' | 'PUT' | 'DELETE';
  readonly path: string;
  readonly body?: Record<string, unknown>;
}

export type DescribeChange = { readonly [K in ChangingCall]: (...args: Parameters<DigitalOceanApi[K]>) => PlannedCall };

// Builders only: this client never sends, so it needs no token and no real URL.
const DESCRIBE_BASE = 'https://api.digitalocean.invalid';

/** The request each changing call would send, built by dots and not sent. */
export function describeChanges(): DescribeChange {
  const adapter = new FetchRequestAdapter(new AnonymousAuthenticationProvider());
  adapter.baseUrl = DESCRIBE_BASE;
  const client: DigitalOceanClient = createDigitalOceanClient(adapter);
  const domain = (name: string) => client.v2.domains.byDomain_name(name).records;
  return {
    // The user-data is not read (that may mint keys and write out/) nor printed (it is long): a stand-in says which.
    createDroplet: (request) => planned(client.v2.droplets.toPostRequestInformation(dropletCreateBody(request, userDataStandIn(request.userData)))),
    deleteDroplet: (id) => planned(client.v2.droplets.byDroplet_id(id).toDeleteRequestInformation()),
    deleteDropletsByTag: (tagName) => planned(client.v2.droplets.toDeleteRequestInformation({ queryParameters: { tagName } })),
    createVpc: (request) => planned(client.v2.vpcs.toPostRequestInformation(vpcCreateBody(request))),
    deleteVpc: (id) => planned(client.v2.vpcs.byVpc_id(id).toDeleteRequestInformation()),
    createARecord: (zone, record) => planned(domain(zone).toPostRequestInformation(aRecordBody(record))),
    createSrvRecord: (zone, record) => planned(domain(zone).toPostRequestInformation(srvRecordBody(record))),
    updateARecord: (zone, id, record) => planned(domain(zone).byDomain_record_id(id).toPutRequestInformation(aRecordBody(record))),
    deleteDomainRecord: (zone, id) => planned(domain(zone).byDomain_record_id(id).toDeleteRequestInformation()),
    createFirewall: (spec) => planned(client.v2.firewalls.toPostRequestInformation(firewallBody(spec))),
    updateFirewall: (id, spec) => planned(client.v2.firewalls.byFirewall_id(id).toPutRequestInformation(firewallBody(spec))),
    deleteFirewall: (id) => planned(client.v2.firewalls.byFirewall_id(id).toDeleteRequestInformation()),
  };
}

const userDataStandIn = (userData: DropletCreateRequest['userData']) =>
  typeof userData === 'string' ? `<user-data, ${Buffer.byteLength(userData)} bytes>` : `<${userData.path}>`;

function planned(request: RequestInformation): PlannedCall {
  const method = String(request.httpMethod);
  if (method !== 'POST' && method !== 'PUT' && method !== 'DELETE') throw new Error(`not a changing request: ${method} ${request.URL}`);
  // dots writes some droplet keys twice, with the same value (a model and its base); this keeps one.
  const body = request.content ? (JSON.parse(new TextDecoder().decode(request.content)) as Record<string, unknown>) : undefined;
  return { method, path: request.URL.slice(DESCRIBE_BASE.length), ...(body && { body }) };
}
