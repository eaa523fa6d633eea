// What each changing call sends, in one place: our types into the bodies dots serialises.
import type { Domain_record, Droplet_single_create, Firewall, VpcsPostRequestBody } from '@digitalocean/dots';
import type { ARecordRequest, DropletCreateRequest, FirewallSpec, VpcCreateRequest } from './types.js';

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

export function firewallBody(spec: FirewallSpec): Firewall {
  return {
    name: spec.name,
    tags: spec.tags,
    inboundRules: spec.inbound.map((rule) => ({ protocol: rule.protocol, ports: rule.ports, sources: rule.targets })),
    outboundRules: spec.outbound.map((rule) => ({ protocol: rule.protocol, ports: rule.ports, destinations: rule.targets })),
  };
}
